/**
 * Multipart uploads (the Files API's `POST /v1/files`, the Skills API's `POST /v1/skills` and
 * `POST /v1/skills/{id}/versions`) are bounded by their own limits, not by the 1 MiB limit on JSON
 * bodies: the app's body limit skips them, and their routes read the body through `uploadBodyLimit`.
 */
import { InputError } from "@outrig/core";
import type { MiddlewareHandler } from "hono";
import { readMultipartParts } from "./read-multipart-parts.js";

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
 * A body limit answering 413 `body_too_large` (the API's `request_too_large`) past `maxBytes`, without
 * buffering: a declared Content-Length over the limit is refused before the body is touched (the edge
 * drains and drops it), and any other body is counted while the route reads it, its stream failing
 * with the 413 as soon as the count passes the limit (so a store writing it stops and removes the
 * partial write).
 */
export function uploadBodyLimit(maxBytes: number, what: string): MiddlewareHandler {
  const tooLarge = () => new InputError("body_too_large", `${what} is larger than ${maxBytes} bytes`, 413);
  return async (c, next) => {
    const declared = Number(c.req.header("content-length"));
    if (c.req.header("transfer-encoding") === undefined && declared > maxBytes) throw tooLarge();
    const body = c.req.raw.body;
    if (body !== null) {
      c.req.raw = new Request(c.req.raw, { body: countedBody(body, maxBytes, tooLarge), duplex: "half" });
    }
    await next();
  };
}

/**
 * The body as a stream that fails with `tooLarge()` once more than `maxBytes` went through. It never
 * cancels the source (that would drop the connection before the 413 is sent): it reads and drops the
 * rest instead, so the edge's bounded drain before the 413 is not stalled by a paused web stream.
 */
function countedBody(
  source: ReadableStream<Uint8Array>,
  maxBytes: number,
  tooLarge: () => InputError,
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let size = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        controller.close();
        return;
      }
      size += value.byteLength;
      if (size > maxBytes) {
        controller.error(tooLarge());
        void discardRest(reader);
        return;
      }
      controller.enqueue(value);
    },
  });
}

/**
 * Reads a whole multipart/form-data body into memory, for uploads small enough to hold (skills). 415
 * without that content type, 400 when it does not parse, and 400 for a field that is not one of
 * `allowed` (strict, like JSON bodies). Large uploads read the parts as streams (`readMultipartParts`).
 */
export async function readMultipart(
  request: Request,
  allowed: readonly string[],
): Promise<Map<string, (string | File)[]>> {
  const fields = new Map<string, (string | File)[]>();
  for await (const part of readMultipartParts(request)) {
    if (!allowed.includes(part.name)) {
      throw new InputError("invalid_request", `${part.name.slice(0, 100)}: unknown field`, 400);
    }
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    for await (const chunk of part.body) chunks.push(new Uint8Array(chunk));
    const value =
      part.filename === undefined
        ? Buffer.concat(chunks).toString("utf8")
        : new File(chunks, part.filename, { type: part.contentType });
    fields.set(part.name, [...(fields.get(part.name) ?? []), value]);
  }
  return fields;
}

/** Reads the rest of a body and drops it; ends when the body ends or the connection closes. */
async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  try {
    while (!(await reader.read()).done);
  } catch {
    // The connection closed: nothing is left to drop.
  }
}
