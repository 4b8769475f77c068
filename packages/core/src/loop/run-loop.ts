/**
 * The only loop module that awaits I/O: load → decide → execute → append → publish.
 * State is always re-derived from the persisted event log, so any runner in any process can take a
 * session over. `runStep` performs exactly one action; a durable engine wraps each call in a checkpoint.
 */
import type {
  CustomToolContentBlock,
  EvaluatedPermission,
  MessageDeltaEvent,
  NewSessionEvent,
  PermissionPolicy,
  SessionEvent,
  ToolPolicy,
} from "@outrig/protocol";
import { z } from "zod";
import type { CustomToolDefinition } from "../agents/agent-config.js";
import { AppError, assertNever, InvariantError } from "../errors/app-error.js";
import type { LanguageModel, ToolDefinition } from "../model/language-model.js";
import type { ExecRequest, ExecResult } from "../sandbox/sandbox.js";
import type { AppendOptions, SessionStore } from "../store/session-store.js";
import type { FileReadRecord, FileStateTracker, Tool, ToolResult } from "../tools/tool.js";
import type { FileSystem } from "../vfs/file-system.js";
import { type LoopLimits, nextAction, retryDelayMs, type ToolPermissions } from "./next-action.js";
import { applyEvent, foldEvents, type RunState } from "./run-state.js";
import { executeModelCall, executeToolCall } from "./step-executors.js";
import { stepTimings } from "./step-timings.js";
import { toolInputDigest } from "./tool-input-digest.js";

export interface SessionRunnerDeps {
  readonly store: SessionStore;
  readonly tools: readonly Tool[];
  readonly limits: LoopLimits;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random: () => number;
  /** Called after each event is persisted, and for live-only text deltas. Must not throw. */
  readonly publish: (sessionId: string, event: SessionEvent | MessageDeltaEvent) => void;
}

export interface ToolRunOptions {
  /** Stable across re-runs of the same call: the sandbox uses it to run a side effect at most once. */
  readonly idempotencyKey: string;
  /** True when the call had started before (a re-run after a crash). */
  readonly isRerun: boolean;
}

export interface SessionRunContext {
  readonly sessionId: string;
  readonly model: LanguageModel;
  /** The session's file namespace (mount table). */
  readonly fs: FileSystem;
  /** Runs a command in the session's sandbox, acquiring it lazily. */
  exec(request: ExecRequest, signal: AbortSignal): Promise<ExecResult>;
  readonly systemPrompt: string;
  readonly cwd: string;
  /** The org's tool policy; without one every call is allowed. */
  readonly policy?: ToolPolicy;
  /** The pinned agent's permission policies and custom tools; without them every call runs. */
  readonly permissions?: ToolPermissions;
  /** Tools the client runs, offered to the model with their input schema next to `deps.tools`. */
  readonly customTools?: readonly CustomToolDefinition[];
  /**
   * Wraps each tool call, e.g. to replay a result the sandbox recorded before a crash. Defaults to
   * running the call.
   */
  readonly runTool?: (options: ToolRunOptions, run: () => Promise<ToolResult>) => Promise<ToolResult>;
  /**
   * Asked before every model request of a session with a budget: true when its tracked list cost has
   * reached the budget, and the turn then ends with `budget_reached` instead of calling the model.
   */
  readonly isBudgetSpent?: () => Promise<boolean>;
}

/** What one step did; small and serializable, so a durable engine can checkpoint it. */
export type StepOutcome =
  | { readonly type: "progress"; readonly seq: number }
  /** The loop must wait for a decision on this tool call (or its timeout), then call `recordApproval`. */
  | { readonly type: "await_approval"; readonly toolCallId: string; readonly timeoutMs: number }
  /** The loop must wait for the client's result of this custom tool call, then call `recordCustomToolResult`. */
  | { readonly type: "await_custom_tool"; readonly toolCallId: string }
  | { readonly type: "idle"; readonly seq: number };

export interface StepOptions {
  /**
   * What `state()` returned just before this call (the caller checked the turn on it): the step then
   * starts from it instead of reading the log again. Ignored once the runner has appended since.
   */
  readonly caughtUp?: RunState;
}

/** A client's result for a custom tool call (the API's `user.custom_tool_result`). */
export interface CustomToolResult {
  readonly content: readonly CustomToolContentBlock[];
  readonly isError: boolean;
  readonly userId?: string;
}

const EVENT_PAGE = 1000;

export async function loadRunState(
  store: SessionStore,
  sessionId: string,
  state = foldEvents([]),
): Promise<RunState> {
  let current = state;
  for (;;) {
    const page = await store.readEvents(sessionId, { afterSeq: current.lastSeq, limit: EVENT_PAGE });
    current = foldEvents(page, current);
    if (page.length < EVENT_PAGE) return current;
  }
}

/** True for the storage error raised when a turn was closed elsewhere (cancelled) while we worked. */
export function isTurnClosed(error: unknown): boolean {
  return error instanceof AppError && error.code === "turn_closed";
}

/**
 * True for a step failure that no retry can fix: our own bug (InvariantError, e.g. an event the protocol
 * rejects) or the store refusing an event's data (`event_unstorable`).
 */
export function isPermanentStepError(error: unknown): error is AppError {
  return error instanceof InvariantError || (error instanceof AppError && error.code === "event_unstorable");
}

/**
 * Drives one session. Keeps its folded state between steps and catches up from the log before each
 * one, so a step that another process already performed is never performed again.
 */
export class SessionRunner {
  readonly #deps: SessionRunnerDeps;
  readonly #context: SessionRunContext;
  readonly #toolsByName: Map<string, Tool>;
  readonly #definitions: ToolDefinition[];
  #state: RunState | undefined;
  #policy: ToolPolicy | undefined;
  /** Set when the store refused a write because the turn was closed elsewhere: the turn is over for us. */
  #isClosed = false;
  /** Set when an append's seqs showed events of another writer that `#state` has not read yet. */
  #isBehind = false;

  constructor(deps: SessionRunnerDeps, context: SessionRunContext) {
    this.#deps = deps;
    this.#context = context;
    this.#policy = context.policy;
    this.#toolsByName = new Map(deps.tools.map((tool) => [tool.name, tool]));
    this.#definitions = [
      ...deps.tools.map((tool) => toolDefinition(tool)),
      ...(context.customTools ?? []).map((tool) => ({
        name: tool.name,
        description: tool.description,
        inputSchema: tool.inputSchema,
      })),
    ];
  }

  /** Replaces the tool policy used from the next step on (policies can change while a session lives). */
  setPolicy(policy: ToolPolicy | undefined): void {
    this.#policy = policy;
  }

  async state(): Promise<RunState> {
    this.#state = await stepTimings.time("loop.state", () =>
      loadRunState(this.#deps.store, this.#context.sessionId, this.#state),
    );
    this.#isBehind = false;
    return this.#state;
  }

  /**
   * Performs the next action of the running turn. Returns `idle` when the turn is over (or none runs).
   * A permanent failure (`isPermanentStepError`, e.g. the store refusing an event) ends the turn with
   * `turn.error` instead of throwing, so a durable engine does not retry a step that can never succeed.
   */
  async runStep(
    signal: AbortSignal,
    interruptSignal?: AbortSignal,
    options: StepOptions = {},
  ): Promise<StepOutcome> {
    try {
      return await this.#performStep(signal, interruptSignal, options);
    } catch (error) {
      if (!isPermanentStepError(error)) throw error;
      const state = await this.state();
      if (state.turnStatus !== "running") throw error;
      await this.#appendOrClosed([
        {
          type: "turn.error",
          turn: state.turn,
          code: error.code,
          message: `The turn stopped: a step failed in a way no retry can fix (${error.message}).`,
        },
      ]);
      this.#isClosed = false;
      return { type: "idle", seq: (await this.state()).lastSeq };
    }
  }

  /**
   * `interruptSignal` aborts a model call in flight when the turn is interrupted (the model's answer is
   * not needed and nothing of it ran); a tool call in flight is never aborted by it.
   */
  async #performStep(
    signal: AbortSignal,
    interruptSignal: AbortSignal | undefined,
    options: StepOptions,
  ): Promise<StepOutcome> {
    const { limits } = this.#deps;
    // The caller's fresh read stands in for a second one, unless this runner appended since.
    let state =
      options.caughtUp !== undefined && options.caughtUp === this.#state
        ? options.caughtUp
        : await this.state();
    if (signal.aborted && state.turnStatus === "running") {
      await this.#appendOrClosed([
        { type: "turn.error", turn: state.turn, code: "cancelled", message: "The turn was cancelled." },
      ]);
      return { type: "idle", seq: (await this.state()).lastSeq };
    }
    const action = nextAction(state, limits, this.#policy, this.#context.permissions);
    switch (action.type) {
      case "none":
        return { type: "idle", seq: state.lastSeq };
      case "end_turn":
        await this.#appendOrClosed([
          { type: "turn.end", turn: state.turn, reason: action.reason, usage: state.turnUsage },
        ]);
        break;
      case "call_model":
        if (await this.#context.isBudgetSpent?.()) {
          await this.#appendOrClosed([
            { type: "turn.end", turn: state.turn, reason: "budget_reached", usage: state.turnUsage },
          ]);
          break;
        }
        await this.#callModel(state, action.step, signal, interruptSignal);
        break;
      case "deny_tool":
        await this.#endUnrunCall(
          state,
          action.toolCallId,
          action.message,
          action.deniedBy === "policy" ? { by: "policy", rule: action.rule } : { by: "person" },
        );
        break;
      case "reject_tool":
        await this.#endUnrunCall(state, action.toolCallId, action.message);
        break;
      case "request_actions": {
        const requests = action.requests.flatMap((request) => {
          const call = state.toolCalls.find((candidate) => candidate.toolCallId === request.toolCallId);
          return call ? [{ request, call }] : [];
        });
        // One batch: the session shows requires_action once, naming every request (`moreFollow`).
        await this.#appendOrClosed(
          requests.map(({ request, call }, index): NewSessionEvent => {
            const moreFollow = index < requests.length - 1 ? { moreFollow: true } : {};
            if (request.type === "custom")
              return {
                type: "custom_tool.request",
                turn: state.turn,
                toolCallId: call.toolCallId,
                name: call.name,
                input: call.input,
                ...moreFollow,
              };
            return {
              type: "approval.request",
              turn: state.turn,
              toolCallId: call.toolCallId,
              name: call.name,
              input: call.input,
              inputDigest: toolInputDigest(call.input),
              rule: request.rule,
              timeoutMs: request.timeoutMs,
              evaluatedPermission: "ask",
              ...(request.permissionPolicy ? { permissionPolicy: request.permissionPolicy } : {}),
              ...moreFollow,
            };
          }),
        );
        const first = requests[0]?.request;
        if (this.#isClosed || !first) break;
        return first.type === "custom"
          ? { type: "await_custom_tool", toolCallId: first.toolCallId }
          : { type: "await_approval", toolCallId: first.toolCallId, timeoutMs: first.timeoutMs };
      }
      case "await_custom_tool":
        return { type: "await_custom_tool", toolCallId: action.toolCallId };
      case "await_approval":
        return {
          type: "await_approval",
          toolCallId: action.toolCallId,
          timeoutMs: state.approvals.get(action.toolCallId)?.timeoutMs ?? 0,
        };
      case "run_tool":
        await this.#runTool(state, action.toolCallId, signal, action);
        break;
      default:
        assertNever(action);
    }
    // This runner's own appends keep its state current; when another writer's events came in between,
    // the log is read (the next step reads it anyway, so a turn closed elsewhere is seen then).
    state = this.#isBehind || !this.#state ? await this.state() : this.#state;
    if (this.#isClosed) {
      // The store refused our write: the turn ended elsewhere, whatever our copy of the log says.
      this.#isClosed = false;
      return { type: "idle", seq: state.lastSeq };
    }
    return state.turnStatus === "running"
      ? { type: "progress", seq: state.lastSeq }
      : { type: "idle", seq: state.lastSeq };
  }

  /**
   * Records the answer to an approval request (exactly once: a second answer is ignored). The answer
   * names the input it decided on: `inputDigest` when the caller passes one (what the person saw),
   * else the digest of the input the request was asked for. A call whose input differs never runs.
   */
  async recordApproval(
    toolCallId: string,
    decision: "allow" | "deny",
    reason: "user" | "timeout",
    userId?: string,
    inputDigest?: string,
    denyMessage?: string,
  ): Promise<void> {
    const state = await this.state();
    const approval = state.approvals.get(toolCallId);
    if (!approval || approval.decision !== undefined) return;
    await this.#appendOrClosed([
      {
        type: "approval.response",
        turn: state.turn,
        toolCallId,
        decision,
        reason,
        inputDigest: inputDigest ?? approval.inputDigest,
        ...(userId ? { userId } : {}),
        ...(decision === "deny" && denyMessage !== undefined ? { denyMessage } : {}),
      },
    ]);
  }

  /**
   * Records the client's result for a custom tool call the turn waits for (exactly once: a result for a
   * call that was not requested, or that has one already, is ignored). The model reads it next.
   */
  async recordCustomToolResult(toolCallId: string, result: CustomToolResult): Promise<void> {
    const state = await this.state();
    const request = state.customRequests.get(toolCallId);
    if (state.turnStatus !== "running" || !request || request.isAnswered) return;
    await this.#appendOrClosed([
      {
        type: "custom_tool.result",
        turn: state.turn,
        toolCallId,
        content: [...result.content],
        isError: result.isError,
        ...(result.userId ? { userId: result.userId } : {}),
      },
    ]);
  }

  async #callModel(
    state: RunState,
    step: number,
    signal: AbortSignal,
    interruptSignal?: AbortSignal,
  ): Promise<void> {
    const deps = this.#deps;
    const outcome = await stepTimings.time("loop.model", () =>
      executeModelCall(
        this.#context.model,
        { system: this.#context.systemPrompt, messages: state.messages, tools: this.#definitions },
        interruptSignal ? AbortSignal.any([signal, interruptSignal]) : signal,
        (text) =>
          deps.publish(this.#context.sessionId, { type: "message.delta", turn: state.turn, step, text }),
      ),
    );
    if (outcome.type === "ok") {
      await this.#appendOrClosed([
        {
          type: "message.end",
          turn: state.turn,
          step,
          message: outcome.message,
          stopReason: outcome.stopReason,
          usage: outcome.usage,
        },
      ]);
      return;
    }
    if (interruptSignal?.aborted && !signal.aborted) {
      // Interrupted mid-call: the unfinished answer is dropped and the turn ends as interrupted.
      await this.#appendOrClosed([
        { type: "turn.end", turn: state.turn, reason: "interrupted", usage: state.turnUsage },
      ]);
      return;
    }
    const attempt = state.modelAttempts + 1;
    if (outcome.retryable && !signal.aborted && attempt < deps.limits.maxModelAttempts) {
      const delayMs = retryDelayMs(attempt, deps.random(), outcome.retryAfterMs);
      await this.#appendOrClosed([
        {
          type: "model.retry",
          turn: state.turn,
          step,
          attempt,
          code: outcome.code,
          message: outcome.message,
          delayMs,
        },
      ]);
      await deps.sleep(delayMs, signal).catch(() => undefined);
      return;
    }
    const code = signal.aborted ? "cancelled" : outcome.code;
    const message = signal.aborted ? "The turn was cancelled." : outcome.message;
    await this.#appendOrClosed([{ type: "turn.error", turn: state.turn, code, message }]);
  }

  async #runTool(
    state: RunState,
    toolCallId: string,
    signal: AbortSignal,
    permission: { evaluatedPermission?: EvaluatedPermission; permissionPolicy?: PermissionPolicy },
  ): Promise<void> {
    const call = state.toolCalls.find((candidate) => candidate.toolCallId === toolCallId);
    if (!call) return; // unreachable: nextAction picked it from state
    const isRerun = call.hasStarted;
    if (!isRerun) {
      await this.#appendOrClosed([
        {
          type: "tool.start",
          turn: state.turn,
          toolCallId: call.toolCallId,
          name: call.name,
          input: call.input,
          ...(permission.evaluatedPermission ? { evaluatedPermission: permission.evaluatedPermission } : {}),
          ...(permission.permissionPolicy ? { permissionPolicy: permission.permissionPolicy } : {}),
        },
      ]);
      // The turn was closed elsewhere (cancelled) before the call started: never run it.
      if (this.#isClosed) return;
    }
    const idempotencyKey = `${this.#context.sessionId}:${call.toolCallId}`;
    const tracker = createRecordingTracker(state.fileState);
    const startedAt = performance.now();
    const run = () =>
      executeToolCall(this.#toolsByName.get(call.name), call.name, call.input, {
        fs: withIdempotencyKey(this.#context.fs, idempotencyKey),
        exec: (request, execSignal) => this.#context.exec({ ...request, idempotencyKey }, execSignal),
        fileState: tracker,
        signal,
        toolCallId: call.toolCallId,
        cwd: this.#context.cwd,
      });
    const result = await stepTimings.time("loop.tool", () =>
      this.#context.runTool ? this.#context.runTool({ idempotencyKey, isRerun }, run) : run(),
    );
    const changes = tracker.changes();
    await this.#appendOrClosed([
      {
        type: "tool.end",
        turn: state.turn,
        toolCallId: call.toolCallId,
        name: call.name,
        isError: result.isError,
        output: result.output,
        durationMs: Math.round((performance.now() - startedAt) * 100) / 100,
        ...(changes.length > 0 ? { fileState: changes } : {}),
      },
    ]);
  }

  /** Appends within the current turn; a turn closed elsewhere (cancelled) makes this a no-op. */
  /** Ends a call that never ran (denied, or rejected as a reused id) with an error result. */
  async #endUnrunCall(
    state: RunState,
    toolCallId: string,
    message: string,
    denied?: { readonly by: "policy"; readonly rule: string | undefined } | { readonly by: "person" },
  ): Promise<void> {
    const call = state.toolCalls.find((candidate) => candidate.toolCallId === toolCallId);
    if (!call) return;
    await this.#appendOrClosed([
      {
        type: "tool.end",
        turn: state.turn,
        toolCallId: call.toolCallId,
        name: call.name,
        isError: true,
        output: message,
        durationMs: 0,
        ...(denied === undefined
          ? {}
          : { denied: denied.by === "policy" ? { ...denied, input: call.input } : denied }),
      },
    ]);
  }

  async #appendOrClosed(events: NewSessionEvent[]): Promise<void> {
    const state = this.#state;
    const options: AppendOptions = state && state.turnStatus === "running" ? { turn: state.turn } : {};
    try {
      const stored = await stepTimings.time("loop.append", () =>
        this.#deps.store.appendEvents(this.#context.sessionId, events, options),
      );
      const publishedAt = performance.now();
      let next = this.#state ?? foldEvents([]);
      for (const event of stored) {
        // Another writer may have appended in between: catch up on the next state() call instead.
        if (event.seq === next.lastSeq + 1) next = applyEvent(next, event);
        else this.#isBehind = true;
        this.#deps.publish(this.#context.sessionId, event);
      }
      this.#state = next;
      stepTimings.add("loop.publish", performance.now() - publishedAt);
    } catch (error) {
      if (!isTurnClosed(error)) throw error;
      this.#isClosed = true;
    }
  }
}

/**
 * The file system a tool call sees: its writes and removals carry the call's key, as its commands do, so
 * the sandbox journals them and the snapshot after them names the call. A sandbox runs a key at most
 * once, so a call's second and later changes get keys of their own (`<key>#2`, …), in call order, which
 * a re-run of the call repeats.
 */
export function withIdempotencyKey(fs: FileSystem, idempotencyKey: string): FileSystem {
  let changes = 0;
  const nextKey = () => {
    changes += 1;
    return changes === 1 ? idempotencyKey : `${idempotencyKey}#${changes}`;
  };
  return {
    read: (path) => fs.read(path),
    write: (path, data, options) => fs.write(path, data, { idempotencyKey: nextKey(), ...options }),
    stat: (path) => fs.stat(path),
    list: (path, options) => fs.list(path, options),
    remove: (path, options) => fs.remove(path, { idempotencyKey: nextKey(), ...options }),
  };
}

/**
 * Drives the session until its turn is over, or waits for a client (a custom tool result): then it
 * returns the state and the caller records the result and calls it again. Approvals are answered by
 * timeout only here (no durable wait).
 */
export async function runSession(
  deps: SessionRunnerDeps,
  context: SessionRunContext,
  signal: AbortSignal,
): Promise<RunState> {
  const runner = new SessionRunner(deps, context);
  for (;;) {
    const outcome = await runner.runStep(signal);
    if (outcome.type === "idle" || outcome.type === "await_custom_tool") return runner.state();
    if (outcome.type === "await_approval") {
      await deps.sleep(outcome.timeoutMs, signal).catch(() => undefined);
      await runner.recordApproval(outcome.toolCallId, "deny", "timeout");
    }
  }
}

function toolDefinition(tool: Tool): ToolDefinition {
  return {
    name: tool.name,
    description: tool.description,
    inputSchema: toJsonSchema(tool),
    ...(tool.providerTools ? { providerTools: tool.providerTools } : {}),
  };
}

const schemaCache = new WeakMap<Tool, Record<string, unknown>>();
function toJsonSchema(tool: Tool): Record<string, unknown> {
  const cached = schemaCache.get(tool);
  if (cached) return cached;
  const { $schema: _ignored, ...schema } = z.toJSONSchema(tool.inputSchema, { io: "input" }) as Record<
    string,
    unknown
  >;
  schemaCache.set(tool, schema);
  return schema;
}

interface RecordingTracker extends FileStateTracker {
  changes(): { path: string; mtimeMs: number; isPartial: boolean }[];
}

function createRecordingTracker(initial: ReadonlyMap<string, FileReadRecord>): RecordingTracker {
  const current = new Map(initial);
  const changed = new Map<string, FileReadRecord>();
  return {
    get: (path) => current.get(path),
    set: (path, record) => {
      current.set(path, record);
      changed.set(path, record);
    },
    changes: () => [...changed].map(([path, record]) => ({ path, ...record })),
  };
}
