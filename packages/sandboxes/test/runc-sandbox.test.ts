import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ExecResult, SandboxError } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkRuncHibernate,
  createRuncSandboxProvider,
  type RuncSandbox,
  type RuncSandboxProvider,
} from "../src/index.js";

const support = await checkRuncHibernate();
if (!support.isSupported) console.log(`runc sandbox tests skipped: ${support.reason}`);

describe("checkRuncHibernate", () => {
  it("says why when runc is missing", async () => {
    const result = await checkRuncHibernate({ runcPath: "/nonexistent/runc" });
    expect(result.isSupported).toBe(false);
    if (!result.isSupported) expect(result.reason).toMatch(/runc/);
  });
});

describe.skipIf(!support.isSupported)("runc sandbox: isolation and hibernate", () => {
  const CANARY = `sk-ant-canary-${randomBytes(12).toString("hex")}`;
  const previousKey = process.env.ANTHROPIC_API_KEY;
  let root: string;
  let provider: RuncSandboxProvider;
  let sandbox: RuncSandbox;
  let server: Server;
  let port: number;
  let connections = 0;

  const run = (command: string, target: RuncSandbox = sandbox): Promise<ExecResult> =>
    target.sandbox.exec({ command, timeoutMs: 30_000 }, new AbortController().signal);

  beforeAll(async () => {
    if (!support.isSupported) return;
    process.env.ANTHROPIC_API_KEY = CANARY;
    root = await mkdtemp(join(tmpdir(), "outrig-runc-test-"));
    server = createServer((socket) => {
      connections += 1;
      socket.end("hello from the host\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as { port: number }).port;
    provider = createRuncSandboxProvider({ criuPath: support.criuPath, stateDir: join(root, "state") });
    sandbox = await provider.create({
      sessionId: "s",
      orgId: "o",
      workspaceDir: join(root, "workspace"),
      limits: { memoryBytes: 256 * 1024 * 1024, pids: 128 },
    });
  });

  afterAll(async () => {
    await provider?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (root) await rm(root, { recursive: true, force: true });
    if (previousKey === undefined) delete process.env.ANTHROPIC_API_KEY;
    else process.env.ANTHROPIC_API_KEY = previousKey;
  });

  it("has no capabilities, a read-only root, no host secrets, no network but lo, no server env", async () => {
    const result = await run(
      [
        "grep CapEff /proc/self/status",
        "touch /usr/x 2>/dev/null && echo usr-writable || echo usr-read-only",
        "touch /etc/x 2>/dev/null && echo etc-writable || echo etc-read-only",
        "[ -e /etc/shadow ] && echo shadow-visible || echo no-shadow",
        "[ -e /root ] && echo root-visible || echo no-root",
        "ls /sys/class/net 2>/dev/null || cat /proc/net/dev",
        `(exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && echo tcp-open || echo tcp-refused`,
        "touch /workspace/ok /tmp/ok && echo writable",
        "tr '\\0' '\\n' < /proc/1/environ; env",
      ].join("; "),
    );
    expect(result.stdout).toContain("CapEff:\t0000000000000000");
    expect(result.stdout).toContain("usr-read-only");
    expect(result.stdout).toContain("etc-read-only");
    expect(result.stdout).toContain("no-shadow");
    expect(result.stdout).toContain("no-root");
    expect(result.stdout).toContain("tcp-refused");
    expect(result.stdout).toContain("writable");
    expect(result.stdout).not.toContain("eth");
    expect(result.stdout).not.toContain(CANARY);
    expect(connections).toBe(0);
  });

  it("frees the container's memory while hibernated and refuses to hibernate with calls in flight", async () => {
    expect(await sandbox.getMemoryBytes()).toBeGreaterThan(0);
    const slow = run("sleep 2; echo done");
    // The exec is in flight once the agent answers a later call (calls are concurrent).
    await run("true");
    const busy = await sandbox.hibernate().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(busy).toBeInstanceOf(SandboxError);
    expect(busy).toMatchObject({ code: "sandbox_busy" });
    expect((await slow).stdout).toBe("done\n");

    const containerBefore = sandbox.containerId;
    await sandbox.hibernate();
    expect(sandbox.state).toBe("hibernated");
    expect(await sandbox.getMemoryBytes()).toBeUndefined();
    expect(sandbox.checkpointBytes).toBeGreaterThan(0);
    const runcContainers = await readdir(join(root, "state", "runc"));
    expect(runcContainers).not.toContain(containerBefore);

    const resumed = await sandbox.resume();
    expect(resumed).toMatchObject({ wasSuspended: true, from: "hibernated" });
    expect(sandbox.containerId).not.toBe(containerBefore);
    expect((await run("echo back")).stdout).toBe("back\n");
  }, 180_000);

  it("reaps orphaned commands (no zombies left by a timed-out command)", async () => {
    const timedOut = await sandbox.sandbox.exec(
      { command: "sleep 60 & sleep 60 & wait", timeoutMs: 300 },
      new AbortController().signal,
    );
    expect(timedOut.isTimedOut).toBe(true);
    const zombies = await run(
      "for i in $(seq 100); do n=$(grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l); [ $n = 0 ] && break; sleep 0.05; done; echo $n",
    );
    expect(zombies.stdout).toBe("0\n");
    expect((await run("cat /proc/1/comm")).stdout).toBe("bash\n");
  });

  it("suspends with runc pause and resumes on the next call", async () => {
    await run("sleep 1000 > /dev/null 2>&1 & echo $! > paused.pid");
    await sandbox.suspend();
    expect(sandbox.state).toBe("standby");
    const result = await run("[ -d /proc/$(cat paused.pid) ] && echo alive");
    expect(result.stdout).toBe("alive\n");
    expect(sandbox.state).toBe("running");
  }, 120_000);

  it("leaves no container or bundle behind after destroy", async () => {
    const other = await provider.create({ sessionId: "o", orgId: "o", workspaceDir: join(root, "other") });
    await other.hibernate();
    await other.destroy();
    expect(other.state).toBe("dead");
    expect(await readdir(join(root, "state"))).not.toContain(other.id);
    const containers = await readdir(join(root, "state", "runc"));
    expect(containers.filter((name) => name.startsWith(other.id))).toEqual([]);
  }, 180_000);
});
