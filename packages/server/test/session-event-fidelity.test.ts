/**
 * Event fidelity of the Managed Agents API on a real server (startServer on Postgres, the fake LLM),
 * with the pinned SDK as the client: `agent.message` previews on streams that opt in (`event_deltas`),
 * the `rescheduling` and `terminated` statuses, and `session.deleted` announced to every worker.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { CONTROL_CHANNEL } from "../src/pg-notifications.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type ApiEvent = { id?: string; type: string; [field: string]: unknown };

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
let client: Anthropic;
let agentId: string;
let environmentId: string;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  fakeLlm = await startFakeLlmServer({ script: { turns: [{ text: "unused" }] } });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-event-fidelity-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-event-fidelity",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `event-fidelity-${process.pid}`,
  });
  server = await startServer(config, { log: () => undefined });
  client = new Anthropic({ apiKey: server.bootstrapKey ?? "", baseURL: server.url, maxRetries: 0 });
  agentId = (await client.beta.agents.create({ name: "fidelity", model: "claude-sonnet-4-5" })).id;
  environmentId = (await client.beta.environments.create({ name: "fidelity" })).id;
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
  onEvent?: (event: ApiEvent) => Promise<void>,
): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for await (const item of stream) {
    const event = item as ApiEvent;
    events.push(event);
    await onEvent?.(event);
    if (stopAt(event)) break;
  }
  return events;
}

/** A stream that several `readUntil` calls read in turn (breaking out of one does not close it). */
function resumable(stream: AsyncIterable<unknown>): AsyncIterable<unknown> {
  const iterator = stream[Symbol.asyncIterator]();
  return { [Symbol.asyncIterator]: () => ({ next: () => iterator.next() }) };
}

/** The event ids a `requires_action` idle event names. */
function waitingIds(event: ApiEvent | undefined): string[] {
  return (event?.stop_reason as { event_ids?: string[] } | undefined)?.event_ids ?? [];
}

const isIdleOrTerminated = (event: ApiEvent) =>
  event.type === "session.status_idle" || event.type === "session.status_terminated";

const message = (text: string) => ({
  events: [{ type: "user.message" as const, content: [{ type: "text" as const, text }] }],
});

async function newSession(): Promise<string> {
  return (await client.beta.sessions.create({ agent: agentId, environment_id: environmentId })).id;
}

async function listAll(sessionId: string): Promise<ApiEvent[]> {
  const listed: ApiEvent[] = [];
  for await (const event of client.beta.sessions.events.list(sessionId, { limit: 50 }))
    listed.push(event as ApiEvent);
  return listed;
}

describe("event fidelity on a real server", () => {
  it("previews agent.message on a stream that opts in; the deltas concatenate to the stored message", async () => {
    const answer = "Previews stream in pieces, and the pieces concatenate to exactly this answer.";
    fakeLlm.setScript({ turns: [{ text: answer }] });
    const id = await newSession();
    const previewing = await client.beta.sessions.events.stream(id, { event_deltas: ["agent.message"] });
    const plain = await client.beta.sessions.events.stream(id);
    await client.beta.sessions.events.send(id, message("say it"));
    const [withPreviews, without] = await Promise.all([
      readUntil(previewing, isIdleOrTerminated),
      readUntil(plain, isIdleOrTerminated),
    ]);

    const stored = withPreviews.find((event) => event.type === "agent.message");
    expect(stored?.content).toEqual([{ type: "text", text: answer }]);
    const starts = withPreviews.filter((event) => event.type === "event_start");
    expect(starts.at(-1)).toEqual({ type: "event_start", event: { type: "agent.message", id: stored?.id } });
    const deltas = withPreviews.filter(
      (event) => event.type === "event_delta" && event.event_id === stored?.id,
    );
    // The fake LLM streams the answer in several chunks, each one delta.
    expect(deltas.length).toBeGreaterThan(1);
    const text = deltas.map((event) => (event.delta as { content: { text: string } }).content.text).join("");
    expect(text).toBe(answer);
    // Every preview comes before the message it previews.
    const storedAt = withPreviews.indexOf(stored as ApiEvent);
    for (const delta of deltas) expect(withPreviews.indexOf(delta)).toBeLessThan(storedAt);

    // Without opt-in: no preview. The buffered events are the same on both streams and in the list.
    const isPreview = (event: ApiEvent) => event.type === "event_start" || event.type === "event_delta";
    expect(without.some(isPreview)).toBe(false);
    expect(withPreviews.filter((event) => !isPreview(event))).toEqual(without);
    const listed = await listAll(id);
    expect(listed.some(isPreview)).toBe(false);
    const first = listed.findIndex((event) => event.id === without[0]?.id);
    expect(listed.slice(first, first + without.length)).toEqual(without);
  }, 60_000);

  it("sends previews without an SSE id, so Last-Event-ID only ever names stored events (raw SSE)", async () => {
    fakeLlm.setScript({ turns: [{ text: "raw previews carry no id, the stored events do" }] });
    const id = await newSession();
    const response = await fetch(
      `${server.url}/v1/sessions/${id}/events/stream?event_deltas[]=agent.message`,
      {
        headers: { "x-api-key": server.bootstrapKey ?? "" },
      },
    );
    expect(response.status).toBe(200);
    await client.beta.sessions.events.send(id, message("raw"));
    const reader = response.body?.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (reader && !text.includes("event: session.status_idle")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value, { stream: true });
    }
    await reader?.cancel();
    const blocks = text.split("\n\n").filter((block) => block.includes("event: "));
    const previews = blocks.filter((block) => /event: event_(start|delta)/.test(block));
    expect(previews.length).toBeGreaterThan(1);
    for (const block of previews) expect(block).not.toMatch(/^id:/m);
    const stored = blocks.filter((block) => !/event: (event_start|event_delta|ping)/.test(block));
    for (const block of stored) expect(block).toMatch(/^id: sevt_/m);
  }, 60_000);

  it("refuses an unknown event_deltas type with the API's error", async () => {
    const id = await newSession();
    const response = await fetch(
      `${server.url}/v1/sessions/${id}/events/stream?event_deltas[]=agent.tool_use`,
      {
        headers: { "x-api-key": server.bootstrapKey ?? "" },
      },
    );
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
  });

  it("shows rescheduling while a model error is retried, then running again", async () => {
    // The provider's retry-after (2 s) sets the backoff: the status is read inside that window.
    fakeLlm.setScript({ turns: [{ error: { status: 529, retryAfterMs: 2000 } }, { text: "recovered" }] });
    const id = await newSession();
    const stream = await client.beta.sessions.events.stream(id);
    await client.beta.sessions.events.send(id, message("try"));
    let statusWhileRetrying: string | undefined;
    let listedWhileRetrying: string[] = [];
    const events = await readUntil(stream, isIdleOrTerminated, async (event) => {
      if (event.type !== "session.status_rescheduled") return;
      statusWhileRetrying = (await client.beta.sessions.retrieve(id)).status;
      listedWhileRetrying = (await client.beta.sessions.list({ statuses: ["rescheduling"] })).data.map(
        (session) => session.id,
      );
    });
    // The sandbox starts (and may stand by) while the model is called: its events interleave.
    const turn = events.filter((event) => !event.type.startsWith("session.sandbox_"));
    expect(turn.map((event) => event.type)).toEqual([
      "user.message",
      "session.status_running",
      "span.model_request_start",
      "span.model_request_end",
      "session.error",
      "session.status_rescheduled",
      "session.status_running",
      "span.model_request_start",
      "agent.message",
      "span.model_request_end",
      "session.status_idle",
    ]);
    expect(turn[3]).toMatchObject({ is_error: true, model_request_start_id: turn[2]?.id });
    expect(turn[4]).toMatchObject({
      error: { type: "model_overloaded_error", retry_status: { type: "retrying" } },
    });
    expect(statusWhileRetrying).toBe("rescheduling");
    expect(listedWhileRetrying).toContain(id);
    expect((await client.beta.sessions.retrieve(id)).status).toBe("idle");
    expect(events.at(-1)).toMatchObject({ stop_reason: { type: "end_turn" } });
  }, 60_000);

  it("terminates a session whose pinned model does not exist, and refuses its new events clearly", async () => {
    fakeLlm.setScript({ turns: [{ error: { status: 404, message: "model: claude-nope" } }] });
    const id = await newSession();
    const stream = await client.beta.sessions.events.stream(id);
    await client.beta.sessions.events.send(id, message("hello"));
    const events = await readUntil(stream, isIdleOrTerminated);
    expect(events.slice(-2)).toMatchObject([
      { type: "session.error", error: { retry_status: { type: "terminal" }, code: "model_not_found" } },
      { type: "session.status_terminated" },
    ]);
    expect((await client.beta.sessions.retrieve(id)).status).toBe("terminated");
    const terminated = (await client.beta.sessions.list({ statuses: ["terminated"] })).data;
    expect(terminated.map((session) => session.id)).toEqual([id]);
    const idle = (await client.beta.sessions.list({ statuses: ["idle"] })).data;
    expect(idle.map((session) => session.id)).not.toContain(id);

    await expect(client.beta.sessions.events.send(id, message("again"))).rejects.toBeInstanceOf(
      Anthropic.ConflictError,
    );
    const response = await fetch(`${server.url}/v1/sessions/${id}/events`, {
      method: "POST",
      headers: { "x-api-key": server.bootstrapKey ?? "", "content-type": "application/json" },
      body: JSON.stringify(message("again")),
    });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({
      type: "error",
      error: { type: "conflict_error", code: "session_terminated" },
    });
    // Nothing was recorded for the refused events.
    expect((await listAll(id)).filter((event) => event.type === "user.message")).toHaveLength(1);
  }, 60_000);

  it("names every waiting event of one answer in requires_action, and resumes once all are answered in any order", async () => {
    fakeLlm.setScript({
      turns: [
        {
          toolCalls: [
            { name: "bash", input: { command: "echo first-call" } },
            { name: "lookup", input: { id: "42" } },
            { name: "bash", input: { command: "echo third-call" } },
          ],
        },
        { text: "all answered" },
      ],
    });
    const agent = await client.beta.agents.create({
      name: "asks",
      model: "claude-sonnet-4-5",
      tools: [
        {
          type: "agent_toolset_20260401",
          configs: [{ name: "bash", permission_policy: { type: "always_ask" } }],
        },
        {
          type: "custom",
          name: "lookup",
          description: "Looks something up",
          input_schema: { type: "object", properties: { id: { type: "string" } } },
        },
      ],
    });
    const id = (await client.beta.sessions.create({ agent: agent.id, environment_id: environmentId })).id;
    const stream = resumable(await client.beta.sessions.events.stream(id));
    await client.beta.sessions.events.send(id, message("do three things"));
    const isRequiresAction = (event: ApiEvent) =>
      event.type === "session.status_idle" &&
      (event.stop_reason as { type: string }).type === "requires_action";
    const asked = await readUntil(stream, isRequiresAction);
    const waiting = asked.filter(
      (event) => event.type === "agent.tool_use" || event.type === "agent.custom_tool_use",
    );
    expect(waiting.map((event) => event.type)).toEqual([
      "agent.tool_use",
      "agent.custom_tool_use",
      "agent.tool_use",
    ]);
    // One requires_action, naming all three.
    expect(asked.filter(isRequiresAction)).toHaveLength(1);
    expect(waitingIds(asked.at(-1))).toEqual(waiting.map((event) => event.id));
    expect((await client.beta.sessions.retrieve(id)).status).toBe("idle");
    const [first, custom, third] = waiting.map((event) => String(event.id));

    // Answered last-first: the session stays idle, naming what is left, until the last answer.
    await client.beta.sessions.events.send(id, {
      events: [{ type: "user.tool_confirmation", tool_use_id: third ?? "", result: "allow" }],
    });
    const afterThird = await readUntil(stream, isRequiresAction);
    expect(waitingIds(afterThird.at(-1))).toEqual([first, custom]);
    expect((await client.beta.sessions.retrieve(id)).status).toBe("idle");
    await client.beta.sessions.events.send(id, {
      events: [
        {
          type: "user.custom_tool_result",
          custom_tool_use_id: custom ?? "",
          content: [{ type: "text", text: "found 42" }],
        },
      ],
    });
    const afterCustom = await readUntil(stream, isRequiresAction);
    expect(waitingIds(afterCustom.at(-1))).toEqual([first]);
    await client.beta.sessions.events.send(id, {
      events: [
        {
          type: "user.tool_confirmation",
          tool_use_id: first ?? "",
          result: "deny",
          deny_message: "not that one",
        },
      ],
    });
    const rest = await readUntil(
      stream,
      (event) =>
        event.type === "session.status_idle" && (event.stop_reason as { type: string }).type === "end_turn",
    );
    // Nothing ran before every request was answered; then the calls ran in order.
    expect([...afterThird, ...afterCustom].some((event) => event.type === "agent.tool_result")).toBe(false);
    const running = rest.findIndex((event) => event.type === "session.status_running");
    const results = rest.filter((event) => event.type === "agent.tool_result");
    expect(rest.findIndex((event) => event.type === "agent.tool_result")).toBeGreaterThan(running);
    expect(results.map((event) => event.tool_use_id)).toEqual([first, third]);
    expect(results[0]).toMatchObject({ is_error: true });
    expect(JSON.stringify(results[0]?.content)).toContain("not that one");
    expect(JSON.stringify(results[1]?.content)).toContain("third-call");
    expect(rest.find((event) => event.type === "agent.message")?.content).toEqual([
      { type: "text", text: "all answered" },
    ]);
    // The model got all three results, the custom one as the client sent it.
    const lastRequest = JSON.stringify(fakeLlm.requests.at(-1)?.body);
    expect(lastRequest).toContain("found 42");
    expect(lastRequest).toContain("not that one");
  }, 30_000);

  it("announces a deletion to every worker, and ends a stream when another worker deleted the session", async () => {
    const listener = new pg.Client({ connectionString: testDatabase.url });
    await listener.connect();
    try {
      // Deleting here notifies the other workers.
      const announced: string[] = [];
      listener.on("notification", (note) => announced.push(note.payload ?? ""));
      await listener.query(`LISTEN ${CONTROL_CHANNEL}`);
      const deleted = await newSession();
      await client.beta.sessions.delete(deleted);
      // The notification is sent before delete answers; wait for its delivery by a round trip.
      await listener.query("SELECT 1");
      expect(announced).toContain(`deleted:${deleted}`);

      // Another worker's announcement ends this worker's open stream with session.deleted.
      // The stream subscribes before it answers, so it is live once the SDK has its response.
      const id = await newSession();
      const stream = await client.beta.sessions.events.stream(id);
      const reading = readUntil(stream, () => false);
      await listener.query("SELECT pg_notify($1, $2)", [CONTROL_CHANNEL, `deleted:${id}`]);
      const events = await reading;
      expect(events.at(-1)).toMatchObject({ type: "session.deleted" });
      expect(events.filter((event) => event.type === "session.deleted")).toHaveLength(1);
    } finally {
      await listener.end();
    }
  }, 60_000);
});
