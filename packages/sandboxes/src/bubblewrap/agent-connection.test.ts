import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { SandboxError } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

describe("an authenticated channel (the runc agent's socket)", () => {
  const agentPath = fileURLToPath(new URL("../../agent/sandbox-agent.mjs", import.meta.url));
  let directory: string;
  let agent: ChildProcess | undefined;
  const key = randomBytes(32);

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "outrig-channel-"));
    await writeFile(join(directory, "agent.key"), key.toString("hex"), { mode: 0o600 });
    agent = spawn(
      process.execPath,
      [agentPath, "--listen", join(directory, "agent.sock"), "--key-file", join(directory, "agent.key")],
      { stdio: "ignore" },
    );
    for (
      let tries = 0;
      tries < 200 && !(await stat(join(directory, "agent.sock")).catch(() => undefined));
      tries++
    )
      await new Promise((resolve) => setTimeout(resolve, 25));
  });

  afterAll(async () => {
    agent?.kill("SIGKILL");
    await rm(directory, { recursive: true, force: true });
  });

  const open = (path: string, channelKey: Uint8Array) =>
    new Promise<{ socket: Socket; connection: AgentConnection; errors: SandboxError[] }>(
      (resolve, reject) => {
        const socket = createConnection(path);
        socket.once("error", reject);
        socket.once("connect", () => {
          const errors: SandboxError[] = [];
          const connection = new AgentConnection(socket, socket, {
            channelKey,
            onProtocolError: (error) => errors.push(error),
          });
          socket.once("close", () => connection.close(new SandboxError("sandbox_unavailable", "closed")));
          resolve({ socket, connection, errors });
        });
      },
    );

  it("deletes the key file before it listens, and answers a host that holds the key", async () => {
    await expect(stat(join(directory, "agent.key"))).rejects.toMatchObject({ code: "ENOENT" });
    const { socket, connection } = await open(join(directory, "agent.sock"), key);
    await connection.ready;
    const result = await connection.request<{ stdout: string }>("exec", {
      command: "echo real",
      cwd: directory,
      timeoutMs: 10_000,
    });
    expect(result.stdout).toBe("real\n");
    socket.destroy();
  });

  it("refuses a client without the key, which cannot take the host's place", async () => {
    const host = await open(join(directory, "agent.sock"), key);
    await host.connection.ready;
    const intruder = await open(join(directory, "agent.sock"), randomBytes(32));
    const refused = await intruder.connection.request("stat", { path: "/" }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SandboxError);
    // The host's connection still works.
    await expect(host.connection.request("stat", { path: "/" })).resolves.toMatchObject({ stat: {} });
    host.socket.destroy();
  });

  it("takes nothing from an impostor listening on the socket path", async () => {
    const impostorPath = join(directory, "impostor.sock");
    const impostor = createServer((socket) => {
      socket.on("error", () => undefined);
      socket.write('{"event":"ready","pid":2}\n');
      socket.on("data", () => {
        for (let id = 1; id <= 20; id += 1)
          socket.write(
            `${"0".repeat(64)} ${JSON.stringify({ id, ok: true, result: { stdout: "FORGED" } })}\n`,
          );
        for (let id = 1; id <= 20; id += 1)
          socket.write(`${JSON.stringify({ id, ok: true, result: { stdout: "FORGED" } })}\n`);
      });
    });
    await new Promise<void>((resolve) => impostor.listen(impostorPath, resolve));
    try {
      const { socket, connection, errors } = await open(impostorPath, key);
      const outcome = await connection
        .request("exec", { command: "echo real", timeoutMs: 10_000 })
        .catch((error: unknown) => error);
      expect(outcome).toBeInstanceOf(SandboxError);
      expect(errors[0]?.message).toMatch(/without the channel's authentication/);
      socket.destroy();
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  });
});

describe("the agent keeps its replies under its bound (--max-message-bytes)", () => {
  const agentPath = fileURLToPath(new URL("../../agent/sandbox-agent.mjs", import.meta.url));
  let agent: ChildProcess;
  let connection: AgentConnection;
  const protocolErrors: SandboxError[] = [];

  beforeAll(async () => {
    agent = spawn(process.execPath, [agentPath, "--max-message-bytes", "65536"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    connection = new AgentConnection(agent.stdout as Readable, agent.stdin as PassThrough, {
      maxMessageBytes: 65536,
      onProtocolError: (error) => protocolErrors.push(error),
    });
    await connection.ready;
  });

  afterAll(() => {
    agent.kill("SIGKILL");
  });

  it("cuts exec output to fit and marks it truncated; any other reply too large is E2BIG", async () => {
    const result = await connection.request<{ stdout: string; stderr: string; isTruncated: boolean }>(
      "exec",
      {
        command: "head -c 300000 /dev/zero | tr '\\0' a; head -c 300000 /dev/zero | tr '\\0' b >&2",
        cwd: tmpdir(),
        timeoutMs: 10_000,
      },
    );
    expect(result.isTruncated).toBe(true);
    expect(result.stdout.length + result.stderr.length).toBeLessThan(65536);
    expect(result.stdout).toMatch(/^a+$/);
    const big = join(await mkdtemp(join(tmpdir(), "outrig-big-")), "big");
    await writeFile(big, Buffer.alloc(100_000, 1));
    await expect(connection.request("readFile", { path: big })).rejects.toMatchObject({
      body: { code: "E2BIG" },
    });
    await rm(big, { force: true });
    expect(protocolErrors).toEqual([]);
  });
});
