/**
 * Hono middleware: a token bucket per API key and one per org. A request takes a token from both; when
 * either is empty it is answered 429 `rate_limited` with `Retry-After`. Runs after authentication. State
 * is in this process's memory (each worker limits on its own).
 */
import type { MiddlewareHandler } from "hono";
import type { AuthenticatedCaller } from "../app.js";
import { type RateLimits, rateLimitedResponse } from "./rate-limits.js";

interface Bucket {
  tokens: number;
  updatedAt: number;
}

class TokenBuckets {
  readonly #perSecond: number;
  readonly #size: number;
  readonly #buckets = new Map<string, Bucket>();
  #sweptAt = 0;

  constructor(perSecond: number, size: number) {
    this.#perSecond = perSecond;
    this.#size = size;
  }

  /** Seconds until `id` has a token again; 0 when it has one now (not taken). */
  waitSeconds(id: string, now: number): number {
    const bucket = this.#refill(id, now);
    return bucket.tokens >= 1 ? 0 : (1 - bucket.tokens) / this.#perSecond;
  }

  take(id: string, now: number): void {
    this.#refill(id, now).tokens -= 1;
  }

  #refill(id: string, now: number): Bucket {
    this.#sweep(now);
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = { tokens: this.#size, updatedAt: now };
      this.#buckets.set(id, bucket);
    }
    bucket.tokens = Math.min(this.#size, bucket.tokens + ((now - bucket.updatedAt) / 1000) * this.#perSecond);
    bucket.updatedAt = now;
    return bucket;
  }

  /** Forgets buckets that have refilled completely (they equal a new one), at most once a minute. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 60_000) return;
    this.#sweptAt = now;
    const fullAfterMs = (this.#size / this.#perSecond) * 1000;
    for (const [id, bucket] of this.#buckets) {
      if (now - bucket.updatedAt >= fullAfterMs) this.#buckets.delete(id);
    }
  }
}

/** Limits requests per key and per org; `clock` (ms) is injectable for tests. */
export function requestRateLimit(limits: RateLimits, clock: () => number = Date.now): MiddlewareHandler {
  const keys = new TokenBuckets(limits.keyRequestsPerSecond, limits.keyBurst);
  const orgs = new TokenBuckets(limits.orgRequestsPerSecond, limits.orgBurst);
  return async (c, next) => {
    const caller = c.get("caller") as AuthenticatedCaller | undefined;
    if (!caller) return next();
    const now = clock();
    const keyWait = keys.waitSeconds(caller.keyId, now);
    const orgWait = orgs.waitSeconds(caller.orgId, now);
    if (keyWait > 0 || orgWait > 0) {
      const which = keyWait >= orgWait ? "this API key" : "this org";
      return rateLimitedResponse(
        c,
        `Too many requests for ${which}; retry after the time in Retry-After.`,
        Math.max(keyWait, orgWait),
      );
    }
    keys.take(caller.keyId, now);
    orgs.take(caller.orgId, now);
    return next();
  };
}
