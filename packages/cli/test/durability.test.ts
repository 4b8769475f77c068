/**
 * Durable waits, cancellation, redeploys and concurrency on the real server process (DBOS on embedded
 * Postgres, the fake LLM over HTTP, bubblewrap sandboxes).
 */
import fs from "node:fs/promises";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSse } from "../src/sse-client.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "./server-process.js";

interface StoredEvent {
  seq: number;
  type: string;
  [key: string]: unknown;
}

let fakeLlm: FakeLlmServer;
let home: string;
let env: Record<string, string>;
let server: ServerProcess;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [] }, turnSelection: "history" });
  home = await createOutrigHome();
  env = { ANTHROPIC_API_KEY: "durable", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` };
  server = await startServerProcess({ home, env });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function api<T>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${server.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${server.apiKey}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as T };
}

/** Reads the session's events until `until` matches one (replaying from the start, then live). */
async function waitForEvent(
  sessionId: string,
  until: (event: StoredEvent) => boolean,
): Promise<StoredEvent[]> {
  for (;;) {
    try {
      const response = await fetch(`${server.url}/v1/sessions/${sessionId}/events`, {
        headers: { authorization: `Bearer ${server.apiKey}` },
      });
      if (!response.body) throw new Error("no body");
      const events: StoredEvent[] = [];
      for await (const message of parseSse(response.body)) {
        if (message.id === undefined) continue;
        const event = JSON.parse(message.data) as StoredEvent;
        events.push(event);
        if (until(event)) {
          await response.body.cancel().catch(() => undefined);
          return events;
        }
      }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

const isTurnOver = (event: StoredEvent) => event.type === "turn.end" || event.type === "turn.error";

async function readWorkspaceFile(sessionId: string, name: string): Promise<string | null> {
  return fs.readFile(path.join(home, "workspaces", sessionId, name), "utf8").catch(() => null);
}

async function setPolicy(approvalTimeoutMs: number): Promise<void> {
  const response = await api("PUT", "/v1/policy", {
    rules: [{ tool: "Bash", match: "*push*", action: "ask" }],
    approvalTimeoutMs,
  });
  expect(response.status).toBe(200);
}

const pushScript = {
  turns: [
    { toolCalls: [{ name: "Bash", input: { command: "echo push >> /workspace/pushes.log" } }] },
    { text: "pushed" },
  ],
};

describe("durable approvals", () => {
  it("waits for an approval across a server restart and applies the decision exactly once", async () => {
    await setPolicy(60_000);
    fakeLlm.setScript(pushScript);
    const created = await api<{ id: string }>("POST", "/v1/sessions", {
      model: "anthropic:x",
      prompt: "push it",
    });
    const sessionId = created.body.id;
    const before = await waitForEvent(sessionId, (event) => event.type === "approval.request");
    const request = before.at(-1);
    expect(request).toMatchObject({ type: "approval.request", name: "Bash", rule: "Bash(*push*): ask" });

    await server.stop("SIGKILL");
    server = await startServerProcess({ home, env });

    const toolCallId = String(request?.toolCallId);
    const allowed = await api("POST", `/v1/sessions/${sessionId}/approvals/${toolCallId}`, {
      decision: "allow",
    });
    expect(allowed.status).toBe(202);
    const events = await waitForEvent(sessionId, isTurnOver);
    expect(events.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn" });
    expect(events.filter((event) => event.type === "approval.response")).toEqual([
      expect.objectContaining({ decision: "allow", reason: "user" }),
    ]);
    expect(await readWorkspaceFile(sessionId, "pushes.log")).toBe("push\n");
    // A second decision for the same call is refused and changes nothing.
    const again = await api<{ error: { code: string } }>(
      "POST",
      `/v1/sessions/${sessionId}/approvals/${toolCallId}`,
      {
        decision: "deny",
      },
    );
    expect(again.status).toBe(404);
  }, 120_000);

  it("never runs a denied call", async () => {
    await setPolicy(60_000);
    fakeLlm.setScript(pushScript);
    const { body } = await api<{ id: string }>("POST", "/v1/sessions", {
      model: "anthropic:x",
      prompt: "push it",
    });
    const request = (await waitForEvent(body.id, (event) => event.type === "approval.request")).at(-1);
    await api("POST", `/v1/sessions/${body.id}/approvals/${String(request?.toolCallId)}`, {
      decision: "deny",
    });
    const events = await waitForEvent(body.id, isTurnOver);
    expect(events.find((event) => event.type === "tool.end")).toMatchObject({
      isError: true,
      output: expect.stringContaining("denied"),
    });
    expect(events.some((event) => event.type === "tool.start")).toBe(false);
    expect(await readWorkspaceFile(body.id, "pushes.log")).toBeNull();
  }, 120_000);

  it("denies when nobody answers in time (fails closed)", async () => {
    await setPolicy(1000);
    fakeLlm.setScript(pushScript);
    const { body } = await api<{ id: string }>("POST", "/v1/sessions", {
      model: "anthropic:x",
      prompt: "push it",
    });
    const events = await waitForEvent(body.id, isTurnOver);
    expect(events.filter((event) => event.type === "approval.response")).toEqual([
      expect.objectContaining({ decision: "deny", reason: "timeout" }),
    ]);
    expect(events.find((event) => event.type === "tool.end")).toMatchObject({
      isError: true,
      output: expect.stringContaining("not granted in time"),
    });
    expect(await readWorkspaceFile(body.id, "pushes.log")).toBeNull();
    await api("PUT", "/v1/policy", { rules: [] });
  }, 120_000);
});

describe("cancel", () => {
  it("aborts the running command and ends the turn; the session takes the next message", async () => {
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ name: "Bash", input: { command: "sleep 30; echo late >> /workspace/late.log" } }] },
        { text: "should not happen" },
      ],
    });
    const { body } = await api<{ id: string }>("POST", "/v1/sessions", {
      model: "anthropic:x",
      prompt: "wait",
    });
    await waitForEvent(body.id, (event) => event.type === "tool.start");
    const started = Date.now();
    const cancelled = await api<{ status: string }>("POST", `/v1/sessions/${body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    const events = await waitForEvent(body.id, isTurnOver);
    expect(events.at(-1)).toMatchObject({ type: "turn.error", code: "cancelled" });
    expect(Date.now() - started).toBeLessThan(10_000);
    // Nothing of the cancelled turn is written after its end.
    const after = await waitForEvent(body.id, isTurnOver);
    expect(after.map((event) => event.seq)).toEqual(events.map((event) => event.seq));
    expect(await readWorkspaceFile(body.id, "late.log")).toBeNull();
    // A cancel is no failure: the session is idle again, and its turn's end says it was cancelled.
    const session = await api<{ status: string }>("GET", `/v1/sessions/${body.id}`);
    expect(session.body.status).toBe("idle");
    const second = await api("POST", `/v1/sessions/${body.id}/cancel`);
    expect(second.status).toBe(409);
  }, 120_000);
});

describe("redeploy", () => {
  it("finishes a turn started under version N after a restart under version N+1", async () => {
    await server.stop();
    server = await startServerProcess({
      home,
      env: { ...env, OUTRIG_WORKFLOW_VERSION: "outrig-turn-test-v1" },
    });
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ name: "Bash", input: { command: "echo one >> /workspace/deploy.log" } }] },
        {
          delayMs: 3000,
          toolCalls: [{ name: "Bash", input: { command: "echo two >> /workspace/deploy.log" } }],
        },
        { text: "deployed" },
      ],
    });
    const { body } = await api<{ id: string }>("POST", "/v1/sessions", {
      model: "anthropic:x",
      prompt: "deploy",
    });
    await waitForEvent(body.id, (event) => event.type === "tool.end");
    await server.stop("SIGKILL");
    server = await startServerProcess({
      home,
      env: { ...env, OUTRIG_WORKFLOW_VERSION: "outrig-turn-test-v2" },
    });
    expect(server.output()).toContain("moved 1 unfinished turn(s) from older versions");
    const events = await waitForEvent(body.id, isTurnOver);
    expect(events.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn" });
    expect(await readWorkspaceFile(body.id, "deploy.log")).toBe("one\ntwo\n");
    await server.stop();
    server = await startServerProcess({ home, env });
  }, 120_000);
});

describe("model retries", () => {
  it("retries 429 (honouring retry-after), 529 and a cut stream, and ends on a 400 with a clear error", async () => {
    const sequential = await startFakeLlmServer({
      script: {
        turns: [
          { error: { status: 429, retryAfter: 1 } },
          { error: { status: 529 } },
          { cut: 3, text: "this stream breaks off in the middle" },
          { text: "recovered" },
          { error: { status: 400 } },
        ],
      },
    });
    const retryHome = await createOutrigHome();
    const retryServer = await startServerProcess({
      home: retryHome,
      env: { ANTHROPIC_API_KEY: "retry", ANTHROPIC_BASE_URL: `${sequential.url}/v1` },
    });
    const previous = server;
    server = retryServer;
    try {
      const { body } = await api<{ id: string }>("POST", "/v1/sessions", {
        model: "anthropic:x",
        prompt: "hi",
      });
      const events = await waitForEvent(body.id, isTurnOver);
      const retries = events.filter((event) => event.type === "model.retry");
      expect(retries.map((event) => event.code)).toEqual([
        "model_rate_limited",
        "model_overloaded",
        "model_stream_cut",
      ]);
      expect(Number(retries[0]?.delayMs)).toBeGreaterThanOrEqual(1000);
      expect(events.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn" });
      expect(events.find((event) => event.type === "message.end")).toMatchObject({
        message: { content: [{ type: "text", text: "recovered" }] },
      });
      await api("POST", `/v1/sessions/${body.id}/messages`, { text: "again" });
      const second = await waitForEvent(body.id, (event) => isTurnOver(event) && event.turn === 2);
      expect(second.at(-1)).toMatchObject({ type: "turn.error", code: "model_bad_request" });
      expect(String(second.at(-1)?.message).length).toBeGreaterThan(10);
    } finally {
      server = previous;
      await retryServer.stop();
      await sequential.close();
      await fs.rm(retryHome, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("standby while the model thinks", () => {
  it("freezes the sandbox between tool calls and resumes it, background processes included", async () => {
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ name: "Bash", input: { command: "sleep 1000 & echo $! > /workspace/bg.pid" } }] },
        {
          delayMs: 600,
          toolCalls: [{ name: "Bash", input: { command: "kill -0 $(cat /workspace/bg.pid) && echo alive" } }],
        },
        { text: "done" },
      ],
    });
    const { body } = await api<{ id: string }>("POST", "/v1/sessions", {
      model: "anthropic:x",
      prompt: "standby",
    });
    const events = await waitForEvent(body.id, isTurnOver);
    const types = events.map((event) => event.type);
    expect(types).toContain("sandbox.standby");
    const resume = events.find((event) => event.type === "sandbox.resume");
    expect(resume).toMatchObject({ durationMs: expect.any(Number) });
    // Frozen while the model thought: the standby comes before the second call, the resume right before it.
    expect(types.indexOf("sandbox.standby")).toBeLessThan(types.lastIndexOf("tool.start"));
    const outputs = events.filter((event) => event.type === "tool.end").map((event) => event.output);
    expect(outputs[1]).toContain("alive");
  }, 120_000);
});

describe("concurrency", () => {
  it("runs 200 sessions at 1 s per model call in parallel on one worker", async () => {
    fakeLlm.setScript({ turns: [{ delayMs: 1000, text: "hello" }] });
    const started = Date.now();
    const ids = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const { status, body } = await api<{ id: string }>("POST", "/v1/sessions", {
          model: "anthropic:x",
          prompt: "hi",
        });
        expect(status).toBe(201);
        return body.id;
      }),
    );
    for (;;) {
      const { body } = await api<{ sessions: { id: string; status: string }[] }>(
        "GET",
        "/v1/sessions?limit=200",
      );
      const mine = body.sessions.filter((session) => ids.includes(session.id));
      if (mine.length === 200 && mine.every((session) => session.status === "idle")) break;
      expect(Date.now() - started).toBeLessThan(100_000);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const elapsedMs = Date.now() - started;
    // A serial run takes 200 s; one worker must overlap them.
    expect(elapsedMs).toBeLessThan(60_000);
  }, 180_000);
});
