/** The single place that maps errors to HTTP responses. Unknown errors become a 500 with no details. */
import { AppError, ConfigError, FileError, InputError } from "@outrig/core";
import type { ApiErrorType, ErrorBody } from "@outrig/protocol";

export interface ErrorResponse {
  readonly status: number;
  readonly body: ErrorBody;
}

export function toErrorResponse(error: unknown, requestId?: string): ErrorResponse {
  const respond = (status: number, code: string, message: string): ErrorResponse => ({
    status,
    body: errorBody(status, code, message, requestId),
  });
  if (error instanceof InputError) return respond(error.status, error.code, error.message);
  if (error instanceof FileError) {
    const status = error.code === "not_found" ? 404 : error.code === "permission_denied" ? 403 : 400;
    return respond(status, error.code, error.message);
  }
  if (error instanceof ConfigError) return respond(400, error.code, error.message);
  if (error instanceof AppError && error.code === "sandbox_unavailable") {
    return respond(503, error.code, error.message);
  }
  return respond(500, "internal", "Internal server error");
}

/** The API's error body for a status and Outrig's finer `code`. */
export function errorBody(status: number, code: string, message: string, requestId?: string): ErrorBody {
  return {
    type: "error",
    error: { type: errorTypeFor(status, code), message, code },
    request_id: requestId ?? null,
  };
}

/** `error.type` by status, as the API names them; two memory codes have their own types. */
export function errorTypeFor(status: number, code = ""): ApiErrorType {
  if (code === "memory_precondition_failed") return "memory_precondition_failed_error";
  if (code === "memory_path_conflict") return "memory_path_conflict_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409) return "conflict_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "overloaded_error";
  if (status === 504) return "timeout_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

export function notFound(what: string): InputError {
  return new InputError("not_found", `${what} not found`, 404);
}
