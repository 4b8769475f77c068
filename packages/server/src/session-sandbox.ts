/**
 * A session's sandbox and its lifecycle on this worker. Created lazily (or pre-started while the
 * first model call runs), with the org's limits. After every call that may have changed the
 * workspace, an incremental snapshot is taken off the call's path (the next call that may change the
 * workspace waits only until it has read the workspace; reads do not wait). A sandbox found dead is replaced from the latest snapshot; idle, it goes
 * to standby, hibernated (when the provider can), cold (snapshot kept, processes and local workspace
 * dropped) and finally destroyed (snapshots deleted). Every transition is an event in the session's
 * log.
 */

import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import {
  type CreateSandboxOptions,
  type ExecRequest,
  type ExecResult,
  type Sandbox,
  SandboxError,
  type SandboxHandle,
  type SandboxProvider,
  type SnapshotRef,
  stepTimings,
} from "@outrig/core";
import type { NewSessionEvent } from "@outrig/protocol";
import { type EffectiveSandboxPolicy, sandboxLimitsOf } from "./sandbox-policy.js";
import { EMPTY_SANDBOX_STATE, type SandboxStateView } from "./sandbox-state.js";
import {
  countSandboxProcesses,
  forgetJournalKey,
  readSandboxPid,
  type SessionSnapshots,
} from "./session-snapshots.js";

export interface SessionSandboxOptions {
  readonly provider: SandboxProvider;
  readonly sessionId: string;
  readonly orgId: string;
  readonly workspaceDir: string;
  /** Outlives each sandbox: keeps the exactly-once journal across replacements and restarts. */
  readonly stateDir: string;
  /**
   * Per-sandbox setup merged into each create (read-only mounts such as the /memories and /skills
   * mirror, env, an egress socket, extra limits that override the policy's).
   */
  readonly setup?: () => Promise<SandboxSetup>;
  /** Limits and idle times in force, read at every sandbox start. */
  readonly policy: () => Promise<EffectiveSandboxPolicy>;
  /** Workspace snapshots; without them dead sandboxes are replaced on the workspace as it is. */
  readonly snapshots?: SessionSnapshots;
  /** The session's sandbox state folded from its log (the latest snapshot of any worker). */
  readonly readState?: () => Promise<SandboxStateView>;
  /** Appends lifecycle events to the session's log. */
  readonly emit: (event: NewSessionEvent) => Promise<void>;
  readonly log?: (message: string) => void;
  /** Told when a pre-started sandbox got its first call or went away unused. */
  readonly onWarmUsed?: () => void;
  /** Told when the session holds no sandbox any more (cold or destroyed), e.g. to close its egress socket. */
  readonly onSandboxGone?: () => Promise<void>;
}

export type SandboxSetup = Partial<
  Pick<CreateSandboxOptions, "readOnlyMounts" | "writableMounts" | "env" | "egressSocketPath" | "limits">
>;

interface CallInfo {
  /** exec, writeFile and remove: a snapshot follows the call. */
  readonly mutates?: boolean;
  readonly idempotencyKey?: string;
  /** The work function appends a pending notice (lost processes, replaced sandbox) to its result. */
  readonly takesNotice?: boolean;
  /** The sandbox path a file call changed: its snapshot checks that path instead of scanning. */
  readonly changedPath?: string;
}

const SANDBOX_WORKSPACE = "/workspace";
/** How a timeout caused by the org's sandbox policy is explained to the model. */
const COMMAND_TIME_LIMIT_SOURCE = "the sandbox policy's command time limit (commandTimeoutMs)";

/**
 * The workspace-relative path of a sandbox path under /workspace, for a snapshot hint; undefined
 * (scan the workspace) for anything else, since a path elsewhere may lead into it through a symlink.
 */
export function workspaceRelativePath(sandboxPath: string): string | undefined {
  const normalized = path.posix.normalize(sandboxPath);
  if (!normalized.startsWith(`${SANDBOX_WORKSPACE}/`)) return undefined;
  const relative = normalized.slice(SANDBOX_WORKSPACE.length + 1).replace(/\/+$/, "");
  return relative === "" ? undefined : relative;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export class SessionSandbox {
  readonly #options: SessionSandboxOptions;
  #handle: SandboxHandle | undefined;
  #starting: Promise<SandboxHandle> | undefined;
  #timers: NodeJS.Timeout[] = [];
  #inUse = 0;
  /** The snapshot after the last mutating call, until it is stored and logged. */
  #pendingSnapshot: Promise<void> = Promise.resolve();
  /** Until that snapshot has read the workspace: the next call waits only for this. */
  #pendingCapture: Promise<void> = Promise.resolve();
  /** Idle transitions (standby … destroyed) run one at a time; a call waits for the one running. */
  #transition: Promise<void> = Promise.resolve();
  #replacing: { handle: SandboxHandle; error: Promise<SandboxError> } | undefined;
  #policy: EffectiveSandboxPolicy | undefined;
  /** Latest snapshot this worker took or restored. */
  #lastSnapshotKey: string | undefined;
  #notice: string | undefined;
  #idleState: "active" | "cold" | "destroyed" = "active";
  #isWarm = false;
  #isClosed = false;
  /** The workspace was empty when this worker started the session's first sandbox (no snapshot yet). */
  #startsEmpty = false;
  /** A Sandbox view that acquires (or replaces) the real sandbox on every call. */
  readonly proxy: Sandbox;

  constructor(options: SessionSandboxOptions) {
    this.#options = options;
    this.proxy = {
      exec: (request, signal) =>
        this.use((live, notice) => this.#exec(live, request, signal, notice), {
          mutates: true,
          idempotencyKey: request.idempotencyKey,
          takesNotice: true,
        }),
      readFile: (filePath) => this.use((live) => live.readFile(filePath)),
      writeFile: (filePath, data, callOptions) =>
        this.use((live) => live.writeFile(filePath, data, callOptions), {
          mutates: true,
          idempotencyKey: callOptions?.idempotencyKey,
          changedPath: filePath,
        }),
      stat: (filePath) => this.use((live) => live.stat(filePath)),
      list: (filePath, listOptions) => this.use((live) => live.list(filePath, listOptions)),
      remove: (filePath, callOptions) =>
        this.use((live) => live.remove(filePath, callOptions), {
          mutates: true,
          idempotencyKey: callOptions?.idempotencyKey,
          changedPath: filePath,
        }),
    };
  }

  get handle(): SandboxHandle | undefined {
    return this.#handle;
  }

  /** True while a sandbox is started or starting on this worker. */
  get isStarted(): boolean {
    return this.#handle !== undefined || this.#starting !== undefined;
  }

  /** Runs `work` with a live sandbox; idle timers only run while nothing uses it. */
  async use<T>(
    work: (sandbox: Sandbox, notice: string | undefined) => Promise<T>,
    call: CallInfo = {},
  ): Promise<T> {
    this.#inUse += 1;
    this.#clearTimers();
    try {
      const waitedAt = performance.now();
      await this.#transition;
      // Only a call that may change the workspace waits until the last snapshot has read it; a read
      // (stat, readFile, list) runs beside the capture, which it cannot make inconsistent.
      if (call.mutates) await this.#pendingCapture;
      const handle = await this.#acquire();
      if (call.mutates) await this.#pendingCapture; // the base snapshot of a first sandbox
      stepTimings.add("sandbox.wait", performance.now() - waitedAt);
      if (this.#isWarm) {
        this.#isWarm = false;
        this.#options.onWarmUsed?.();
      }
      if ((handle.state === "standby" || handle.state === "hibernated") && handle.resume) {
        const { latencyMs, wasSuspended } = await handle.resume();
        if (wasSuspended)
          await this.#emit({ type: "sandbox.resume", sandboxId: handle.id, durationMs: round(latencyMs) });
      }
      const notice = call.takesNotice ? this.#notice : undefined;
      if (call.takesNotice) this.#notice = undefined;
      let isDead = false;
      try {
        const result = await stepTimings.time("sandbox.call", () => work(handle.sandbox, notice));
        // A result that arrives from a sandbox that died meanwhile may be a command killed with it
        // (half run): it is rolled back like a call whose answer never came.
        if (this.#handle === handle && !handle.isAlive() && !this.#isClosed) {
          isDead = true;
          throw await this.#replaceDead(handle, "it stopped while this call ran", call.idempotencyKey);
        }
        return result;
      } catch (error) {
        if (isDead) throw error;
        if (this.#handle === handle && !handle.isAlive() && !this.#isClosed) {
          isDead = true;
          throw await this.#replaceDead(handle, describeDeath(error), call.idempotencyKey);
        }
        throw error;
      } finally {
        if (call.mutates && !isDead) {
          const hint = call.changedPath === undefined ? undefined : workspaceRelativePath(call.changedPath);
          this.#scheduleSnapshot(handle, call.idempotencyKey, hint === undefined ? undefined : [hint]);
        }
      }
    } finally {
      this.#inUse -= 1;
      if (this.#inUse === 0) this.#armIdle();
    }
  }

  /**
   * Starts the sandbox before its first call (while the first model call runs). Resolves true when
   * a start began; errors surface at the first real call instead.
   */
  prestart(): boolean {
    if (this.isStarted || this.#isClosed || this.#inUse > 0) return false;
    this.#isWarm = true;
    this.#starting = this.#start(true);
    this.#starting.then(
      () => {
        if (this.#inUse === 0) this.#armIdle();
      },
      () => {
        if (this.#isWarm) {
          this.#isWarm = false;
          this.#options.onWarmUsed?.();
        }
      },
    );
    return true;
  }

  /** Freezes the sandbox now (the session waits for a person): it holds no running processes. */
  standbyNow(): void {
    if (this.#inUse > 0) return;
    this.#runTransition(() => this.#standby());
  }

  /** Stops this worker's sandbox (server shutdown); the workspace and its snapshots stay. */
  async destroy(): Promise<void> {
    this.#isClosed = true;
    this.#clearTimers();
    await this.#pendingSnapshot;
    await this.#transition;
    const handle = this.#handle ?? (await this.#starting?.catch(() => undefined));
    this.#handle = undefined;
    this.#starting = undefined;
    await handle?.destroy();
    if (this.#isWarm) {
      this.#isWarm = false;
      this.#options.onWarmUsed?.();
    }
  }

  async #exec(
    live: Sandbox,
    request: ExecRequest,
    signal: AbortSignal,
    notice: string | undefined,
  ): Promise<ExecResult> {
    const limitMs = this.#policy?.commandTimeoutMs;
    const isCapped = limitMs !== undefined && request.timeoutMs > limitMs;
    const executed = await live.exec(isCapped ? { ...request, timeoutMs: limitMs } : request, signal);
    // The tool names the limit in its one timeout line; a note here as well would contradict it.
    const result: ExecResult = isCapped
      ? { ...executed, timeLimit: { ms: limitMs, source: COMMAND_TIME_LIMIT_SOURCE } }
      : executed;
    if (!notice) return result;
    const separator = result.stderr === "" || result.stderr.endsWith("\n") ? "" : "\n";
    return { ...result, stderr: `${result.stderr}${separator}${notice}\n` };
  }

  async #acquire(): Promise<SandboxHandle> {
    if (this.#handle?.isAlive()) return this.#handle;
    if (this.#handle && !this.#starting) {
      // Died while no call ran (OOM by a background process, killed, host trouble): replace it now.
      const error = await this.#replaceDead(this.#handle, "it stopped while no tool call was running");
      this.#notice = `outrig: ${error.message}`;
    }
    this.#starting ??= this.#start(false);
    return this.#starting;
  }

  async #start(isWarm: boolean): Promise<SandboxHandle> {
    const startedAt = performance.now();
    try {
      const policy = await this.#options.policy();
      this.#policy = policy;
      await this.#prepareWorkspace();
      const setup = (await this.#options.setup?.()) ?? {};
      const limits = { ...sandboxLimitsOf(policy), ...setup.limits };
      const handle = await this.#options.provider.create({
        ...setup,
        sessionId: this.#options.sessionId,
        orgId: this.#options.orgId,
        workspaceDir: this.#options.workspaceDir,
        stateDir: this.#options.stateDir,
        limits,
      });
      this.#handle = handle;
      this.#idleState = "active";
      const recorded: Record<string, number> = { ...limits };
      if (policy.commandTimeoutMs !== undefined) recorded.commandTimeoutMs = policy.commandTimeoutMs;
      await this.#emit({
        type: "sandbox.start",
        sandboxId: handle.id,
        provider: this.#options.provider.id,
        durationMs: round(performance.now() - startedAt),
        limits: recorded,
        ...(isWarm ? { isWarm: true } : {}),
      });
      // No snapshot yet: a sandbox dying in the first call must be rolled back too. An empty
      // workspace (a new session) is rolled back by emptying it; any other gets a base snapshot.
      if (this.#lastSnapshotKey === undefined) {
        const entries = await readdir(this.#options.workspaceDir).catch(() => []);
        this.#startsEmpty = entries.length === 0;
        if (!this.#startsEmpty) this.#scheduleSnapshot(handle, undefined);
      }
      return handle;
    } finally {
      this.#starting = undefined;
    }
  }

  /**
   * Makes the local workspace match the latest snapshot in the log: restored when it is missing
   * (cold, or the session moved here from another worker) or reflects an older snapshot.
   */
  async #prepareWorkspace(): Promise<void> {
    const snapshots = this.#options.snapshots;
    if (!snapshots) return;
    const view = (await this.#options.readState?.()) ?? EMPTY_SANDBOX_STATE;
    const latest = view.latestSnapshot;
    if (!latest) {
      this.#lastSnapshotKey = undefined;
      return;
    }
    const marker = await snapshots.readMarker();
    if (marker === latest.key && (await snapshots.hasLocalWorkspace())) {
      if (this.#lastSnapshotKey !== latest.key) snapshots.reset(latest.key);
      this.#lastSnapshotKey = latest.key;
      return;
    }
    try {
      await snapshots.restore(latest.key);
    } catch (error) {
      // The snapshot cannot be read here: go on with the local workspace rather than fail every call.
      this.#options.log?.(
        `session ${this.#options.sessionId}: workspace not restored (${(error as Error).message}); using the local copy`,
      );
      return;
    }
    this.#lastSnapshotKey = latest.key;
    if (view.state === "cold")
      this.#notice = `outrig: this session's sandbox had gone cold after being idle; its workspace was restored from the snapshot taken ${latest.toolCallId ? `after tool call ${latest.toolCallId}` : "before the first tool call"}, and ${view.lostProcesses} background process${view.lostProcesses === 1 ? " was" : "es were"} stopped and lost.`;
    else if (marker !== undefined || view.state !== "none")
      this.#options.log?.(`session ${this.#options.sessionId}: workspace restored from ${latest.key}`);
  }

  /**
   * Replaces a dead sandbox: its journal entry for the call in flight is dropped (the call's effects
   * are rolled back), the workspace comes back from the latest snapshot, and `sandbox.replace` is
   * logged. Resolves the error the call in flight reports to the model.
   */
  #replaceDead(dead: SandboxHandle, reason: string, inFlightKey?: string): Promise<SandboxError> {
    if (this.#replacing?.handle === dead) return this.#replacing.error;
    const error = (async () => {
      if (this.#handle === dead) this.#handle = undefined;
      await dead.destroy().catch(() => undefined);
      await this.#pendingSnapshot;
      const view = (await this.#options.readState?.().catch(() => undefined)) ?? EMPTY_SANDBOX_STATE;
      const latest = view.latestSnapshot;
      if (inFlightKey) await forgetJournalKey(this.#options.stateDir, inFlightKey).catch(() => undefined);
      let restored = false;
      let emptied = false;
      if (!latest && this.#startsEmpty && this.#options.snapshots) {
        await this.#options.snapshots.dropLocalWorkspace();
        emptied = true;
      } else if (latest && this.#options.snapshots) {
        try {
          await this.#options.snapshots.restore(latest.key);
          this.#lastSnapshotKey = latest.key;
          restored = true;
        } catch (restoreError) {
          this.#options.log?.(
            `session ${this.#options.sessionId}: restore after a dead sandbox failed: ${(restoreError as Error).message}`,
          );
        }
      }
      await this.#emit({
        type: "sandbox.replace",
        sandboxId: dead.id,
        reason,
        ...(restored && latest ? { snapshotKey: latest.key } : {}),
        ...(restored && latest?.toolCallId ? { toolCallId: latest.toolCallId } : {}),
      });
      const workspace =
        restored && latest
          ? `its workspace was restored from the snapshot taken ${latest.toolCallId ? `after tool call ${latest.toolCallId}` : "before the first tool call"}`
          : emptied
            ? "its workspace was reset to the empty workspace it started with (no tool call had completed)"
            : "no snapshot existed, so the workspace was kept as it was";
      const inFlight = inFlightKey
        ? " This tool call did not complete and anything it changed is gone: run it again if it is still needed."
        : "";
      return new SandboxError(
        "sandbox_replaced",
        `The sandbox stopped (${reason}) and was replaced with a new one; ${workspace}. Background processes were lost.${inFlight}`,
      );
    })();
    this.#replacing = { handle: dead, error };
    return error;
  }

  #scheduleSnapshot(
    handle: SandboxHandle,
    idempotencyKey: string | undefined,
    changedPaths?: readonly string[],
  ): void {
    const snapshots = this.#options.snapshots;
    if (!snapshots || this.#isClosed) return;
    this.#startsEmpty = false; // a call completed: emptying is no longer a rollback
    const prefix = `${this.#options.sessionId}:`;
    // A tool call's second and later file changes carry `#<n>` after its key (see withIdempotencyKey).
    const toolCallId = idempotencyKey?.startsWith(prefix)
      ? idempotencyKey.slice(prefix.length).replace(/#\d+$/, "")
      : undefined;
    // A quota'd workspace is unmounted when its sandbox dies: a scan then would see an empty directory.
    const usesQuota = this.#policy?.diskBytes !== undefined;
    let markCaptured = () => {};
    const captured = new Promise<void>((resolve) => {
      markCaptured = resolve;
    });
    const previous = this.#pendingSnapshot;
    const previousCapture = this.#pendingCapture;
    this.#pendingCapture = captured;
    // The capture (scan and tar) starts when the previous one has read the workspace; its store and
    // its event follow the previous snapshot's, so the log names snapshots in order.
    this.#pendingSnapshot = (async () => {
      await previousCapture;
      if (usesQuota && !handle.isAlive()) return;
      const startedAt = performance.now();
      let captureMs: number | undefined;
      let ref: SnapshotRef;
      try {
        ref = await snapshots.snapshot({
          ...(changedPaths ? { changedPaths } : {}),
          onCaptured: () => {
            captureMs = performance.now() - startedAt;
            stepTimings.add("snapshot.capture", captureMs);
            markCaptured();
          },
        });
      } catch (error) {
        await previous;
        snapshots.reset(this.#lastSnapshotKey);
        this.#options.log?.(
          `session ${this.#options.sessionId}: snapshot failed: ${(error as Error).message}`,
        );
        return;
      }
      await previous;
      try {
        if (usesQuota && !handle.isAlive()) {
          snapshots.reset(this.#lastSnapshotKey);
          return;
        }
        if (ref.key === this.#lastSnapshotKey) return; // nothing changed
        this.#lastSnapshotKey = ref.key;
        await this.#options.emit({
          type: "sandbox.snapshot",
          sandboxId: handle.id,
          key: ref.key,
          ...(toolCallId ? { toolCallId } : {}),
          sizeBytes: ref.sizeBytes,
          entryCount: ref.entryCount,
          durationMs: round(performance.now() - startedAt),
          ...(captureMs === undefined ? {} : { captureMs: round(captureMs) }),
        });
        // Only once the log names it: a crash in between leaves an older marker, and the next start
        // restores the (same) logged snapshot instead of trusting a workspace the log does not know.
        await snapshots.writeMarker(ref.key);
        stepTimings.add("snapshot.stored", performance.now() - startedAt);
      } catch (error) {
        snapshots.reset(this.#lastSnapshotKey);
        this.#options.log?.(
          `session ${this.#options.sessionId}: snapshot failed: ${(error as Error).message}`,
        );
      }
    })().finally(markCaptured);
  }

  #armIdle(): void {
    this.#clearTimers();
    const policy = this.#policy;
    if (!policy || this.#isClosed || this.#idleState === "destroyed") return;
    const steps: [number | undefined, () => Promise<void>][] = [
      [policy.standbyAfterMs, () => this.#standby()],
      [policy.hibernateAfterMs, () => this.#hibernate()],
      [policy.coldAfterMs, () => this.#cold()],
      [policy.destroyAfterMs, () => this.#destroyIdle()],
    ];
    for (const [afterMs, step] of steps) {
      if (afterMs === undefined) continue;
      const timer = setTimeout(() => {
        if (this.#inUse === 0) this.#runTransition(step);
      }, afterMs);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  #runTransition(step: () => Promise<void>): void {
    this.#transition = this.#transition.then(() =>
      this.#inUse > 0 || this.#isClosed
        ? undefined
        : step().catch((error: Error) =>
            this.#options.log?.(`session ${this.#options.sessionId}: sandbox lifecycle: ${error.message}`),
          ),
    );
  }

  async #standby(): Promise<void> {
    const handle = this.#handle;
    if (!handle?.suspend || !handle.isAlive() || handle.state !== "running") return;
    try {
      await handle.suspend();
    } catch {
      return; // no freezer here (not root): the sandbox just keeps running
    }
    await this.#emit({ type: "sandbox.standby", sandboxId: handle.id });
  }

  async #hibernate(): Promise<void> {
    const handle = this.#handle;
    if (!handle?.hibernate || !handle.isAlive() || handle.state === "hibernated") return;
    try {
      await handle.hibernate();
    } catch (error) {
      if (error instanceof SandboxError && error.code === "sandbox_unsupported") return;
      throw error;
    }
    await this.#emit({ type: "sandbox.hibernate", sandboxId: handle.id });
  }

  /** Final snapshot, processes killed (and counted), local workspace dropped. */
  async #cold(): Promise<void> {
    if (this.#idleState !== "active") return;
    await this.#pendingSnapshot;
    const handle = this.#handle;
    const snapshots = this.#options.snapshots;
    let killedProcesses = 0;
    if (handle?.isAlive()) {
      const pid = await readSandboxPid(this.#options.stateDir);
      if (pid !== undefined) killedProcesses = await countSandboxProcesses(pid).catch(() => 0);
      // The final snapshot: background processes may have changed files since the last call.
      this.#scheduleSnapshot(handle, undefined);
      await this.#pendingSnapshot;
    }
    this.#handle = undefined;
    await handle?.destroy();
    await this.#sandboxGone();
    if (snapshots && this.#lastSnapshotKey) await snapshots.dropLocalWorkspace();
    this.#idleState = "cold";
    if (this.#isWarm) {
      this.#isWarm = false;
      this.#options.onWarmUsed?.();
    }
    await this.#emit({
      type: "sandbox.cold",
      sandboxId: handle?.id ?? "none",
      ...(this.#lastSnapshotKey ? { snapshotKey: this.#lastSnapshotKey } : {}),
      killedProcesses,
    });
  }

  /** Deletes everything the session's sandbox left: snapshots, workspace and state. */
  async #destroyIdle(): Promise<void> {
    if (this.#idleState === "destroyed") return;
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.destroy();
    await this.#sandboxGone();
    await destroySessionSandboxData(this.#options.snapshots, this.#options.stateDir);
    this.#lastSnapshotKey = undefined;
    this.#idleState = "destroyed";
    this.#clearTimers();
    await this.#emit({ type: "sandbox.end", reason: "idle" });
  }

  async #sandboxGone(): Promise<void> {
    await this.#options.onSandboxGone?.().catch((error: Error) => {
      this.#options.log?.(
        `session ${this.#options.sessionId}: releasing its sandbox's resources: ${error.message}`,
      );
    });
  }

  async #emit(event: NewSessionEvent): Promise<void> {
    await this.#options.emit(event).catch((error: Error) => {
      this.#options.log?.(`session ${this.#options.sessionId}: ${event.type} not logged: ${error.message}`);
    });
  }

  #clearTimers(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
  }
}

/** Deletes a session's snapshots, local workspace (and quota image) and sandbox state directory. */
export async function destroySessionSandboxData(
  snapshots: SessionSnapshots | undefined,
  stateDir: string,
): Promise<void> {
  await snapshots?.deleteAll();
  await snapshots?.dropLocalWorkspace();
  await rm(stateDir, { recursive: true, force: true });
}

function describeDeath(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /stopped \((.*)\)$/.exec(message);
  return match?.[1] ?? message;
}
