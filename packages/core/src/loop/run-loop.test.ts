import type { SessionEvent, ToolPolicy } from "@outrig/protocol";
import {
  createCrashingStore,
  MemorySessionStore,
  ScriptedModel,
  type ScriptedStep,
  SimulatedCrash,
} from "@outrig/testing";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { StorageError } from "../errors/app-error.js";
import type { SessionStore } from "../store/session-store.js";
import type { Tool } from "../tools/tool.js";
import { createMountTable } from "../vfs/create-mount-table.js";
import { runSession, SessionRunner, type SessionRunnerDeps } from "./run-loop.js";
import { INTERRUPTED_TOOL_OUTPUT } from "./run-state.js";
import { toolInputDigest } from "./tool-input-digest.js";

/** A tool with a visible side effect: appends a line to a shared log. */
function createAppendTool(effects: string[]): Tool<{ line: string }> {
  return {
    name: "Append",
    description: "Appends a line",
    inputSchema: z.strictObject({ line: z.string() }),
    async execute(input) {
      effects.push(input.line);
      return { output: `appended ${input.line}`, isError: false };
    },
  };
}

interface Harness {
  store: SessionStore;
  sessionId: string;
  effects: string[];
  published: SessionEvent[];
  run(
    model: ScriptedModel,
    options?: { store?: SessionStore; signal?: AbortSignal; policy?: ToolPolicy },
  ): Promise<void>;
  deps(): SessionRunnerDeps;
}

async function createHarness(prompt = "do it"): Promise<Harness> {
  const store = new MemorySessionStore();
  const session = await store.createSession({
    orgId: "org_1",
    userId: "usr_1",
    model: "scripted:x",
    system: null,
  });
  await store.startTurn("org_1", session.id, prompt);
  const effects: string[] = [];
  const published: SessionEvent[] = [];
  const fs = createMountTable([]);
  return {
    store,
    sessionId: session.id,
    effects,
    published,
    deps() {
      return {
        store,
        tools: [createAppendTool(effects)],
        limits: { maxSteps: 5, maxModelAttempts: 3 },
        sleep: async () => undefined,
        random: () => 0.5,
        publish: () => undefined,
      };
    },
    async run(model, options = {}) {
      const deps: SessionRunnerDeps = {
        store: options.store ?? store,
        tools: [createAppendTool(effects)],
        limits: { maxSteps: 5, maxModelAttempts: 3 },
        sleep: async () => undefined,
        random: () => 0.5,
        publish: (_id, event) => {
          if (event.type !== "message.delta") published.push(event);
        },
      };
      await runSession(
        deps,
        {
          sessionId: session.id,
          model,
          fs,
          exec: async () => {
            throw new Error("no sandbox in this test");
          },
          systemPrompt: "test",
          cwd: "/workspace",
          ...(options.policy ? { policy: options.policy } : {}),
        },
        options.signal ?? new AbortController().signal,
      );
    },
  };
}

async function allEvents(store: SessionStore, sessionId: string): Promise<SessionEvent[]> {
  return store.readEvents(sessionId, { afterSeq: 0, limit: 10_000 });
}

const twoToolScript: ScriptedStep[] = [
  { text: "first", toolCalls: [{ name: "Append", input: { line: "a" }, id: "call_1_0" }] },
  {
    toolCalls: [
      { name: "Append", input: { line: "b" }, id: "call_2_0" },
      { name: "Append", input: { line: "c" }, id: "call_2_1" },
    ],
  },
  { text: "all done" },
];

/** Answers each request with the script step matching how many assistant messages it already holds. */
class HistoryKeyedModel extends ScriptedModel {
  readonly #script: readonly ScriptedStep[];
  constructor(script: readonly ScriptedStep[]) {
    super([]);
    this.#script = script;
  }
  override stream(request: Parameters<ScriptedModel["stream"]>[0], signal: AbortSignal) {
    const index = request.messages.filter((message) => message.role === "assistant").length;
    const step = this.#script[index];
    if (!step) throw new Error(`no script step ${index}`);
    this.enqueue(step);
    return super.stream(request, signal);
  }
}

describe("runSession", () => {
  it("ends a turn when the model answers without tool calls", async () => {
    const harness = await createHarness();
    const model = new ScriptedModel([{ text: "hello there" }]);
    await harness.run(model);
    const events = await allEvents(harness.store, harness.sessionId);
    expect(events.map((event) => event.type)).toEqual(["turn.start", "message.end", "turn.end"]);
    expect(events.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn", usage: { inputTokens: 10 } });
    expect(model.requests[0]?.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "do it" }] },
    ]);
    expect(model.requests[0]?.tools.map((tool) => tool.name)).toEqual(["Append"]);
    expect(model.requests[0]?.tools[0]?.inputSchema).toMatchObject({ type: "object", required: ["line"] });
    model.assertDone();
  });

  it("runs tool calls in order and sends their results back", async () => {
    const harness = await createHarness();
    const model = new ScriptedModel(twoToolScript);
    await harness.run(model);
    expect(harness.effects).toEqual(["a", "b", "c"]);
    const types = (await allEvents(harness.store, harness.sessionId)).map((event) => event.type);
    expect(types).toEqual([
      "turn.start",
      "message.end",
      "tool.start",
      "tool.end",
      "message.end",
      "tool.start",
      "tool.end",
      "tool.start",
      "tool.end",
      "message.end",
      "turn.end",
    ]);
    const lastRequest = model.requests[2];
    expect(lastRequest?.messages.at(-1)).toEqual({
      role: "tool",
      content: [
        { type: "tool_result", toolCallId: "call_2_0", name: "Append", output: "appended b", isError: false },
        { type: "tool_result", toolCallId: "call_2_1", name: "Append", output: "appended c", isError: false },
      ],
    });
    expect(harness.published.map((event) => event.seq)).toEqual(types.slice(1).map((_, index) => index + 2));
    model.assertDone();
  });

  it("turns an unknown tool and invalid input into tool errors and keeps going", async () => {
    const harness = await createHarness();
    const model = new ScriptedModel([
      {
        toolCalls: [
          { name: "Nope", input: {} },
          { name: "Append", input: { line: 42 } },
        ],
      },
      { text: "ok" },
    ]);
    await harness.run(model);
    const results = (await allEvents(harness.store, harness.sessionId)).filter(
      (event) => event.type === "tool.end",
    );
    expect(results.map((event) => [event.isError, event.output])).toEqual([
      [true, "<tool_use_error>Error: No such tool available: Nope</tool_use_error>"],
      [true, expect.stringContaining("InputValidationError: Append failed")],
    ]);
    expect(harness.effects).toEqual([]);
    model.assertDone();
  });

  it("stops at the step limit", async () => {
    const harness = await createHarness();
    const steps: ScriptedStep[] = Array.from({ length: 5 }, (_, index) => ({
      toolCalls: [{ name: "Append", input: { line: String(index) } }],
    }));
    const model = new ScriptedModel(steps);
    await harness.run(model);
    const events = await allEvents(harness.store, harness.sessionId);
    expect(events.at(-1)).toMatchObject({ type: "turn.end", reason: "max_steps" });
    expect(harness.effects).toHaveLength(5);
    model.assertDone();
  });

  it("retries retryable model errors and then succeeds", async () => {
    const harness = await createHarness();
    const model = new ScriptedModel([
      { error: { code: "model_rate_limited", retryable: true, retryAfterMs: 1000 } },
      { error: { code: "model_overloaded", retryable: true } },
      { text: "finally" },
    ]);
    await harness.run(model);
    const events = await allEvents(harness.store, harness.sessionId);
    const retries = events.filter((event) => event.type === "model.retry");
    expect(retries.map((event) => [event.attempt, event.code])).toEqual([
      [1, "model_rate_limited"],
      [2, "model_overloaded"],
    ]);
    expect(retries[0]?.type === "model.retry" && retries[0].delayMs).toBeGreaterThanOrEqual(1000);
    expect(events.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn" });
    model.assertDone();
  });

  it("ends the turn with an error when retries run out or the error is not retryable", async () => {
    const exhausted = await createHarness();
    const retryable = { error: { code: "model_server_error", retryable: true } } as const;
    await exhausted.run(new ScriptedModel([retryable, retryable, retryable]));
    expect((await allEvents(exhausted.store, exhausted.sessionId)).at(-1)).toMatchObject({
      type: "turn.error",
      code: "model_server_error",
    });
    const fatal = await createHarness();
    await fatal.run(new ScriptedModel([{ error: { code: "model_bad_request", retryable: false } }]));
    const events = await allEvents(fatal.store, fatal.sessionId);
    expect(events.map((event) => event.type)).toEqual(["turn.start", "turn.error"]);
    expect(await fatal.store.getSession("org_1", fatal.sessionId)).toMatchObject({ status: "error" });
  });

  it("records a cancelled turn and answers its open tool calls on the next turn", async () => {
    const harness = await createHarness();
    const controller = new AbortController();
    const model = new ScriptedModel([{ hang: true }]);
    const running = harness.run(model, { signal: controller.signal });
    controller.abort();
    await running;
    const events = await allEvents(harness.store, harness.sessionId);
    expect(events.at(-1)).toMatchObject({ type: "turn.error", code: "cancelled" });
  });

  it("answers tool calls left open by a failed turn before the next user message", async () => {
    const harness = await createHarness();
    // Tool calls recorded, then the turn failed before they ran (e.g. cancelled).
    await harness.store.appendEvents(harness.sessionId, [
      {
        type: "message.end",
        turn: 1,
        step: 1,
        message: {
          role: "assistant",
          content: [{ type: "tool_call", toolCallId: "t1", name: "Append", input: {} }],
        },
        stopReason: "tool_use",
        usage: { inputTokens: 1, outputTokens: 1 },
      },
      { type: "turn.error", turn: 1, code: "cancelled", message: "cancelled" },
    ]);
    await harness.store.startTurn("org_1", harness.sessionId, "again");
    const model = new ScriptedModel([{ text: "ok" }]);
    await harness.run(model);
    expect(model.requests[0]?.messages.slice(1)).toEqual([
      { role: "assistant", content: [{ type: "tool_call", toolCallId: "t1", name: "Append", input: {} }] },
      {
        role: "tool",
        content: [
          {
            type: "tool_result",
            toolCallId: "t1",
            name: "Append",
            output: INTERRUPTED_TOOL_OUTPUT,
            isError: true,
          },
        ],
      },
      { role: "user", content: [{ type: "text", text: "again" }] },
    ]);
    expect(harness.effects).toEqual([]);
  });
});

describe("tool policy and approvals", () => {
  const script: ScriptedStep[] = [
    {
      toolCalls: [
        { name: "Append", input: { line: "a" }, id: "t_a" },
        { name: "Append", input: { line: "b" }, id: "t_b" },
      ],
    },
    { text: "ok" },
  ];

  it("denies by policy without running the tool, and a timed-out approval denies (fails closed)", async () => {
    const harness = await createHarness();
    const policy: ToolPolicy = { approvalTimeoutMs: 5000, rules: [{ tool: "Append", action: "ask" }] };
    await harness.run(new ScriptedModel(script), { policy });
    const events = await allEvents(harness.store, harness.sessionId);
    // Both calls of the answer are asked at once (the first naming that more follow), then time out.
    const approvals = events.filter((event) => event.type.startsWith("approval"));
    expect(approvals.map((event) => event.type)).toEqual([
      "approval.request",
      "approval.request",
      "approval.response",
      "approval.response",
    ]);
    expect(approvals.map((event) => event.type === "approval.request" && event.moreFollow === true)).toEqual([
      true,
      false,
      false,
      false,
    ]);
    const responses = events.filter((event) => event.type === "approval.response");
    expect(responses.every((event) => event.decision === "deny" && event.reason === "timeout")).toBe(true);
    expect(harness.effects).toEqual([]);
    const results = events.filter((event) => event.type === "tool.end");
    expect(results.map((event) => event.isError)).toEqual([true, true]);
    expect(results[0]?.output).toContain("not granted in time");
    expect(results.map((event) => event.type === "tool.end" && event.denied)).toEqual([
      { by: "person" },
      { by: "person" },
    ]);

    const denied = await createHarness();
    await denied.run(new ScriptedModel(script), {
      policy: { approvalTimeoutMs: 5000, rules: [{ tool: "Append", action: "deny" }] },
    });
    const deniedResults = (await allEvents(denied.store, denied.sessionId)).filter(
      (event) => event.type === "tool.end",
    );
    expect(deniedResults.map((event) => event.output)).toEqual([
      expect.stringContaining("denied by the organization's tool policy (Append: deny)"),
      expect.stringContaining("denied by the organization's tool policy"),
    ]);
    expect(deniedResults.map((event) => event.type === "tool.end" && event.denied)).toEqual([
      { by: "policy", rule: "Append: deny", input: { line: "a" } },
      { by: "policy", rule: "Append: deny", input: { line: "b" } },
    ]);
    expect(denied.effects).toEqual([]);
  });

  it("waits for an approval, runs an allowed call once and ignores a second decision", async () => {
    const harness = await createHarness();
    const runner = new SessionRunner(harness.deps(), {
      sessionId: harness.sessionId,
      model: new ScriptedModel(script),
      fs: createMountTable([]),
      exec: async () => {
        throw new Error("no sandbox");
      },
      systemPrompt: "test",
      cwd: "/workspace",
      policy: { approvalTimeoutMs: 5000, rules: [{ tool: "Append", action: "ask" }] },
    });
    const signal = new AbortController().signal;
    const outcomes = [];
    for (let index = 0; index < 20; index++) {
      const outcome = await runner.runStep(signal);
      outcomes.push(outcome.type);
      if (outcome.type === "idle") break;
      if (outcome.type === "await_approval") {
        await runner.recordApproval(outcome.toolCallId, "allow", "user", "usr_1");
        await runner.recordApproval(outcome.toolCallId, "deny", "user", "usr_1");
      }
    }
    expect(outcomes.filter((type) => type === "await_approval")).toHaveLength(2);
    expect(harness.effects).toEqual(["a", "b"]);
    const responses = (await allEvents(harness.store, harness.sessionId)).filter(
      (event) => event.type === "approval.response",
    );
    expect(responses.map((event) => event.type === "approval.response" && event.decision)).toEqual([
      "allow",
      "allow",
    ]);
  });

  it("stops writing once the turn was closed elsewhere (cancelled)", async () => {
    const harness = await createHarness();
    const runner = new SessionRunner(harness.deps(), {
      sessionId: harness.sessionId,
      model: new ScriptedModel(script),
      fs: createMountTable([]),
      exec: async () => {
        throw new Error("no sandbox");
      },
      systemPrompt: "test",
      cwd: "/workspace",
    });
    const signal = new AbortController().signal;
    expect((await runner.runStep(signal)).type).toBe("progress"); // message.end recorded
    await harness.store.appendEvents(
      harness.sessionId,
      [{ type: "turn.error", turn: 1, code: "cancelled", message: "x" }],
      {
        turn: 1,
      },
    );
    expect((await runner.runStep(signal)).type).toBe("idle");
    const types = (await allEvents(harness.store, harness.sessionId)).map((event) => event.type);
    expect(types).toEqual(["turn.start", "message.end", "turn.error"]);
    expect(harness.effects).toEqual([]);
  });
});

describe("turn ownership", () => {
  it("treats a store that refuses its writes as a closed turn, instead of retrying forever", async () => {
    const store = new MemorySessionStore();
    const session = await store.createSession({
      orgId: "org_1",
      userId: "usr_1",
      model: "scripted:x",
      system: null,
    });
    // The log says a turn runs, but the store's session row does not (it was closed elsewhere).
    await store.appendEvents(session.id, [{ type: "turn.start", turn: 1, text: "hi" }]);
    const model = new ScriptedModel([{ text: "never recorded" }]);
    const runner = new SessionRunner(
      {
        store,
        tools: [],
        limits: { maxSteps: 5, maxModelAttempts: 3 },
        sleep: async () => {},
        random: () => 0.5,
        publish: () => {},
      },
      {
        sessionId: session.id,
        model,
        fs: createMountTable([]),
        exec: async () => {
          throw new Error("no sandbox");
        },
        systemPrompt: "test",
        cwd: "/workspace",
      },
    );
    expect((await runner.runStep(new AbortController().signal)).type).toBe("idle");
    expect(
      (await store.readEvents(session.id, { afterSeq: 0, limit: 10 })).map((event) => event.type),
    ).toEqual(["turn.start"]);
  });
});

describe("a step that can never succeed", () => {
  it("ends the turn with turn.error when the store refuses an event for good, instead of retrying", async () => {
    const harness = await createHarness();
    const inner = harness.store;
    let refusals = 0;
    // Refuses every tool.end the way Postgres refuses data it cannot hold (not retryable).
    const store = new Proxy(inner, {
      get(target, property) {
        if (property === "appendEvents") {
          return async (...args: Parameters<SessionStore["appendEvents"]>) => {
            if (args[1].some((event) => event.type === "tool.end")) {
              refusals += 1;
              throw new StorageError("event_unstorable", "Postgres refused the event (SQLSTATE 22P05)");
            }
            return target.appendEvents(...args);
          };
        }
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const model = new ScriptedModel([
      { toolCalls: [{ name: "Append", input: { line: "a" }, id: "call_1_0" }] },
    ]);
    await harness.run(model, { store });
    const events = await allEvents(inner, harness.sessionId);
    expect(events.map((event) => event.type)).toEqual([
      "turn.start",
      "message.end",
      "tool.start",
      "turn.error",
    ]);
    expect(events.at(-1)).toMatchObject({ code: "event_unstorable" });
    expect(refusals).toBe(1);
    expect(harness.effects).toEqual(["a"]);
    expect((await inner.getSession("org_1", harness.sessionId))?.status).toBe("error");
  });
});

describe("runSession crash recovery", () => {
  async function baseline() {
    const harness = await createHarness();
    const model = new ScriptedModel(twoToolScript);
    await harness.run(model);
    const store = harness.store as MemorySessionStore;
    return { events: await allEvents(store, harness.sessionId), appends: store.appendCount - 1 };
  }

  it("resumes after a crash at every append and ends with the same transcript", async () => {
    const reference = await baseline();
    const strip = (events: SessionEvent[]) =>
      events.map(({ at: _at, ...rest }) => ("durationMs" in rest ? { ...rest, durationMs: 0 } : rest));
    expect(reference.appends).toBeGreaterThan(5);
    for (let crashAt = 1; crashAt <= reference.appends; crashAt++) {
      const harness = await createHarness();
      const crashing = createCrashingStore(harness.store, crashAt);
      const model = new HistoryKeyedModel(twoToolScript);
      await expect(harness.run(model, { store: crashing })).rejects.toBeInstanceOf(SimulatedCrash);
      const stepsRecorded = (await allEvents(harness.store, harness.sessionId)).filter(
        (event) => event.type === "message.end",
      ).length;
      // A fresh runner over the same store resumes from the log.
      const resumedModel = new HistoryKeyedModel(twoToolScript);
      await harness.run(resumedModel);
      // The model is never asked again for a step whose answer was recorded.
      expect(resumedModel.requests.length, `crash at append ${crashAt}`).toBe(
        twoToolScript.length - stepsRecorded,
      );
      const events = await allEvents(harness.store, harness.sessionId);
      expect(strip(events), `crash at append ${crashAt}`).toEqual(strip(reference.events));
      expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
      // Only the step in flight at the crash may run twice.
      expect(harness.effects.length).toBeLessThanOrEqual(4);
      expect(new Set(harness.effects)).toEqual(new Set(["a", "b", "c"]));
    }
  });
});

describe("tool call ids and approvals", () => {
  const askAppend: ToolPolicy = { approvalTimeoutMs: 5000, rules: [{ tool: "Append", action: "ask" }] };

  /** Runs the turn, answering every approval request with `decide`. */
  async function runWithApprovals(
    harness: Harness,
    steps: ScriptedStep[],
    decide: (runner: SessionRunner, toolCallId: string) => Promise<void>,
    policy: ToolPolicy | null = askAppend,
  ): Promise<SessionEvent[]> {
    const runner = new SessionRunner(harness.deps(), {
      sessionId: harness.sessionId,
      model: new ScriptedModel(steps),
      fs: createMountTable([]),
      exec: async () => {
        throw new Error("no sandbox");
      },
      systemPrompt: "test",
      cwd: "/workspace",
      ...(policy ? { policy } : {}),
    });
    const signal = new AbortController().signal;
    for (let index = 0; index < 30; index++) {
      const outcome = await runner.runStep(signal);
      if (outcome.type === "idle") break;
      if (outcome.type === "await_approval") await decide(runner, outcome.toolCallId);
    }
    return allEvents(harness.store, harness.sessionId);
  }

  it("never runs a second call that reuses an approved call's id, and answers it with an error", async () => {
    const harness = await createHarness();
    const events = await runWithApprovals(
      harness,
      [
        { toolCalls: [{ name: "Append", input: { line: "harmless" }, id: "toolu_same" }] },
        // The model reuses the approved id for a different input: it must not inherit the approval.
        { toolCalls: [{ name: "Append", input: { line: "evil" }, id: "toolu_same" }] },
        { text: "ok" },
      ],
      async (runner, toolCallId) => runner.recordApproval(toolCallId, "allow", "user", "usr_1"),
    );
    expect(harness.effects).toEqual(["harmless"]);
    const ends = events.filter((event) => event.type === "tool.end");
    expect(ends.map((event) => [event.toolCallId, event.isError])).toEqual([
      ["toolu_same", false],
      [expect.stringMatching(/^toolu_same_dup_/), true],
    ]);
    expect(ends[1]?.output).toContain('"toolu_same" was already used in this session');
    // One approval was asked for and given; the duplicate was never even offered for approval.
    expect(events.filter((event) => event.type === "approval.request")).toHaveLength(1);
    expect(events.filter((event) => event.type === "tool.start")).toHaveLength(1);
    // The transcript the model sees next has unique ids, each answered once.
    const ids = events.flatMap((event) =>
      event.type === "message.end"
        ? event.message.content.flatMap((part) => (part.type === "tool_call" ? [part.toolCallId] : []))
        : [],
    );
    expect(ids).toEqual(["toolu_same", "toolu_same"]); // the log keeps what the model sent
    const state = await new SessionRunner(harness.deps(), {
      sessionId: harness.sessionId,
      model: new ScriptedModel([]),
      fs: createMountTable([]),
      exec: async () => {
        throw new Error("no sandbox");
      },
      systemPrompt: "test",
      cwd: "/workspace",
    }).state();
    const callIds = state.messages.flatMap((message) =>
      message.role === "assistant"
        ? message.content.flatMap((part) => (part.type === "tool_call" ? [part.toolCallId] : []))
        : [],
    );
    const resultIds = state.messages.flatMap((message) =>
      message.role === "tool" ? message.content.map((part) => part.toolCallId) : [],
    );
    expect(new Set(callIds).size).toBe(2);
    expect(resultIds).toEqual(callIds);
  });

  it("rejects a duplicate id within one message and across turns, even without a tool policy", async () => {
    const harness = await createHarness();
    await runWithApprovals(
      harness,
      [
        {
          toolCalls: [
            { name: "Append", input: { line: "a" }, id: "toolu_1" },
            { name: "Append", input: { line: "b" }, id: "toolu_1" },
          ],
        },
        { text: "ok" },
      ],
      async () => undefined,
      null,
    );
    expect(harness.effects).toEqual(["a"]);
    await harness.store.startTurn("org_1", harness.sessionId, "again");
    const events = await runWithApprovals(
      harness,
      [{ toolCalls: [{ name: "Append", input: { line: "c" }, id: "toolu_1" }] }, { text: "ok" }],
      async () => undefined,
      null,
    );
    expect(harness.effects).toEqual(["a"]);
    expect(
      events
        .filter((event) => event.type === "tool.end")
        .map((event) => event.type === "tool.end" && event.isError),
    ).toEqual([false, true, true]);
  });

  it("binds an approval to the call's input: a decision naming another input denies the call", async () => {
    const harness = await createHarness();
    const events = await runWithApprovals(
      harness,
      [{ toolCalls: [{ name: "Append", input: { line: "x" }, id: "toolu_a" }] }, { text: "ok" }],
      async (runner, toolCallId) =>
        runner.recordApproval(toolCallId, "allow", "user", "usr_1", toolInputDigest({ line: "other" })),
    );
    expect(harness.effects).toEqual([]);
    const request = events.find((event) => event.type === "approval.request");
    expect(request?.type === "approval.request" && request.inputDigest).toBe(toolInputDigest({ line: "x" }));
    const end = events.find((event) => event.type === "tool.end");
    expect(end).toMatchObject({ isError: true, denied: { by: "person" } });
    expect(end?.type === "tool.end" && end.output).toContain("does not match this call's input");

    // The same decision naming the right input (key order does not matter) runs it.
    const allowed = await createHarness();
    await runWithApprovals(
      allowed,
      [{ toolCalls: [{ name: "Append", input: { line: "x" }, id: "toolu_a" }] }, { text: "ok" }],
      async (runner, toolCallId) => runner.recordApproval(toolCallId, "allow", "user", "usr_1"),
    );
    expect(allowed.effects).toEqual(["x"]);
  });
});

describe("the pinned agent's say on tool calls", () => {
  const permissions = (policy: "always_allow" | "always_ask") => ({
    policyOf: (name: string) => (name === "Append" ? policy : undefined),
    isCustom: (name: string) => name === "lookup",
    isOffered: (name: string) => name === "lookup" || name === "Append",
  });

  async function runner(harness: Harness, model: ScriptedModel, policy: "always_allow" | "always_ask") {
    return new SessionRunner(harness.deps(), {
      sessionId: harness.sessionId,
      model,
      fs: createMountTable([]),
      exec: async () => {
        throw new Error("no sandbox in this test");
      },
      systemPrompt: "test",
      cwd: "/workspace",
      permissions: permissions(policy),
      customTools: [{ name: "lookup", description: "Looks up", inputSchema: { type: "object" } }],
    });
  }

  async function runUntilWait(sessionRunner: SessionRunner) {
    for (;;) {
      const outcome = await sessionRunner.runStep(new AbortController().signal);
      if (outcome.type !== "progress") return outcome;
    }
  }

  it("asks before an always_ask call even without an org policy, and records the evaluation", async () => {
    const harness = await createHarness();
    const sessionRunner = await runner(
      harness,
      new ScriptedModel([
        { toolCalls: [{ name: "Append", input: { line: "x" }, id: "toolu_a" }] },
        { text: "ok" },
      ]),
      "always_ask",
    );
    expect(await runUntilWait(sessionRunner)).toMatchObject({
      type: "await_approval",
      toolCallId: "toolu_a",
    });
    expect(harness.effects).toEqual([]);
    const request = (await allEvents(harness.store, harness.sessionId)).find(
      (event) => event.type === "approval.request",
    );
    expect(request).toMatchObject({
      rule: "always_ask",
      evaluatedPermission: "ask",
      permissionPolicy: "always_ask",
    });
    await sessionRunner.recordApproval("toolu_a", "allow", "user", "usr_1");
    expect(await runUntilWait(sessionRunner)).toMatchObject({ type: "idle" });
    expect(harness.effects).toEqual(["x"]);
  });

  it("offers custom tools with their schema, never runs them, and hands every call of the message to the client at once", async () => {
    const harness = await createHarness();
    const model = new ScriptedModel([
      {
        toolCalls: [
          { name: "lookup", input: { id: 1 }, id: "toolu_1" },
          { name: "Append", input: { line: "between" }, id: "toolu_2" },
          { name: "lookup", input: { id: 2 }, id: "toolu_3" },
        ],
      },
      { text: "done" },
    ]);
    const sessionRunner = await runner(harness, model, "always_allow");
    expect(await runUntilWait(sessionRunner)).toEqual({ type: "await_custom_tool", toolCallId: "toolu_1" });
    expect(model.requests[0]?.tools.map((tool) => tool.name)).toEqual(["Append", "lookup"]);
    expect(model.requests[0]?.tools[1]?.inputSchema).toEqual({ type: "object" });
    const requested = (await allEvents(harness.store, harness.sessionId)).filter(
      (event) => event.type === "custom_tool.request",
    );
    expect(requested.map((event) => event.type === "custom_tool.request" && event.toolCallId)).toEqual([
      "toolu_1",
      "toolu_3",
    ]);
    // A result for a call not requested is ignored; the requested ones are recorded once each.
    await sessionRunner.recordCustomToolResult("toolu_2", {
      content: [{ type: "text", text: "no" }],
      isError: false,
    });
    await sessionRunner.recordCustomToolResult("toolu_3", {
      content: [{ type: "text", text: "three" }],
      isError: false,
    });
    expect(await runUntilWait(sessionRunner)).toEqual({ type: "await_custom_tool", toolCallId: "toolu_1" });
    await sessionRunner.recordCustomToolResult("toolu_1", {
      content: [
        { type: "text", text: "one" },
        { type: "image", source: {} },
      ],
      isError: true,
    });
    await sessionRunner.recordCustomToolResult("toolu_1", {
      content: [{ type: "text", text: "again" }],
      isError: false,
    });
    expect(await runUntilWait(sessionRunner)).toMatchObject({ type: "idle" });
    expect(harness.effects).toEqual(["between"]);
    expect(model.requests[1]?.messages.at(-1)).toEqual({
      role: "tool",
      content: [
        { type: "tool_result", toolCallId: "toolu_3", name: "lookup", output: "three", isError: false },
        {
          type: "tool_result",
          toolCallId: "toolu_1",
          name: "lookup",
          output: "one\n\n[image]",
          isError: true,
        },
        {
          type: "tool_result",
          toolCallId: "toolu_2",
          name: "Append",
          output: "appended between",
          isError: false,
        },
      ],
    });
  });

  it("ends an interrupted turn without starting its pending calls", async () => {
    const harness = await createHarness();
    const model = new ScriptedModel([
      { toolCalls: [{ name: "Append", input: { line: "x" }, id: "toolu_a" }] },
    ]);
    const sessionRunner = await runner(harness, model, "always_allow");
    await sessionRunner.runStep(new AbortController().signal); // the model call
    await harness.store.appendEvents(harness.sessionId, [{ type: "interrupt.request", turn: 1 }], {
      turn: 1,
    });
    expect(await runUntilWait(sessionRunner)).toMatchObject({ type: "idle" });
    const events = await allEvents(harness.store, harness.sessionId);
    expect(events.at(-1)).toMatchObject({ type: "turn.end", reason: "interrupted" });
    expect(events.some((event) => event.type === "tool.start")).toBe(false);
    expect(harness.effects).toEqual([]);
    expect((await harness.store.getSession("org_1", harness.sessionId))?.status).toBe("idle");
  });
});
