/** Maps anything the AI SDK reports (HTTP errors, in-stream vendor errors, broken streams) to a terminal `error` event. */
import { isRetryableStatus, type ModelEvent } from "@outrig/core";
import { APICallError, InvalidResponseDataError, JSONParseError, TypeValidationError } from "ai";

export type ModelErrorEvent = Extract<ModelEvent, { type: "error" }>;

/** Vendor error `type`s seen inside streams (Anthropic `event: error`, OpenAI error chunks). */
const VENDOR_ERROR_CODES: Record<string, { code: string; retryable: boolean }> = {
  overloaded_error: { code: "model_overloaded", retryable: true },
  rate_limit_error: { code: "model_rate_limited", retryable: true },
  rate_limit_exceeded: { code: "model_rate_limited", retryable: true },
  requests: { code: "model_rate_limited", retryable: true },
  tokens: { code: "model_rate_limited", retryable: true },
  api_error: { code: "model_server_error", retryable: true },
  server_error: { code: "model_server_error", retryable: true },
  timeout_error: { code: "model_server_error", retryable: true },
  authentication_error: { code: "model_auth_failed", retryable: false },
  permission_error: { code: "model_auth_failed", retryable: false },
  invalid_api_key: { code: "model_auth_failed", retryable: false },
  insufficient_quota: { code: "model_quota_exceeded", retryable: false },
  billing_error: { code: "model_quota_exceeded", retryable: false },
  invalid_request_error: { code: "model_bad_request", retryable: false },
  not_found_error: { code: "model_not_found", retryable: false },
};

export function codeForStatus(status: number): string {
  if (status === 429) return "model_rate_limited";
  if (status === 529 || status === 503) return "model_overloaded";
  if (status === 401 || status === 403) return "model_auth_failed";
  if (status === 404) return "model_not_found";
  if (status === 408 || status === 504) return "model_timeout";
  if (status >= 500) return "model_server_error";
  return "model_bad_request";
}

/** Reads `retry-after-ms` (milliseconds) or `retry-after` (seconds or an HTTP date). */
export function parseRetryAfterMs(
  headers: Record<string, string> | undefined,
  now: () => number = Date.now,
): number | undefined {
  if (headers === undefined) return undefined;
  const lower = Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]),
  );
  const milliseconds = Number.parseFloat(lower["retry-after-ms"] ?? "");
  if (Number.isFinite(milliseconds) && milliseconds >= 0) return Math.round(milliseconds);
  const value = lower["retry-after"];
  if (value === undefined || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(value);
  if (Number.isFinite(date)) return Math.max(0, date - now());
  return undefined;
}

function vendorErrorType(value: unknown): { type: string; message: string | undefined } | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  // Shapes: {type, message}, {error: {type, message}}, {code, message}.
  const nested =
    typeof record.error === "object" && record.error !== null
      ? (record.error as Record<string, unknown>)
      : record;
  const message = typeof nested.message === "string" ? nested.message : undefined;
  for (const key of ["code", "type"] as const) {
    const candidate = nested[key];
    if (typeof candidate === "string" && candidate in VENDOR_ERROR_CODES) return { type: candidate, message };
  }
  return undefined;
}

/** Never throws. `isAborted` wins: an aborted call is reported as `model_aborted`, not retryable. */
export function toModelErrorEvent(error: unknown, isAborted: boolean): ModelErrorEvent {
  if (isAborted) {
    return { type: "error", code: "model_aborted", message: "model call aborted", retryable: false };
  }
  if (APICallError.isInstance(error)) {
    const status = error.statusCode;
    if (status === undefined) {
      return {
        type: "error",
        code: "model_unavailable",
        message: `model API unreachable: ${error.message}`,
        retryable: true,
      };
    }
    if (status < 400) {
      // A 200 whose stream carried a vendor error chunk (OpenAI's first-chunk error), or whose body broke while
      // being read (a cut stream): the SDK reports both as an APICallError with the 200 status.
      return vendorErrorEvent(error.data) ?? streamCut(error);
    }
    const retryAfterMs = parseRetryAfterMs(error.responseHeaders);
    // The status decides, except that an exhausted quota (OpenAI sends it as a 429) will not heal by retrying.
    const isQuota = vendorErrorEvent(error.data)?.code === "model_quota_exceeded";
    return {
      type: "error",
      code: isQuota ? "model_quota_exceeded" : codeForStatus(status),
      message: `model API answered ${status}: ${error.message}`,
      retryable: !isQuota && isRetryableStatus(status),
      status,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  const vendorEvent = vendorErrorEvent(error);
  if (vendorEvent !== undefined) return vendorEvent;
  if (
    InvalidResponseDataError.isInstance(error) ||
    TypeValidationError.isInstance(error) ||
    JSONParseError.isInstance(error)
  ) {
    // The vendor sent events we cannot make sense of; a fresh attempt usually gets a well-formed stream.
    return {
      type: "error",
      code: "model_bad_response",
      message: `model stream was malformed: ${describe(error)}`,
      retryable: true,
    };
  }
  // Anything else broke the stream itself: a dropped connection, a truncated body, unparseable chunks.
  return streamCut(error);
}

function vendorErrorEvent(value: unknown): ModelErrorEvent | undefined {
  const vendor = vendorErrorType(value);
  const mapped = vendor === undefined ? undefined : VENDOR_ERROR_CODES[vendor.type];
  if (vendor === undefined || mapped === undefined) return undefined;
  return {
    type: "error",
    code: mapped.code,
    message: `model stream reported ${vendor.type}${vendor.message === undefined ? "" : `: ${vendor.message}`}`,
    retryable: mapped.retryable,
  };
}

function streamCut(error: unknown): ModelErrorEvent {
  return {
    type: "error",
    code: "model_stream_cut",
    message: `model stream broke: ${describe(error)}`,
    retryable: true,
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
    return `${error.message}${cause}`;
  }
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
