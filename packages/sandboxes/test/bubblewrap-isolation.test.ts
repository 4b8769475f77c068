import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ExecResult, isFileError } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BubblewrapSandbox,
  type BubblewrapSandboxProvider,
  createBubblewrapSandboxProvider,
} from "../src/index.js";

const CANARY = `sk-ant-canary-${randomBytes(12).toString("hex")}`;

describe("bubblewrap sandbox isolation", () => {
  let root: string;
  let hostSecretPath: string;
  let provider: BubblewrapSandboxProvider;
  let first: BubblewrapSandbox;
  let second: BubblewrapSandbox;
  let server: Server;
  let port: number;
  let connections = 0;
  const previousKey = process.env.ANTHROPIC_API_KEY;

  const run = (command: string, sandbox: BubblewrapSandbox = first): Promise<ExecResult> =>
    sandbox.sandbox.exec({ command, timeoutMs: 20_000 }, new AbortController().signal);

  beforeAll(async () => {
    process.env.ANTHROPIC_API_KEY = CANARY;
    root = await mkdtemp(join(tmpdir(), "outrig-isolation-"));
    hostSecretPath = join(root, "data", "secret.txt");
    await mkdir(join(root, "data"));
    await writeFile(hostSecretPath, CANARY);
    server = createServer((socket) => {
      connections += 1;
      socket.end("hello from the host\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
    provider = createBubblewrapSandboxProvider();
    first = await provider.create({ sessionId: "first", orgId: "org", workspaceDir: join(root, "first") });
    second = await provider.create({ sessionId: "second", orgId: "org", workspaceDir: join(root, "second") });
  });

  afterAll(async () => {
    await provider?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (root) await rm(root, { recursive: true, force: true });
    if (previousKey === undefined) delete process.env.ANTHROPIC_API_KEY;
    else process.env.ANTHROPIC_API_KEY = previousKey;
  });

  it("does not pass the server's environment into the sandbox", async () => {
    const result = await run(
      "env; echo ---; tr '\\0' '\\n' < /proc/self/environ; echo ---; tr '\\0' '\\n' < /proc/1/environ; echo ---; for file in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $file || echo \"unreadable $file\"; done 2>/dev/null",
    );
    expect(result.exitCode).toBe(0);
    expect(result.stdout).not.toContain(CANARY);
    expect(result.stdout).not.toContain("ANTHROPIC");
    const variables = (await run("env")).stdout
      .trim()
      .split("\n")
      .map((line) => line.split("=")[0])
      .sort();
    // bash itself adds PWD, SHLVL and _.
    expect(variables).toEqual(["HOME", "LANG", "PATH", "PWD", "SHLVL", "TERM", "USER", "_"]);
    expect((await run("echo $HOME $USER $TERM")).stdout).toBe("/workspace sandbox dumb\n");
  });

  it("cannot read host data outside its mounts", async () => {
    const result = await run(
      `cat ${hostSecretPath}; ls ${root}; ls /root; cat /etc/shadow; ls /work; ls /home; ls /var; ls /run`,
    );
    expect(result.stdout).toBe("");
    expect(result.stdout + result.stderr).not.toContain(CANARY);
    expect(result.stderr).toContain("No such file or directory");
    const error = await first.sandbox.readFile(hostSecretPath).catch((caught: unknown) => caught);
    expect(isFileError(error, "not_found")).toBe(true);
    // /etc holds only the minimal set, never the host's /etc.
    expect((await run("ls -A /etc")).stdout.trim().split("\n")).toEqual([
      "alternatives",
      "group",
      "hostname",
      "hosts",
      "ld.so.cache",
      "nsswitch.conf",
      "passwd",
      "ssl",
    ]);
    expect((await run("ls -A /etc/ssl")).stdout.trim().split("\n")).toEqual(
      expect.not.arrayContaining(["private"]),
    );
    // Host paths (the workspace dir) do not even show up in process command lines.
    expect((await run("tr '\\0' ' ' < /proc/1/cmdline")).stdout).not.toContain(root);
  });

  it("has no network but loopback and cannot reach a host port", async () => {
    const links = await run("ip -o link show | awk -F': ' '{print $2}'; echo ---; ls /sys/class/net 2>&1");
    const [interfaces] = links.stdout.split("---");
    expect(interfaces?.trim()).toBe("lo");
    expect(links.stdout).not.toMatch(/eth|ens|veth|docker/);
    const connect = await run(`echo ping > /dev/tcp/127.0.0.1/${port} && echo connected`);
    expect(connect.exitCode).not.toBe(0);
    expect(connect.stdout).not.toContain("connected");
    const outside = await run(
      `timeout 5 bash -c 'echo ping > /dev/tcp/1.1.1.1/80' && echo connected; getent hosts registry.npmjs.org || echo unresolved`,
    );
    expect(outside.stdout).not.toContain("connected");
    expect(outside.stdout).toContain("unresolved");
    expect(connections).toBe(0);
  });

  it("runs as a non-root user with no capabilities and cannot create user namespaces", async () => {
    expect((await run("id -u; id -g; id -un; hostname")).stdout).toBe("1000\n1000\nsandbox\nsandbox\n");
    const capabilities = (await run("grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status")).stdout;
    expect(capabilities.trim().split("\n")).toHaveLength(4);
    for (const line of capabilities.trim().split("\n")) expect(line).toMatch(/:\s+0+$/);
    expect((await run("unshare -U true")).exitCode).not.toBe(0);
  });

  it("keeps everything outside /workspace and /tmp read-only", async () => {
    for (const path of [
      "/usr/outrig-test",
      "/etc/outrig-test",
      "/outrig-test",
      "/opt/outrig-test",
      "/bin/outrig-test",
    ]) {
      const result = await run(`touch ${path}`);
      expect(result.exitCode, path).not.toBe(0);
      expect(result.stderr, path).toMatch(/Read-only file system|Permission denied/);
    }
    expect((await run("touch /usr/outrig-test")).stderr).toContain("Read-only file system");
    const error = await first.sandbox
      .writeFile("/usr/outrig-test", new Uint8Array([1]))
      .catch((caught: unknown) => caught);
    expect(isFileError(error, "read_only")).toBe(true);
    expect((await run("touch /tmp/ok /workspace/ok && echo written")).stdout).toBe("written\n");
  });

  it("cannot see another sandbox's processes or files", async () => {
    const marker = String(3000 + Math.floor(Math.random() * 1000));
    const background = second.sandbox.exec(
      { command: `sleep ${marker}.5`, timeoutMs: 60_000 },
      new AbortController().signal,
    );
    const backgroundEnd = background.catch((error: unknown) => error);
    await second.sandbox.writeFile("/workspace/second-only.txt", new TextEncoder().encode(CANARY));
    // The second sandbox sees its own sleep: the check below can fail.
    expect((await run("ps -eo args", second)).stdout).toContain(`sleep ${marker}.5`);

    const processes = await run("ps -eo pid,args; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '");
    expect(processes.stdout).not.toContain(`${marker}.5`);
    expect((await run("ps -e --no-headers | wc -l")).stdout.trim()).toMatch(/^[1-9]$/);
    const files = await run(
      `ls -A /workspace; cat ${join(root, "second", "second-only.txt")}; cat /proc/[0-9]*/root/workspace/second-only.txt`,
    );
    expect(files.stdout).not.toContain("second-only.txt");
    expect(files.stdout).not.toContain(CANARY);
    await second.destroy();
    expect(await backgroundEnd).toMatchObject({ code: "sandbox_unavailable" });
  });
});
