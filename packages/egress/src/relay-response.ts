/**
 * Forwards an upstream response to the sandbox. When a credential was injected, the response is
 * scanned for it as the client will read it: every content coding is undone first (and the response
 * forwarded decoded), a coding egress cannot undo is refused, and for a header-only credential the
 * whole response is read and scanned before any byte of it leaves.
 */
import type http from "node:http";
import type { Readable, Transform } from "node:stream";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { forwardHeaders } from "./forward-headers.js";
import { decodersFor } from "./response-decoding.js";
import { createScanningTransform, SecretInRequestError, type SecretScanner } from "./secret-scanner.js";

/** Largest decoded response read whole for a header-only credential. */
export const HEADER_ONLY_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface RelayResponseOptions {
  readonly method: string;
  readonly upstream: http.IncomingMessage;
  readonly response: http.ServerResponse;
  /** The injected credentials in every known transform; empty when none was injected. */
  readonly echoScanner: SecretScanner;
  /** Set when a header-only credential was injected: fragments of it, in every transform. */
  readonly strictScanner: SecretScanner | null;
}

/** Why a response was not (fully) forwarded. `label` names the credential, never its value. */
export class ResponseWithheldError extends Error {
  constructor(
    readonly reason: "echo" | "encoding" | "too_large",
    message: string,
    readonly label?: string,
  ) {
    super(message);
    this.name = "ResponseWithheldError";
  }
}

/**
 * Resolves once the response is forwarded. Rejects with `ResponseWithheldError` before anything was
 * sent when the headers echo a credential, the coding is unknown, or (header-only) the body echoes it
 * or is too large; a streamed body that turns out to echo one rejects after the headers went, and the
 * caller must cut the connection. Other errors are the upstream's or the client's.
 */
export async function relayResponse(options: RelayResponseOptions): Promise<void> {
  const { upstream, response, echoScanner, strictScanner } = options;
  const status = upstream.statusCode ?? 502;
  const headers = forwardHeaders(upstream.headers);
  if (echoScanner.isEmpty) {
    response.writeHead(status, headers);
    await pipeline(upstream, response);
    return;
  }
  const headerText = upstream.rawHeaders.join("\n");
  const headerEcho = echoScanner.find(headerText) ?? strictScanner?.find(headerText) ?? null;
  if (headerEcho !== null) {
    upstream.destroy();
    throw new ResponseWithheldError("echo", "headers", headerEcho);
  }
  const hasBody = options.method !== "HEAD" && status !== 204 && status !== 304 && status >= 200;
  let decoders: Transform[] = [];
  if (hasBody) {
    const found = decodersFor(headerValue(upstream.headers["content-encoding"]));
    if (!Array.isArray(found)) {
      upstream.destroy();
      throw new ResponseWithheldError("encoding", found.unknown);
    }
    decoders = found;
  }
  if (decoders.length > 0) {
    // Forwarded decoded: the client gets the bytes that were scanned.
    delete headers["content-encoding"];
    delete headers["content-length"];
  }
  try {
    if (strictScanner) {
      // Scanned chunk by chunk as it arrives (each scan a few ms), sent only once all of it passed.
      const body = await readWhole(
        [upstream, ...decoders, createScanningTransform(echoScanner), createScanningTransform(strictScanner)],
        HEADER_ONLY_RESPONSE_BYTES,
      );
      if (hasBody) headers["content-length"] = String(body.length);
      response.writeHead(status, headers);
      response.end(body);
      return;
    }
    response.writeHead(status, headers);
    await pipeline([upstream, ...decoders, createScanningTransform(echoScanner), response] as unknown as [
      Readable,
      http.ServerResponse,
    ]);
  } catch (error) {
    if (error instanceof SecretInRequestError) throw new ResponseWithheldError("echo", "body", error.label);
    throw error;
  } finally {
    for (const decoder of decoders) decoder.destroy();
  }
}

async function readWhole(streams: readonly (Readable | Transform)[], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (size > limit) {
        callback(new ResponseWithheldError("too_large", String(limit)));
        return;
      }
      chunks.push(chunk);
      callback();
    },
  });
  await pipeline([...streams, sink] as unknown as [Readable, Writable]);
  return Buffer.concat(chunks);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(",") : value;
}
