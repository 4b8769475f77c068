/**
 * A polite stop (SIGTERM) of the real server while a command runs in a bubblewrap sandbox: it takes
 * no new work, lets the command finish within OUTRIG_DRAIN_MS and records its real result; a command
 * longer than the drain is left to its sandbox exactly as after a SIGKILL. Either way the restarted
 * server finishes the turn with the command's real output, and the command's effect happened once.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { apiClient, createAgentSession, resultText, stopReason, TOOLS, waitForIdle } from "./api-session.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "./server-process.js";

let fakeLlm: FakeLlmServer;
const homes: string[] = [];
const servers: ServerProcess[] = [];

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [] }, turnSelection: "history" });
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop("SIGKILL")));
});

afterAll(async () => {
  await fakeLlm?.close();
  await Promise.all(homes.map((home) => fs.rm(home, { recursive: true, force: true })));
});

async function start(home: string, drainMs: number): Promise<ServerProcess> {
  const server = await startServerProcess({
    home,
    env: {
      ANTHROPIC_API_KEY: "graceful",
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
      OUTRIG_DRAIN_MS: String(drainMs),
    },
  });
  servers.push(server);
  return server;
}

async function createSession(server: ServerProcess, prompt: string): Promise<string> {
  return (await createAgentSession(apiClient(server), { model: "anthropic:x", prompt })).session.id;
}

/** Sends `signal` and resolves the exit code and how long the process took to exit. */
async function stopAndTime(
  server: ServerProcess,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; elapsedMs: number }> {
  const started = Date.now();
  const exited = new Promise<number | null>((resolve) => server.child.once("exit", (code) => resolve(code)));
  server.child.kill(signal);
  const code = await exited;
  return { code, elapsedMs: Date.now() - started };
}

async function readWorkspace(home: string, sessionId: string, name: string): Promise<string | null> {
  return fs.readFile(path.join(home, "workspaces", sessionId, name), "utf8").catch(() => null);
}

async function waitForFile(home: string, sessionId: string, name: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await readWorkspace(home, sessionId, name)) === null) {
    if (Date.now() > deadline) throw new Error(`${name} never appeared`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("graceful stop", () => {
  it("lets a running command finish on SIGTERM, refuses new work meanwhile, and records the real result", async () => {
    const home = await createOutrigHome();
    homes.push(home);
    const drainMs = 20_000;
    fakeLlm.setScript({
      turns: [
        {
          toolCalls: [
            {
              name: TOOLS.bash,
              input: {
                command:
                  "echo started >> /workspace/started; sleep 3; echo done >> /workspace/x; echo finished",
              },
            },
          ],
        },
        { text: "all done" },
      ],
    });
    const server = await start(home, drainMs);
    const sessionId = await createSession(server, "run it");
    await waitForFile(home, sessionId, "started");

    const stopping = stopAndTime(server, "SIGTERM");
    // While it drains: alive, not ready, and no new work taken.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const refused = await fetch(`${server.url}/v1/sessions`, {
      method: "POST",
      headers: { "x-api-key": server.apiKey, "content-type": "application/json" },
      body: JSON.stringify({ agent: "agent_x", environment_id: "env_x" }),
    });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ type: "error", error: { code: "server_stopping" } });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const readiness = await fetch(`${server.url}/readyz`);
    expect(readiness.status).toBe(503);
    expect(await readiness.json()).toMatchObject({ ready: false, stopping: true });

    const { code, elapsedMs } = await stopping;
    expect(code).toBe(0);
    expect(elapsedMs).toBeLessThan(drainMs);
    expect(server.output()).not.toContain("still running after");
    expect(await readWorkspace(home, sessionId, "x")).toBe("done\n");

    const restarted = await start(home, drainMs);
    const events = await waitForIdle(apiClient(restarted), sessionId);
    expect(stopReason(events)).toBe("end_turn");
    const results = events.filter((event) => event.type === "agent.tool_result");
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ is_error: false });
    expect(resultText(results[0])).toBe("finished");
    expect(await readWorkspace(home, sessionId, "x")).toBe("done\n");
    expect(await readWorkspace(home, sessionId, "started")).toBe("started\n");
  }, 180_000);

  it("leaves a command longer than the drain to its sandbox, like a SIGKILL, and replays its result", async () => {
    const home = await createOutrigHome();
    homes.push(home);
    const drainMs = 1_000;
    const commandMs = 6_000;
    fakeLlm.setScript({
      turns: [
        {
          toolCalls: [
            {
              name: TOOLS.bash,
              input: {
                command: `echo started >> /workspace/started; sleep ${commandMs / 1000}; echo done >> /workspace/x; echo finished`,
              },
            },
          ],
        },
        { text: "all done" },
      ],
    });
    const server = await start(home, drainMs);
    const sessionId = await createSession(server, "run it");
    await waitForFile(home, sessionId, "started");

    const { code, elapsedMs } = await stopAndTime(server, "SIGTERM");
    expect(code).toBe(0);
    // It did not wait for the command: out within the drain (plus the time to stop), effect not there yet.
    expect(elapsedMs).toBeLessThan(commandMs - 1_000);
    expect(await readWorkspace(home, sessionId, "x")).toBeNull();

    const restarted = await start(home, drainMs);
    const events = await waitForIdle(apiClient(restarted), sessionId);
    expect(stopReason(events)).toBe("end_turn");
    const results = events.filter((event) => event.type === "agent.tool_result");
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ is_error: false });
    expect(resultText(results[0])).toBe("finished");
    expect(await readWorkspace(home, sessionId, "x")).toBe("done\n");
    expect(await readWorkspace(home, sessionId, "started")).toBe("started\n");
    expect(server.output()).toContain("1 step(s) still running after 1000 ms");
  }, 180_000);
});
