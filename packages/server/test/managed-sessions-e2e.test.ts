/**
 * The Managed Agents API's sessions and events on a real server (startServer on Postgres, the fake LLM,
 * bubblewrap sandboxes) with the pinned SDK as the client: an agent and environment, a session that
 * runs a bash call, the stream dropped and resumed across the Postgres notification path, delete
 * removing the sandbox's data, and the latencies the issue asks for.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type ApiEvent = { id: string; type: string; [field: string]: unknown };

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
let client: Anthropic;
let agentId: string;
let environmentId: string;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  // By history: the first answer of every turn runs bash, the next one talks.
  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        {
          toolCalls: [
            {
              name: "bash",
              input: { command: "echo from-the-sandbox > /workspace/out.txt; cat /workspace/out.txt" },
            },
          ],
        },
        ...Array.from({ length: 500 }, () => ({ text: "done" })),
      ],
    },
    turnSelection: "history",
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-sessions-e2e-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-sessions-e2e",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `sessions-e2e-${process.pid}`,
  });
  server = await startServer(config, { log: () => undefined });
  client = new Anthropic({ apiKey: server.bootstrapKey ?? "", baseURL: server.url, maxRetries: 0 });
  agentId = (
    await client.beta.agents.create({
      name: "e2e",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
    })
  ).id;
  environmentId = (await client.beta.environments.create({ name: "e2e" })).id;
}, 180_000);

afterAll(async () => {
  await server?.close();
  await fakeLlm?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function readUntil(
  stream: AsyncIterable<unknown>,
  stopAt: (event: ApiEvent) => boolean,
  onEvent?: (event: ApiEvent) => void,
): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for await (const item of stream) {
    const event = item as ApiEvent;
    onEvent?.(event);
    events.push(event);
    if (stopAt(event)) break;
  }
  return events;
}

const isEndTurn = (event: ApiEvent) =>
  event.type === "session.status_idle" && (event.stop_reason as { type: string }).type === "end_turn";

const message = (text: string) => ({
  events: [{ type: "user.message" as const, content: [{ type: "text" as const, text }] }],
});

describe("sessions and events on a real server", () => {
  it("runs bash in a sandbox, resumes a dropped stream exactly once, and deletes everything", async () => {
    const session = await client.beta.sessions.create({
      agent: agentId,
      environment_id: environmentId,
      title: "e2e",
    });
    expect(session).toMatchObject({
      status: "idle",
      agent: { id: agentId, version: 1 },
      environment_id: environmentId,
    });
    const stream = await client.beta.sessions.events.stream(session.id);
    await client.beta.sessions.events.send(session.id, message("run it"));
    // Drop the connection after the tool use shows up.
    const before = await readUntil(stream, (event) => event.type === "agent.tool_use");
    const resumed = await client.beta.sessions.events.stream(
      session.id,
      {},
      {
        headers: { "last-event-id": String(before.at(-1)?.id) },
      },
    );
    const after = await readUntil(resumed, isEndTurn);
    const listed: ApiEvent[] = [];
    for await (const event of client.beta.sessions.events.list(session.id, { limit: 4 }))
      listed.push(event as ApiEvent);
    // The sandbox may append events (a snapshot) after the turn ended: compare up to the idle event.
    const firstIndex = listed.findIndex((event) => event.id === before[0]?.id);
    const lastIndex = listed.findIndex((event) => event.id === after.at(-1)?.id);
    expect([...before, ...after]).toEqual(listed.slice(firstIndex, lastIndex + 1));
    const types = listed.map((event) => event.type);
    expect(types).toContain("session.sandbox_started");
    const result = listed.find((event) => event.type === "agent.tool_result");
    expect(JSON.stringify(result?.content)).toContain("from-the-sandbox");
    const retrieved = await client.beta.sessions.retrieve(session.id);
    expect(retrieved.usage.input_tokens).toBeGreaterThan(0);

    const workspace = path.join(home, "workspaces", session.id);
    await client.beta.sessions.delete(session.id);
    await expect(client.beta.sessions.retrieve(session.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    expect(await fs.stat(path.join(home, "sandbox-state", session.id)).catch(() => null)).toBeNull();
    expect(await fs.readdir(workspace).catch(() => [])).toEqual([]);
  }, 120_000);

  it("measures create → first streamed event and send → agent.tool_use", async () => {
    const firstEvent: number[] = [];
    const toolUse: number[] = [];
    for (let round = 0; round < 10; round += 1) {
      const start = performance.now();
      const session = await client.beta.sessions.create({ agent: agentId, environment_id: environmentId });
      const stream = await client.beta.sessions.events.stream(session.id);
      const sent = performance.now();
      await client.beta.sessions.events.send(session.id, message(`round ${round}`));
      let isFirst = true;
      await readUntil(stream, isEndTurn, (event) => {
        if (isFirst) firstEvent.push(performance.now() - start);
        isFirst = false;
        if (event.type === "agent.tool_use") toolUse.push(performance.now() - sent);
      });
    }
    const p = (values: number[], quantile: number) =>
      [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * quantile))] ??
      0;
    console.log(
      `[sessions] create → first streamed event p50 ${p(firstEvent, 0.5).toFixed(1)} ms, p99 ${p(firstEvent, 0.99).toFixed(1)} ms; ` +
        `send → agent.tool_use p50 ${p(toolUse, 0.5).toFixed(1)} ms (n=${toolUse.length})`,
    );
    expect(toolUse).toHaveLength(10);
  }, 180_000);
});
