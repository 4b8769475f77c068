/**
 * Limits on what one API key and one org may ask of this server: requests per second (a token bucket
 * with a burst) and concurrent event streams. Read from `OUTRIG_RATE_*` environment variables at startup.
 */
import { ConfigError } from "@outrig/core";
import type { Context } from "hono";
import { z } from "zod";
import { errorBody } from "../http-error.js";

export interface RateLimits {
  /** Sustained requests per second for one API key, and how many may come at once (the bucket size). */
  readonly keyRequestsPerSecond: number;
  readonly keyBurst: number;
  /** The same for all keys of one org together. */
  readonly orgRequestsPerSecond: number;
  readonly orgBurst: number;
  /** Open event streams (`GET /v1/sessions/:id/events`) one key, and one org, may hold at a time. */
  readonly keyStreams: number;
  readonly orgStreams: number;
}

const positive = (fallback: number) => z.coerce.number().positive().default(fallback);
const count = (fallback: number) => z.coerce.number().int().min(1).default(fallback);

const RateLimitEnv = z.object({
  OUTRIG_RATE_KEY_RPS: positive(50),
  OUTRIG_RATE_KEY_BURST: count(200),
  OUTRIG_RATE_ORG_RPS: positive(200),
  OUTRIG_RATE_ORG_BURST: count(1000),
  OUTRIG_RATE_KEY_STREAMS: count(64),
  OUTRIG_RATE_ORG_STREAMS: count(256),
});

/** Parses the `OUTRIG_RATE_*` variables (defaults above). Throws ConfigError naming the bad key. */
export function loadRateLimits(env: Readonly<Record<string, string | undefined>>): RateLimits {
  const defined = Object.fromEntries(
    Object.entries(env).filter(([key, value]) => key.startsWith("OUTRIG_RATE_") && value?.trim()),
  );
  const parsed = RateLimitEnv.safeParse(defined);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      "invalid_config",
      `Invalid ${issue?.path.join(".") ?? "OUTRIG_RATE_*"}: ${issue?.message ?? "bad value"}`,
    );
  }
  const values = parsed.data;
  return {
    keyRequestsPerSecond: values.OUTRIG_RATE_KEY_RPS,
    keyBurst: values.OUTRIG_RATE_KEY_BURST,
    orgRequestsPerSecond: values.OUTRIG_RATE_ORG_RPS,
    orgBurst: values.OUTRIG_RATE_ORG_BURST,
    keyStreams: values.OUTRIG_RATE_KEY_STREAMS,
    orgStreams: values.OUTRIG_RATE_ORG_STREAMS,
  };
}

/** The 429 both limiters answer: the protocol's error body and `Retry-After` in whole seconds. */
export function rateLimitedResponse(c: Context, message: string, retryAfterSeconds: number): Response {
  const requestId = c.get("requestId") as string | undefined;
  return c.json(errorBody(429, "rate_limited", message, requestId), 429, {
    "retry-after": String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });
}
