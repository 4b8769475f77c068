/**
 * The limits a sandbox gets when neither the operator nor the org set any: a real server process
 * with bubblewrap sandboxes and the fake LLM. A command that grabs more memory than the default
 * limit is killed with a tool error that says so, and the session goes on.
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient, createAgentSession, resultText, stopReason, TOOLS, waitForIdle } from "./api-session.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "./server-process.js";

const GIB = 1024 * 1024 * 1024;

const script = {
  turns: [
    // dd fills one 1.5 GiB buffer (its block size): over the 1 GiB default, with the least CPU.
    {
      toolCalls: [{ name: TOOLS.bash, input: { command: "dd if=/dev/zero of=/dev/null bs=1536M count=1" } }],
    },
    { toolCalls: [{ name: TOOLS.bash, input: { command: "echo still-here > alive.txt && cat alive.txt" } }] },
    { text: "done" },
  ],
};

let fakeLlm: FakeLlmServer;
let database: TestDatabase;
let home: string;
let server: ServerProcess;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script, turnSelection: "history" });
  database = await createTestDatabase();
  home = await createOutrigHome();
  // Only what the server needs to run: no OUTRIG_SANDBOX_* or OUTRIG_COMMAND_TIMEOUT_MS.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !key.startsWith("OUTRIG_SANDBOX_") && key !== "OUTRIG_COMMAND_TIMEOUT_MS",
    ),
  );
  server = await startServerProcess({
    home,
    env: {
      ...env,
      DATABASE_URL: database.url,
      ANTHROPIC_API_KEY: "sandbox-defaults",
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  await database?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
}, 60_000);

interface ApiJson {
  id?: string;
  effective?: Record<string, number>;
  limits?: Record<string, number>;
}

async function api(
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; json: ApiJson }> {
  const response = await fetch(`${server.url}${route}`, {
    method,
    headers: {
      "x-api-key": server.apiKey,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as ApiJson };
}

describe("default sandbox limits", () => {
  it("limits memory and CPU by default, and a memory hog gets a tool error while the session goes on", async () => {
    const client = apiClient(server);
    const { session } = await createAgentSession(client, {
      model: "anthropic:claude-sonnet-4-5",
      prompt: "use a lot of memory, then check you are still here",
    });
    const sessionId = session.id;
    const events = await waitForIdle(client, sessionId, 120_000);
    expect(stopReason(events)).toBe("end_turn");
    const outputs = events
      .filter((event) => event.type === "agent.tool_result")
      .map((event) => ({
        isError: event.type === "agent.tool_result" && event.is_error,
        output: resultText(event),
      }));
    expect(outputs).toHaveLength(2);
    expect(outputs[0]?.isError).toBe(true);
    expect(outputs[0]?.output).toMatch(/memory limit/);
    expect(outputs[1]).toEqual({ isError: false, output: expect.stringContaining("still-here") });

    const policy = await api("GET", "/v1/sandbox-policy");
    expect(policy.status).toBe(200);
    expect(policy.json.effective).toMatchObject({
      memoryBytes: GIB,
      cpus: 1,
      pids: 1024,
      commandTimeoutMs: 600_000,
    });

    const state = await api("GET", `/v1/sessions/${sessionId}/sandbox`);
    expect(state.json.limits).toMatchObject({
      memoryBytes: GIB,
      cpus: 1,
      pids: 1024,
      commandTimeoutMs: 600_000,
    });
  }, 180_000);
});
