import { APICallError } from "ai";
import { describe, expect, it } from "vitest";
import { parseRetryAfterMs, toModelErrorEvent } from "./to-model-error-event.js";

function apiCallError(
  statusCode: number | undefined,
  data?: unknown,
  responseHeaders?: Record<string, string>,
) {
  return new APICallError({
    message: "upstream said no",
    url: "http://127.0.0.1/v1/messages",
    requestBodyValues: {},
    statusCode,
    responseHeaders,
    data,
  });
}

describe("parseRetryAfterMs", () => {
  it.each([
    [{ "retry-after": "2" }, 2000],
    [{ "Retry-After": "0.5" }, 500],
    [{ "retry-after-ms": "120", "retry-after": "9" }, 120],
    [{ "retry-after": "Thu, 01 Jan 1970 00:00:10 GMT" }, 4000],
    [{ "retry-after": "soon" }, undefined],
    [{}, undefined],
  ])("reads %j", (headers, expected) => {
    expect(parseRetryAfterMs(headers, () => 6000)).toBe(expected);
  });
});

describe("toModelErrorEvent", () => {
  it.each([
    [apiCallError(429), "model_rate_limited", true],
    [apiCallError(529), "model_overloaded", true],
    [apiCallError(503), "model_overloaded", true],
    [apiCallError(500), "model_server_error", true],
    [apiCallError(408), "model_timeout", true],
    [apiCallError(400), "model_bad_request", false],
    [apiCallError(422), "model_bad_request", false],
    [apiCallError(401), "model_auth_failed", false],
    [apiCallError(404), "model_not_found", false],
    [
      apiCallError(429, { error: { type: "insufficient_quota", message: "pay up" } }),
      "model_quota_exceeded",
      false,
    ],
    [apiCallError(undefined), "model_unavailable", true],
    [apiCallError(200), "model_stream_cut", true],
    [apiCallError(200, { message: "boom", type: "server_error" }), "model_server_error", true],
    [{ type: "overloaded_error", message: "Overloaded" }, "model_overloaded", true],
    [
      { type: "error", error: { type: "rate_limit_error", message: "slow down" } },
      "model_rate_limited",
      true,
    ],
    [new TypeError("terminated"), "model_stream_cut", true],
  ])("maps %o to %s", (error, code, retryable) => {
    expect(toModelErrorEvent(error, false)).toMatchObject({ type: "error", code, retryable });
  });

  it("carries the status and retry-after of an HTTP error", () => {
    expect(toModelErrorEvent(apiCallError(429, undefined, { "retry-after": "3" }), false)).toEqual({
      type: "error",
      code: "model_rate_limited",
      message: "model API answered 429: upstream said no",
      retryable: true,
      status: 429,
      retryAfterMs: 3000,
    });
  });

  it("reports an abort as model_aborted whatever the error was", () => {
    expect(toModelErrorEvent(apiCallError(500), true)).toMatchObject({
      code: "model_aborted",
      retryable: false,
    });
  });
});
