import { PassThrough, Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { SandboxError } from "@outrig/core";
import { describe, expect, it } from "vitest";
import { AgentConnection, AgentRequestError } from "./agent-connection.js";

/** A connection over real streams, with every protocol error it reports. */
function connect(options: { maxMessageBytes?: number } = {}) {
  const output = new PassThrough();
  const input = new PassThrough();
  const protocolErrors: SandboxError[] = [];
  const connection = new AgentConnection(output, input, {
    ...options,
    onProtocolError: (error) => protocolErrors.push(error),
  });
  return { output, input, connection, protocolErrors };
}

describe("AgentConnection", () => {
  it("answers requests from lines split across chunks and joined in one chunk", async () => {
    const { output, connection, protocolErrors } = connect();
    const first = connection.request<{ value: number }>("stat", {});
    const second = connection.request("stat", {});
    output.write('{"event":"ready"}\n{"id":1,"ok":true,"res');
    output.write('ult":{"value":1}}\r\n{"id":2,"ok":false,"error":{"code":"ENOENT","message":"gone"}}\n');
    await connection.ready;
    await expect(first).resolves.toEqual({ value: 1 });
    await expect(second).rejects.toBeInstanceOf(AgentRequestError);
    expect(protocolErrors).toEqual([]);
  });

  it("fails the sandbox, not the process, on a 640 MiB line", async () => {
    const output = new PassThrough({ highWaterMark: 1024 * 1024 });
    const protocolErrors: SandboxError[] = [];
    const connection = new AgentConnection(output, new PassThrough(), {
      onProtocolError: (error) => protocolErrors.push(error),
    });
    const pending = connection.request("exec", { command: "true" });
    const mebibyte = Buffer.alloc(1024 * 1024, "x");
    let sent = 0;
    const source = new Readable({
      read() {
        sent += 1;
        this.push(sent <= 640 ? mebibyte : null);
      },
    });
    source.pipe(output);
    const error = await pending.catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(SandboxError);
    expect((error as SandboxError).code).toBe("sandbox_unavailable");
    expect((error as Error).message).toMatch(/longer than 67108864 bytes/);
    expect(protocolErrors).toHaveLength(1);
    await finished(source);
    expect(sent).toBe(641);
    expect(connection.isClosed).toBe(true);
  }, 60_000);

  it("fails the sandbox on a line just over its bound and on a line that is not a JSON object", async () => {
    const long = connect({ maxMessageBytes: 1024 });
    const pending = long.connection.request("stat", {});
    long.output.write(`{"id":1,"ok":true,"result":"${"y".repeat(1024)}"}\n`);
    await expect(pending).rejects.toThrow(/longer than 1024 bytes/);
    expect(long.protocolErrors).toHaveLength(1);

    for (const line of [
      "not json",
      "[1,2]",
      '"text"',
      '{"id":"1","ok":true}',
      '{"id":1,"error":{"code":5}}',
    ]) {
      const malformed = connect();
      const request = malformed.connection.request("stat", {});
      malformed.output.write(`${line}\n`);
      await expect(request).rejects.toThrow(/not a JSON object/);
      expect(malformed.protocolErrors).toHaveLength(1);
      await expect(malformed.connection.request("stat", {})).rejects.toBeInstanceOf(SandboxError);
    }
  });
});
