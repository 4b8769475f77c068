/** In-process fan-out of session events to SSE subscribers. Publishing never throws. */
import type { MessageDeltaEvent, SessionEvent } from "@outrig/protocol";

/** Another worker appended events up to `seq`: listeners re-read the log from their cursor. */
export interface PokeEvent {
  readonly type: "poke";
  readonly seq: number;
}

/** The session was deleted: open streams send `session.deleted` and end. */
export interface SessionGoneEvent {
  readonly type: "session.gone";
  readonly at: string;
}

export type BusEvent = SessionEvent | MessageDeltaEvent | PokeEvent | SessionGoneEvent;
export type BusListener = (event: BusEvent) => void;

export class EventBus {
  readonly #listeners = new Map<string, Set<BusListener>>();

  subscribe(sessionId: string, listener: BusListener): () => void {
    let set = this.#listeners.get(sessionId);
    if (!set) {
      set = new Set();
      this.#listeners.set(sessionId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#listeners.delete(sessionId);
    };
  }

  publish(sessionId: string, event: BusEvent): void {
    for (const listener of this.#listeners.get(sessionId) ?? []) {
      try {
        listener(event);
      } catch {
        // A broken subscriber must not break the loop that publishes.
      }
    }
  }

  subscriberCount(sessionId: string): number {
    return this.#listeners.get(sessionId)?.size ?? 0;
  }
}
