/**
 * Durable waits, interrupts, redeploys and concurrency on the real server process (DBOS on embedded
 * Postgres, the fake LLM over HTTP, bubblewrap sandboxes), driven through the Managed Agents API with
 * the official SDK: a confirmation (`user.tool_confirmation`) survives a restart, an interrupt
 * (`user.interrupt`) stops a running command, model retries show as `session.error` events.
 */
import fs from "node:fs/promises";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiClient,
  createAgentSession,
  listEvents,
  resultText,
  type SessionEvent,
  sendMessage,
  stopReason,
  TOOLS,
  waitForEvent,
  waitForIdle,
} from "./api-session.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "./server-process.js";

let fakeLlm: FakeLlmServer;
let home: string;
let env: Record<string, string>;
let server: ServerProcess;
let client: Anthropic;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [] }, turnSelection: "history" });
  home = await createOutrigHome();
  env = { ANTHROPIC_API_KEY: "durable", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` };
  server = await startServerProcess({ home, env });
  client = apiClient(server);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** A new session of a new agent on the fake model, started with `prompt`. */
async function start(prompt: string): Promise<string> {
  return (await createAgentSession(client, { model: "anthropic:x", prompt })).session.id;
}

async function readWorkspaceFile(sessionId: string, name: string): Promise<string | null> {
  return fs.readFile(path.join(home, "workspaces", sessionId, name), "utf8").catch(() => null);
}

/** The org's tool policy (Outrig's own route beside the API): bash pushes need a person's confirmation. */
async function setPolicy(approvalTimeoutMs: number): Promise<void> {
  const response = await fetch(`${server.url}/v1/policy`, {
    method: "PUT",
    headers: { "x-api-key": server.apiKey, "content-type": "application/json" },
    body: JSON.stringify({
      rules: [{ tool: TOOLS.bash, match: "*push*", action: "ask" }],
      approvalTimeoutMs,
    }),
  });
  expect(response.status).toBe(200);
}

const pushScript = {
  turns: [
    { toolCalls: [{ name: TOOLS.bash, input: { command: "echo push >> /workspace/pushes.log" } }] },
    { text: "pushed" },
  ],
};

const isAsk = (event: SessionEvent) =>
  event.type === "agent.tool_use" && event.evaluated_permission === "ask";

/** The tool use waiting for a confirmation, once the session went idle for it. */
async function waitForAsk(sessionId: string): Promise<string> {
  const events = await waitForEvent(
    client,
    sessionId,
    (event) => event.type === "session.status_idle" && event.stop_reason.type === "requires_action",
  );
  const ask = events.find(isAsk);
  expect(ask).toMatchObject({ type: "agent.tool_use", name: TOOLS.bash, evaluated_permission: "ask" });
  const idle = events.findLast((event) => event.type === "session.status_idle");
  expect(idle).toMatchObject({ stop_reason: { type: "requires_action", event_ids: [ask?.id] } });
  return ask?.id ?? "";
}

describe("durable confirmations", () => {
  it("waits for a confirmation across a server restart and applies the decision exactly once", async () => {
    await setPolicy(60_000);
    fakeLlm.setScript(pushScript);
    const sessionId = await start("push it");
    const toolUseId = await waitForAsk(sessionId);
    // Not run before the confirmation.
    expect(await readWorkspaceFile(sessionId, "pushes.log")).toBeNull();

    await server.stop("SIGKILL");
    server = await startServerProcess({ home, env });
    client = apiClient(server);

    const sent = await client.beta.sessions.events.send(sessionId, {
      events: [{ type: "user.tool_confirmation", tool_use_id: toolUseId, result: "allow" }],
    });
    expect(sent.data?.[0]).toMatchObject({ type: "user.tool_confirmation", result: "allow" });
    const events = await waitForIdle(client, sessionId);
    expect(stopReason(events)).toBe("end_turn");
    expect(events.filter((event) => event.type === "user.tool_confirmation")).toEqual([
      expect.objectContaining({ tool_use_id: toolUseId, result: "allow" }),
    ]);
    expect(await readWorkspaceFile(sessionId, "pushes.log")).toBe("push\n");
    // A second decision for the same call is refused and changes nothing.
    await expect(
      client.beta.sessions.events.send(sessionId, {
        events: [{ type: "user.tool_confirmation", tool_use_id: toolUseId, result: "deny" }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    // So is one for a call that never asked.
    await expect(
      client.beta.sessions.events.send(sessionId, {
        events: [{ type: "user.tool_confirmation", tool_use_id: "sevt_nope_1_0", result: "allow" }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.APIError);
    // (The sandbox's own lifecycle events, a snapshot after the call, may land after the turn ended.)
    const ofTheTurn = (list: readonly { id: string; type: string }[]) =>
      list.filter((event) => !event.type.startsWith("session.sandbox_")).map((event) => event.id);
    expect(ofTheTurn(await listEvents(client, sessionId))).toEqual(ofTheTurn(events));
    expect(await readWorkspaceFile(sessionId, "pushes.log")).toBe("push\n");
  }, 120_000);

  it("never runs a denied call", async () => {
    await setPolicy(60_000);
    fakeLlm.setScript(pushScript);
    const sessionId = await start("push it");
    const toolUseId = await waitForAsk(sessionId);
    await client.beta.sessions.events.send(sessionId, {
      events: [{ type: "user.tool_confirmation", tool_use_id: toolUseId, result: "deny" }],
    });
    const events = await waitForIdle(client, sessionId);
    const result = events.find((event) => event.type === "agent.tool_result");
    expect(result).toMatchObject({ tool_use_id: toolUseId, is_error: true });
    expect(resultText(result)).toContain("denied");
    expect(
      events.some((event) => event.type === "agent.tool_use" && event.evaluated_permission === "allow"),
    ).toBe(false);
    expect(await readWorkspaceFile(sessionId, "pushes.log")).toBeNull();
  }, 120_000);

  it("denies when nobody answers in time (fails closed)", async () => {
    await setPolicy(1000);
    fakeLlm.setScript(pushScript);
    const sessionId = await start("push it");
    const events = await waitForEvent(
      client,
      sessionId,
      (event) => event.type === "session.status_idle" && event.stop_reason.type === "end_turn",
    );
    // Nobody confirmed: no user.tool_confirmation, and the call's result says why it did not run.
    expect(events.filter((event) => event.type === "user.tool_confirmation")).toEqual([]);
    expect(resultText(events.find((event) => event.type === "agent.tool_result"))).toContain(
      "not granted in time",
    );
    expect(await readWorkspaceFile(sessionId, "pushes.log")).toBeNull();
    await fetch(`${server.url}/v1/policy`, {
      method: "PUT",
      headers: { "x-api-key": server.apiKey, "content-type": "application/json" },
      body: JSON.stringify({ rules: [] }),
    });
  }, 120_000);
});

describe("interrupt", () => {
  it("lets the command in flight finish, runs nothing after it and ends the turn; the session takes the next message", async () => {
    fakeLlm.setScript({
      turns: [
        {
          toolCalls: [{ name: TOOLS.bash, input: { command: "sleep 3; echo late >> /workspace/late.log" } }],
        },
        { text: "should not happen" },
      ],
    });
    const sessionId = await start("wait");
    await waitForEvent(client, sessionId, (event) => event.type === "agent.tool_use");
    const started = Date.now();
    await client.beta.sessions.events.send(sessionId, { events: [{ type: "user.interrupt" }] });
    const events = await waitForIdle(client, sessionId);
    // A polite stop: the command is never killed mid-write; the model is not called again.
    expect(events.map((event) => event.type)).toContain("user.interrupt");
    expect(events.filter((event) => !event.type.startsWith("session.sandbox_")).at(-1)).toMatchObject({
      type: "session.status_idle",
      stop_reason: { type: "end_turn" },
    });
    expect(JSON.stringify(events)).not.toContain("should not happen");
    expect(Date.now() - started).toBeLessThan(20_000);
    // Nothing of the interrupted turn is written after its end.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const after = (await listEvents(client, sessionId)).filter(
      (event) => !event.type.startsWith("session.sandbox_"),
    );
    expect(after.map((event) => event.id)).toEqual(
      events.filter((event) => !event.type.startsWith("session.sandbox_")).map((event) => event.id),
    );
    expect(await readWorkspaceFile(sessionId, "late.log")).toBe("late\n");
    // An interrupt is no failure: the session is idle again; interrupting an idle session changes nothing.
    expect((await client.beta.sessions.retrieve(sessionId)).status).toBe("idle");
    await client.beta.sessions.events.send(sessionId, { events: [{ type: "user.interrupt" }] });
    expect((await client.beta.sessions.retrieve(sessionId)).status).toBe("idle");
  }, 120_000);
});

describe("redeploy", () => {
  it("finishes a turn started under version N after a restart under version N+1", async () => {
    await server.stop();
    server = await startServerProcess({
      home,
      env: { ...env, OUTRIG_WORKFLOW_VERSION: "outrig-turn-test-v1" },
    });
    client = apiClient(server);
    fakeLlm.setScript({
      turns: [
        { toolCalls: [{ name: TOOLS.bash, input: { command: "echo one >> /workspace/deploy.log" } }] },
        {
          delayMs: 3000,
          toolCalls: [{ name: TOOLS.bash, input: { command: "echo two >> /workspace/deploy.log" } }],
        },
        { text: "deployed" },
      ],
    });
    const sessionId = await start("deploy");
    await waitForEvent(client, sessionId, (event) => event.type === "agent.tool_result");
    await server.stop("SIGKILL");
    server = await startServerProcess({
      home,
      env: { ...env, OUTRIG_WORKFLOW_VERSION: "outrig-turn-test-v2" },
    });
    client = apiClient(server);
    expect(server.output()).toContain("moved 1 unfinished turn(s) from older versions");
    const events = await waitForIdle(client, sessionId);
    expect(stopReason(events)).toBe("end_turn");
    expect(await readWorkspaceFile(sessionId, "deploy.log")).toBe("one\ntwo\n");
    await server.stop();
    server = await startServerProcess({ home, env });
    client = apiClient(server);
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
    const retryClient = apiClient(retryServer);
    try {
      const { session } = await createAgentSession(retryClient, { model: "anthropic:x", prompt: "hi" });
      const events = await waitForIdle(retryClient, session.id);
      const retries = events.flatMap((event) =>
        event.type === "session.error" && event.error.retry_status.type === "retrying" ? [event.error] : [],
      );
      expect(retries.map((error) => (error as { code?: string }).code)).toEqual([
        "model_rate_limited",
        "model_overloaded",
        "model_stream_cut",
      ]);
      expect(retries.map((error) => error.type)).toEqual([
        "model_rate_limited_error",
        "model_overloaded_error",
        "model_request_failed_error",
      ]);
      expect(Number((retries[0] as { delay_ms?: number }).delay_ms)).toBeGreaterThanOrEqual(1000);
      expect(stopReason(events)).toBe("end_turn");
      expect(events.find((event) => event.type === "agent.message")).toMatchObject({
        content: [{ type: "text", text: "recovered" }],
      });
      await sendMessage(retryClient, session.id, "again");
      const second = await waitForIdle(retryClient, session.id);
      expect(stopReason(second)).toBe("retries_exhausted");
      const failure = second.findLast((event) => event.type === "session.error");
      expect(failure).toMatchObject({
        error: {
          type: "model_request_failed_error",
          retry_status: { type: "exhausted" },
          code: "model_bad_request",
        },
      });
      expect(failure?.type === "session.error" && failure.error.message.length).toBeGreaterThan(10);
    } finally {
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
        { toolCalls: [{ name: TOOLS.bash, input: { command: "sleep 1000 & echo $! > /workspace/bg.pid" } }] },
        {
          delayMs: 600,
          toolCalls: [
            { name: TOOLS.bash, input: { command: "kill -0 $(cat /workspace/bg.pid) && echo alive" } },
          ],
        },
        { text: "done" },
      ],
    });
    const sessionId = await start("standby");
    const events = await waitForIdle(client, sessionId);
    const types = events.map((event) => event.type as string);
    expect(types).toContain("session.sandbox_standby");
    const resume = events.find((event) => (event.type as string) === "session.sandbox_resumed");
    expect(resume).toMatchObject({ duration_ms: expect.any(Number) });
    // Frozen while the model thought: the standby comes before the second call.
    expect(types.indexOf("session.sandbox_standby")).toBeLessThan(types.lastIndexOf("agent.tool_use"));
    const outputs = events.filter((event) => event.type === "agent.tool_result").map(resultText);
    expect(outputs[1]).toContain("alive");
  }, 120_000);
});

describe("concurrency", () => {
  it("runs 200 sessions at 1 s per model call in parallel on one worker", async () => {
    fakeLlm.setScript({ turns: [{ delayMs: 1000, text: "hello" }] });
    const agent = await client.beta.agents.create({ name: "many", model: "anthropic:x" });
    const environment = await client.beta.environments.create({ name: "many", config: { type: "cloud" } });
    const requestsBefore = fakeLlm.requests.length;
    const started = Date.now();
    const ids = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const session = await client.beta.sessions.create({
          agent: agent.id,
          environment_id: environment.id,
          initial_events: [{ type: "user.message", content: [{ type: "text", text: "hi" }] }],
        });
        return session.id;
      }),
    );
    for (;;) {
      const mine = [];
      for await (const session of client.beta.sessions.list({ agent_id: agent.id, limit: 100 }))
        mine.push(session);
      if (
        fakeLlm.requests.length - requestsBefore >= 200 &&
        mine.length === 200 &&
        mine.every((session) => ids.includes(session.id) && session.status === "idle")
      )
        break;
      expect(Date.now() - started).toBeLessThan(100_000);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const elapsedMs = Date.now() - started;
    // A serial run takes 200 s; one worker must overlap them.
    expect(elapsedMs).toBeLessThan(60_000);
  }, 180_000);
});
