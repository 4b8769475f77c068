/**
 * A session's sandbox, created lazily at its first use and replaced when it has died.
 * Destroyed after it sits idle, so idle sessions hold no processes; the workspace stays on disk.
 */
import type {
  CreateSandboxOptions,
  ReadOnlyMount,
  Sandbox,
  SandboxHandle,
  SandboxLimits,
  SandboxProvider,
} from "@outrig/core";

export interface SessionSandboxOptions {
  readonly provider: SandboxProvider;
  readonly sessionId: string;
  readonly orgId: string;
  readonly workspaceDir: string;
  /** Outlives each sandbox: keeps the exactly-once journal across replacements and restarts. */
  readonly stateDir: string;
  /** Read-only views bound into each new sandbox (the /memories and /skills mirror). */
  readonly readOnlyMounts?: () => Promise<readonly ReadOnlyMount[]>;
  /** The egress proxy's socket, CA bundle mount and env for each new sandbox (see SessionEgress). */
  readonly egress?: () => Promise<Pick<CreateSandboxOptions, "readOnlyMounts" | "env" | "egressSocketPath">>;
  readonly idleMs: number;
  /** Resource limits of each sandbox (the provider's defaults apply to what is left out). */
  readonly limits?: SandboxLimits;
  /** Told each time a sandbox was started, with how long it took. */
  readonly onStart: (handle: SandboxHandle, durationMs: number) => void;
  /** Freeze the sandbox after this long without a call (model thinking, waiting for a person). */
  readonly standbyAfterMs?: number;
  readonly onStandby?: (handle: SandboxHandle) => void;
  readonly onResume?: (handle: SandboxHandle, durationMs: number) => void;
}

export class SessionSandbox {
  readonly #options: SessionSandboxOptions;
  #handle: SandboxHandle | undefined;
  #starting: Promise<SandboxHandle> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #standbyTimer: NodeJS.Timeout | undefined;
  #inUse = 0;

  constructor(options: SessionSandboxOptions) {
    this.#options = options;
  }

  get handle(): SandboxHandle | undefined {
    return this.#handle;
  }

  /** Runs `work` with a live sandbox; the idle timer only runs while nothing uses it. */
  async use<T>(work: (sandbox: Sandbox) => Promise<T>): Promise<T> {
    this.#inUse += 1;
    this.#clearIdle();
    try {
      const handle = await this.#acquire();
      if (handle.state === "standby" && handle.resume) {
        const { latencyMs, wasSuspended } = await handle.resume();
        if (wasSuspended) this.#options.onResume?.(handle, latencyMs);
      }
      return await work(handle.sandbox);
    } finally {
      this.#inUse -= 1;
      if (this.#inUse === 0) this.#armIdle();
    }
  }

  async destroy(): Promise<void> {
    this.#clearIdle();
    const handle = this.#handle ?? (await this.#starting?.catch(() => undefined));
    this.#handle = undefined;
    this.#starting = undefined;
    await handle?.destroy();
  }

  async #acquire(): Promise<SandboxHandle> {
    if (this.#handle?.isAlive()) return this.#handle;
    if (this.#handle) {
      const dead = this.#handle;
      this.#handle = undefined;
      await dead.destroy().catch(() => undefined);
    }
    if (!this.#starting) {
      const startedAt = performance.now();
      this.#starting = Promise.all([
        this.#options.readOnlyMounts?.() ?? Promise.resolve([]),
        this.#options.egress?.() ?? Promise.resolve(undefined),
      ])
        .then(([readOnlyMounts, egress]) =>
          this.#options.provider.create({
            sessionId: this.#options.sessionId,
            orgId: this.#options.orgId,
            workspaceDir: this.#options.workspaceDir,
            stateDir: this.#options.stateDir,
            readOnlyMounts: [...readOnlyMounts, ...(egress?.readOnlyMounts ?? [])],
            ...(egress?.env ? { env: egress.env } : {}),
            ...(egress?.egressSocketPath ? { egressSocketPath: egress.egressSocketPath } : {}),
            ...(this.#options.limits ? { limits: this.#options.limits } : {}),
          }),
        )
        .then((handle) => {
          this.#handle = handle;
          this.#options.onStart(handle, performance.now() - startedAt);
          return handle;
        })
        .finally(() => {
          this.#starting = undefined;
        });
    }
    return this.#starting;
  }

  #armIdle(): void {
    this.#clearIdle();
    const handle = this.#handle;
    const standbyAfterMs = this.#options.standbyAfterMs;
    if (handle?.suspend && standbyAfterMs !== undefined) {
      this.#standbyTimer = setTimeout(() => {
        if (this.#inUse > 0 || this.#handle !== handle || !handle.isAlive()) return;
        handle.suspend?.().then(
          () => this.#options.onStandby?.(handle),
          () => undefined, // no freezer here (not root): the sandbox just keeps running
        );
      }, standbyAfterMs);
      this.#standbyTimer.unref();
    }
    this.#idleTimer = setTimeout(() => {
      void this.destroy().catch(() => undefined);
    }, this.#options.idleMs);
    this.#idleTimer.unref();
  }

  #clearIdle(): void {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#standbyTimer) clearTimeout(this.#standbyTimer);
    this.#standbyTimer = undefined;
  }
}
