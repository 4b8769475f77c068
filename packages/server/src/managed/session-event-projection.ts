/**
 * The one projection from Outrig's internal session log (packages/protocol/src/events.ts, gap-free
 * `seq`) to the Managed Agents API's session events. The log stays the durable truth; the API's events
 * are derived from it, so the events list, the stream and a resumed stream agree.
 *
 * Event ids are `sevt_<session body>_<seq>_<index>`: stable (derived from the session, the internal
 * event's seq and the position within what that event projects to), unique across sessions, and
 * ordered, so `Last-Event-ID` names an exact position in the log.
 *
 * The projection keeps a little state within a turn: which tool calls were already shown as
 * `agent.tool_use` (so an approved call that then starts is not shown twice, and `agent.tool_result`
 * can name the `agent.tool_use` event it answers). `warmUp` rebuilds that state when a reader starts
 * in the middle of a turn. Unknown internal types project to nothing (other lanes add cases).
 */
import type { SessionStore } from "@outrig/core";
import type { SessionEvent, UserContentPart } from "@outrig/protocol";
import { toApiBlock } from "./message-content.js";

/** An API session event: `id`, `type` and the type's fields, as the SDK's `BetaManagedAgentsSessionEvent`. */
export interface ApiSessionEvent {
  readonly id: string;
  readonly type: string;
  readonly [field: string]: unknown;
}

/** Where an API event sits in the internal log. */
export interface EventPosition {
  readonly seq: number;
  readonly index: number;
}

/** Canonical numbers only (no leading zeros), so one position has exactly one id. */
const EVENT_ID_PATTERN = /^sevt_([A-Za-z0-9]+)_(0|[1-9]\d{0,14})_(0|[1-9]\d{0,3})$/;

/** The part of a session id after its prefix (`sesn_abc` → `abc`); ids without a prefix are used whole. */
function sessionBody(sessionId: string): string {
  const body = sessionId.slice(sessionId.indexOf("_") + 1);
  return body.replace(/[^A-Za-z0-9]/g, "");
}

export function apiEventId(sessionId: string, position: EventPosition): string {
  return `sevt_${sessionBody(sessionId)}_${position.seq}_${position.index}`;
}

/** The position an event id of this session names; null for a malformed id or another session's. */
export function parseApiEventId(sessionId: string, eventId: string): EventPosition | null {
  const match = EVENT_ID_PATTERN.exec(eventId);
  if (!match || match[1] !== sessionBody(sessionId)) return null;
  return { seq: Number(match[2]), index: Number(match[3]) };
}

/** The API's names for Outrig's sandbox lifecycle (the API has none): `session.sandbox_<past participle>`. */
export const SANDBOX_EVENT_TYPES = {
  "sandbox.start": "session.sandbox_started",
  "sandbox.standby": "session.sandbox_standby",
  "sandbox.resume": "session.sandbox_resumed",
  "sandbox.hibernate": "session.sandbox_hibernated",
  "sandbox.replace": "session.sandbox_replaced",
  "sandbox.snapshot": "session.sandbox_snapshotted",
  "sandbox.cold": "session.sandbox_cold",
  "sandbox.end": "session.sandbox_ended",
} as const;

type Fields = Record<string, unknown> & { readonly type: string };

/**
 * Model error codes after which the session cannot go on: its pinned model does not exist, so every
 * later turn would fail the same way. The API's `retry_status: terminal`, then `session.status_terminated`.
 */
export const TERMINAL_ERROR_CODES: ReadonlySet<string> = new Set(["model_not_found"]);

const ZERO_USAGE = {
  input_tokens: 0,
  output_tokens: 0,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
} as const;

export class SessionEventProjector {
  readonly #sessionId: string;
  /** Tool calls of the current turn shown as `agent.tool_use`, with that event's id. */
  readonly #toolUses = new Map<string, string>();
  /** A model call failed and is retried (`session.status_rescheduled` shown): the next answer shows `running`. */
  #isRescheduled = false;
  /** Ids of the `agent.tool_use` / `agent.custom_tool_use` events of this turn that wait for the client. */
  readonly #waiting = new Set<string>();
  /** Ids of every request event of this turn (answered or not). */
  readonly #asked = new Set<string>();

  constructor(sessionId: string) {
    this.#sessionId = sessionId;
  }

  /**
   * Rebuilds the turn state a reader starting at `seq` needs, by reading the log backwards from `seq`
   * to the start of its turn (bounded by the turn's length, not the session's).
   */
  async warmUp(store: SessionStore, seq: number): Promise<void> {
    const page = 500;
    const collected: SessionEvent[] = [];
    let end = seq - 1;
    while (end > 0) {
      const start = Math.max(0, end - page);
      const events = await store.readEvents(this.#sessionId, { afterSeq: start, limit: end - start });
      const reversed = events.filter((event) => event.seq <= end).reverse();
      let isTurnStart = false;
      for (const event of reversed) {
        collected.push(event);
        if (event.type === "turn.start") {
          isTurnStart = true;
          break;
        }
      }
      if (isTurnStart) break;
      end = start;
    }
    for (const event of collected.reverse()) this.project(event);
  }

  /** The API events one internal event becomes, in order (often none). */
  project(event: SessionEvent): ApiSessionEvent[] {
    const fields = this.#fields(event);
    return fields.map((item, index) => ({
      id: apiEventId(this.#sessionId, { seq: event.seq, index }),
      ...item,
      processed_at: event.at,
    }));
  }

  /**
   * Where the `agent.message` of a `message.end` appended next would sit: the id a preview
   * (`event_start`) names before the message is stored (see streamEvents).
   */
  nextMessageIndex(): number {
    return this.#isRescheduled ? 2 : 1;
  }

  #id(seq: number, index: number): string {
    return apiEventId(this.#sessionId, { seq, index });
  }

  /** A request of this turn that was asked and has its answer already. */
  #isAnswered(requestId: string): boolean {
    return this.#asked.has(requestId) && !this.#waiting.has(requestId);
  }

  /** The session waits for the client: every event of this turn still waiting, in order. */
  #requiresAction(): Fields {
    return {
      type: "session.status_idle",
      stop_reason: { type: "requires_action", event_ids: [...this.#waiting] },
      stop_details: null,
    };
  }

  /** After one answer: still idle while other requests of the answer wait, else running again. */
  #stillWaitingOrRunning(): Fields {
    return this.#waiting.size > 0 ? this.#requiresAction() : { type: "session.status_running" };
  }

  /** A model request that ended in an error: its span (start, end with `is_error`) at the head of `seq`. */
  #failedModelRequest(seq: number): Fields[] {
    return [
      { type: "span.model_request_start" },
      {
        type: "span.model_request_end",
        model_request_start_id: this.#id(seq, 0),
        is_error: true,
        model_usage: ZERO_USAGE,
      },
    ];
  }

  #fields(event: SessionEvent): Fields[] {
    switch (event.type) {
      case "turn.start":
        this.#toolUses.clear();
        this.#waiting.clear();
        this.#asked.clear();
        this.#isRescheduled = false;
        // A queued message was shown as `user.message` when it was sent (`message.queue`).
        if (event.queuedSeq !== undefined) return [{ type: "session.status_running" }];
        return [
          { type: "user.message", content: userMessageContent(event) },
          { type: "session.status_running" },
        ];
      case "message.queue":
        return [{ type: "user.message", content: userMessageContent(event) }];
      case "interrupt.request":
        return [{ type: "user.interrupt" }];
      case "custom_tool.request": {
        const customToolUseId = this.#id(event.seq, 0);
        this.#toolUses.set(event.toolCallId, customToolUseId);
        this.#waiting.add(customToolUseId);
        this.#asked.add(customToolUseId);
        return [
          { type: "agent.custom_tool_use", name: event.name, input: asInput(event.input) },
          ...(event.moreFollow ? [] : [this.#requiresAction()]),
        ];
      }
      case "custom_tool.result": {
        const customToolUseId = this.#toolUses.get(event.toolCallId);
        if (customToolUseId !== undefined && this.#isAnswered(customToolUseId)) return [];
        if (customToolUseId !== undefined) this.#waiting.delete(customToolUseId);
        return [
          {
            type: "user.custom_tool_result",
            custom_tool_use_id: customToolUseId ?? event.toolCallId,
            content: event.content,
            is_error: event.isError,
          },
          this.#stillWaitingOrRunning(),
        ];
      }
      case "message.end": {
        const out: Fields[] = [];
        if (this.#isRescheduled) out.push({ type: "session.status_running" });
        this.#isRescheduled = false;
        const startId = this.#id(event.seq, out.length);
        out.push({ type: "span.model_request_start" });
        const text = event.message.content
          .flatMap((part) => (part.type === "text" && part.text !== "" ? [part.text] : []))
          .join("");
        if (text !== "") out.push({ type: "agent.message", content: [{ type: "text", text }] });
        out.push({
          type: "span.model_request_end",
          model_request_start_id: startId,
          is_error: false,
          model_usage: {
            input_tokens: event.usage.inputTokens,
            output_tokens: event.usage.outputTokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
          },
        });
        return out;
      }
      case "approval.request": {
        const toolUseId = this.#id(event.seq, 0);
        this.#toolUses.set(event.toolCallId, toolUseId);
        this.#waiting.add(toolUseId);
        this.#asked.add(toolUseId);
        return [
          {
            type: "agent.tool_use",
            name: event.name,
            input: asInput(event.input),
            evaluated_permission: "ask",
            evaluation: { type: event.permissionPolicy ?? "always_ask" },
          },
          ...(event.moreFollow ? [] : [this.#requiresAction()]),
        ];
      }
      case "approval.response": {
        const out: Fields[] = [];
        const toolUseId = this.#toolUses.get(event.toolCallId);
        // A second answer to one request (two writers raced) decided nothing: the first one did.
        if (toolUseId !== undefined && this.#isAnswered(toolUseId)) return [];
        if (toolUseId !== undefined) this.#waiting.delete(toolUseId);
        if (event.reason === "user") {
          out.push({
            type: "user.tool_confirmation",
            tool_use_id: toolUseId ?? event.toolCallId,
            result: event.decision,
            ...(event.denyMessage ? { deny_message: event.denyMessage } : {}),
          });
        }
        out.push(this.#stillWaitingOrRunning());
        return out;
      }
      case "tool.start":
        if (this.#toolUses.has(event.toolCallId)) return [];
        this.#toolUses.set(event.toolCallId, this.#id(event.seq, 0));
        return [
          {
            type: "agent.tool_use",
            name: event.name,
            input: asInput(event.input),
            evaluated_permission: event.evaluatedPermission ?? "allow",
            ...(event.permissionPolicy ? { evaluation: { type: event.permissionPolicy } } : {}),
          },
        ];
      case "tool.end": {
        const out: Fields[] = [];
        let toolUseId = this.#toolUses.get(event.toolCallId);
        if (toolUseId === undefined) {
          // A call that never ran (denied by policy, or a reused id): it is shown as a denied use first.
          toolUseId = this.#id(event.seq, 0);
          this.#toolUses.set(event.toolCallId, toolUseId);
          out.push({
            type: "agent.tool_use",
            name: event.name,
            input: asInput(event.denied?.input ?? {}),
            evaluated_permission: "deny",
          });
        }
        out.push({
          type: "agent.tool_result",
          tool_use_id: toolUseId,
          content: [{ type: "text", text: event.output }],
          is_error: event.isError,
        });
        return out;
      }
      case "turn.end":
        return [
          {
            type: "session.status_idle",
            stop_reason: {
              type:
                event.reason === "refusal" || event.reason === "budget_reached" ? event.reason : "end_turn",
            },
            stop_details: null,
          },
        ];
      case "turn.error": {
        if (event.code === "cancelled") {
          return [
            { type: "user.interrupt" },
            { type: "session.status_idle", stop_reason: { type: "end_turn" }, stop_details: null },
          ];
        }
        this.#isRescheduled = false;
        const isModel = event.code.startsWith("model_");
        const isTerminal = TERMINAL_ERROR_CODES.has(event.code);
        const error = {
          type: "session.error",
          error: {
            type: isModel ? modelErrorType(event.code) : "unknown_error",
            message: event.message,
            retry_status: { type: isTerminal ? "terminal" : "exhausted" },
            code: event.code,
          },
        };
        return [
          // The model request that failed last: its span closes any preview of its answer.
          ...(isModel ? this.#failedModelRequest(event.seq) : []),
          error,
          isTerminal
            ? { type: "session.status_terminated" }
            : {
                type: "session.status_idle",
                stop_reason: { type: isModel ? "retries_exhausted" : "end_turn" },
                stop_details: null,
              },
        ];
      }
      case "model.retry":
        this.#isRescheduled = true;
        return [
          ...this.#failedModelRequest(event.seq),
          {
            type: "session.error",
            error: {
              type: modelErrorType(event.code),
              message: event.message,
              retry_status: { type: "retrying" },
              code: event.code,
              attempt: event.attempt,
              delay_ms: event.delayMs,
            },
          },
          { type: "session.status_rescheduled" },
        ];
      case "sandbox.start":
        return [
          {
            type: SANDBOX_EVENT_TYPES[event.type],
            sandbox_id: event.sandboxId,
            provider: event.provider,
            duration_ms: event.durationMs,
            is_warm: event.isWarm ?? false,
          },
        ];
      case "sandbox.standby":
      case "sandbox.hibernate":
        return [{ type: SANDBOX_EVENT_TYPES[event.type], sandbox_id: event.sandboxId }];
      case "sandbox.resume":
        return [
          {
            type: SANDBOX_EVENT_TYPES[event.type],
            sandbox_id: event.sandboxId,
            duration_ms: event.durationMs,
          },
        ];
      case "sandbox.replace":
        return [
          {
            type: SANDBOX_EVENT_TYPES[event.type],
            sandbox_id: event.sandboxId,
            reason: event.reason,
            restored_from_snapshot: event.snapshotKey !== undefined,
          },
        ];
      case "sandbox.snapshot":
        return [
          {
            type: SANDBOX_EVENT_TYPES[event.type],
            sandbox_id: event.sandboxId,
            size_bytes: event.sizeBytes,
            entry_count: event.entryCount,
            duration_ms: event.durationMs,
          },
        ];
      case "sandbox.cold":
        return [
          {
            type: SANDBOX_EVENT_TYPES[event.type],
            sandbox_id: event.sandboxId,
            killed_processes: event.killedProcesses,
          },
        ];
      case "sandbox.end":
        return [{ type: SANDBOX_EVENT_TYPES[event.type], reason: event.reason }];
      case "package_layer.build_start":
        return [{ type: "session.environment_build_started", layer_digest: event.digest }];
      case "package_layer.ready":
        return [
          {
            type: "session.environment_build_completed",
            layer_digest: event.digest,
            source: event.source,
            duration_ms: event.durationMs,
          },
        ];
      case "package_layer.error":
        return [
          { type: "session.environment_build_failed", layer_digest: event.digest, message: event.message },
        ];
      case "repository.clone":
        // The API's repository errors keep the session running without the repository; a clone that
        // worked is Outrig's own event, in the API's style.
        return event.error
          ? [
              {
                type: "session.error",
                error: {
                  type: event.error.type,
                  message: event.error.message,
                  repository_url: event.url,
                  retry_status: { type: "retrying" },
                },
              },
            ]
          : [
              {
                type: "session.repository_cloned",
                resource_id: event.resourceId,
                repository_url: event.url,
                mount_path: event.mountPath,
                commit: event.commit ?? null,
              },
            ];
      default:
        // session.start, and any internal type another part of Outrig adds before it has a projection.
        return [];
    }
  }
}

function asInput(input: unknown): Record<string, unknown> {
  return input !== null && typeof input === "object" && !Array.isArray(input)
    ? (input as Record<string, unknown>)
    : { value: input };
}

/** The API's model error types by Outrig's model error code. */
function modelErrorType(code: string): string {
  if (code.includes("rate_limit")) return "model_rate_limited_error";
  if (code.includes("overload")) return "model_overloaded_error";
  return "model_request_failed_error";
}

/** A user message's blocks as sent: the stored blocks when it had images or documents, else its text. */
function userMessageContent(event: { text: string; content?: UserContentPart[] }): Record<string, unknown>[] {
  return event.content ? event.content.map(toApiBlock) : [{ type: "text", text: event.text }];
}
