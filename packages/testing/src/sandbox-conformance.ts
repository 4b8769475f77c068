/**
 * The shared test suite every SandboxProvider must pass. Call it from a test file of the provider's
 * package; it registers Vitest tests. Sandboxes must run bash and coreutils and expose /proc.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type ExecRequest,
  type ExecResult,
  FileError,
  type Sandbox,
  SandboxError,
  type SandboxHandle,
  type SandboxProvider,
  type SnapshotRef,
} from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const EXEC_TIMEOUT_MS = 20_000;

/** Shell snippet that prints "alive" or "gone" for the pid stored in the file named by $1. */
const PROCESS_STATE_SCRIPT = `pid=$(cat "$1"); state=$(awk '/^State:/ {print $2}' /proc/$pid/status 2>/dev/null); if [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]; then echo alive; else echo gone; fi`;

/** Bytes that are not valid UTF-8, so a text round trip would corrupt them. */
function binarySample(): Uint8Array {
  const bytes = new Uint8Array(512);
  for (let index = 0; index < bytes.length; index += 1) bytes[index] = (index * 7 + 3) % 256;
  bytes.set([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80], 0);
  return bytes;
}

function encode(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

/** Optional provider capabilities the lifecycle part of the suite exercises. */
export interface SandboxConformanceLifecycle {
  /** Unpacks a snapshot taken with `handle.snapshot()` into a fresh workspace directory. */
  restoreWorkspace?(ref: SnapshotRef, directory: string): Promise<void>;
  /**
   * The provider's handles can hibernate (CRIU checkpoint to disk) and must keep processes across it.
   * Only providers that declare it get the hibernate tests.
   */
  hibernate?: boolean;
}

/**
 * Registers the conformance tests for `createProvider` under `describe(name)`. The provider is
 * created once and closed after the suite; the suite creates its own temporary workspace dirs.
 * Handles with `suspend`/`resume` and `snapshot` also get the lifecycle tests.
 */
export function describeSandboxProviderConformance(
  name: string,
  createProvider: () => Promise<SandboxProvider> | SandboxProvider,
  lifecycle: SandboxConformanceLifecycle = {},
): void {
  describe(`${name}: SandboxProvider conformance`, () => {
    let provider: SandboxProvider;
    let root: string;
    let shared: SandboxHandle;
    let sandbox: Sandbox;
    let workspaceCount = 0;
    let directoryCount = 0;

    const createSandbox = async (): Promise<SandboxHandle> => {
      workspaceCount += 1;
      return provider.create({
        sessionId: `conformance-${workspaceCount}`,
        orgId: "conformance",
        workspaceDir: join(root, `workspace-${workspaceCount}`),
      });
    };
    /** A fresh directory inside the shared sandbox's /workspace, so tests do not see each other. */
    const freshDirectory = async (): Promise<string> => {
      directoryCount += 1;
      const path = `/workspace/test-${directoryCount}`;
      await sandbox.writeFile(`${path}/.keep`, new Uint8Array());
      await sandbox.remove(`${path}/.keep`);
      return path;
    };
    const run = (
      request: Partial<ExecRequest> & { command: string },
      target: Sandbox = sandbox,
    ): Promise<ExecResult> =>
      target.exec({ timeoutMs: EXEC_TIMEOUT_MS, ...request }, new AbortController().signal);

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), "outrig-sandbox-conformance-"));
      provider = await createProvider();
      shared = await createSandbox();
      sandbox = shared.sandbox;
    });

    afterAll(async () => {
      await provider?.close();
      if (root) await rm(root, { recursive: true, force: true });
    });

    it("creates a live sandbox with an id", () => {
      expect(shared.id).toEqual(expect.any(String));
      expect(shared.id.length).toBeGreaterThan(0);
      expect(shared.isAlive()).toBe(true);
    });

    it("runs a command and returns stdout, stderr and the exit code", async () => {
      const result = await run({ command: "echo out; echo err >&2; exit 0" });
      expect(result).toMatchObject({
        exitCode: 0,
        signal: null,
        stdout: "out\n",
        stderr: "err\n",
        isTimedOut: false,
        isTruncated: false,
      });
      expect(result.durationMs).toBeGreaterThanOrEqual(0);
    });

    it("reports a non-zero exit code as a result, not an exception", async () => {
      const result = await run({ command: "echo before; exit 3" });
      expect(result.exitCode).toBe(3);
      expect(result.stdout).toBe("before\n");
      expect((await run({ command: "false" })).exitCode).toBe(1);
    });

    it("kills the whole process group on timeout, background children included", async () => {
      const directory = await freshDirectory();
      const result = await run({
        command: `sleep 60 & echo $! > ${directory}/background.pid; wait`,
        timeoutMs: 500,
      });
      expect(result.isTimedOut).toBe(true);
      expect(result.exitCode).toBeNull();
      expect(result.signal).toBe("SIGKILL");
      const state = await run({ command: `set -- ${directory}/background.pid; ${PROCESS_STATE_SCRIPT}` });
      expect(state.stdout.trim()).toBe("gone");
    });

    it("kills the process group and rejects when the abort signal fires", async () => {
      const directory = await freshDirectory();
      const controller = new AbortController();
      const execution = sandbox.exec(
        {
          command: `sleep 60 & echo $! > ${directory}/background.pid; touch ${directory}/started; wait`,
          timeoutMs: 60_000,
        },
        controller.signal,
      );
      const started = await run({
        command: `for attempt in $(seq 1000); do [ -e ${directory}/started ] && exit 0; sleep 0.01; done; exit 1`,
      });
      expect(started.exitCode).toBe(0);
      const reason = new Error("cancelled by the test");
      controller.abort(reason);
      expect(await rejection(execution)).toBe(reason);
      const state = await run({ command: `set -- ${directory}/background.pid; ${PROCESS_STATE_SCRIPT}` });
      expect(state.stdout.trim()).toBe("gone");
    });

    it("rejects at once when the signal is already aborted", async () => {
      const controller = new AbortController();
      controller.abort(new Error("already"));
      await expect(
        sandbox.exec({ command: "true", timeoutMs: EXEC_TIMEOUT_MS }, controller.signal),
      ).rejects.toThrow("already");
    });

    it("truncates output beyond maxOutputBytes per stream and says so", async () => {
      const result = await run({
        command: "head -c 100000 /dev/zero | tr '\\0' a; head -c 50 /dev/zero | tr '\\0' b >&2",
        maxOutputBytes: 1000,
      });
      expect(result.stdout).toBe("a".repeat(1000));
      expect(result.stderr).toBe("b".repeat(50));
      expect(result.isTruncated).toBe(true);
      expect(result.exitCode).toBe(0);
      const small = await run({ command: "echo short", maxOutputBytes: 1000 });
      expect(small.isTruncated).toBe(false);
    });

    it("adds the requested environment variables", async () => {
      const result = await run({
        command: 'printf "%s|%s" "$OUTRIG_FIRST" "$OUTRIG_SECOND"',
        env: { OUTRIG_FIRST: "one two", OUTRIG_SECOND: "$(not expanded)" },
      });
      expect(result.stdout).toBe("one two|$(not expanded)");
      expect((await run({ command: 'printf "%s" "$OUTRIG_FIRST"' })).stdout).toBe("");
    });

    it("runs in /workspace by default and in the requested cwd", async () => {
      expect((await run({ command: "pwd" })).stdout).toBe("/workspace\n");
      const directory = await freshDirectory();
      await sandbox.writeFile(`${directory}/nested/marker.txt`, encode("x"));
      const result = await run({ command: "pwd; ls", cwd: `${directory}/nested` });
      expect(result.stdout).toBe(`${directory}/nested\nmarker.txt\n`);
    });

    it("round-trips binary file contents byte for byte", async () => {
      const directory = await freshDirectory();
      const bytes = binarySample();
      await sandbox.writeFile(`${directory}/data.bin`, bytes);
      expect(Array.from(await sandbox.readFile(`${directory}/data.bin`))).toEqual(Array.from(bytes));
      const size = await run({ command: `wc -c < ${directory}/data.bin` });
      expect(size.stdout.trim()).toBe(String(bytes.length));
      await sandbox.writeFile(`${directory}/data.bin`, encode("shorter"));
      expect(decode(await sandbox.readFile(`${directory}/data.bin`))).toBe("shorter");
      await sandbox.writeFile(`${directory}/empty`, new Uint8Array());
      expect((await sandbox.readFile(`${directory}/empty`)).length).toBe(0);
    });

    it("creates parent directories on write", async () => {
      const directory = await freshDirectory();
      await sandbox.writeFile(`${directory}/a/b/c/file.txt`, encode("deep"));
      expect(decode(await sandbox.readFile(`${directory}/a/b/c/file.txt`))).toBe("deep");
      expect((await sandbox.stat(`${directory}/a/b`))?.kind).toBe("directory");
    });

    it("stats files and directories and resolves null for a missing path", async () => {
      const directory = await freshDirectory();
      const before = Date.now();
      await sandbox.writeFile(`${directory}/file.txt`, encode("12345"));
      const file = await sandbox.stat(`${directory}/file.txt`);
      expect(file).toMatchObject({ kind: "file", size: 5 });
      // mtime comes from the sandbox's clock and file system; allow coarse timestamps.
      expect(file?.mtimeMs).toBeGreaterThan(before - 5_000);
      expect((await sandbox.stat(directory))?.kind).toBe("directory");
      expect(await sandbox.stat(`${directory}/missing.txt`)).toBeNull();
      expect(await sandbox.stat(`${directory}/missing/deeper.txt`)).toBeNull();
    });

    it("lists a directory flat and recursively, with relative paths, and honors the limit", async () => {
      const directory = await freshDirectory();
      await sandbox.writeFile(`${directory}/top.txt`, encode("top"));
      await sandbox.writeFile(`${directory}/sub/inner.txt`, encode("inner!"));
      await sandbox.writeFile(`${directory}/sub/deeper/leaf.txt`, encode("x"));

      const flat = await sandbox.list(directory);
      expect(flat.map((entry) => entry.path).sort()).toEqual(["sub", "top.txt"]);
      expect(flat.find((entry) => entry.path === "top.txt")).toMatchObject({ kind: "file", size: 3 });
      expect(flat.find((entry) => entry.path === "sub")?.kind).toBe("directory");

      const recursive = await sandbox.list(directory, { recursive: true });
      expect(recursive.map((entry) => entry.path).sort()).toEqual([
        "sub",
        "sub/deeper",
        "sub/deeper/leaf.txt",
        "sub/inner.txt",
        "top.txt",
      ]);
      expect(recursive.find((entry) => entry.path === "sub/inner.txt")).toMatchObject({
        kind: "file",
        size: 6,
      });
      for (const entry of recursive) expect(entry.mtimeMs).toBeGreaterThan(0);

      expect(await sandbox.list(directory, { recursive: true, limit: 2 })).toHaveLength(2);
    });

    it("lists symlinks as symlinks without following them out", async () => {
      const directory = await freshDirectory();
      await run({ command: `ln -s /usr ${directory}/outside` });
      const entries = await sandbox.list(directory, { recursive: true });
      expect(entries).toEqual([expect.objectContaining({ path: "outside", kind: "symlink" })]);
    });

    it("removes files and directories", async () => {
      const directory = await freshDirectory();
      await sandbox.writeFile(`${directory}/gone.txt`, encode("bye"));
      await sandbox.remove(`${directory}/gone.txt`);
      expect(await sandbox.stat(`${directory}/gone.txt`)).toBeNull();
      await sandbox.writeFile(`${directory}/tree/leaf.txt`, encode("bye"));
      await sandbox.remove(`${directory}/tree`);
      expect(await sandbox.stat(`${directory}/tree`)).toBeNull();
    });

    it("raises FileErrors with stable codes", async () => {
      const directory = await freshDirectory();
      await sandbox.writeFile(`${directory}/file.txt`, encode("x"));
      // Thunks, so no call rejects before the loop awaits it (that would be an unhandled rejection).
      const cases: Array<[() => Promise<unknown>, string]> = [
        [() => sandbox.readFile(`${directory}/missing.txt`), "not_found"],
        [() => sandbox.readFile(directory), "is_directory"],
        [() => sandbox.remove(`${directory}/missing.txt`), "not_found"],
        [() => sandbox.list(`${directory}/missing`), "not_found"],
        [() => sandbox.list(`${directory}/file.txt`), "not_directory"],
        [() => sandbox.writeFile(directory, encode("x")), "is_directory"],
      ];
      for (const [call, code] of cases) {
        const error = await rejection(call());
        expect(error).toBeInstanceOf(FileError);
        expect(error).toMatchObject({ code });
        expect((error as FileError).path).toEqual(expect.stringContaining(directory));
      }
    });

    it("runs execs concurrently", async () => {
      const directory = await freshDirectory();
      // Each command waits for the other's marker: this only finishes if both run at the same time.
      const waitFor = (mine: string, theirs: string) =>
        run({
          command: `touch ${directory}/${mine}; for attempt in $(seq 1000); do [ -e ${directory}/${theirs} ] && echo ${mine} && exit 0; sleep 0.01; done; exit 1`,
        });
      const [first, second, ...rest] = await Promise.all([
        waitFor("first", "second"),
        waitFor("second", "first"),
        ...Array.from({ length: 6 }, (_, index) => run({ command: `echo ${index}` })),
      ]);
      expect(first).toMatchObject({ exitCode: 0, stdout: "first\n" });
      expect(second).toMatchObject({ exitCode: 0, stdout: "second\n" });
      expect(rest.map((result) => result.stdout)).toEqual(["0\n", "1\n", "2\n", "3\n", "4\n", "5\n"]);
    });

    it("fails every call with a SandboxError after destroy, and destroy is idempotent", async () => {
      const handle = await createSandbox();
      expect((await run({ command: "echo alive" }, handle.sandbox)).stdout).toBe("alive\n");
      await handle.destroy();
      expect(handle.isAlive()).toBe(false);
      const calls = [
        run({ command: "true" }, handle.sandbox),
        handle.sandbox.readFile("/workspace/x"),
        handle.sandbox.writeFile("/workspace/x", encode("x")),
        handle.sandbox.stat("/workspace"),
        handle.sandbox.list("/workspace"),
        handle.sandbox.remove("/workspace/x"),
      ];
      for (const call of calls) {
        const error = await rejection(call);
        expect(error).toBeInstanceOf(SandboxError);
        expect(error).toMatchObject({ code: "sandbox_unavailable" });
      }
      await handle.destroy();
      expect(handle.isAlive()).toBe(false);
    });

    it("rejects an exec in flight when the sandbox is destroyed", async () => {
      const handle = await createSandbox();
      const outcome = rejection(run({ command: "sleep 60" }, handle.sandbox));
      await run({ command: "true" }, handle.sandbox);
      await handle.destroy();
      const error = await outcome;
      expect(error).toBeInstanceOf(SandboxError);
    });

    it("gives two sandboxes separate /workspace directories", async () => {
      const other = await createSandbox();
      try {
        await sandbox.writeFile("/workspace/only-in-shared.txt", encode("mine"));
        await other.sandbox.writeFile("/workspace/only-in-other.txt", encode("theirs"));
        expect(await other.sandbox.stat("/workspace/only-in-shared.txt")).toBeNull();
        expect(await sandbox.stat("/workspace/only-in-other.txt")).toBeNull();
        const listing = await run({ command: "ls -A /workspace" }, other.sandbox);
        expect(listing.stdout).toBe("only-in-other.txt\n");
      } finally {
        await other.destroy();
      }
    });

    describe("lifecycle (when the handle has suspend/resume/snapshot)", () => {
      it("keeps background and in-memory processes across suspend → resume; a stale view and a double resume work", async (context) => {
        const handle = await createSandbox();
        try {
          if (!handle.suspend || !handle.resume) return context.skip();
          const view = handle.sandbox;
          await run({ command: "sleep 1000 > /dev/null 2>&1 & echo $! > sleeper.pid" }, view);
          await run(
            {
              command:
                "(value=$RANDOM$RANDOM; echo $value > expected; while true; do echo $value > actual.tmp; mv actual.tmp actual; sleep 0.05; done) > /dev/null 2>&1 & echo $! > holder.pid",
            },
            view,
          );
          await handle.suspend();
          expect(handle.state ?? "standby").toBe("standby");
          const resumed = await handle.resume();
          expect(resumed.wasSuspended).toBe(true);
          expect((await handle.resume()).wasSuspended).toBe(false);
          for (const file of ["sleeper.pid", "holder.pid"]) {
            const state = await run({ command: `set -- /workspace/${file}; ${PROCESS_STATE_SCRIPT}` }, view);
            expect(state.stdout.trim()).toBe("alive");
          }
          await handle.suspend();
          // The view taken before suspend resumes the sandbox transparently.
          const check = await run(
            {
              command:
                "rm -f actual; for i in $(seq 200); do [ -e actual ] && break; sleep 0.01; done; cmp expected actual && echo same",
            },
            view,
          );
          expect(check.stdout).toBe("same\n");
          expect(handle.state ?? "running").toBe("running");
        } finally {
          await handle.destroy();
        }
      });

      it("keeps background and in-memory processes across hibernate → resume; a stale view, a double resume and an implicit resume work", async (context) => {
        if (!lifecycle.hibernate) return context.skip();
        const handle = await createSandbox();
        try {
          if (!handle.hibernate || !handle.resume)
            throw new Error("the provider declares hibernate, but its handle has no hibernate()/resume()");
          const view = handle.sandbox;
          const id = handle.id;
          await run({ command: "sleep 1000 > /dev/null 2>&1 & echo $! > sleeper.pid" }, view);
          // The value lives only in the subshell's memory; it rewrites `actual` from it forever.
          await run(
            {
              command:
                "(value=$RANDOM$RANDOM; echo $value > expected; while true; do echo $value > actual.tmp; mv actual.tmp actual; sleep 0.05; done) > /dev/null 2>&1 & echo $! > holder.pid",
            },
            view,
          );
          const sameValue =
            "rm -f actual; for i in $(seq 500); do [ -e actual ] && break; sleep 0.01; done; cmp expected actual && echo same";

          await handle.hibernate();
          expect(handle.state ?? "hibernated").toBe("hibernated");
          expect(handle.isAlive()).toBe(true);
          const resumed = await handle.resume();
          expect(resumed).toMatchObject({ wasSuspended: true, from: "hibernated" });
          expect(resumed.latencyMs).toBeGreaterThan(0);
          expect((await handle.resume()).wasSuspended).toBe(false);
          expect(handle.id).toBe(id);
          // The view taken before hibernate still works (no stale connection).
          for (const file of ["sleeper.pid", "holder.pid"]) {
            const state = await run({ command: `set -- /workspace/${file}; ${PROCESS_STATE_SCRIPT}` }, view);
            expect(state.stdout.trim()).toBe("alive");
          }
          expect((await run({ command: sameValue }, view)).stdout).toBe("same\n");

          // Two resumes at once restore once.
          await handle.hibernate();
          const both = await Promise.all([handle.resume(), handle.resume()]);
          expect(both.filter((result) => result.wasSuspended)).toHaveLength(1);

          // A call on a hibernated sandbox restores it first.
          await handle.hibernate();
          expect((await run({ command: sameValue }, view)).stdout).toBe("same\n");
          expect(handle.state ?? "running").toBe("running");
          const state = await run(
            { command: `set -- /workspace/sleeper.pid; ${PROCESS_STATE_SCRIPT}` },
            view,
          );
          expect(state.stdout.trim()).toBe("alive");
        } finally {
          await handle.destroy();
        }
        // Three checkpoint/restore cycles: seconds each on a loaded machine.
      }, 240_000);

      it("fails calls on a hibernated sandbox after destroy", async (context) => {
        if (!lifecycle.hibernate) return context.skip();
        const handle = await createSandbox();
        await run({ command: "true" }, handle.sandbox);
        await handle.hibernate?.();
        await handle.destroy();
        expect(handle.isAlive()).toBe(false);
        const error = await rejection(run({ command: "true" }, handle.sandbox));
        expect(error).toBeInstanceOf(SandboxError);
        expect(error).toMatchObject({ code: "sandbox_unavailable" });
      }, 120_000);

      it("snapshots, destroys and restores the workspace into a new sandbox", async (context) => {
        const handle = await createSandbox();
        try {
          if (!handle.snapshot || !lifecycle.restoreWorkspace) return context.skip();
          await handle.sandbox.writeFile("/workspace/dir/data.bin", binarySample());
          await run({ command: "chmod 700 dir/data.bin; ln -s dir/data.bin link" }, handle.sandbox);
          const ref = await handle.snapshot();
          await handle.destroy();
          const directory = join(root, `restored-${workspaceCount}`);
          await lifecycle.restoreWorkspace(ref, directory);
          const restored = await provider.create({
            sessionId: "restored",
            orgId: "conformance",
            workspaceDir: directory,
          });
          try {
            expect(Array.from(await restored.sandbox.readFile("/workspace/dir/data.bin"))).toEqual(
              Array.from(binarySample()),
            );
            const listing = await run(
              { command: "stat -c '%a' dir/data.bin; readlink link" },
              restored.sandbox,
            );
            expect(listing.stdout).toBe("700\ndir/data.bin\n");
          } finally {
            await restored.destroy();
          }
        } finally {
          await handle.destroy();
        }
      });
    });
  });
}
