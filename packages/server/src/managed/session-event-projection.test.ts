import type { SessionEvent } from "@outrig/protocol";
import { MemorySessionStore } from "@outrig/testing";
import { describe, expect, it } from "vitest";
import { apiEventId, parseApiEventId, SessionEventProjector } from "./session-event-projection.js";

const at = "2026-12-06T07:00:00.000Z";
const usage = { inputTokens: 7, outputTokens: 3 };

/** A turn whose Write call waits for a person, is allowed, runs, and the turn ends. */
const TURN: SessionEvent[] = [
  { seq: 1, at, type: "session.start", model: "anthropic:m" },
  { seq: 2, at, type: "turn.start", turn: 1, text: "write it" },
  {
    seq: 3,
    at,
    type: "message.end",
    turn: 1,
    step: 1,
    message: {
      role: "assistant",
      content: [
        { type: "text", text: "On it." },
        { type: "tool_call", toolCallId: "call_1", name: "Write", input: { file_path: "/workspace/a" } },
      ],
    },
    stopReason: "tool_use",
    usage,
  },
  {
    seq: 4,
    at,
    type: "approval.request",
    turn: 1,
    toolCallId: "call_1",
    name: "Write",
    input: { file_path: "/workspace/a" },
    rule: "Write",
    timeoutMs: 1000,
  },
  { seq: 5, at, type: "approval.response", turn: 1, toolCallId: "call_1", decision: "allow", reason: "user" },
  { seq: 6, at, type: "tool.start", turn: 1, toolCallId: "call_1", name: "Write", input: {} },
  {
    seq: 7,
    at,
    type: "tool.end",
    turn: 1,
    toolCallId: "call_1",
    name: "Write",
    isError: false,
    output: "ok",
    durationMs: 3,
  },
  { seq: 8, at, type: "turn.end", turn: 1, reason: "end_turn", usage },
];

describe("session event projection", () => {
  it("projects a turn with a confirmed call into the API's events, one tool use per call", () => {
    const projector = new SessionEventProjector("sesn_abc");
    const events = TURN.flatMap((event) => projector.project(event));
    expect(events.map((event) => [event.id, event.type])).toEqual([
      ["sevt_abc_2_0", "user.message"],
      ["sevt_abc_2_1", "session.status_running"],
      ["sevt_abc_3_0", "span.model_request_start"],
      ["sevt_abc_3_1", "agent.message"],
      ["sevt_abc_3_2", "span.model_request_end"],
      ["sevt_abc_4_0", "agent.tool_use"],
      ["sevt_abc_4_1", "session.status_idle"],
      ["sevt_abc_5_0", "user.tool_confirmation"],
      ["sevt_abc_5_1", "session.status_running"],
      ["sevt_abc_7_0", "agent.tool_result"],
      ["sevt_abc_8_0", "session.status_idle"],
    ]);
    expect(events[4]).toMatchObject({
      model_request_start_id: "sevt_abc_3_0",
      model_usage: { input_tokens: 7 },
    });
    expect(events[5]).toMatchObject({ evaluated_permission: "ask", name: "Write", processed_at: at });
    expect(events[6]).toMatchObject({
      stop_reason: { type: "requires_action", event_ids: ["sevt_abc_4_0"] },
    });
    expect(events[7]).toMatchObject({ tool_use_id: "sevt_abc_4_0", result: "allow" });
    expect(events[9]).toMatchObject({ tool_use_id: "sevt_abc_4_0", is_error: false });
  });

  it("rebuilds the turn's state when a reader starts in the middle of it", async () => {
    const store = new MemorySessionStore();
    const session = await store.createSession({ orgId: "org", userId: "usr", model: "m", system: null });
    await store.appendEvents(session.id, TURN.map(({ seq: _seq, at: _at, ...event }) => event) as never);
    const stored = await store.readEvents(session.id, { afterSeq: 0, limit: 100 });
    const whole = new SessionEventProjector(session.id);
    const expected = stored.flatMap((event) => whole.project(event));
    for (const start of [2, 5, 6, 7]) {
      const partial = new SessionEventProjector(session.id);
      await partial.warmUp(store, start);
      const rest = stored.filter((event) => event.seq >= start).flatMap((event) => partial.project(event));
      expect(rest).toEqual(
        expected.filter((event) => (parseApiEventId(session.id, event.id)?.seq ?? 0) >= start),
      );
    }
  });

  it("names a denied call, a cancel and exhausted retries as the API does, and drops unknown types", () => {
    const projector = new SessionEventProjector("sesn_x");
    const denied = projector.project({
      seq: 3,
      at,
      type: "tool.end",
      turn: 1,
      toolCallId: "call_9",
      name: "Bash",
      isError: true,
      output: "denied by policy",
      durationMs: 0,
      denied: { by: "policy", rule: "Bash", input: { command: "rm -rf /" } },
    });
    expect(denied).toMatchObject([
      { type: "agent.tool_use", evaluated_permission: "deny", input: { command: "rm -rf /" } },
      { type: "agent.tool_result", tool_use_id: "sevt_x_3_0", is_error: true },
    ]);
    expect(
      projector.project({ seq: 4, at, type: "turn.error", turn: 1, code: "cancelled", message: "x" }),
    ).toMatchObject([
      { type: "user.interrupt" },
      { type: "session.status_idle", stop_reason: { type: "end_turn" } },
    ]);
    expect(
      projector.project({
        seq: 5,
        at,
        type: "turn.error",
        turn: 2,
        code: "model_rate_limited",
        message: "slow",
      }),
    ).toMatchObject([
      { type: "span.model_request_start", id: "sevt_x_5_0" },
      { type: "span.model_request_end", model_request_start_id: "sevt_x_5_0", is_error: true },
      {
        type: "session.error",
        error: { type: "model_rate_limited_error", retry_status: { type: "exhausted" } },
      },
      { type: "session.status_idle", stop_reason: { type: "retries_exhausted" } },
    ]);
    expect(projector.project({ seq: 6, at, type: "sandbox.resume", sandboxId: "b", durationMs: 12 })).toEqual(
      [
        {
          id: "sevt_x_6_0",
          type: "session.sandbox_resumed",
          sandbox_id: "b",
          duration_ms: 12,
          processed_at: at,
        },
      ],
    );
    expect(projector.project({ seq: 7, at, type: "some.future_event" } as unknown as SessionEvent)).toEqual(
      [],
    );
  });

  it("shows a retried model call as rescheduled, then running, and a missing model as terminated", () => {
    const projector = new SessionEventProjector("sesn_x");
    projector.project({ seq: 1, at, type: "turn.start", turn: 1, text: "hi" });
    expect(projector.nextMessageIndex()).toBe(1);
    const retry = projector.project({
      seq: 2,
      at,
      type: "model.retry",
      turn: 1,
      step: 1,
      attempt: 1,
      code: "model_overloaded",
      message: "Overloaded",
      delayMs: 10,
    });
    expect(retry.map((event) => event.type)).toEqual([
      "span.model_request_start",
      "span.model_request_end",
      "session.error",
      "session.status_rescheduled",
    ]);
    expect(retry[2]).toMatchObject({ error: { retry_status: { type: "retrying" }, attempt: 1 } });
    expect(projector.nextMessageIndex()).toBe(2);
    const answer = projector.project({
      seq: 3,
      at,
      type: "message.end",
      turn: 1,
      step: 1,
      message: { role: "assistant", content: [{ type: "text", text: "hello" }] },
      stopReason: "end_turn",
      usage: { inputTokens: 1, outputTokens: 1 },
    } as SessionEvent);
    expect(answer.map((event) => [event.id, event.type])).toEqual([
      ["sevt_x_3_0", "session.status_running"],
      ["sevt_x_3_1", "span.model_request_start"],
      ["sevt_x_3_2", "agent.message"],
      ["sevt_x_3_3", "span.model_request_end"],
    ]);
    expect(answer[3]).toMatchObject({ model_request_start_id: "sevt_x_3_1" });
    expect(projector.nextMessageIndex()).toBe(1);
    const failed = projector.project({
      seq: 4,
      at,
      type: "turn.error",
      turn: 1,
      code: "model_not_found",
      message: "no such model",
    });
    expect(failed.slice(2)).toMatchObject([
      {
        type: "session.error",
        error: { type: "model_request_failed_error", retry_status: { type: "terminal" } },
      },
      { type: "session.status_terminated" },
    ]);
  });

  it("makes ids unique across sessions and parses only this session's canonical ids", () => {
    expect(apiEventId("sesn_a", { seq: 1, index: 0 })).not.toBe(apiEventId("sesn_b", { seq: 1, index: 0 }));
    expect(parseApiEventId("sesn_a", "sevt_a_12_3")).toEqual({ seq: 12, index: 3 });
    for (const id of ["sevt_b_12_3", "sevt_a_012_3", "sevt_a_12_03", "sevt_a_12", "x", "sevt_a_-1_0"])
      expect(parseApiEventId("sesn_a", id), id).toBeNull();
  });
});

describe("repository clones", () => {
  it("project to the API's repository session.error, or to session.repository_cloned", () => {
    const projector = new SessionEventProjector("sesn_r");
    const base = {
      at,
      type: "repository.clone" as const,
      resourceId: "sesrsc_a",
      url: "https://github.com/acme/widgets",
      mountPath: "/workspace/widgets",
    };
    expect(
      projector.project({
        ...base,
        seq: 3,
        error: { type: "repository_authentication_error", message: "Cloning … failed" },
      }),
    ).toEqual([
      {
        id: "sevt_r_3_0",
        type: "session.error",
        error: {
          type: "repository_authentication_error",
          message: "Cloning … failed",
          repository_url: "https://github.com/acme/widgets",
          retry_status: { type: "retrying" },
        },
        processed_at: at,
      },
    ]);
    expect(projector.project({ ...base, seq: 4, commit: "a".repeat(40) })).toEqual([
      {
        id: "sevt_r_4_0",
        type: "session.repository_cloned",
        resource_id: "sesrsc_a",
        repository_url: "https://github.com/acme/widgets",
        mount_path: "/workspace/widgets",
        commit: "a".repeat(40),
        processed_at: at,
      },
    ]);
  });
});
