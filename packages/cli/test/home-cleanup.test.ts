/**
 * Everything of a home lives in OUTRIG_HOME: start a server (as root: the home's parent is 0700, so the
 * postgres user cannot walk to it), run a session whose tool call runs in a sandbox, stop the server,
 * delete the home, and nothing of it is left: no process, no cluster in /var/lib/outrig, nothing in
 * the server's temp dir.
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startFakeLlmServer } from "@outrig/models";
import { expect, it } from "vitest";
import { apiClient, createAgentSession, stopReason, waitForIdle } from "./api-session.js";
import { startServerProcess } from "./server-process.js";

/** Pids whose command line or working directory is in `directory`. */
async function processesIn(directory: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await fs.readdir("/proc")).filter((name) => /^\d+$/.test(name))) {
    const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    const cwd = await fs.readlink(`/proc/${pid}/cwd`).catch(() => "");
    if (cmdline.includes(directory) || cwd.startsWith(directory))
      found.push(`${pid}: ${cmdline.replaceAll("\0", " ")}`);
  }
  return found;
}

it("leaves nothing of OUTRIG_HOME on the machine once it is deleted after a stop", async () => {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-home-cleanup-"));
  const home = path.join(scratch, "home");
  const tmp = path.join(scratch, "tmp");
  await fs.mkdir(tmp, { mode: 0o700 });
  const fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        { toolCalls: [{ name: "bash", input: { command: "echo kept > /workspace/out.txt" } }] },
        { text: "ok" },
      ],
    },
  });
  try {
    const server = await startServerProcess({
      home,
      env: { ANTHROPIC_API_KEY: "sk-ant-cleanup", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`, TMPDIR: tmp },
    });
    try {
      const client = apiClient(server);
      const { session } = await createAgentSession(client, {
        model: "anthropic:claude-sonnet-4-5",
        prompt: "go",
      });
      expect(stopReason(await waitForIdle(client, session.id))).toBe("end_turn");
      // The cluster is in the home even as root (the home's parent is 0700).
      expect((await fs.stat(path.join(home, "postgres", "PG_VERSION"))).isFile()).toBe(true);
    } finally {
      await server.stop();
    }
    await fs.rm(home, { recursive: true, force: true });

    expect(await processesIn(home)).toEqual([]);
    const relocated = createHash("sha256").update(path.join(home, "postgres")).digest("hex").slice(0, 16);
    await expect(fs.stat(path.join("/var/lib/outrig", `cluster-${relocated}`))).rejects.toMatchObject({
      code: "ENOENT",
    });
    expect(await fs.readdir(tmp)).toEqual([]);
  } finally {
    await fakeLlm.close();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}, 300_000);
