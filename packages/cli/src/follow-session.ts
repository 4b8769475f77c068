/**
 * Follows a session's event stream through the SDK (`sessions.events.stream`). When the connection
 * drops it reconnects (with `Last-Event-ID`), lists the session's events to fill any gap, and skips the
 * ids it has already delivered, so the caller sees every event once, in order.
 */
import Anthropic from "@anthropic-ai/sdk";

export type StreamEvent = Anthropic.Beta.Sessions.BetaManagedAgentsStreamSessionEvents;

export interface FollowSessionOptions {
  readonly client: Anthropic;
  readonly sessionId: string;
  /** Return true to stop following. */
  readonly onEvent: (event: StreamEvent) => boolean | Promise<boolean>;
  /**
   * Runs once the stream is first open and before any event is delivered (send the message here, so
   * nothing it causes is missed). Without it, the first connection also lists the events so far.
   */
  readonly onOpen?: () => Promise<void>;
  /** Ask for `event_delta` text of these events as the model writes them. */
  readonly deltas?: readonly Anthropic.Beta.Sessions.BetaManagedAgentsDeltaType[];
  readonly maxReconnects?: number;
  readonly onReconnect?: (attempt: number, error: unknown) => void;
  readonly signal?: AbortSignal;
}

/** Ids of the events delivered so far (shared across reconnects). */
export async function followSession(options: FollowSessionOptions): Promise<void> {
  const { client, sessionId } = options;
  const seen = new Set<string>();
  let lastId: string | undefined;
  let hasOpened = false;
  let failures = 0;
  const deliver = async (event: StreamEvent): Promise<boolean> => {
    if (event.type !== "event_start" && event.type !== "event_delta") {
      if (seen.has(event.id)) return false;
      seen.add(event.id);
      lastId = event.id;
    }
    return options.onEvent(event);
  };
  for (;;) {
    const controller = new AbortController();
    const stopFollowing = () => controller.abort();
    options.signal?.addEventListener("abort", stopFollowing, { once: true });
    try {
      const stream = await client.beta.sessions.events.stream(
        sessionId,
        options.deltas && options.deltas.length > 0 ? { event_deltas: [...options.deltas] } : {},
        {
          signal: controller.signal,
          maxRetries: 0,
          ...(lastId ? { headers: { "last-event-id": lastId } } : {}),
        },
      );
      const isFirst = !hasOpened;
      hasOpened = true;
      if (isFirst && options.onOpen) await options.onOpen();
      else {
        // What happened while no stream was open (or before the first one): the log, in order.
        for await (const event of client.beta.sessions.events.list(sessionId, { order: "asc" })) {
          if (await deliver(event)) return;
        }
      }
      for await (const event of stream) {
        failures = 0;
        if (await deliver(event)) return;
      }
      throw new Error("the event stream closed");
    } catch (error) {
      if (options.signal?.aborted) return;
      // A 4xx (unknown session, bad key) does not get better by retrying.
      if (
        error instanceof Anthropic.APIError &&
        error.status !== undefined &&
        error.status < 500 &&
        error.status !== 429
      )
        throw error;
      failures += 1;
      if (failures > (options.maxReconnects ?? 60)) throw error;
      options.onReconnect?.(failures, error);
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** Math.min(failures, 5))));
    } finally {
      controller.abort();
      options.signal?.removeEventListener("abort", stopFollowing);
    }
  }
}
