/**
 * Sees every session event this process persists (appends, turn starts, queued messages) through a
 * wrapper of the session store: the per-event log line, the event metrics and the turn and tool spans.
 * Spans come from appended events only, so a worker that replays a log (after a crash, on takeover)
 * records nothing for the steps it reads back.
 */
import type { SessionStore } from "@outrig/core";
import type { SessionEvent } from "@outrig/protocol";
import type { Logger } from "./logger.js";
import type { OpsMetrics } from "./ops-metrics.js";
import type { OpsTracing } from "./ops-tracing.js";

/** How far back a worker looks for the start of a turn another worker started. */
const TURN_START_LOOKBACK = 500;
/** Start times of running turns kept in memory; a turn older than that is looked up in its log. */
const MAX_TURN_STARTS = 10_000;

export interface SessionEventObserverOptions {
  readonly logger: Logger;
  readonly metrics: OpsMetrics;
  readonly tracing?: OpsTracing;
}

/** Returns a store that behaves as `store` and reports each event it stored; reporting never throws. */
export function observeSessionStore(store: SessionStore, options: SessionEventObserverOptions): SessionStore {
  const observer = new SessionEventObserver(store, options);
  return new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      const sessionIdIndex = typeof property === "string" ? SESSION_ID_ARGUMENT[property] : undefined;
      if (sessionIdIndex === undefined) return value.bind(target);
      return async (...args: unknown[]) => {
        const result: unknown = await value.apply(target, args);
        observer.observe(String(args[sessionIdIndex]), storedEvents(result));
        return result;
      };
    },
  });
}

/** The store methods that persist events, and which of their arguments is the session id. */
const SESSION_ID_ARGUMENT: Readonly<Record<string, number>> = {
  appendEvents: 0,
  startQueuedTurn: 0,
  startTurn: 1,
  submitMessage: 1,
};

/** The events a store call returned: an array (appendEvents) or `{ event }` (turn starts, messages). */
function storedEvents(result: unknown): SessionEvent[] {
  if (Array.isArray(result)) return result as SessionEvent[];
  if (result && typeof result === "object" && "event" in result)
    return [(result as { event: SessionEvent }).event];
  return [];
}

class SessionEventObserver {
  readonly #store: SessionStore;
  readonly #options: SessionEventObserverOptions;
  /** When each running turn started (ms since the epoch), by `sessionId turn`; dropped when it ends. */
  readonly #turnStarts = new Map<string, number>();

  constructor(store: SessionStore, options: SessionEventObserverOptions) {
    this.#store = store;
    this.#options = options;
  }

  observe(sessionId: string, events: readonly SessionEvent[]): void {
    for (const event of events) {
      try {
        this.#observeOne(sessionId, event);
      } catch (error) {
        this.#options.logger.warn("observing a session event failed", {
          session_id: sessionId,
          error: (error as Error).message,
        });
      }
    }
  }

  #observeOne(sessionId: string, event: SessionEvent): void {
    const { logger, metrics, tracing } = this.#options;
    if (logger.isEnabled("info")) {
      logger.info("session event", {
        session_id: sessionId,
        seq: event.seq,
        type: event.type,
        turn: "turn" in event ? event.turn : undefined,
        tool: event.type === "tool.start" || event.type === "tool.end" ? event.name : undefined,
        tool_call_id: "toolCallId" in event ? event.toolCallId : undefined,
        code: event.type === "turn.error" ? event.code : undefined,
        reason: event.type === "turn.end" ? event.reason : undefined,
      });
    }
    metrics.recordSessionEvent(sessionId, event);
    if (!tracing) return;
    const endTime = Date.parse(event.at);
    switch (event.type) {
      case "turn.start":
        // Turns another worker ends are never dropped here: keep the map bounded (oldest first).
        if (this.#turnStarts.size >= MAX_TURN_STARTS) {
          const oldest = this.#turnStarts.keys().next().value;
          if (oldest !== undefined) this.#turnStarts.delete(oldest);
        }
        this.#turnStarts.set(`${sessionId} ${event.turn}`, endTime);
        break;
      case "tool.end":
        tracing.recordToolCall({
          sessionId,
          turn: event.turn,
          name: event.name,
          toolCallId: event.toolCallId,
          startTime: endTime - event.durationMs,
          endTime,
          isError: event.isError,
          ...(event.denied ? { deniedBy: event.denied.by } : {}),
        });
        break;
      case "turn.end":
      case "turn.error":
        void this.#recordTurn(sessionId, event, endTime);
        break;
      default:
        break;
    }
  }

  async #recordTurn(
    sessionId: string,
    event: Extract<SessionEvent, { type: "turn.end" | "turn.error" }>,
    endTime: number,
  ): Promise<void> {
    const key = `${sessionId} ${event.turn}`;
    const startTime = this.#turnStarts.get(key) ?? (await this.#findTurnStart(sessionId, event)) ?? endTime;
    this.#turnStarts.delete(key);
    this.#options.tracing?.recordTurn({
      sessionId,
      turn: event.turn,
      startTime,
      endTime,
      ...(event.type === "turn.end"
        ? {
            outcome: event.reason,
            isError: false,
            inputTokens: event.usage.inputTokens,
            outputTokens: event.usage.outputTokens,
          }
        : { outcome: event.code, isError: true }),
    });
  }

  /** The start of a turn another worker started, from the recent log (null when it is further back). */
  async #findTurnStart(sessionId: string, end: SessionEvent & { turn: number }): Promise<number | null> {
    try {
      const events = await this.#store.readEvents(sessionId, {
        afterSeq: Math.max(0, end.seq - TURN_START_LOOKBACK),
        limit: TURN_START_LOOKBACK,
      });
      const start = events.find((event) => event.type === "turn.start" && event.turn === end.turn);
      return start ? Date.parse(start.at) : null;
    } catch {
      return null;
    }
  }
}
