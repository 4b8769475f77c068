/**
 * The loop's side of the Managed Agents API, on the durable scheduler (DBOS on a real Postgres), real
 * bubblewrap sandboxes and a model that answers from the request it gets: a pinned agent config decides
 * the model, system prompt and tools; `always_ask` waits for a confirmation; custom tools wait for the
 * client's result across a restart; messages sent during a turn queue in order; an interrupt lets the
 * running command finish.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  type AgentConfig,
  createDefaultTools,
  InputError,
  type LanguageModel,
  type ModelEvent,
  type ModelRequest,
} from "@outrig/core";
import type { SessionEvent, ToolResultPart } from "@outrig/protocol";
import { createBubblewrapSandboxProvider } from "@outrig/sandboxes";
import { createDatabase, type Database } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DbosTurnScheduler } from "../src/durable/dbos-turn-scheduler.js";
import { EventBus } from "../src/event-bus.js";
import { type Caller, SessionManager } from "../src/session-manager.js";

/** One model answer: text, tool calls, or a wait on a gate the test opens. */
type Answer = { text?: string; toolCalls?: { name: string; input: unknown }[]; gate?: Promise<void> };

/**
 * A model whose answer is chosen from the request (so a step repeated after a restart gets the same
 * answer) and which records every request it gets.
 */
class RespondingModel implements LanguageModel {
  readonly provider = "test";
  readonly modelId = "responding";
  readonly requests: ModelRequest[] = [];
  respond: (request: ModelRequest) => Answer = () => ({ text: "ok" });
  #callCount = 0;

  async *stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
    this.requests.push(structuredClone(request));
    this.#callCount += 1;
    const answer = this.respond(request);
    if (answer.gate) {
      await Promise.race([
        answer.gate,
        new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true })),
      ]);
    }
    const content: (
      | { type: "text"; text: string }
      | { type: "tool_call"; toolCallId: string; name: string; input: unknown }
    )[] = [];
    if (answer.text) content.push({ type: "text", text: answer.text });
    for (const [index, call] of (answer.toolCalls ?? []).entries()) {
      content.push({ type: "tool_call", toolCallId: `call_${this.#callCount}_${index}`, ...call });
    }
    yield {
      type: "end",
      message: { role: "assistant", content },
      stopReason: content.some((part) => part.type === "tool_call") ? "tool_use" : "end_turn",
      usage: { inputTokens: 1, outputTokens: 1 },
    };
  }
}

/** The last user text of a request (the message the turn answers). */
function lastUserText(request: ModelRequest): string {
  for (let index = request.messages.length - 1; index >= 0; index -= 1) {
    const message = request.messages[index];
    if (message?.role === "user") return message.content.map((part) => part.text).join("");
  }
  return "";
}

function toolResults(request: ModelRequest): ToolResultPart[] {
  return request.messages.flatMap((message) => (message.role === "tool" ? message.content : []));
}

function isTurnOf(request: ModelRequest, text: string): boolean {
  return lastUserText(request) === text;
}

function hasToolResult(request: ModelRequest): boolean {
  return request.messages.at(-1)?.role === "tool";
}

const provider = createBubblewrapSandboxProvider();
const model = new RespondingModel();
let testDatabase: TestDatabase;
let database: Database;
let home: string;
let caller: Caller;
let manager: SessionManager;

function agentConfig(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return {
    agentId: "agent_test",
    version: 1,
    model: "test:responding",
    system: "You are the pinned agent.",
    toolset: {
      bash: { enabled: true, permission: "always_ask" },
      read: { enabled: true, permission: "always_allow" },
    },
    customTools: [
      {
        name: "lookup_order",
        description: "Looks an order up in the client's system",
        inputSchema: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
      },
    ],
    skills: [],
    ...overrides,
  };
}

async function startManager(): Promise<SessionManager> {
  const next = new SessionManager({
    store: database.sessions,
    modelFactory: () => model,
    sandboxProvider: provider,
    tools: createDefaultTools(),
    bus: new EventBus(),
    scheduler: new DbosTurnScheduler({
      databaseUrl: testDatabase.url,
      // The same worker id after a restart: DBOS resumes this worker's unfinished turns at launch.
      workerId: "worker_agent_loop",
      workers: database.workers,
      pollingIntervalMs: 20,
      log: () => undefined,
    }),
    policies: { get: (orgId) => database.policies.get(orgId) },
    home,
    limits: { maxSteps: 10, maxModelAttempts: 2 },
    sandboxIdleMs: 600_000,
    log: () => undefined,
  });
  await next.start();
  return next;
}

/** Stops the manager as a crash would leave it: nothing drains, the durable engine keeps the turn's state. */
async function restart(): Promise<void> {
  await manager.close();
  manager = await startManager();
}

async function events(sessionId: string): Promise<SessionEvent[]> {
  return database.sessions.readEvents(sessionId, { afterSeq: 0, limit: 10_000 });
}

async function waitFor(
  sessionId: string,
  until: (events: SessionEvent[]) => boolean,
  timeoutMs = 30_000,
): Promise<SessionEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await events(sessionId);
    if (until(log)) return log;
    if (Date.now() > deadline) {
      throw new Error(`timed out; the log: ${log.map((event) => event.type).join(", ")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const turnsEnded = (count: number) => (log: SessionEvent[]) =>
  log.filter((event) => event.type === "turn.end" || event.type === "turn.error").length >= count;

function find<T extends SessionEvent["type"]>(
  log: SessionEvent[],
  type: T,
): Extract<SessionEvent, { type: T }> | undefined {
  return log.find((event): event is Extract<SessionEvent, { type: T }> => event.type === type);
}

async function expectInputError(work: Promise<unknown>, status: number, code: string): Promise<void> {
  const error = await work.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InputError);
  expect(error).toMatchObject({ status, code });
}

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  const org = await database.auth.createOrg("loop");
  const user = await database.auth.createUser(org.id, { name: "owner", role: "admin" });
  caller = { orgId: org.id, userId: user.id, role: "admin" };
  home = await mkdtemp(path.join(tmpdir(), "outrig-agent-loop-"));
  manager = await startManager();
}, 120_000);

afterAll(async () => {
  await manager?.close();
  await provider.close();
  await database?.close();
  await testDatabase?.drop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe("a pinned agent config", () => {
  it("gives the model the agent's system prompt, only its enabled toolset tools and its custom tools", async () => {
    model.respond = () => ({ text: "hello" });
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "hi" });
    await waitFor(session.id, turnsEnded(1));
    const request = model.requests.at(-1);
    expect(request?.system).toContain("You are the pinned agent.");
    expect(request?.tools.map((tool) => tool.name).sort()).toEqual(["Bash", "Read", "lookup_order"]);
    expect(request?.tools.find((tool) => tool.name === "lookup_order")?.inputSchema).toEqual(
      agentConfig().customTools[0]?.inputSchema,
    );
    const start = find(await events(session.id), "session.start");
    expect(start?.agent).toMatchObject({ agentId: "agent_test", model: "test:responding" });
  });

  it("refuses a call to a toolset tool the agent leaves disabled, without starting it", async () => {
    model.respond = (request) =>
      hasToolResult(request)
        ? { text: "ok" }
        : { toolCalls: [{ name: "Write", input: { file_path: "/workspace/no.txt", content: "x" } }] };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "write" });
    const log = await waitFor(session.id, turnsEnded(1));
    expect(log.some((event) => event.type === "tool.start")).toBe(false);
    expect(find(log, "tool.end")).toMatchObject({
      name: "Write",
      isError: true,
      output: "<tool_use_error>Error: No such tool available: Write</tool_use_error>",
    });
    expect(await readWorkspace(session.id, "no.txt")).toBeNull();
  });

  it("offers every tool to a session without an agent, as before", async () => {
    model.respond = () => ({ text: "plain" });
    const session = await manager.create(caller, { model: "test:responding", prompt: "hi" });
    await waitFor(session.id, turnsEnded(1));
    expect(model.requests.at(-1)?.tools.map((tool) => tool.name)).toEqual(
      createDefaultTools().map((tool) => tool.name),
    );
  });
});

describe("permission policies", () => {
  it("runs an always_ask call only after its confirmation, and records how it was evaluated", async () => {
    model.respond = (request) =>
      hasToolResult(request)
        ? { text: "written" }
        : { toolCalls: [{ name: "Bash", input: { command: "echo asked > /workspace/asked.txt" } }] };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "write it" });
    const log = await waitFor(session.id, (current) => find(current, "approval.request") !== undefined);
    const request = find(log, "approval.request");
    expect(request).toMatchObject({ evaluatedPermission: "ask", permissionPolicy: "always_ask" });
    expect(await manager.pendingActions(caller, session.id)).toEqual([
      { type: "tool_confirmation", toolCallId: request?.toolCallId, seq: request?.seq },
    ]);
    // Nothing runs while it waits.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await events(session.id)).some((event) => event.type === "tool.start")).toBe(false);
    expect(await readWorkspace(session.id, "asked.txt")).toBeNull();

    await manager.approve(caller, session.id, String(request?.toolCallId), "allow");
    const done = await waitFor(session.id, turnsEnded(1));
    expect(find(done, "tool.start")).toMatchObject({
      evaluatedPermission: "ask",
      permissionPolicy: "always_ask",
    });
    expect(await readWorkspace(session.id, "asked.txt")).toBe("asked\n");
    expect(await manager.pendingActions(caller, session.id)).toEqual([]);
  });

  it("runs an always_allow call without asking and says so on tool.start", async () => {
    model.respond = (request) =>
      hasToolResult(request)
        ? { text: "read" }
        : { toolCalls: [{ name: "Read", input: { file_path: "/etc/hostname" } }] };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "read it" });
    const log = await waitFor(session.id, turnsEnded(1));
    expect(log.some((event) => event.type === "approval.request")).toBe(false);
    expect(find(log, "tool.start")).toMatchObject({
      evaluatedPermission: "allow",
      permissionPolicy: "always_allow",
    });
  });

  it("sends a deny's deny_message to the model as the call's error result, and never runs the call", async () => {
    model.respond = (request) =>
      hasToolResult(request)
        ? { text: "understood" }
        : { toolCalls: [{ name: "Bash", input: { command: "echo no > /workspace/denied.txt" } }] };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "try it" });
    const log = await waitFor(session.id, (current) => find(current, "approval.request") !== undefined);
    const toolCallId = String(find(log, "approval.request")?.toolCallId);
    await manager.approve(caller, session.id, toolCallId, "deny", undefined, {
      denyMessage: "Not on production, use the staging host.",
    });
    const done = await waitFor(session.id, turnsEnded(1));
    expect(find(done, "approval.response")).toMatchObject({
      decision: "deny",
      denyMessage: "Not on production, use the staging host.",
    });
    expect(done.some((event) => event.type === "tool.start")).toBe(false);
    const next = model.requests.filter((request) => isTurnOf(request, "try it")).at(-1);
    expect(next && toolResults(next)).toEqual([
      {
        type: "tool_result",
        toolCallId,
        name: "Bash",
        output: "Not on production, use the staging host.",
        isError: true,
      },
    ]);
    expect(await readWorkspace(session.id, "denied.txt")).toBeNull();
  });

  it("refuses a confirmation for an unknown or an already decided call, and changes nothing", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    model.respond = (request) =>
      hasToolResult(request)
        ? { text: "fine", gate }
        : { toolCalls: [{ name: "Bash", input: { command: "true" } }] };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "go" });
    const log = await waitFor(session.id, (current) => find(current, "approval.request") !== undefined);
    const toolCallId = String(find(log, "approval.request")?.toolCallId);
    await expectInputError(manager.approve(caller, session.id, "call_unknown", "allow"), 404, "not_found");
    expect(await events(session.id)).toEqual(log);

    await manager.approve(caller, session.id, toolCallId, "allow");
    // The turn still runs (the model's next answer waits on the gate): a second decision is a conflict.
    const decided = await waitFor(session.id, (current) => find(current, "tool.end") !== undefined);
    await expectInputError(manager.approve(caller, session.id, toolCallId, "deny"), 409, "already_decided");
    expect((await events(session.id)).filter((event) => event.type === "approval.response")).toEqual(
      decided.filter((event) => event.type === "approval.response"),
    );
    release();
    const after = await waitFor(session.id, turnsEnded(1));
    // Once the turn is over, no confirmation is pending at all.
    await expectInputError(manager.approve(caller, session.id, toolCallId, "deny"), 404, "not_found");
    expect(await events(session.id)).toEqual(after);
  });

  it("lets the org's tool policy deny win over the agent's always_allow", async () => {
    await database.policies.put(
      caller.orgId,
      { rules: [{ tool: "Read", action: "deny" }], approvalTimeoutMs: 60_000 },
      { userId: caller.userId },
    );
    manager.invalidatePolicy(caller.orgId);
    try {
      model.respond = (request) =>
        hasToolResult(request)
          ? { text: "ok" }
          : { toolCalls: [{ name: "Read", input: { file_path: "/etc/hostname" } }] };
      const session = await manager.create(caller, { agent: agentConfig(), prompt: "read" });
      const log = await waitFor(session.id, turnsEnded(1));
      expect(log.some((event) => event.type === "tool.start")).toBe(false);
      expect(find(log, "tool.end")).toMatchObject({ isError: true, denied: { by: "policy" } });
    } finally {
      await database.policies.put(
        caller.orgId,
        { rules: [], approvalTimeoutMs: 60_000 },
        { userId: caller.userId },
      );
      manager.invalidatePolicy(caller.orgId);
    }
  });
});

describe("custom tools", () => {
  it("waits for the client's result across a restart, feeds it to the model, and refuses a second one", async () => {
    model.respond = (request) => {
      if (isTurnOf(request, "queued meanwhile")) return { text: "answered the queued one" };
      return hasToolResult(request)
        ? { text: "the order shipped" }
        : { toolCalls: [{ name: "lookup_order", input: { id: "o-42" } }] };
    };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "where is o-42?" });
    const log = await waitFor(session.id, (current) => find(current, "custom_tool.request") !== undefined);
    const request = find(log, "custom_tool.request");
    expect(request).toMatchObject({ name: "lookup_order", input: { id: "o-42" } });
    const toolCallId = String(request?.toolCallId);
    expect(await manager.pendingActions(caller, session.id)).toEqual([
      { type: "custom_tool_result", toolCallId, seq: request?.seq },
    ]);
    // Never run in the sandbox: no tool.start, and the session waits.
    expect(log.some((event) => event.type === "tool.start")).toBe(false);
    // A message sent while the turn waits is queued, and the queue survives the restart too.
    const queued = await manager.sendMessage(caller, session.id, "queued meanwhile");
    expect(queued.type).toBe("queued");
    const modelCallsBefore = model.requests.length;

    await restart();

    await expectInputError(
      manager.submitCustomToolResult(caller, session.id, "call_unknown", { content: [], isError: false }),
      404,
      "not_found",
    );
    await manager.submitCustomToolResult(caller, session.id, toolCallId, {
      content: [{ type: "text", text: "shipped on Monday" }],
      isError: false,
    });
    const done = await waitFor(session.id, turnsEnded(2));
    expect(find(done, "custom_tool.result")).toMatchObject({
      toolCallId,
      content: [{ type: "text", text: "shipped on Monday" }],
      isError: false,
      userId: caller.userId,
    });
    const answered = model.requests.filter((candidate) => isTurnOf(candidate, "where is o-42?")).at(-1);
    expect(answered && toolResults(answered)).toEqual([
      { type: "tool_result", toolCallId, name: "lookup_order", output: "shipped on Monday", isError: false },
    ]);
    // Completed steps were not repeated: one model call for the result, one for the queued message.
    expect(model.requests.length - modelCallsBefore).toBe(2);
    expect(done.filter((event) => event.type === "message.end")).toHaveLength(3);
    expect(
      done
        .filter((event) => event.type === "turn.start")
        .map((event) => event.type === "turn.start" && event.text),
    ).toEqual(["where is o-42?", "queued meanwhile"]);
    await expectInputError(
      manager.submitCustomToolResult(caller, session.id, toolCallId, { content: [], isError: true }),
      404,
      "not_found",
    );
    expect(await events(session.id)).toEqual(done);
  }, 120_000);

  it("refuses a second result while the turn still runs, with 409", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    model.respond = (request) => {
      if (!hasToolResult(request)) return { toolCalls: [{ name: "lookup_order", input: { id: "o-7" } }] };
      return { text: "done", gate };
    };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "o-7?" });
    const log = await waitFor(session.id, (current) => find(current, "custom_tool.request") !== undefined);
    const toolCallId = String(find(log, "custom_tool.request")?.toolCallId);
    // Malformed content is refused before it reaches the turn.
    const malformed = [{ text: "no type" }] as unknown as [{ type: string }];
    await expectInputError(
      manager.submitCustomToolResult(caller, session.id, toolCallId, { content: malformed, isError: false }),
      400,
      "invalid_request",
    );
    await manager.submitCustomToolResult(caller, session.id, toolCallId, {
      content: [{ type: "text", text: "first" }],
      isError: false,
    });
    const answered = await waitFor(
      session.id,
      (current) => find(current, "custom_tool.result") !== undefined,
    );
    await expectInputError(
      manager.submitCustomToolResult(caller, session.id, toolCallId, {
        content: [{ type: "text", text: "second" }],
        isError: false,
      }),
      409,
      "already_answered",
    );
    release();
    const done = await waitFor(session.id, turnsEnded(1));
    expect(done.filter((event) => event.type === "custom_tool.result")).toEqual(
      answered.filter((event) => event.type === "custom_tool.result"),
    );
  });
});

describe("messages sent while a turn runs", () => {
  it("queues three messages and answers each in its own turn, in the order sent", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    model.respond = (request) => {
      const text = lastUserText(request);
      return text === "first" ? { text: "answer to first", gate } : { text: `answer to ${text}` };
    };
    const session = await manager.create(caller, { model: "test:responding", prompt: "first" });
    await waitFor(session.id, () => model.requests.some((request) => isTurnOf(request, "first")));
    const sent = [];
    for (const text of ["second", "third", "fourth"])
      sent.push(await manager.sendMessage(caller, session.id, text));
    expect(sent.map((message) => message.type)).toEqual(["queued", "queued", "queued"]);
    release();
    const log = await waitFor(session.id, turnsEnded(4));
    const starts = log.filter((event) => event.type === "turn.start");
    expect(starts.map((event) => event.text)).toEqual(["first", "second", "third", "fourth"]);
    expect(starts.slice(1).map((event) => event.queuedSeq)).toEqual(sent.map((message) => message.event.seq));
    const answers = log.flatMap((event) =>
      event.type === "message.end"
        ? event.message.content.flatMap((part) => (part.type === "text" ? [part.text] : []))
        : [],
    );
    expect(answers).toEqual(["answer to first", "answer to second", "answer to third", "answer to fourth"]);
    expect((await manager.get(caller, session.id)).status).toBe("idle");
  });
});

describe("interrupt", () => {
  it("lets the running command finish, runs nothing after it, and keeps the queued message for the next turn", async () => {
    model.respond = (request) => {
      if (isTurnOf(request, "after the interrupt")) return { text: "next turn" };
      return hasToolResult(request)
        ? { text: "must not be asked" }
        : {
            toolCalls: [
              { name: "Bash", input: { command: "sleep 2; echo finished > /workspace/slow.txt" } },
              { name: "Bash", input: { command: "echo never > /workspace/never.txt" } },
            ],
          };
    };
    const agent = agentConfig({ toolset: { bash: { enabled: true, permission: "always_allow" } } });
    const session = await manager.create(caller, { agent, prompt: "run the slow one" });
    await waitFor(session.id, (current) => find(current, "tool.start") !== undefined);
    await manager.sendMessage(caller, session.id, "after the interrupt");
    expect(await manager.interrupt(caller, session.id)).toBe(true);
    const log = await waitFor(session.id, turnsEnded(2));
    const firstEnd = log.findIndex((event) => event.type === "turn.end");
    const firstTurn = log.slice(0, firstEnd + 1);
    expect(firstTurn.filter((event) => event.type === "tool.end")).toEqual([
      expect.objectContaining({ isError: false, name: "Bash" }),
    ]);
    expect(firstTurn.at(-1)).toMatchObject({ type: "turn.end", reason: "interrupted" });
    expect(await readWorkspace(session.id, "slow.txt")).toBe("finished\n");
    expect(await readWorkspace(session.id, "never.txt")).toBeNull();
    expect(
      model.requests.some((request) => isTurnOf(request, "run the slow one") && hasToolResult(request)),
    ).toBe(false);
    // The interrupted turn's unanswered call is closed in the transcript the next turn sends.
    const next = model.requests.filter((request) => isTurnOf(request, "after the interrupt")).at(-1);
    expect(next && toolResults(next).map((part) => part.isError)).toEqual([false, true]);
    expect(log.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn" });
  }, 60_000);

  it("ends a turn that waits for a confirmation at once", async () => {
    model.respond = (request) =>
      hasToolResult(request) ? { text: "no" } : { toolCalls: [{ name: "Bash", input: { command: "true" } }] };
    const session = await manager.create(caller, { agent: agentConfig(), prompt: "ask me" });
    await waitFor(session.id, (current) => find(current, "approval.request") !== undefined);
    await manager.interrupt(caller, session.id);
    const log = await waitFor(session.id, turnsEnded(1));
    expect(log.at(-1)).toMatchObject({ type: "turn.end", reason: "interrupted" });
    expect(log.some((event) => event.type === "approval.response" || event.type === "tool.start")).toBe(
      false,
    );
    expect(await manager.interrupt(caller, session.id)).toBe(false);
  });
});

async function readWorkspace(sessionId: string, name: string): Promise<string | null> {
  return readFile(path.join(home, "workspaces", sessionId, name), "utf8").catch(() => null);
}
