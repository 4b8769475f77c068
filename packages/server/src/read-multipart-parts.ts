/**
 * A streaming multipart/form-data reader for the upload routes: parts come out one at a time and each
 * part's bytes as a stream, so an upload is never held whole in memory (the Files API stores a file
 * while it arrives). Only a small window of the body is buffered: the part headers (at most 16 KiB)
 * and the tail that might be the start of the next boundary. 415 without the content type, 400 for a
 * body that does not parse; an error of the body stream itself (the upload limit's 413) passes through.
 */
import { InputError } from "@outrig/core";

export interface MultipartPart {
  /** The form field's name. */
  readonly name: string;
  /** The `filename` parameter as sent (it may hold a path) for a file part, else undefined. */
  readonly filename: string | undefined;
  /** The part's Content-Type header, or "" when it has none. */
  readonly contentType: string;
  /** The part's bytes. Read it (or not) before asking for the next part: the rest is skipped. */
  readonly body: AsyncIterable<Uint8Array>;
}

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PARTS = 1000;
const CRLF = Buffer.from("\r\n");
const HEADERS_END = Buffer.from("\r\n\r\n");

function malformed(reason: string): InputError {
  return new InputError("invalid_request", `The body is not valid multipart/form-data: ${reason}`, 400);
}

/** The boundary of a multipart/form-data Content-Type; 415 for any other type, 400 without one. */
export function multipartBoundary(contentType: string | null): string {
  if (contentType === null || !/^multipart\/form-data\b/i.test(contentType)) {
    throw new InputError("unsupported_media_type", "Content-Type must be multipart/form-data", 415);
  }
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (boundary === undefined) throw malformed("the Content-Type has no boundary");
  return boundary;
}

/** Pulls chunks from the body on demand and keeps only what the parser has not consumed yet. */
class ChunkReader {
  readonly #source: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: Buffer = Buffer.alloc(0);
  #ended = false;

  constructor(source: ReadableStream<Uint8Array>, initial: Buffer) {
    this.#source = source.getReader();
    this.#buffer = initial;
  }

  /** Reads one more chunk into the buffer; false at the end of the body. */
  async #more(): Promise<boolean> {
    if (this.#ended) return false;
    const { done, value } = await this.#source.read();
    if (done) {
      this.#ended = true;
      return false;
    }
    const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    return true;
  }

  /** At least `count` buffered bytes (fewer only at the end of the body), not consumed. */
  async peek(count: number): Promise<Buffer> {
    while (this.#buffer.length < count && (await this.#more()));
    return this.#buffer.subarray(0, count);
  }

  consume(count: number): void {
    this.#buffer = this.#buffer.subarray(count);
  }

  /** Discards everything up to and including `marker`; 400 when the body ends first. */
  async skipPast(marker: Buffer, what: string): Promise<void> {
    for (;;) {
      const index = this.#buffer.indexOf(marker);
      if (index >= 0) {
        this.consume(index + marker.length);
        return;
      }
      this.consume(Math.max(0, this.#buffer.length - (marker.length - 1)));
      if (!(await this.#more())) throw malformed(`the body ends before ${what}`);
    }
  }

  /** The bytes up to `marker` (consumed with it), at most `max` of them; 400 otherwise. */
  async readUntil(marker: Buffer, max: number, what: string): Promise<Buffer> {
    // Each pass searches only where the marker could newly end, so slow clients cost linear time.
    for (let searched = 0; ; ) {
      const index = this.#buffer.indexOf(marker, Math.max(0, searched - (marker.length - 1)));
      if (index >= 0) {
        const found = this.#buffer.subarray(0, index);
        this.consume(index + marker.length);
        return found;
      }
      if (this.#buffer.length > max + marker.length) throw malformed(`${what} are longer than ${max} bytes`);
      searched = this.#buffer.length;
      if (!(await this.#more())) throw malformed(`the body ends inside ${what}`);
    }
  }

  /**
   * The next bytes of a part whose end is `delimiter`, or null once the delimiter is reached (and
   * consumed). Never holds back more than the delimiter's length.
   */
  async bodyChunk(delimiter: Buffer): Promise<Buffer | null> {
    for (;;) {
      const index = this.#buffer.indexOf(delimiter);
      if (index === 0) {
        this.consume(delimiter.length);
        return null;
      }
      const safe = index > 0 ? index : this.#buffer.length - (delimiter.length - 1);
      if (safe > 0) {
        const chunk = this.#buffer.subarray(0, safe);
        this.consume(safe);
        return chunk;
      }
      if (!(await this.#more())) throw malformed("the body ends inside a part");
    }
  }

  /** Reads and drops the rest of the body (the epilogue after the closing boundary). */
  async drain(): Promise<void> {
    this.#buffer = Buffer.alloc(0);
    while (await this.#more()) this.#buffer = Buffer.alloc(0);
  }
}

interface PartHeaders {
  readonly name: string;
  readonly filename: string | undefined;
  readonly contentType: string;
}

/** The parameters of a Content-Disposition value (quoted strings unescaped, `filename*` decoded). */
function dispositionParameters(value: string): Map<string, string> {
  const parameters = new Map<string, string>();
  const pattern = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))/g;
  for (const match of value.matchAll(pattern)) {
    const key = (match[1] ?? "").toLowerCase();
    const raw = match[2] === undefined ? (match[3] ?? "").trim() : match[2].replace(/\\(.)/g, "$1");
    if (key.endsWith("*")) {
      // RFC 5987: charset'language'percent-encoded; only UTF-8 is understood.
      const extended = /^utf-8'[^']*'(.*)$/i.exec(raw);
      if (extended === null) continue;
      try {
        parameters.set(key.slice(0, -1), decodeURIComponent(extended[1] ?? ""));
      } catch {
        throw malformed(`the ${key} parameter is not valid percent-encoding`);
      }
    } else if (!parameters.has(key)) {
      parameters.set(key, raw);
    }
  }
  return parameters;
}

function parsePartHeaders(block: Buffer): PartHeaders {
  let disposition: string | undefined;
  let contentType = "";
  for (const line of block.toString("utf8").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw malformed("a part header has no name");
    const header = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (header === "content-disposition") disposition = value;
    else if (header === "content-type") contentType = value;
  }
  if (disposition === undefined || !/^form-data\s*(;|$)/i.test(disposition)) {
    throw malformed("a part has no Content-Disposition: form-data header");
  }
  const parameters = dispositionParameters(disposition.replace(/^form-data\s*/i, ""));
  const name = parameters.get("name");
  if (name === undefined) throw malformed("a part has no name");
  return { name, filename: parameters.get("filename"), contentType };
}

/**
 * The parts of a multipart/form-data request, in order, each with its bytes as a stream. The body
 * is read only as fast as the caller consumes the parts.
 */
export async function* readMultipartParts(request: Request): AsyncGenerator<MultipartPart, void, undefined> {
  const boundary = multipartBoundary(request.headers.get("content-type"));
  if (request.body === null) throw malformed("the body is empty");
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // The first boundary may open the body with no CRLF before it: start as if one came first.
  const reader = new ChunkReader(request.body, Buffer.from(CRLF));
  await reader.skipPast(delimiter, "the first boundary");
  for (let count = 0; ; count += 1) {
    // After a boundary: "--" closes the body; otherwise optional blanks, then CRLF open a part.
    if ((await reader.peek(2)).equals(Buffer.from("--"))) {
      await reader.drain();
      return;
    }
    for (
      let blank = await reader.peek(1);
      blank[0] === 0x20 || blank[0] === 0x09;
      blank = await reader.peek(1)
    ) {
      reader.consume(1);
    }
    if (!(await reader.peek(2)).equals(CRLF)) throw malformed("a boundary is not followed by a line break");
    reader.consume(2);
    if (count >= MAX_PARTS) throw malformed(`more than ${MAX_PARTS} parts`);
    // A part with no headers at all (a blank line right away) has no Content-Disposition.
    if ((await reader.peek(2)).equals(CRLF)) throw malformed("a part has no headers");
    const headerBlock = await reader.readUntil(HEADERS_END, MAX_HEADER_BYTES, "the part headers");
    const headers = parsePartHeaders(headerBlock);
    let finished = false;
    const body: AsyncIterable<Uint8Array> = {
      async *[Symbol.asyncIterator]() {
        while (!finished) {
          const chunk = await reader.bodyChunk(delimiter);
          if (chunk === null) finished = true;
          else yield chunk;
        }
      },
    };
    yield { ...headers, body };
    // Whatever the caller left of this part is skipped.
    while (!finished) {
      if ((await reader.bodyChunk(delimiter)) === null) finished = true;
    }
  }
}

/** A text field's value as UTF-8, at most `maxBytes` of it (400 past that). */
export async function readTextPart(part: MultipartPart, maxBytes: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of part.body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      throw new InputError(
        "invalid_request",
        `${part.name.slice(0, 100)}: longer than ${maxBytes} bytes`,
        400,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}
