/** One running bubblewrap sandbox: the bwrap process tree and the agent connection inside it. */
import type { ChildProcess } from "node:child_process";
import { readdir, writeFile } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import {
  type DirEntry,
  type ExecRequest,
  type ExecResult,
  type FileCallOptions,
  type FileStat,
  fileErrorCodeOf,
  type ListOptions,
  type Sandbox,
  SandboxError,
  type SandboxHandle,
  type SandboxLimitKind,
  type SandboxLimits,
  type SandboxResumeResult,
  type SandboxState,
  type SnapshotRef,
} from "@outrig/core";
import type { SandboxCgroup } from "../cgroups/sandbox-cgroup.js";
import type { WorkspaceSnapshotter } from "../snapshots/workspace-snapshotter.js";
import { type AgentConnection, AgentRequestError } from "./agent-connection.js";
import { toFileError } from "./to-file-error.js";

/** Memory figures of the agent process, read from its /proc/self/status. */
export interface SandboxAgentInfo {
  /** Pid inside the sandbox's pid namespace. */
  readonly pid: number;
  readonly rssBytes: number;
  /** Anonymous (private) resident memory; the node binary's file pages are shared between sandboxes. */
  readonly rssAnonBytes: number;
  readonly heapUsedBytes: number;
}

interface AgentExecResult extends ExecResult {
  readonly isCancelled: boolean;
}

/** What a file call that changes the workspace reports. */
export interface FileCallResult {
  /** True when an earlier call with the same idempotency key already did it. */
  readonly isReplayed: boolean;
}

const LIMIT_MESSAGES: Readonly<Record<SandboxLimitKind, string>> = {
  memory: "the sandbox memory limit was exceeded: the kernel's OOM killer killed a process",
  pids: "the sandbox process limit was reached: fork() failed",
  disk: "the workspace disk quota is full (No space left on device)",
};

export interface BubblewrapSandboxOptions {
  readonly id: string;
  readonly process: ChildProcess;
  readonly connection: AgentConnection;
  readonly maxFileBytes: number;
  /** Called once, after the bwrap process has exited (destroyed or died). */
  readonly onExit: (sandbox: BubblewrapSandbox) => void;
  /** The sandbox's cgroups (limits, freezer); absent when cgroups are unavailable. */
  readonly cgroup?: SandboxCgroup;
  readonly limits?: SandboxLimits;
  /** Host directory bound at /workspace. */
  readonly workspaceDir: string;
  /** Present when the provider has a BlobStore. */
  readonly snapshotter?: WorkspaceSnapshotter;
  /** Runs after the process tree is gone (cgroup removal, quota unmount). */
  readonly cleanup?: () => Promise<void>;
}

/** How long past a command's own timeout the agent may take to answer before it counts as hung. */
const AGENT_ANSWER_GRACE_MS = 15_000;
/** How long cleaning up after a fork bomb waits for the killed processes to be reaped. */
const REAP_WAIT_MS = 3_000;
const REAP_POLL_MS = 5;
/** The timeout assumed for an exec without one (the Bash tool's maximum). */
const EXEC_DEFAULT_TIMEOUT_MS = 600_000;

export class BubblewrapSandbox implements SandboxHandle {
  readonly id: string;
  /** The narrowed view for tools: file and process calls only, no lifecycle. */
  readonly sandbox: Sandbox;
  readonly #process: ChildProcess;
  readonly #connection: AgentConnection;
  readonly #maxFileBytes: number;
  readonly #exited: Promise<void>;
  readonly #cgroup: SandboxCgroup | undefined;
  readonly #limits: SandboxLimits;
  #snapshotter: WorkspaceSnapshotter | undefined;
  readonly #cleanup: (() => Promise<void>) | undefined;
  /** Host directory bound at /workspace (changes when a warm-pool sandbox is assigned to a session). */
  #workspaceDir: string;
  #hasExited = false;
  #isDestroyed = false;
  #isSuspended = false;
  /** Serializes suspend/resume transitions. */
  #transition: Promise<unknown> = Promise.resolve();
  #cleaned: Promise<void> | undefined;
  /** Host pids of bwrap and the agent: never killed when commands are cleaned up. */
  #corePids = new Set<number>();

  constructor(options: BubblewrapSandboxOptions) {
    this.id = options.id;
    this.#process = options.process;
    this.#connection = options.connection;
    this.#maxFileBytes = options.maxFileBytes;
    this.#cgroup = options.cgroup;
    this.#limits = options.limits ?? {};
    this.#snapshotter = options.snapshotter;
    this.#cleanup = options.cleanup;
    this.#workspaceDir = options.workspaceDir;
    this.#exited = new Promise((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.#hasExited) return;
        this.#hasExited = true;
        const reason = `bwrap exited with ${signal ?? `code ${code}`}`;
        const close = (detail: string) =>
          this.#connection.close(
            new SandboxError(
              "sandbox_unavailable",
              this.#isDestroyed
                ? `sandbox ${this.id} was destroyed`
                : `sandbox ${this.id} stopped (${detail})`,
            ),
          );
        if (this.#isDestroyed || !this.#cgroup) close(reason);
        else {
          // Say why when a limit killed the agent itself (e.g. the OOM killer picked it).
          void this.#cgroup.readOomKillCount().then(
            (count) => close(count > 0 ? `${reason}; ${LIMIT_MESSAGES.memory}` : reason),
            () => close(reason),
          );
        }
        options.onExit(this);
        // Died on its own: release its cgroups and quota mount now rather than at destroy().
        if (!this.#isDestroyed) this.#removeState().catch(() => {});
        resolve();
      };
      if (this.#process.exitCode !== null || this.#process.signalCode !== null) {
        onExit(this.#process.exitCode, this.#process.signalCode);
        return;
      }
      this.#process.once("exit", onExit);
      // A failed spawn (no pid) emits "error" and never "exit".
      this.#process.once("error", () => {
        if (this.#process.pid === undefined && !this.#hasExited) onExit(null, null);
      });
    });
    this.sandbox = Object.freeze({
      exec: (request: ExecRequest, signal: AbortSignal) => this.exec(request, signal),
      readFile: (path: string) => this.readFile(path),
      writeFile: async (path: string, data: Uint8Array, options?: FileCallOptions) => {
        await this.writeFile(path, data, options);
      },
      stat: (path: string) => this.stat(path),
      list: (path: string, options?: ListOptions) => this.list(path, options),
      remove: async (path: string, options?: FileCallOptions) => {
        await this.remove(path, options);
      },
    });
  }

  isAlive(): boolean {
    return !this.#hasExited && !this.#isDestroyed && !this.#connection.isClosed;
  }

  /** Host directory bound at /workspace. */
  get workspaceDir(): string {
    return this.#workspaceDir;
  }

  /**
   * Records that the bound host directory was renamed to `workspaceDir` (the bind mount follows the
   * directory) and snapshots now go through `snapshotter`. Used by the provider's assignWorkspace().
   */
  relocateWorkspace(workspaceDir: string, snapshotter: WorkspaceSnapshotter | undefined): void {
    this.#workspaceDir = workspaceDir;
    this.#snapshotter = snapshotter;
  }

  get state(): SandboxState {
    if (!this.isAlive()) return "dead";
    return this.#isSuspended ? "standby" : "running";
  }

  /** True when suspend() can freeze this sandbox (it has a freezer cgroup). */
  get canSuspend(): boolean {
    return this.#cgroup?.canFreeze === true;
  }

  /**
   * Freezes every process in the sandbox with the cgroup freezer: memory stays, CPU use stops.
   * Any later call resumes it first. A no-op when already suspended.
   */
  suspend(): Promise<void> {
    const next = this.#transition.then(async () => {
      if (this.#isSuspended) return;
      if (!this.isAlive()) throw new SandboxError("sandbox_unavailable", `sandbox ${this.id} is not running`);
      if (!this.#cgroup?.canFreeze)
        throw new SandboxError("sandbox_unsupported", "suspend needs cgroups (run the server as root)");
      this.#isSuspended = true;
      try {
        await this.#cgroup.freeze();
      } catch (error) {
        await this.#cgroup.thaw().catch(() => {});
        this.#isSuspended = false;
        throw error;
      }
    });
    this.#transition = next.catch(() => {});
    return next;
  }

  /** Thaws the sandbox; resolves with how long that took. A no-op when it is running. */
  resume(): Promise<SandboxResumeResult> {
    if (!this.#isSuspended) return this.#transition.then(() => this.#resumeNow());
    const next = this.#transition.then(() => this.#resumeNow());
    this.#transition = next.catch(() => {});
    return next;
  }

  async #resumeNow(): Promise<SandboxResumeResult> {
    if (!this.#isSuspended || !this.#cgroup) return { latencyMs: 0, wasSuspended: false };
    const startedAt = performance.now();
    await this.#cgroup.thaw();
    this.#isSuspended = false;
    return { latencyMs: performance.now() - startedAt, wasSuspended: true };
  }

  /**
   * Called once the agent is ready: remembers the bwrap and agent pids and gives them
   * oom_score_adj -999, so when the memory limit is hit the kernel kills the command that used the
   * memory, not the agent (the agent resets each command it starts to 0).
   */
  async protectCoreProcesses(): Promise<void> {
    if (!this.#cgroup) return;
    this.#corePids = new Set(await this.#cgroup.listPids());
    for (const pid of this.#corePids) await writeFile(`/proc/${pid}/oom_score_adj`, "-999").catch(() => {});
  }

  /** SIGKILLs every process in the sandbox except bwrap and the agent (after a fork bomb). */
  async #killCommands(): Promise<void> {
    if (!this.#cgroup) return;
    // A fork bomb forks faster than a kill loop: freeze the sandbox first so no process can fork,
    // SIGKILL every command, then thaw so the kills are delivered. The loop below mops up the rest.
    if (!this.#isSuspended) {
      const cgroup = this.#cgroup;
      // A freeze that times out still stops most forking; thaw in every case.
      await cgroup.freeze().catch(() => undefined);
      try {
        const strays = (await cgroup.listPids()).filter((pid) => !this.#corePids.has(pid));
        for (const pid of strays) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
      } finally {
        await cgroup.thaw().catch(() => undefined);
      }
    }
    // Killed processes stay charged to the pids limit until they are reaped, and the next command
    // cannot fork before then: kill what is left and wait until only bwrap's and the agent's own
    // threads are charged.
    const deadline = performance.now() + REAP_WAIT_MS;
    while (performance.now() < deadline) {
      const strays = (await this.#cgroup.listPids()).filter((pid) => !this.#corePids.has(pid));
      for (const pid of strays) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      if (strays.length === 0 && (await this.#cgroup.readPidsCurrent()) <= (await this.#countCoreTasks()))
        return;
      await delay(REAP_POLL_MS);
    }
  }

  /** Threads of bwrap and the agent (what the pids limit charges them). */
  async #countCoreTasks(): Promise<number> {
    let count = 0;
    for (const pid of this.#corePids) count += (await readdir(`/proc/${pid}/task`).catch(() => [])).length;
    return count;
  }

  /** Resumes a suspended sandbox before a call (transparent resume). */
  async #awake(): Promise<void> {
    if (this.#isSuspended) await this.resume();
  }

  /** Packs the workspace into the provider's BlobStore; incremental after the first snapshot. */
  snapshot(): Promise<SnapshotRef> {
    if (!this.#snapshotter)
      return Promise.reject(
        new SandboxError("sandbox_unsupported", "snapshots need a blobStore in the provider options"),
      );
    return this.#snapshotter.snapshot();
  }

  /** Memory charged to the sandbox's cgroup (every process in it, page cache included), or undefined. */
  async getMemoryBytes(): Promise<number | undefined> {
    return this.#cgroup?.readMemoryBytes();
  }

  /** The host pid of the outer bwrap process (for diagnostics and tests). */
  get hostPid(): number | undefined {
    return this.#process.pid;
  }

  /**
   * Runs `bash -c command` in a new process group. Resolves with the result, also for non-zero exits
   * and timeouts. When `signal` aborts, the process group is killed and the call rejects with
   * `signal.reason` once the agent confirms. A missing cwd rejects with a FileError.
   */
  exec(request: ExecRequest, signal: AbortSignal): Promise<ExecResult> {
    return this.#exec(request, signal, false);
  }

  async #exec(request: ExecRequest, signal: AbortSignal, isRetry: boolean): Promise<ExecResult> {
    signal.throwIfAborted();
    // Dead: reject at once (with the reason the connection recorded), before any cgroup I/O.
    if (this.#connection.isClosed) return this.#connection.request<ExecResult>("exec", {});
    await this.#awake();
    const counters = await this.#readLimitCounters();
    const id = this.#connection.nextId();
    const onAbort = () => {
      // A frozen agent cannot cancel: resume first (the run owner may have suspended mid-exec).
      this.#awake()
        .then(() => this.#connection.request("cancel", { target: id }))
        .catch(() => {
          // the agent is gone; the exec call itself rejects with sandbox_unavailable
        });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const watchdog = this.#watchAgent(request.timeoutMs);
    try {
      const result = await this.#connection.request<AgentExecResult>(
        "exec",
        {
          command: request.command,
          cwd: request.cwd,
          env: request.env,
          timeoutMs: request.timeoutMs,
          maxOutputBytes: request.maxOutputBytes,
          idempotencyKey: request.idempotencyKey,
        },
        id,
      );
      signal.throwIfAborted();
      const { isCancelled: _isCancelled, ...execResult } = result;
      if (execResult.isReplayed) return execResult;
      const limitExceeded = await this.#exceededLimit(counters, execResult);
      if (!limitExceeded) return execResult;
      // A fork bomb keeps the pids limit full after its shell returns: clear it out.
      if (limitExceeded === "pids") await this.#killCommands();
      const note = `outrig: ${LIMIT_MESSAGES[limitExceeded]}\n`;
      return {
        ...execResult,
        limitExceeded,
        stderr:
          execResult.stderr.endsWith("\n") || execResult.stderr === ""
            ? execResult.stderr + note
            : `${execResult.stderr}\n${note}`,
      };
    } catch (error) {
      if (error instanceof AgentRequestError && error.body.code === "EAGAIN" && this.#cgroup) {
        // The pids limit is full (e.g. a fork bomb left from an earlier command), so the command
        // never started: kill every command, run it once more, and tell the model what was killed.
        await this.#killCommands();
        if (!isRetry) {
          const retried = await this.#exec(request, signal, true);
          if (retried.limitExceeded === "pids") return retried;
          return {
            ...retried,
            limitExceeded: "pids",
            stderr: `outrig: ${LIMIT_MESSAGES.pids} before this command started; every running command in the sandbox was killed, then the command ran\n${retried.stderr}`,
          };
        }
        return {
          exitCode: 126,
          signal: null,
          stdout: "",
          stderr: `outrig: ${LIMIT_MESSAGES.pids}; every running command in the sandbox was killed\n`,
          isTimedOut: false,
          isTruncated: false,
          durationMs: 0,
          limitExceeded: "pids",
        };
      }
      if (error instanceof AgentRequestError) {
        if (fileErrorCodeOf(error.body.code) !== "io_error") throw toFileError(error, request.cwd ?? "");
        throw new SandboxError("sandbox_exec_failed", `exec failed: ${error.message}`, { cause: error });
      }
      throw error;
    } finally {
      clearTimeout(watchdog.timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * A command can stop or hang its own agent (`kill -STOP $PPID`); the agent then never answers, not
   * even at the command's timeout. Past that timeout plus a grace, the sandbox is destroyed (pending
   * calls reject with sandbox_unavailable) so the session goes on with a new one. A suspended sandbox
   * (frozen on purpose) is waited for instead.
   */
  #watchAgent(timeoutMs: number | undefined): { timer: NodeJS.Timeout | undefined } {
    const watchdog: { timer: NodeJS.Timeout | undefined } = { timer: undefined };
    const limitMs = (timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS) + AGENT_ANSWER_GRACE_MS;
    const arm = () => {
      watchdog.timer = setTimeout(() => {
        if (this.#isSuspended) return arm();
        this.#connection.close(
          new SandboxError(
            "sandbox_unavailable",
            `the sandbox agent did not answer within ${limitMs} ms (stopped or hung by a command); the sandbox was destroyed and the next call starts a new one`,
          ),
        );
        void this.destroy().catch(() => undefined);
      }, limitMs);
      watchdog.timer.unref?.();
    };
    arm();
    return watchdog;
  }

  async #readLimitCounters(): Promise<{ oomKills: number; pidsMax: number }> {
    // Only sandboxes with a memory or pids limit can hit one: skip the cgroup reads otherwise.
    const hasLimit = this.#limits.memoryBytes !== undefined || this.#limits.pids !== undefined;
    if (!this.#cgroup || !hasLimit) return { oomKills: 0, pidsMax: 0 };
    const [oomKills, pidsMax] = await Promise.all([
      this.#cgroup.readOomKillCount(),
      this.#cgroup.readPidsMaxCount(),
    ]);
    return { oomKills, pidsMax };
  }

  /** Which limit (if any) this command ran into, from the cgroup counters and the output. */
  async #exceededLimit(
    before: { oomKills: number; pidsMax: number },
    result: ExecResult,
  ): Promise<SandboxLimitKind | undefined> {
    const after = await this.#readLimitCounters();
    if (after.oomKills > before.oomKills) return "memory";
    if (after.pidsMax > before.pidsMax) return "pids";
    if (this.#limits.diskBytes !== undefined && /No space left on device/.test(result.stderr)) return "disk";
    return undefined;
  }

  async readFile(path: string): Promise<Uint8Array> {
    const result = await this.#fileRequest<{ data: string }>("readFile", path, {
      maxBytes: this.#maxFileBytes,
    });
    const buffer = Buffer.from(result.data, "base64");
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /** Writes the file (parents created). With an idempotency key, a repeated call is not redone. */
  async writeFile(path: string, data: Uint8Array, options: FileCallOptions = {}): Promise<FileCallResult> {
    const encoded = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
    const result = await this.#fileRequest<{ isReplayed?: boolean }>("writeFile", path, {
      data: encoded,
      idempotencyKey: options.idempotencyKey,
    });
    return { isReplayed: result.isReplayed === true };
  }

  async stat(path: string): Promise<FileStat | null> {
    return (await this.#fileRequest<{ stat: FileStat | null }>("stat", path, {})).stat;
  }

  async list(path: string, options: ListOptions = {}): Promise<DirEntry[]> {
    const result = await this.#fileRequest<{ entries: DirEntry[] }>("list", path, {
      recursive: options.recursive ?? false,
      limit: options.limit,
    });
    return result.entries;
  }

  async remove(path: string, options: FileCallOptions = {}): Promise<FileCallResult> {
    const result = await this.#fileRequest<{ isReplayed?: boolean }>("remove", path, {
      idempotencyKey: options.idempotencyKey,
    });
    return { isReplayed: result.isReplayed === true };
  }

  /** Memory figures of the agent process. */
  async getAgentInfo(): Promise<SandboxAgentInfo> {
    await this.#awake();
    return this.#connection.request<SandboxAgentInfo>("info", {});
  }

  /** Kills the bwrap process tree (every process in the sandbox) and waits for it. Idempotent. */
  async destroy(): Promise<void> {
    if (!this.#isDestroyed) {
      this.#isDestroyed = true;
      this.#connection.close(new SandboxError("sandbox_unavailable", `sandbox ${this.id} was destroyed`));
      // --die-with-parent: killing the outer bwrap kills the sandbox's pid 1, and with it the namespace.
      if (!this.#hasExited) this.#process.kill("SIGKILL");
      // Frozen processes only die once thawed; remove() kills and thaws every process in the group.
      if (this.#isSuspended) await this.#cgroup?.thaw().catch(() => {});
    }
    await this.#exited;
    await this.#removeState();
  }

  /** Removes cgroups and unmounts the quota once the process tree is gone (also after a crash). */
  #removeState(): Promise<void> {
    this.#cleaned ??= (async () => {
      await this.#cgroup?.remove();
      await this.#cleanup?.();
    })();
    return this.#cleaned;
  }

  async #fileRequest<Result>(op: string, path: string, payload: Record<string, unknown>): Promise<Result> {
    await this.#awake();
    try {
      return await this.#connection.request<Result>(op, { ...payload, path });
    } catch (error) {
      if (error instanceof AgentRequestError) throw toFileError(error, path);
      throw error;
    }
  }
}
