/**
 * The streaming multipart reader against bodies serialized by the platform's own FormData (what the
 * SDK sends), cut into chunks at every size from 1 byte up, so a boundary split across chunks is
 * still found; and against broken bodies (400), other content types (415) and a failing body stream.
 */
import { randomBytes } from "node:crypto";
import { InputError } from "@outrig/core";
import { describe, expect, it } from "vitest";
import { multipartBoundary, readMultipartParts, readTextPart } from "./read-multipart-parts.js";

interface ParsedPart {
  name: string;
  filename: string | undefined;
  contentType: string;
  bytes: Buffer;
}

/** A request whose body arrives in chunks of `chunkSize` bytes. */
function chunkedRequest(body: Uint8Array, contentType: string, chunkSize: number): Request {
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= body.byteLength) {
        controller.close();
        return;
      }
      controller.enqueue(body.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
  return new Request("http://localhost/v1/files", {
    method: "POST",
    headers: { "content-type": contentType },
    body: stream,
    duplex: "half",
  });
}

async function serialize(form: FormData): Promise<{ body: Uint8Array; contentType: string }> {
  const response = new Response(form);
  return {
    body: new Uint8Array(await response.arrayBuffer()),
    contentType: response.headers.get("content-type") ?? "",
  };
}

async function parseAll(request: Request): Promise<ParsedPart[]> {
  const parts: ParsedPart[] = [];
  for await (const part of readMultipartParts(request)) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of part.body) chunks.push(chunk);
    parts.push({
      name: part.name,
      filename: part.filename,
      contentType: part.contentType,
      bytes: Buffer.concat(chunks),
    });
  }
  return parts;
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    if (error instanceof InputError) return error.status;
    throw error;
  }
}

describe("readMultipartParts", () => {
  it("reads what FormData sends, whatever the chunk sizes, byte for byte", async () => {
    const binary = randomBytes(70_000);
    // Bytes that look like a boundary's start inside the content must stay content.
    const tricky = Buffer.from("\r\n--\r\n--formdata-undici\r\n\r\n--");
    const form = new FormData();
    form.append("expires_in_seconds", "3600");
    form.append("file", new File([binary, tricky], "dir/data é.bin", { type: "application/octet-stream" }));
    form.append("file", new File([], "empty.txt", { type: "text/plain" }));
    form.append("note", "línea\r\ndos");
    const { body, contentType } = await serialize(form);
    for (const chunkSize of [1, 2, 3, 5, 17, 64, 1000, 65_536, body.byteLength]) {
      // One byte at a time through 70 KB is slow; the small sizes see a shorter body with the same framing.
      const small = chunkSize < 64;
      const sample = small ? await serialize(smallForm(tricky)) : { body, contentType };
      const parts = await parseAll(chunkedRequest(sample.body, sample.contentType, chunkSize));
      if (small) {
        expect(parts.map((part) => [part.name, part.filename, part.bytes.toString("latin1")])).toEqual([
          ["a", undefined, "1"],
          ["file", "x.bin", tricky.toString("latin1")],
          ["b", undefined, ""],
        ]);
        continue;
      }
      expect(parts.map(({ name, filename, contentType: type }) => [name, filename, type])).toEqual([
        ["expires_in_seconds", undefined, ""],
        ["file", "dir/data é.bin", "application/octet-stream"],
        ["file", "empty.txt", "text/plain"],
        ["note", undefined, ""],
      ]);
      expect(parts[0]?.bytes.toString()).toBe("3600");
      expect(parts[1]?.bytes.equals(Buffer.concat([binary, tricky]))).toBe(true);
      expect(parts[2]?.bytes.byteLength).toBe(0);
      expect(parts[3]?.bytes.toString()).toBe("línea\r\ndos");
    }
  });

  it("skips the rest of a part the caller does not read", async () => {
    const form = new FormData();
    form.append("skipped", new File([randomBytes(50_000)], "big.bin"));
    form.append("kept", "yes");
    const { body, contentType } = await serialize(form);
    const names: string[] = [];
    for await (const part of readMultipartParts(chunkedRequest(body, contentType, 4096))) {
      names.push(part.name);
      if (part.name === "kept") expect(await readTextPart(part, 10)).toBe("yes");
    }
    expect(names).toEqual(["skipped", "kept"]);
  });

  it("refuses other content types (415) and broken bodies (400)", async () => {
    expect(() => multipartBoundary("application/json")).toThrow(
      expect.objectContaining({ status: 415 }) as Error,
    );
    expect(() => multipartBoundary(null)).toThrow(expect.objectContaining({ status: 415 }) as Error);
    expect(() => multipartBoundary("multipart/form-data")).toThrow(
      expect.objectContaining({ status: 400 }) as Error,
    );
    expect(multipartBoundary('multipart/form-data; boundary="a b"')).toBe("a b");
    const type = "multipart/form-data; boundary=x";
    const disposition = 'Content-Disposition: form-data; name="f"';
    const broken = [
      "",
      "no boundary at all",
      "--x\r\nnot a part",
      `--x\r\n${disposition}\r\n\r\nunterminated`,
      `--x\r\n${disposition}\r\n\r\nvalue\r\n--x`,
      `--x\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--x--`,
      `--x\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--x--`,
      `--x\r\n\r\nno headers\r\n--x--`,
      `--x\r\nX-Long: ${"a".repeat(20_000)}\r\n${disposition}\r\n\r\nv\r\n--x--`,
      `--x\r\nContent-Disposition: form-data; name*=latin1''%e9\r\n\r\nv\r\n--x--`,
      `--xjunk\r\n${disposition}\r\n\r\nv\r\n--x--`,
    ];
    for (const body of broken) {
      const status = await statusOf(parseAll(chunkedRequest(Buffer.from(body), type, 7)));
      expect([body.slice(0, 40), status]).toEqual([body.slice(0, 40), 400]);
    }
    // Quoted names keep escaped quotes; filename* (RFC 5987) wins over filename; a preamble is skipped.
    const parts = await parseAll(
      chunkedRequest(
        Buffer.from(
          `preamble\r\n--x\r\nContent-Disposition: form-data; name="a\\"b"; filename="plain.txt"; filename*=UTF-8''%C3%A9.txt\r\n\r\nv\r\n--x--\r\nepilogue`,
        ),
        type,
        3,
      ),
    );
    expect(parts.map((part) => [part.name, part.filename, part.bytes.toString()])).toEqual([
      ['a"b', "é.txt", "v"],
    ]);
  });

  it("passes the body stream's own error through (the upload limit's 413)", async () => {
    const tooLarge = new InputError("body_too_large", "too large", 413);
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) controller.error(tooLarge);
        else controller.enqueue(Buffer.from('--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc'));
        sent = true;
      },
    });
    const request = new Request("http://localhost/", {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=x" },
      body: stream,
      duplex: "half",
    });
    await expect(parseAll(request)).rejects.toBe(tooLarge);
  });
});

function smallForm(tricky: Buffer): FormData {
  const form = new FormData();
  form.append("a", "1");
  form.append("file", new File([tricky], "x.bin"));
  form.append("b", "");
  return form;
}
