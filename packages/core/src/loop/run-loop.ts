/**
 * The only loop module that awaits I/O: load → decide → execute → append → publish.
 * State is always re-derived from the persisted event log, so a fresh runner resumes any session.
 */

import type { MessageDeltaEvent, NewSessionEvent, SessionEvent, SessionStatus } from "@outrig/protocol";
import { z } from "zod";
import type { LanguageModel } from "../model/language-model.js";
import type { ExecRequest, ExecResult } from "../sandbox/sandbox.js";
import type { SessionStore } from "../store/session-store.js";
import type { FileReadRecord, FileStateTracker, Tool } from "../tools/tool.js";
import type { FileSystem } from "../vfs/file-system.js";
import { type LoopLimits, nextAction, retryDelayMs } from "./next-action.js";
import { applyEvent, foldEvents, type RunState } from "./run-state.js";
import { executeModelCall, executeToolCall } from "./step-executors.js";

export interface SessionRunnerDeps {
  readonly store: SessionStore;
  readonly tools: readonly Tool[];
  readonly limits: LoopLimits;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random: () => number;
  /** Called after each event is persisted, and for live-only text deltas. Must not throw. */
  readonly publish: (sessionId: string, event: SessionEvent | MessageDeltaEvent) => void;
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
}

const EVENT_PAGE = 1000;

export async function loadRunState(store: SessionStore, sessionId: string): Promise<RunState> {
  let state = foldEvents([]);
  for (;;) {
    const page = await store.readEvents(sessionId, { afterSeq: state.lastSeq, limit: EVENT_PAGE });
    state = foldEvents(page, state);
    if (page.length < EVENT_PAGE) return state;
  }
}

/** Drives the session until nothing is left to do (its turn ended, failed or was cancelled). */
export async function runSession(
  deps: SessionRunnerDeps,
  context: SessionRunContext,
  signal: AbortSignal,
): Promise<RunState> {
  const { store, limits } = deps;
  const toolsByName = new Map(deps.tools.map((tool) => [tool.name, tool]));
  const definitions = deps.tools.map((tool) => toolDefinition(tool));
  let state = await loadRunState(store, context.sessionId);

  const append = async (events: NewSessionEvent[]): Promise<void> => {
    const stored = await store.appendEvents(context.sessionId, events);
    for (const event of stored) {
      state = applyEvent(state, event);
      deps.publish(context.sessionId, event);
    }
  };

  for (;;) {
    if (signal.aborted && state.turnStatus === "running") {
      await append([
        { type: "turn.error", turn: state.turn, code: "cancelled", message: "The turn was cancelled." },
      ]);
    }
    const action = nextAction(state, limits);
    switch (action.type) {
      case "none":
        await store.updateSession(context.sessionId, { status: statusOf(state) });
        return state;
      case "end_turn":
        await append([{ type: "turn.end", turn: state.turn, reason: action.reason, usage: state.turnUsage }]);
        break;
      case "call_model": {
        const outcome = await executeModelCall(
          context.model,
          { system: context.systemPrompt, messages: state.messages, tools: definitions },
          signal,
          (text) =>
            deps.publish(context.sessionId, {
              type: "message.delta",
              turn: state.turn,
              step: action.step,
              text,
            }),
        );
        if (outcome.type === "ok") {
          await append([
            {
              type: "message.end",
              turn: state.turn,
              step: action.step,
              message: outcome.message,
              stopReason: outcome.stopReason,
              usage: outcome.usage,
            },
          ]);
          break;
        }
        const attempt = state.modelAttempts + 1;
        if (outcome.retryable && !signal.aborted && attempt < limits.maxModelAttempts) {
          const delayMs = retryDelayMs(attempt, deps.random(), outcome.retryAfterMs);
          await append([
            {
              type: "model.retry",
              turn: state.turn,
              step: action.step,
              attempt,
              code: outcome.code,
              message: outcome.message,
              delayMs,
            },
          ]);
          await deps.sleep(delayMs, signal).catch(() => undefined);
          break;
        }
        if (signal.aborted) break; // the cancelled branch above records it
        await append([
          { type: "turn.error", turn: state.turn, code: outcome.code, message: outcome.message },
        ]);
        break;
      }
      case "run_tool": {
        const call = state.toolCalls.find((candidate) => candidate.toolCallId === action.toolCallId);
        if (!call) break; // unreachable: nextAction picked it from state
        if (!call.hasStarted) {
          await append([
            {
              type: "tool.start",
              turn: state.turn,
              toolCallId: call.toolCallId,
              name: call.name,
              input: call.input,
            },
          ]);
        }
        const tracker = createRecordingTracker(state.fileState);
        const startedAt = performance.now();
        const result = await executeToolCall(toolsByName.get(call.name), call.name, call.input, {
          fs: context.fs,
          exec: (request, execSignal) => context.exec(request, execSignal),
          fileState: tracker,
          signal,
          toolCallId: call.toolCallId,
          cwd: context.cwd,
        });
        const changes = tracker.changes();
        await append([
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
        break;
      }
    }
  }
}

function statusOf(state: RunState): SessionStatus {
  if (state.turnStatus === "running") return "running";
  if (state.turnStatus === "failed") return "error";
  return "idle";
}

function toolDefinition(tool: Tool): {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
} {
  return { name: tool.name, description: tool.description, inputSchema: toJsonSchema(tool) };
}

const schemaCache = new WeakMap<Tool, Record<string, unknown>>();
function toJsonSchema(tool: Tool): Record<string, unknown> {
  const cached = schemaCache.get(tool);
  if (cached) return cached;
  const schema = zodToJsonSchema(tool);
  schemaCache.set(tool, schema);
  return schema;
}

function zodToJsonSchema(tool: Tool): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(tool.inputSchema, { io: "input" }) as Record<
    string,
    unknown
  >;
  return rest;
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
