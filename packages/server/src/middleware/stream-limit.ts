/**
 * Hono middleware for event-stream routes: counts the open streams of each API key and each org and
 * answers 429 `rate_limited` (with `Retry-After`) past the limit. A stream's slot is released when its
 * body ends or the client goes away. State is in this process's memory (each worker limits on its own).
 */
import type { MiddlewareHandler } from "hono";
import type { AuthenticatedCaller } from "../app.js";
import { type RateLimits, rateLimitedResponse } from "./rate-limits.js";

/** How long a client refused a stream should wait before trying again. */
const STREAM_RETRY_AFTER_SECONDS = 5;

export function streamLimit(limits: RateLimits): MiddlewareHandler {
  const openByKey = new Map<string, number>();
  const openByOrg = new Map<string, number>();
  const change = (counts: Map<string, number>, id: string, delta: number) => {
    const next = (counts.get(id) ?? 0) + delta;
    if (next <= 0) counts.delete(id);
    else counts.set(id, next);
  };
  return async (c, next) => {
    const caller = c.get("caller") as AuthenticatedCaller | undefined;
    if (!caller || c.req.method !== "GET") return next();
    const byKey = openByKey.get(caller.keyId) ?? 0;
    const byOrg = openByOrg.get(caller.orgId) ?? 0;
    if (byKey >= limits.keyStreams || byOrg >= limits.orgStreams) {
      const [which, limit] =
        byKey >= limits.keyStreams ? ["this API key", limits.keyStreams] : ["this org", limits.orgStreams];
      return rateLimitedResponse(
        c,
        `Too many open event streams for ${which} (limit ${limit}); close one or retry later.`,
        STREAM_RETRY_AFTER_SECONDS,
      );
    }
    change(openByKey, caller.keyId, 1);
    change(openByOrg, caller.orgId, 1);
    let isReleased = false;
    const release = () => {
      if (isReleased) return;
      isReleased = true;
      change(openByKey, caller.keyId, -1);
      change(openByOrg, caller.orgId, -1);
    };
    try {
      await next();
    } catch (error) {
      release();
      throw error;
    }
    const body = c.res.body;
    if (!body || c.res.status !== 200) {
      release();
      return;
    }
    // Hold the slot while the body streams: released at its end, on an error, or when the client cancels.
    const reader = body.getReader();
    const tracked = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { value, done } = await reader.read();
          if (done) {
            release();
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          release();
          controller.error(error);
        }
      },
      async cancel(reason) {
        release();
        await reader.cancel(reason);
      },
    });
    c.res = new Response(tracked, c.res);
  };
}
