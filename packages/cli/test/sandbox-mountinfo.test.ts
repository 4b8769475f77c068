/**
 * What a session's sandbox learns about the host from its mount table: on a real server, a command
 * reads /proc/self/mountinfo (which shows the host path of every bind mount) and finds neither its
 * org's id nor its user's, and of the session's state directory only the journal subdirectory is
 * mounted (the server's own files there stay out of reach).
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, createAgentSession, resultText, TOOLS, waitForIdle } from "./api-session.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "./server-process.js";

let fakeLlm: FakeLlmServer;
let home: string;
let server: ServerProcess;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        {
          toolCalls: [
            {
              name: TOOLS.bash,
              input: {
                command: "cat /proc/self/mountinfo; echo ---; cat /proc/1/mountinfo; ls -A /memories",
              },
            },
          ],
        },
        { text: "done" },
      ],
    },
  });
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: { ANTHROPIC_API_KEY: "mountinfo", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

describe("the sandbox's mount table", () => {
  it("names no org or user id and mounts only the journal of the state directory", async () => {
    const key = server.apiKey;
    const client = apiClient(server);
    const { session } = await createAgentSession(client, { model: "anthropic:mountinfo", prompt: "go" });
    const id = session.id;
    const stored = await waitForIdle(client, id);
    // The ids the host uses: the caller's org (whose session it is), and the user its audit entries name.
    const me = (await (await fetch(`${server.url}/v1/me`, { headers: { "x-api-key": key } })).json()) as {
      orgId: string;
    };
    const audit = (await (
      await fetch(`${server.url}/v1/audit?sessionId=${id}`, { headers: { "x-api-key": key } })
    ).json()) as { entries: { userId: string | null }[] };
    const orgId = me.orgId;
    const userId = audit.entries.find((entry) => entry.userId)?.userId;
    expect(orgId).toMatch(/\w{6,}/);
    expect(userId).toMatch(/\w{6,}/);
    const result = stored.find((event) => event.type === "agent.tool_result");
    expect(result).toMatchObject({ is_error: false });
    const output = resultText(result);
    // The mounts are there (the read worked) …
    expect(output).toContain(" /workspace ");
    expect(output).toContain(" /memories ");
    // … and none of them names the org or the user.
    expect(output).not.toContain(orgId);
    expect(output).not.toContain(userId as string);
    const stateMounts = output.split("\n").filter((line) => line.split(" ")[4] === "/run/outrig/state");
    expect(stateMounts.length).toBeGreaterThan(0);
    for (const line of stateMounts) expect(line.split(" ")[3]).toMatch(/\/journal$/);
  }, 120_000);
});
