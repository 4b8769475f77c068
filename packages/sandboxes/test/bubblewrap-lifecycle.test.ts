/**
 * Limits, suspend/resume, snapshots, mounts, env, egress and idempotency of the bubblewrap
 * provider against the real kernel. Needs root (cgroups, loop mounts), as in CI.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecRequest, ExecResult, Sandbox } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BubblewrapSandbox,
  type BubblewrapSandboxProvider,
  createBubblewrapSandboxProvider,
  createLocalDirectoryBlobStore,
  isMountPoint,
} from "../src/index.js";

const isRoot = process.getuid?.() === 0;
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const run = (sandbox: Sandbox, command: string, extra: Partial<ExecRequest> = {}): Promise<ExecResult> =>
  sandbox.exec({ command, timeoutMs: 30_000, ...extra }, new AbortController().signal);

describe.skipIf(!isRoot)("bubblewrap lifecycle", () => {
  let root: string;
  let provider: BubblewrapSandboxProvider;
  let count = 0;
  const logged: string[] = [];

  const workspace = () => {
    count += 1;
    return join(root, `workspace-${count}`);
  };
  const create = (options: Partial<Parameters<BubblewrapSandboxProvider["create"]>[0]> = {}) =>
    provider.create({ sessionId: `s${count}`, orgId: "o1", workspaceDir: workspace(), ...options });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "outrig-lifecycle-"));
    provider = createBubblewrapSandboxProvider({
      blobStore: createLocalDirectoryBlobStore(join(root, "blobs")),
      log: (line) => logged.push(line),
    });
  });

  afterAll(async () => {
    await provider?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  describe("suspend and resume", () => {
    it("keeps a background process and in-memory state across suspend → resume, with no CPU while suspended", async () => {
      const handle = await create();
      const { sandbox } = handle;
      // A counter loop whose value lives only in bash's memory, written out every 10 ms.
      await run(sandbox, "sleep 1000 & echo $! > pid");
      await run(
        sandbox,
        '(n=0; token=$RANDOM$RANDOM; while true; do n=$((n+1)); echo "$token $n" > counter.tmp; mv counter.tmp counter; sleep 0.01; done) > /dev/null 2>&1 & echo started',
      );
      const readCounter = async () =>
        (await readFile(join(handle.workspaceDir, "counter"), "utf8")).trim().split(" ");
      await expect
        .poll(async () => Number((await readCounter().catch(() => ["", "0"]))[1]), { timeout: 5000 })
        .toBeGreaterThan(3);

      await handle.suspend();
      expect(handle.state).toBe("standby");
      const frozen = await readCounter();
      // Cgroup CPU time must not move while frozen; the counter file must not change either.
      const cpuBefore = await readFile(`/proc/${handle.hostPid}/stat`, "utf8");
      await new Promise((resolve) => setTimeout(resolve, 300)); // the interval we observe standby over
      expect(await readCounter()).toEqual(frozen);
      expect(await readFile(`/proc/${handle.hostPid}/stat`, "utf8")).toBe(cpuBefore);

      const resumed = await handle.resume();
      expect(resumed.wasSuspended).toBe(true);
      expect(resumed.latencyMs).toBeGreaterThanOrEqual(0);
      expect(handle.state).toBe("running");
      // Double resume is a no-op.
      expect(await handle.resume()).toEqual({ latencyMs: 0, wasSuspended: false });

      const state = await run(sandbox, 'kill -0 "$(cat pid)" && echo alive');
      expect(state.stdout).toBe("alive\n");
      await expect
        .poll(async () => Number((await readCounter())[1]), { timeout: 5000 })
        .toBeGreaterThan(Number(frozen[1]));
      expect((await readCounter())[0]).toBe(frozen[0]); // same process, same token
      await handle.destroy();
    });

    it("resumes transparently on the next call, also through a handle view taken before suspend", async () => {
      const handle = await create();
      const staleView = handle.sandbox;
      await handle.suspend();
      await handle.suspend(); // a second suspend is a no-op
      expect((await run(staleView, "echo back")).stdout).toBe("back\n");
      expect(handle.state).toBe("running");
      await handle.suspend();
      await staleView.writeFile("/workspace/a.txt", encode("x"));
      expect(handle.state).toBe("running");
      await handle.suspend();
      await handle.destroy(); // destroying a frozen sandbox does not hang
      expect(handle.state).toBe("dead");
    });

    it("cancels an exec that was running when the sandbox was suspended", async () => {
      const handle = await create();
      const controller = new AbortController();
      const execution = handle.sandbox.exec(
        { command: "touch started; sleep 60", timeoutMs: 60_000 },
        controller.signal,
      );
      await expect
        .poll(() =>
          readFile(join(handle.workspaceDir, "started")).then(
            () => true,
            () => false,
          ),
        )
        .toBe(true);
      await handle.suspend();
      const reason = new Error("user cancelled");
      controller.abort(reason);
      await expect(execution).rejects.toBe(reason);
      expect(handle.state).toBe("running");
      await handle.destroy();
    });
  });

  describe("limits", () => {
    it("reports a memory limit hit as a clear exec result and stays usable", async () => {
      const handle = await create({ limits: { memoryBytes: 96 * 1024 * 1024 } });
      const result = await run(handle.sandbox, "head -c 400m /dev/zero | tail > /dev/null; echo after");
      expect(result.limitExceeded).toBe("memory");
      expect(result.stderr).toContain("memory limit was exceeded");
      expect(handle.isAlive()).toBe(true);
      expect((await run(handle.sandbox, "echo still here")).stdout).toBe("still here\n");
      await handle.destroy();
    });

    it("contains a fork bomb with the pids limit and still answers", async () => {
      const handle = await create({ limits: { pids: 64 } });
      const result = await run(handle.sandbox, "bomb() { bomb | bomb & }; bomb; sleep 1; echo done", {
        timeoutMs: 5000,
      });
      expect(result.limitExceeded).toBe("pids");
      expect(result.stderr).toContain("process limit was reached");
      expect((await run(handle.sandbox, "echo alive")).stdout).toBe("alive\n");
      await handle.destroy();
    });

    it("clears a fork bomb left by an earlier command and then runs the next command", async () => {
      const handle = await create({ limits: { pids: 64 } });
      // The bomb starts in its own session after the command has returned, so only the next call finds the
      // limit full. It forks sleepers that never exit, so once the kernel has refused it a fork the table
      // stays full (a `bomb | bomb &` bomb frees slots as its shells die, and on a busy machine the next
      // command could start in one and meet the bomb mid-run instead: a different path).
      const started = await run(
        handle.sandbox,
        "setsid bash -c 'sleep 0.3; while :; do sleep 1000 & done' >/dev/null 2>&1 & echo started",
      );
      expect(started.stdout).toBe("started\n");
      await waitForRefusedFork(handle.id);
      const result = await run(handle.sandbox, "echo alive");
      expect(result.stdout).toBe("alive\n");
      expect(result.limitExceeded).toBe("pids");
      expect(result.stderr).toContain("every running command in the sandbox was killed");
      expect((await run(handle.sandbox, "echo again")).stdout).toBe("again\n");
      await handle.destroy();
    });

    it("limits CPU with a quota", async () => {
      const handle = await create({ limits: { cpus: 0.2 } });
      // One second of a busy loop; the second line of `times` is the CPU time its children used.
      const result = await run(handle.sandbox, "timeout 1 sh -c 'while :; do :; done'; times");
      const [user = "", system = ""] = (result.stdout.trim().split("\n")[1] ?? "").split(" ");
      const seconds = (text: string) => {
        const match = /(\d+)m([\d.]+)s/.exec(text);
        return Number(match?.[1]) * 60 + Number(match?.[2]);
      };
      const cpuSeconds = seconds(user) + seconds(system);
      expect(cpuSeconds).toBeGreaterThan(0.05);
      expect(cpuSeconds).toBeLessThan(0.5); // unlimited, it would be about 1 s
      await handle.destroy();
    });

    it("fails writes past the disk quota with ENOSPC text, for files and for commands", async () => {
      const workspaceDir = workspace();
      await mkdir(workspaceDir, { recursive: true });
      await writeFile(join(workspaceDir, "existing.txt"), "kept");
      const handle = await provider.create({
        sessionId: "quota",
        orgId: "o1",
        workspaceDir,
        limits: { diskBytes: 8 * 1024 * 1024 },
      });
      expect(isMountPoint(workspaceDir)).toBe(true);
      expect(decode(await handle.sandbox.readFile("/workspace/existing.txt"))).toBe("kept");
      const result = await run(handle.sandbox, "head -c 20m /dev/zero > big.bin");
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr).toContain("No space left on device");
      expect(result.limitExceeded).toBe("disk");
      await expect(
        handle.sandbox.writeFile("/workspace/more.bin", new Uint8Array(1024 * 1024)),
      ).rejects.toThrow(/ENOSPC|no space/i);
      await run(handle.sandbox, "rm big.bin");
      await handle.destroy();
      expect(isMountPoint(workspaceDir)).toBe(false);
    });
  });

  describe("mounts, env and egress", () => {
    it("shows read-only mounts with live host updates, and extra env", async () => {
      const memories = join(root, "memories");
      await mkdir(memories, { recursive: true });
      await writeFile(join(memories, "one.md"), "first");
      const handle = await create({
        readOnlyMounts: [{ hostPath: memories, sandboxPath: "/memories" }],
        env: { OUTRIG_SESSION: "s-42" },
      });
      expect((await run(handle.sandbox, "cat /memories/one.md")).stdout).toBe("first");
      const denied = await run(handle.sandbox, "echo x > /memories/two.md");
      expect(denied.exitCode).not.toBe(0);
      expect(denied.stderr).toContain("Read-only file system");
      await writeFile(join(memories, "two.md"), "second");
      await writeFile(join(memories, "one.md"), "updated");
      expect((await run(handle.sandbox, "cat /memories/two.md /memories/one.md")).stdout).toBe(
        "secondupdated",
      );
      expect((await run(handle.sandbox, 'printf %s "$OUTRIG_SESSION"')).stdout).toBe("s-42");
      expect((await run(handle.sandbox, 'printf %s "$HTTP_PROXY"')).stdout).toBe("");
      await handle.destroy();
    });

    it("bridges 127.0.0.1:3128 to the egress socket only when configured", async () => {
      const socketDir = join(root, "egress");
      await mkdir(socketDir, { recursive: true });
      const socketPath = join(socketDir, "proxy.sock");
      const requests: string[] = [];
      const server: Server = createServer((request, response) => {
        requests.push(`${request.method} ${request.url}`);
        response.end("from-proxy");
      });
      await new Promise<void>((resolve) => server.listen(socketPath, resolve));
      await chmod(socketPath, 0o666);
      try {
        const handle = await create({ egressSocketPath: socketPath });
        const result = await run(
          handle.sandbox,
          'printf %s "$HTTP_PROXY "; exec 3<>/dev/tcp/127.0.0.1/3128; printf "GET http://example.test/x HTTP/1.0\\r\\nHost: example.test\\r\\n\\r\\n" >&3; cat <&3 | tail -n 1',
        );
        expect(result.stdout).toBe("http://127.0.0.1:3128 from-proxy");
        expect(requests).toEqual(["GET http://example.test/x"]);
        await handle.destroy();

        const isolated = await create();
        const refused = await run(isolated.sandbox, "exec 3<>/dev/tcp/127.0.0.1/3128 && echo connected");
        expect(refused.stdout).toBe("");
        expect(refused.exitCode).not.toBe(0);
        await isolated.destroy();
      } finally {
        server.close();
      }
    });
  });

  describe("idempotency", () => {
    it("runs an exec, a write and a remove once per key and replays the result", async () => {
      const handle = await create();
      const command = "echo line >> log.txt; wc -l < log.txt";
      const first = await run(handle.sandbox, command, { idempotencyKey: "call-1" });
      const second = await run(handle.sandbox, command, { idempotencyKey: "call-1" });
      expect(first).toMatchObject({ stdout: "1\n", isReplayed: false });
      expect(second).toMatchObject({ stdout: "1\n", isReplayed: true });
      expect((await run(handle.sandbox, command, { idempotencyKey: "call-2" })).stdout).toBe("2\n");
      expect((await run(handle.sandbox, command)).stdout).toBe("3\n");

      expect(await handle.writeFile("/workspace/w.txt", encode("one"), { idempotencyKey: "w" })).toEqual({
        isReplayed: false,
      });
      await handle.writeFile("/workspace/w.txt", encode("two"));
      expect(await handle.writeFile("/workspace/w.txt", encode("one"), { idempotencyKey: "w" })).toEqual({
        isReplayed: true,
      });
      expect(decode(await handle.readFile("/workspace/w.txt"))).toBe("two");
      expect(await handle.remove("/workspace/w.txt", { idempotencyKey: "r" })).toEqual({ isReplayed: false });
      expect(await handle.remove("/workspace/w.txt", { idempotencyKey: "r" })).toEqual({ isReplayed: true });
      await handle.destroy();
    });
  });

  describe("snapshots", () => {
    it("restores files, modes and symlinks into a new sandbox, incrementally", async () => {
      const handle = await create();
      const workspaceDir = handle.workspaceDir;
      await writeFile(join(workspaceDir, "script.sh"), "#!/bin/sh\necho hi\n");
      await chmod(join(workspaceDir, "script.sh"), 0o750);
      await mkdir(join(workspaceDir, "dir/nested"), { recursive: true });
      await writeFile(join(workspaceDir, "dir/nested/data.bin"), Buffer.from([0, 1, 2, 255]));
      await writeFile(join(workspaceDir, "dir/gone.txt"), "to delete");
      await writeFile(join(workspaceDir, "becomes-dir"), "file first");
      await symlink("dir/nested/data.bin", join(workspaceDir, "link"));
      // Incompressible bytes that never change: a full layer carries them, an increment must not.
      await writeFile(join(workspaceDir, "ballast.bin"), randomBytes(256 * 1024));
      const full = await handle.snapshot();
      expect(full.isIncremental).toBe(false);
      expect(full.entryCount).toBe(8);
      expect(full.sizeBytes).toBeGreaterThan(256 * 1024);

      await run(
        handle.sandbox,
        "echo changed >> script.sh; rm dir/gone.txt; rm becomes-dir; mkdir becomes-dir; echo in > becomes-dir/f; echo new > new.txt",
      );
      const increment = await handle.snapshot();
      expect(increment.isIncremental).toBe(true);
      expect(increment.sizeBytes).toBeGreaterThan(0);
      expect(increment.sizeBytes).toBeLessThan(16 * 1024);
      const unchanged = await handle.snapshot();
      expect(unchanged).toMatchObject({ key: increment.key, sizeBytes: 0 });
      await handle.destroy();

      const restoredDir = workspace();
      await provider.restoreWorkspace(increment, restoredDir);
      const restored = await provider.create({
        sessionId: "restored",
        orgId: "o1",
        workspaceDir: restoredDir,
      });
      const listing = await run(
        restored.sandbox,
        "find . -printf '%p %y %m %l\\n' | sort; cat script.sh; od -An -tu1 dir/nested/data.bin; cat link | od -An -tu1; cat becomes-dir/f",
      );
      expect(listing.stdout).toBe(
        [
          ". d 755 ",
          "./ballast.bin f 644 ",
          "./becomes-dir d 755 ",
          "./becomes-dir/f f 644 ",
          "./dir d 755 ",
          "./dir/nested d 755 ",
          "./dir/nested/data.bin f 644 ",
          "./link l 777 dir/nested/data.bin",
          "./new.txt f 644 ",
          "./script.sh f 750 ",
          "#!/bin/sh",
          "echo hi",
          "changed",
          "   0   1   2 255",
          "   0   1   2 255",
          "in",
          "",
        ].join("\n"),
      );
      expect(await readFile(join(restoredDir, "ballast.bin"))).toEqual(
        await readFile(join(workspaceDir, "ballast.bin")),
      );
      // The restored sandbox continues the chain: its next snapshot is incremental.
      await restored.sandbox.writeFile("/workspace/after.txt", encode("x"));
      expect((await restored.snapshot()).isIncremental).toBe(true);
      await restored.destroy();
    });
  });

  it("logs nothing about skipped limits when running as root", () => {
    // The orphan sweep may log what other (killed) test servers left behind; that is not a skip.
    expect(logged.filter((line) => !line.startsWith("outrig sandboxes: removed "))).toEqual([]);
  });
});

describe("bubblewrap without cgroups", () => {
  it("skips limits with one log line and rejects suspend clearly", async () => {
    const root = await mkdtemp(join(tmpdir(), "outrig-nocgroup-"));
    const lines: string[] = [];
    const provider = createBubblewrapSandboxProvider({
      cgroupRoot: join(root, "no-cgroupfs"),
      log: (line) => lines.push(line),
    });
    try {
      const handles: BubblewrapSandbox[] = [];
      for (const index of [1, 2]) {
        handles.push(
          await provider.create({
            sessionId: `n${index}`,
            orgId: "o1",
            workspaceDir: join(root, `w${index}`),
            limits: { memoryBytes: 64 * 1024 * 1024 },
          }),
        );
      }
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("limits and suspend are unavailable");
      const [first] = handles;
      expect(first?.canSuspend).toBe(false);
      await expect(first?.suspend()).rejects.toMatchObject({ code: "sandbox_unsupported" });
      expect((await run(first?.sandbox as Sandbox, "echo ok")).stdout).toBe("ok\n");
    } finally {
      await provider.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

/** Waits until the pids cgroup of sandbox `id` (v1 or v2) records a refused fork (`pids.events` max > 0). */
async function waitForRefusedFork(id: string): Promise<void> {
  const candidates = async (): Promise<string[]> => {
    const found: string[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > 4) return;
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const child = join(dir, entry.name);
        if (entry.name === id) found.push(child);
        else await walk(child, depth + 1);
      }
    };
    // cgroup v1 keeps the pids controller in its own hierarchy; v2 has one tree.
    const isV1 = (await readdir("/sys/fs/cgroup/pids").catch(() => undefined)) !== undefined;
    await walk(isV1 ? "/sys/fs/cgroup/pids" : "/sys/fs/cgroup", 0);
    return found;
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const dir of await candidates()) {
      const events = await readFile(join(dir, "pids.events"), "utf8").catch(() => "");
      if (Number(/^max (\d+)/m.exec(events)?.[1] ?? 0) > 0) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sandbox ${id}: no refused fork recorded in its pids cgroup within 60 s`);
}
