/**
 * What the session sandboxes of this worker share: the org sandbox policies (cached briefly), the
 * snapshot BlobStore, the bound on pre-started sandboxes, the state fold over a session's log and
 * the sweep that destroys what sessions no worker holds left behind.
 */
import { createHash } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import type { BlobStore, SessionStore } from "@outrig/core";
import type { NewSessionEvent, SessionEvent } from "@outrig/protocol";
import { type EffectiveSandboxPolicy, mergeSandboxPolicy, SandboxPolicy } from "./sandbox-policy.js";
import { applySandboxEvent, EMPTY_SANDBOX_STATE, type SandboxStateView } from "./sandbox-state.js";
import { destroySessionSandboxData } from "./session-sandbox.js";
import { SessionSnapshots } from "./session-snapshots.js";

export interface SandboxPolicySource {
  get(orgId: string): Promise<Record<string, unknown> | null>;
}

export interface SandboxLifecycleOptions {
  readonly defaults: EffectiveSandboxPolicy;
  readonly policies?: SandboxPolicySource;
  /** Snapshot storage; without it there are no snapshots (dead sandboxes keep the workspace as is). */
  readonly blobStore?: BlobStore;
  /** Pre-started sandboxes allowed to wait for their first call at once. */
  readonly warmPoolSize?: number;
  readonly home: string;
  readonly store: SessionStore;
  readonly log: (message: string) => void;
}

const PAGE = 1000;

export class SandboxLifecycle {
  readonly #options: SandboxLifecycleOptions;
  readonly #cache = new Map<string, { policy: EffectiveSandboxPolicy; expiresAt: number }>();
  #warm = 0;

  constructor(options: SandboxLifecycleOptions) {
    this.#options = options;
  }

  get defaults(): EffectiveSandboxPolicy {
    return this.#options.defaults;
  }

  workspaceDir(sessionId: string): string {
    return path.join(this.#options.home, "workspaces", sessionId);
  }

  stateDir(sessionId: string): string {
    return path.join(this.#options.home, "sandbox-state", sessionId);
  }

  /**
   * The memory and skills mirror of one (org, user), bound read-only into that user's sandboxes. Its
   * name is a digest: a sandbox reads its mount paths in /proc/self/mountinfo, and they must not
   * name the org or the user.
   */
  mirrorDir(orgId: string, userId: string): string {
    const digest = createHash("sha256").update(`outrig-mirror\0${orgId}\0${userId}`).digest("hex");
    return path.join(this.#options.home, "mirrors", digest.slice(0, 32));
  }

  /** The org's policy merged over the defaults; a copy at most a second old. */
  async policyFor(orgId: string): Promise<EffectiveSandboxPolicy> {
    const cached = this.#cache.get(orgId);
    if (cached && cached.expiresAt > Date.now()) return cached.policy;
    const stored = await this.#options.policies?.get(orgId);
    const parsed = stored ? SandboxPolicy.safeParse(stored) : undefined;
    if (parsed && !parsed.success)
      this.#options.log(`org ${orgId}: stored sandbox policy is invalid; using the defaults`);
    const policy = mergeSandboxPolicy(this.#options.defaults, parsed?.success ? parsed.data : null);
    this.#cache.set(orgId, { policy, expiresAt: Date.now() + 1000 });
    return policy;
  }

  invalidate(orgId: string): void {
    this.#cache.delete(orgId);
  }

  snapshotsFor(sessionId: string): SessionSnapshots | undefined {
    const store = this.#options.blobStore;
    if (!store) return undefined;
    return new SessionSnapshots({
      store,
      sessionId,
      workspaceDir: this.workspaceDir(sessionId),
      stateDir: this.stateDir(sessionId),
    });
  }

  /** The session's sandbox state from its whole log. */
  async readState(sessionId: string): Promise<SandboxStateView> {
    let view = EMPTY_SANDBOX_STATE;
    let afterSeq = 0;
    for (;;) {
      const events: SessionEvent[] = await this.#options.store.readEvents(sessionId, {
        afterSeq,
        limit: PAGE,
      });
      for (const event of events) view = applySandboxEvent(view, event);
      if (events.length < PAGE) return view;
      afterSeq = events.at(-1)?.seq ?? afterSeq;
    }
  }

  /** Takes a warm slot; false when OUTRIG_WARM_POOL_SIZE sandboxes already wait. */
  reserveWarm(): boolean {
    if (this.#warm >= (this.#options.warmPoolSize ?? 0)) return false;
    this.#warm += 1;
    return true;
  }

  releaseWarm(): void {
    this.#warm = Math.max(0, this.#warm - 1);
  }

  get warmCount(): number {
    return this.#warm;
  }

  /**
   * Destroys the sandbox data (snapshots, local workspace, state) of sessions this worker does not
   * hold whose last activity is older than their org's destroyAfterMs, appending `sandbox.end`.
   * Resolves how many sessions it destroyed.
   */
  async sweep(
    isHeld: (sessionId: string) => boolean,
    append: (sessionId: string, event: NewSessionEvent) => Promise<void>,
  ): Promise<number> {
    const ids = new Set<string>();
    for (const key of (await this.#options.blobStore?.list("sessions").catch(() => [])) ?? []) {
      const id = key.split("/")[1];
      if (id) ids.add(id);
    }
    for (const name of await readdir(path.join(this.#options.home, "workspaces")).catch(() => []))
      if (!name.startsWith(".")) ids.add(name);
    let destroyed = 0;
    for (const sessionId of ids) {
      if (isHeld(sessionId)) continue;
      try {
        const orgId = await this.#options.store.findSessionOrg(sessionId);
        const view = await this.readState(sessionId);
        const policy = orgId ? await this.policyFor(orgId) : this.#options.defaults;
        const last = view.lastActivityAt ? Date.parse(view.lastActivityAt) : 0;
        if (Date.now() - last < policy.destroyAfterMs) continue;
        await destroySessionSandboxData(this.snapshotsFor(sessionId), this.stateDir(sessionId));
        if (orgId && view.state !== "destroyed")
          await append(sessionId, { type: "sandbox.end", reason: "swept" });
        destroyed += 1;
      } catch (error) {
        this.#options.log(`sandbox sweep ${sessionId}: ${(error as Error).message}`);
      }
    }
    return destroyed;
  }
}
