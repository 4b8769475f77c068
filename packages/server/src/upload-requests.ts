/**
 * Multipart uploads (the Files API's `POST /v1/files`, the Skills API's `POST /v1/skills` and
 * `POST /v1/skills/{id}/versions`) are bounded by their own limits, not by the 1 MiB limit on JSON
 * bodies: the app's body limit skips them, and their routes read the body through `uploadBodyLimit`.
 */
import { InputError } from "@outrig/core";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";

/** The largest file `POST /v1/files` takes by default: 100 MiB. */
export const DEFAULT_MAX_FILE_UPLOAD_BYTES = 100 * 1024 * 1024;
/** The largest skill upload (all its files together) by default: 8 MiB. */
export const DEFAULT_MAX_SKILL_UPLOAD_BYTES = 8 * 1024 * 1024;

/** True for the upload routes, which set their own body limits. */
export function isUploadRequest(method: string, path: string): boolean {
  if (method !== "POST") return false;
  return path === "/v1/files" || path === "/v1/skills" || /^\/v1\/skills\/[^/]+\/versions$/.test(path);
}

/**
 * A body limit answering 413 `body_too_large` (the API's `request_too_large`) past `maxBytes`. A
 * declared Content-Length over the limit is refused before the body is touched, so the edge can drain
 * and drop it at once.
 */
export function uploadBodyLimit(maxBytes: number, what: string): MiddlewareHandler {
  const tooLarge = () => new InputError("body_too_large", `${what} is larger than ${maxBytes} bytes`, 413);
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  return async (c, next) => {
    const declared = Number(c.req.header("content-length"));
    if (c.req.header("transfer-encoding") === undefined && declared > maxBytes) throw tooLarge();
    return limit(c, next);
  };
}

/**
 * Reads a multipart/form-data body. 415 without that content type, 400 when it does not parse, and
 * 400 for a field that is not one of `allowed` (strict, like JSON bodies).
 */
export async function readMultipart(
  request: Request,
  allowed: readonly string[],
): Promise<Map<string, (string | File)[]>> {
  if (!/^multipart\/form-data\b/i.test(request.headers.get("content-type") ?? "")) {
    throw new InputError("unsupported_media_type", "Content-Type must be multipart/form-data", 415);
  }
  let form: FormData;
  try {
    form = await request.formData();
  } catch (error) {
    // The body limit's own error: its middleware turns it into the 413.
    if (error instanceof InputError || (error as Error).name === "BodyLimitError") throw error;
    throw new InputError("invalid_request", "The body is not valid multipart/form-data", 400, {
      cause: error,
    });
  }
  const fields = new Map<string, (string | File)[]>();
  for (const [key, value] of form.entries()) {
    if (!allowed.includes(key)) {
      throw new InputError("invalid_request", `${key.slice(0, 100)}: unknown field`, 400);
    }
    fields.set(key, [...(fields.get(key) ?? []), value]);
  }
  return fields;
}
