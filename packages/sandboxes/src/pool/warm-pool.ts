/**
 * A pool of pre-started sandboxes so a session's first tool call does not pay for the start.
 *
 * bwrap fixes its bind mounts when it starts, so a pooled sandbox cannot be pointed at a session's
 * workspace later. Instead each slot starts with its own empty directory under `directory` bound
 * at /workspace; on acquire the provider moves the session's files (if any) into that directory
 * and renames it to the session's workspace path. A bind mount follows a renamed directory, so the
 * sandbox sees the session's files at once. (Binding a shared parent instead would let every
 * pooled sandbox see the others' workspaces.) Session and pool directories must therefore be on
 * one file system, and pooled sandboxes cannot have a disk quota (a mount point cannot be renamed).
 */
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type CreateSandboxOptions, SandboxError } from "@outrig/core";
import type { BubblewrapSandbox } from "../bubblewrap/bubblewrap-sandbox.js";
import type { BubblewrapSandboxProvider } from "../bubblewrap/bubblewrap-sandbox-provider.js";

/** Options every pooled sandbox starts with (the same for every session it may serve). */
export type WarmPoolTemplate = Omit<CreateSandboxOptions, "sessionId" | "orgId" | "workspaceDir">;

export interface WarmPoolOptions {
  /** How many ready sandboxes to keep. */
  readonly size: number;
  /** Host directory for the slots' workspaces; on the same file system as session workspaces. */
  readonly directory: string;
  readonly template?: WarmPoolTemplate;
  /**
   * Wait this long after an acquire before starting its replacement, so the new sandbox's start
   * (a node process: CPU-heavy for ~100 ms) does not slow the session's first calls. Default 250.
   */
  readonly refillDelayMs?: number;
  /** Receives refill failures (one line each). Default: console.warn. */
  readonly log?: (line: string) => void;
}

export interface WarmPool {
  /** Sandboxes ready to hand out now. */
  readonly readyCount: number;
  /**
   * A ready sandbox bound to `options.workspaceDir` (its existing files included); starts a new
   * one when the pool is empty. The pool refills in the background.
   */
  acquire(
    options: Pick<CreateSandboxOptions, "sessionId" | "orgId" | "workspaceDir">,
  ): Promise<BubblewrapSandbox>;
  /** Resolves once the pool holds `size` ready sandboxes (or a refill failed). */
  whenFull(): Promise<void>;
  /** Destroys the idle sandboxes (not the ones handed out). */
  close(): Promise<void>;
}

export function createWarmPool(provider: BubblewrapSandboxProvider, options: WarmPoolOptions): WarmPool {
  if (!Number.isInteger(options.size) || options.size < 0)
    throw new SandboxError("sandbox_invalid_options", "warm pool size must be a non-negative integer");
  if (options.template?.limits?.diskBytes !== undefined)
    throw new SandboxError("sandbox_invalid_options", "pooled sandboxes cannot have a disk quota");
  const directory = resolve(options.directory);
  const log = options.log ?? console.warn;
  const ready: BubblewrapSandbox[] = [];
  let starting = 0;
  let slotCount = 0;
  let isClosed = false;
  let waiters: Array<() => void> = [];

  const notify = () => {
    if (ready.length >= options.size || isClosed) {
      const pending = waiters;
      waiters = [];
      for (const wake of pending) wake();
    }
  };

  const startOne = async () => {
    slotCount += 1;
    const slot = `slot-${process.pid}-${slotCount}`;
    starting += 1;
    try {
      const sandbox = await provider.create({
        ...options.template,
        sessionId: slot,
        orgId: "warm-pool",
        workspaceDir: join(directory, slot),
      });
      // Warm the agent's spawn path (lazy node internals, bash pages) so the session's first exec
      // does not pay for it.
      await sandbox.exec({ command: "true", timeoutMs: 30_000 }, new AbortController().signal);
      if (isClosed) await sandbox.destroy();
      else ready.push(sandbox);
    } catch (error) {
      log(`outrig warm pool: starting a sandbox failed: ${(error as Error).message}`);
      starting -= 1;
      const pending = waiters;
      waiters = [];
      for (const wake of pending) wake();
      return;
    }
    starting -= 1;
    notify();
  };

  const refill = () => {
    while (!isClosed && ready.length + starting < options.size) void startOne();
  };

  refill();

  return {
    get readyCount() {
      return ready.length;
    },

    async acquire(target) {
      if (isClosed) throw new SandboxError("sandbox_unavailable", "the warm pool is closed");
      let sandbox = ready.shift();
      while (sandbox && !sandbox.isAlive()) sandbox = ready.shift();
      setTimeout(refill, options.refillDelayMs ?? 250).unref();
      if (!sandbox) return provider.create({ ...options.template, ...target });
      const slotDir = sandbox.workspaceDir;
      try {
        await provider.assignWorkspace(sandbox, target);
      } catch (error) {
        await sandbox.destroy();
        await rm(slotDir, { recursive: true, force: true });
        throw error;
      }
      return sandbox;
    },

    whenFull() {
      if (ready.length >= options.size || isClosed) return Promise.resolve();
      return new Promise((resolvePromise) => waiters.push(resolvePromise));
    },

    async close() {
      isClosed = true;
      notify();
      const idle = ready.splice(0);
      await Promise.all(
        idle.map(async (sandbox) => {
          await sandbox.destroy();
          await rm(sandbox.workspaceDir, { recursive: true, force: true });
        }),
      );
    },
  };
}
