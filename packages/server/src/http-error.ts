/** The single place that maps errors to HTTP responses. Unknown errors become a 500 with no details. */
import { AppError, ConfigError, FileError, InputError } from "@outrig/core";
import type { ErrorBody } from "@outrig/protocol";

export interface ErrorResponse {
  readonly status: number;
  readonly body: ErrorBody;
}

export function toErrorResponse(error: unknown, requestId?: string): ErrorResponse {
  const withId = (code: string, message: string) => ({
    error: { code, message, ...(requestId ? { requestId } : {}) },
  });
  if (error instanceof InputError) return { status: error.status, body: withId(error.code, error.message) };
  if (error instanceof FileError) {
    const status = error.code === "not_found" ? 404 : error.code === "permission_denied" ? 403 : 400;
    return { status, body: withId(error.code, error.message) };
  }
  if (error instanceof ConfigError) return { status: 400, body: withId(error.code, error.message) };
  if (error instanceof AppError && error.code === "sandbox_unavailable") {
    return { status: 503, body: withId(error.code, error.message) };
  }
  return { status: 500, body: withId("internal", "Internal server error") };
}

export function notFound(what: string): InputError {
  return new InputError("not_found", `${what} not found`, 404);
}
