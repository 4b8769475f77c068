/**
 * Owns sessions for this worker: starts, cancels and approves turns, and performs each turn step a
 * scheduler asks for. Holds each session's lazy sandbox. Turn state lives in the event log only, so
 * any worker can perform any step.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import {
  type AgentConfig,
  type AgentSkillRef,
  buildSkillsPrompt,
  buildSystemPrompt,
  type CustomToolResult,
  createMountTable,
  DEFAULT_TOOL_POLICY,
  type ExecResult,
  enabledTools,
  InputError,
  type LanguageModel,
  type LoopLimits,
  loadMemoryInstructions,
  loadSkills,
  type ManagedSessionFields,
  type ModelFactory,
  type MountTable,
  type PendingAction,
  pendingActions,
  type Sandbox,
  SandboxFileSystem,
  type SandboxProvider,
  type SessionRecord,
  SessionRunner,
  type SessionStore,
  type StepOutcome,
  type SubmittedMessage,
  stepTimings,
  type Tool,
  type ToolsetTools,
  toolPermissionsOf,
} from "@outrig/core";
import {
  CustomToolContentBlock,
  type NewSessionEvent,
  type ToolPolicy,
  type UserContentPart,
} from "@outrig/protocol";
import {
  createDatabaseMounts,
  createMountMirror,
  type MountMirror,
  type PostgresFileStore,
  type PostgresMemoryStores,
} from "@outrig/storage";
import { z } from "zod";
import type {
  ApprovalMessage,
  CustomToolMessage,
  TurnHost,
  TurnScheduler,
} from "./durable/turn-scheduler.js";
import type { SandboxEgressHook } from "./egress/session-egress.js";
import type { EventBus } from "./event-bus.js";
import { notFound } from "./http-error.js";
import {
  createSessionMemoryMounts,
  type MemoryStoreResource,
  type SessionMemoryMounts,
} from "./memory-store-mounts.js";
import { stepScope } from "./ops/step-scope.js";
import {
  type PackageLayerSetup,
  prepareSessionPackageLayer,
  type SessionPackageLayers,
} from "./package-layers/session-package-layer.js";
import { mountPinnedSkills, type PinnedSkill, type PinnedSkillsMount } from "./pinned-skills.js";
import { SandboxLifecycle } from "./sandbox-lifecycle.js";
import type { SandboxStateView } from "./sandbox-state.js";
import { checkSessionAccess, type SessionPermission, type ShareLookup } from "./session-access.js";
import { loadAgentConfig, toPinnedAgentConfig } from "./session-agent.js";
import { readBudgetSpent } from "./session-budget.js";
import type { SessionFiles } from "./session-files.js";
import { cloneRepositories, repositoriesPrompt, repositoryResourcesOf } from "./session-repositories.js";
import { destroySessionSandboxData, type SandboxSetup, SessionSandbox } from "./session-sandbox.js";

export const WORKSPACE = "/workspace";

export interface PolicySource {
  get(orgId: string): Promise<ToolPolicy>;
}

/** Database-backed /memories and /skills for every session (optional: tests run without them). */
export interface SessionFilesOptions {
  readonly store: PostgresFileStore;
  readonly roleOf: (orgId: string, userId: string) => Promise<string | null>;
}

/** Memory stores attached to sessions as `resources`, mounted at /mnt/memory/<store>/. */
export interface SessionMemoryStoresOptions {
  readonly stores: PostgresMemoryStores;
  /** The session's `memory_store` resources (stored with the session by whoever created it). */
  readonly resourcesOf: (session: SessionRecord) => Promise<readonly MemoryStoreResource[]>;
}

/** What a session id may look like (`ses_` + base62 in Postgres; the test stores use similar ids). */
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

export interface SessionManagerOptions {
  readonly store: SessionStore;
  readonly modelFactory: ModelFactory;
  readonly sandboxProvider: SandboxProvider;
  readonly tools: readonly Tool[];
  readonly bus: EventBus;
  readonly scheduler: TurnScheduler;
  readonly policies?: PolicySource;
  readonly home: string;
  readonly limits: LoopLimits;
  readonly sandboxIdleMs: number;
  /** Freeze a session's sandbox after this long without a tool call; undefined: never. */
  readonly standbyAfterMs?: number;
  readonly log: (message: string) => void;
  readonly files?: SessionFilesOptions;
  readonly memoryStores?: SessionMemoryStoresOptions;
  /**
   * A session's Files API side (sessions of the API only): its `file` resources put into the sandbox, and
   * what it writes under /mnt/session/outputs/ collected as files after each step.
   */
  readonly sessionFiles?: (session: SessionRecord) => SessionFiles;
  /**
   * The agent toolset's tools (`bash`, `read`, … by the toolset's own names) for sessions that pinned an
   * agent, built once per session on the worker that runs it (the `bash` tool keeps the session's shell
   * state). Absent: agent sessions get the enabled ones of `tools` (tests with their own tool set).
   */
  readonly toolset?: (session: SessionRecord, agent: AgentConfig) => ToolsetTools;
  /**
   * The files of the skill versions an agent session pinned. With it, such a session's `/skills` holds
   * exactly those (read-only) instead of the org's skill folders; without it, the org's folders.
   */
  readonly pinnedSkills?: (orgId: string, skills: readonly AgentSkillRef[]) => Promise<PinnedSkill[]>;
  /** Tells other workers to abort a cancelled session's running step. */
  readonly broadcastCancel?: (sessionId: string) => Promise<void>;
  /** The sandbox's only way out (a proxy socket per session); without it sandboxes have no network. */
  readonly egress?: SandboxEgressHook;
  /** An environment's `packages`: the cached layer its sessions' sandboxes start from. */
  readonly packageLayers?: SessionPackageLayers;
  /** Sandbox policies, snapshots and warm starts; default: the idle times above, no snapshots. */
  readonly sandboxLifecycle?: SandboxLifecycle;
  /** How often the sweep destroys sandbox data of sessions no worker holds. Default 1 hour. */
  readonly sandboxSweepIntervalMs?: number;
  /** Who a session is shared with; without it, only owners and admins reach a session. */
  readonly shares?: ShareLookup;
  /** Audits a person's action on a session that writes no audited event itself (a cancel). */
  readonly audit?: (orgId: string, entry: SessionActionEntry) => Promise<void>;
}

export interface SessionActionEntry {
  readonly kind: "session_cancel";
  readonly sessionId: string;
  readonly userId: string;
  readonly data: Record<string, unknown>;
}

export interface Caller {
  readonly orgId: string;
  readonly userId: string;
  /** The caller's org role (`admin`, `member`, `viewer`); absent: `member`. */
  readonly role?: string;
}

interface LiveSession {
  readonly session: SessionRecord;
  readonly sandbox: SessionSandbox;
  /** Whether this worker pre-started (or tried to) the sandbox already. */
  isWarmTried: boolean;
  /** A Sandbox view that acquires (or replaces) the real sandbox on every call. */
  readonly proxy: Sandbox;
  /** The session's file namespace; gains the database mounts once they are set up. */
  fs: MountTable;
  /** The turn writes are attributed to (database file versions record it). */
  turn: number;
  mirror: Promise<MountMirror> | undefined;
  /** The session's memory store mounts, once set up (before its sandbox starts). */
  memory: Promise<SessionMemoryMounts | undefined> | undefined;
  /** The agent's pinned skills at /skills, once set up (before its sandbox starts); undefined: none pinned. */
  skills?: Promise<PinnedSkillsMount | undefined>;
  runner: Promise<SessionRunner> | undefined;
  /** Aborts the step in flight (model stream, sandbox command) when the turn is cancelled. */
  controller: AbortController;
  /** Aborts a model call in flight (never a command) when the turn is interrupted. */
  interruptController: AbortController;
  /** The `file` resources last put into the sandbox (their ids and paths), to notice new ones. */
  mountedFilesKey?: string;
  /** The environment's package layer, once found or built (undefined setup: no packages). */
  packageLayer?: Promise<PackageLayerSetup | undefined>;
  /** The github_repository resource versions this worker tried to clone (session-repositories.ts). */
  readonly clonedRepositories: Set<string>;
  /** The turn whose first step last looked for repositories to clone. */
  repositoriesCheckedTurn?: number;
}

export class SessionManager implements TurnHost {
  readonly #options: SessionManagerOptions;
  readonly #live = new Map<string, LiveSession>();
  /** When each session's last step ended on this worker (kept only while step timings are on). */
  readonly #stepEnds = new Map<string, number>();
  readonly #models = new Map<string, LanguageModel>();
  readonly #policies = new Map<string, { policy: ToolPolicy; expiresAt: number }>();
  readonly #mirrors = new Map<string, Promise<MountMirror>>();
  readonly #lifecycle: SandboxLifecycle;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** Stopping: no new step starts here (it waits until the process exits, as after a crash). */
  #isDraining = false;
  /** Steps running now, by session: their sandboxes are left to finish them when the drain ends. */
  readonly #running = new Map<Promise<unknown>, string>();

  constructor(options: SessionManagerOptions) {
    this.#options = options;
    this.#lifecycle =
      options.sandboxLifecycle ??
      new SandboxLifecycle({
        defaults: {
          standbyAfterMs: options.standbyAfterMs,
          coldAfterMs: options.sandboxIdleMs,
          destroyAfterMs: 7 * 24 * 3600_000,
        },
        home: options.home,
        store: options.store,
        log: options.log,
      });
  }

  async start(): Promise<void> {
    await this.#options.scheduler.start(this);
    this.#sweepTimer = setInterval(() => {
      void this.sweepSandboxes().catch((error: Error) =>
        this.#options.log(`sandbox sweep: ${error.message}`),
      );
    }, this.#options.sandboxSweepIntervalMs ?? 3600_000);
    this.#sweepTimer.unref();
  }

  /** The session's sandbox state, folded from its log (the same answer on every worker). */
  async sandboxState(
    caller: Caller,
    sessionId: string,
  ): Promise<SandboxStateView & { policy: Record<string, number | undefined> }> {
    await this.get(caller, sessionId);
    const view = await this.#lifecycle.readState(sessionId);
    return { ...view, policy: { ...(await this.#lifecycle.policyFor(caller.orgId)) } };
  }

  /** Forgets this worker's cached copy of an org's sandbox policy (after this worker changed it). */
  invalidateSandboxPolicy(orgId: string): void {
    this.#lifecycle.invalidate(orgId);
  }

  /** Destroys sandbox data of sessions no worker holds that idled past destroyAfterMs. */
  sweepSandboxes(): Promise<number> {
    return this.#lifecycle.sweep(
      (sessionId) => this.#live.has(sessionId),
      (sessionId, event) => this.#append(sessionId, [event]),
    );
  }

  /**
   * Validates the model spec, creates the session and starts its first turn when a prompt is given.
   * With `agent` (the pinned agent version), the model and system prompt are the agent's, and every turn
   * offers only its enabled toolset tools (with their permission policies) and its custom tools; the
   * config is kept on `session.start` (and passed to the store, for one that keeps it).
   */
  async create(
    caller: Caller,
    input: {
      model?: string;
      prompt?: string;
      system?: string;
      agent?: AgentConfig;
      managed?: ManagedSessionFields;
    },
  ): Promise<SessionRecord> {
    if (caller.role === "viewer") throw new InputError("read_only", "Viewers have read-only access.", 403);
    // A session of the API pins its agent's config; `agent` alone is the same without the API's fields.
    const agent = input.agent ?? input.managed?.agentConfig;
    const model = agent?.model ?? input.model;
    if (!model) throw new InputError("invalid_request", "A session needs a model or an agent.", 400);
    this.#model(model); // fails early on an unknown provider or a missing key
    const { store } = this.#options;
    const session = await store.createSession({
      orgId: caller.orgId,
      userId: caller.userId,
      model,
      system: agent ? agent.system : (input.system ?? null),
      ...(agent ? { agent } : {}),
      ...(input.managed ? { managed: input.managed } : {}),
    });
    await this.#append(session.id, [
      { type: "session.start", model, ...(agent ? { agent: toPinnedAgentConfig(agent) } : {}) },
    ]);
    if (input.prompt !== undefined) return this.postMessage(caller, session.id, input.prompt);
    return (await store.getSession(caller.orgId, session.id)) ?? session;
  }

  /**
   * Starts the next turn, as the session's owner (their memories and secrets) on behalf of `caller`, who
   * must be the owner or have a steerer share. While a turn runs the message is queued (see sendMessage).
   */
  async postMessage(caller: Caller, sessionId: string, text: string): Promise<SessionRecord> {
    await this.sendMessage(caller, sessionId, text);
    return this.get(caller, sessionId);
  }

  /**
   * The API's `user.message`: starts a turn now when the session is idle and nothing waits before it;
   * otherwise persists it as `message.queue`, and it starts its own turn when the turns before it end,
   * in the order messages were sent (a queue that survives restarts).
   */
  async sendMessage(
    caller: Caller,
    sessionId: string,
    text: string,
    content?: UserContentPart[],
  ): Promise<SubmittedMessage> {
    await this.authorize(caller, sessionId, "steer");
    const { store, scheduler, bus } = this.#options;
    const submitted = await store.submitMessage(caller.orgId, sessionId, text, {
      userId: caller.userId,
      ...(content ? { content } : {}),
    });
    bus.publish(sessionId, submitted.event);
    if (submitted.type === "started") await scheduler.schedule(sessionId, submitted.turn);
    // Queued behind no running turn (one that ended before it could start the queue): start it here.
    else await this.#startQueued(sessionId);
    return submitted;
  }

  /**
   * The API's `user.interrupt`: the running turn stops politely. The step in flight finishes (a command
   * is never killed mid-write, a model answer is kept), calls not started are answered as interrupted,
   * and the turn ends with `turn.end` reason `interrupted`; a wait for a confirmation or a custom tool
   * result ends at once. Nothing persisted is dropped: queued messages run afterwards, in order.
   * Returns false when no turn was running (nothing to interrupt).
   */
  async interrupt(caller: Caller, sessionId: string): Promise<boolean> {
    const session = await this.authorize(caller, sessionId, "cancel");
    if (session.status !== "running") return false;
    const turn = session.turns;
    const state = await (await this.#runner(session)).state();
    if (state.turn !== turn || state.turnStatus !== "running" || state.isInterruptRequested) return true;
    const waiting = pendingActions(state);
    try {
      await this.#append(sessionId, [{ type: "interrupt.request", turn, userId: caller.userId }], turn);
    } catch (error) {
      if (!isTurnClosedError(error)) throw error;
      return true;
    }
    // A model call in flight on this worker stops now (other workers see the interrupt at their next step).
    const live = this.#live.get(sessionId);
    if (live) {
      live.interruptController.abort(new Error("interrupted"));
      live.interruptController = new AbortController();
    }
    // Stopping someone else's turn is recorded as a cancel was: who did it, and whose session it was.
    await this.#options.audit?.(session.orgId, {
      kind: "session_cancel",
      sessionId,
      userId: caller.userId,
      data: { turn, ...(caller.userId === session.userId ? {} : { sessionOwnerId: session.userId }) },
    });
    const { scheduler } = this.#options;
    for (const action of waiting) {
      if (action.type === "tool_confirmation") {
        await scheduler.sendApproval(sessionId, turn, action.toolCallId, {
          decision: "deny",
          userId: caller.userId,
          isInterrupt: true,
        });
      } else {
        await scheduler.sendCustomToolResult(sessionId, turn, action.toolCallId, {
          content: [],
          isError: true,
          userId: caller.userId,
          isInterrupt: true,
        });
      }
    }
    return true;
  }

  /**
   * The API's `user.custom_tool_result`: the client's result for a custom tool call the running turn
   * waits for. 404 `not_found` when no such call waits (unknown, or not requested in this turn), 409
   * `already_answered` when it has a result; neither changes anything.
   */
  async submitCustomToolResult(
    caller: Caller,
    sessionId: string,
    toolCallId: string,
    result: Omit<CustomToolResult, "userId">,
  ): Promise<void> {
    const session = await this.authorize(caller, sessionId, "steer");
    const content = z.array(CustomToolContentBlock).safeParse(result.content);
    if (!content.success || typeof result.isError !== "boolean") {
      throw new InputError(
        "invalid_request",
        "A custom tool result needs `content` (blocks with a `type`) and a boolean `is_error`.",
        400,
      );
    }
    const runner = await this.#runner(session);
    const state = await runner.state();
    const request = state.turnStatus === "running" ? state.customRequests.get(toolCallId) : undefined;
    if (!request) throw new InputError("not_found", "No custom tool call waits for this result.", 404);
    if (request.isAnswered) {
      throw new InputError("already_answered", "This custom tool call already has its result.", 409);
    }
    if (state.isInterruptRequested) {
      throw new InputError("turn_interrupted", "The turn was interrupted; it takes no more results.", 409);
    }
    // Recorded now (see approve), then the turn is woken if it waits on this call.
    await runner.recordCustomToolResult(toolCallId, {
      content: result.content,
      isError: result.isError,
      userId: caller.userId,
    });
    await this.#options.scheduler.sendCustomToolResult(sessionId, state.turn, toolCallId, {
      content: result.content,
      isError: result.isError,
      userId: caller.userId,
    });
  }

  /**
   * What the running turn waits for from a client (confirmations, custom tool results), with the seqs of
   * their request events: while this is not empty the API shows the session `idle` with
   * `requires_action` naming them. Empty when no turn runs or none waits.
   */
  async pendingActions(caller: Caller, sessionId: string): Promise<PendingAction[]> {
    const session = await this.get(caller, sessionId);
    if (session.status !== "running") return [];
    return pendingActions(await (await this.#runner(session)).state());
  }

  /** The session, when `caller` may read it (404 otherwise: its existence is not revealed). */
  get(caller: Caller, sessionId: string): Promise<SessionRecord> {
    return this.authorize(caller, sessionId, "read");
  }

  /**
   * The session, when `caller` may do `permission` on it: 404 when they may not read it, 403 when they
   * may read but not do this. See checkSessionAccess.
   */
  async authorize(caller: Caller, sessionId: string, permission: SessionPermission): Promise<SessionRecord> {
    // A malformed id (NUL bytes, huge, odd characters) names no session: never hand it to the store.
    if (!SESSION_ID_PATTERN.test(sessionId)) throw notFound("Session");
    const session = await this.#options.store.getSession(caller.orgId, sessionId);
    if (!session) throw notFound("Session");
    await checkSessionAccess(caller, session, permission, this.#options.shares);
    return session;
  }

  /** Ends the running turn with `turn.error cancelled` and stops its workflow and running command. */
  async cancel(caller: Caller, sessionId: string): Promise<SessionRecord> {
    const session = await this.authorize(caller, sessionId, "cancel");
    if (session.status !== "running") {
      throw new InputError("no_running_turn", "No turn is running in this session.", 409);
    }
    const turn = session.turns;
    // Closing the turn in the log first makes every later write of the old turn a no-op, on any worker.
    try {
      await this.#append(
        sessionId,
        [{ type: "turn.error", turn, code: "cancelled", message: "The turn was cancelled." }],
        turn,
      );
    } catch (error) {
      if (!(error instanceof Error && "code" in error && error.code === "turn_closed")) throw error;
    }
    await this.#options.audit?.(session.orgId, {
      kind: "session_cancel",
      sessionId,
      userId: caller.userId,
      data: { turn, ...(caller.userId === session.userId ? {} : { sessionOwnerId: session.userId }) },
    });
    this.abortLocal(sessionId);
    await this.#options.broadcastCancel?.(sessionId).catch(() => undefined);
    await this.#options.scheduler.cancel(sessionId, turn).catch((error: Error) => {
      this.#options.log(`cancel ${sessionId}: ${error.message}`);
    });
    // The cancelled workflow will not start the queue: messages queued behind the turn start now.
    await this.#startQueued(sessionId);
    return this.get(caller, sessionId);
  }

  /**
   * Deletes the session: a running turn is stopped first, then its sandbox, snapshots, checkpoints and
   * workspace go, and the store deletes the session with its events.
   */
  async delete(caller: Caller, sessionId: string): Promise<void> {
    const session = await this.authorize(caller, sessionId, "share");
    if (session.status === "running") {
      await this.cancel(caller, sessionId).catch((error: Error) => {
        if (!(error instanceof InputError && error.code === "no_running_turn")) throw error;
      });
    }
    const live = this.#live.get(sessionId);
    this.#live.delete(sessionId);
    await live?.sandbox.destroy().catch((error: Error) => {
      this.#options.log(`delete ${sessionId}: sandbox: ${error.message}`);
    });
    await destroySessionSandboxData(
      this.#lifecycle.snapshotsFor(sessionId),
      this.#lifecycle.stateDir(sessionId),
    );
    await this.#options.egress?.releaseSession?.(sessionId);
    // The host copies of its uploads, outputs, memory stores and skills go; output files stay in the Files API.
    await this.#options.sessionFiles?.(session).destroy();
    if (SESSION_ID_PATTERN.test(sessionId)) {
      const home = this.#options.home;
      for (const target of [
        path.join(home, "memory-mounts", sessionId),
        path.join(home, "session-skills", sessionId),
        path.join(home, "session-skills", `${sessionId}.digest`),
      ])
        await rm(target, { recursive: true, force: true });
    }
    if (!(await this.#options.store.deleteSession(caller.orgId, sessionId))) throw notFound("Session");
  }

  /** Aborts the step this worker runs for the session, if any (called locally and on a cancel broadcast). */
  abortLocal(sessionId: string): void {
    const live = this.#live.get(sessionId);
    if (!live) return;
    live.controller.abort(new Error("cancelled"));
    live.controller = new AbortController();
  }

  /**
   * Answers a pending approval request of the running turn (the API's `user.tool_confirmation`). The
   * decision is bound to the call's input: `inputDigest`, when given, must be the request's (409
   * `approval_mismatch` otherwise). A deny's `denyMessage` is what the model is told. An unknown call is
   * 404, an answered one 409; neither changes anything.
   */
  async approve(
    caller: Caller,
    sessionId: string,
    toolCallId: string,
    decision: "allow" | "deny",
    inputDigest?: string,
    options: { denyMessage?: string } = {},
  ): Promise<void> {
    const session = await this.authorize(caller, sessionId, "approve");
    const runner = await this.#runner(session);
    const state = await runner.state();
    const approval = state.turnStatus === "running" ? state.approvals.get(toolCallId) : undefined;
    if (!approval) throw new InputError("not_found", "No approval is pending for this tool call.", 404);
    if (approval.decision !== undefined) {
      throw new InputError(
        "already_decided",
        `This tool call was already ${approval.decision === "allow" ? "allowed" : "denied"}.`,
        409,
      );
    }
    if (inputDigest !== undefined && inputDigest !== approval.inputDigest) {
      throw new InputError(
        "approval_mismatch",
        "The inputDigest does not match the pending request's input; read the approval.request again.",
        409,
      );
    }
    // Recorded now, so the log (and the API) shows the answer even while the turn still waits on an
    // earlier request of the same model answer; the message then wakes the turn if it waits on this one.
    await runner.recordApproval(
      toolCallId,
      decision,
      "user",
      caller.userId,
      approval.inputDigest,
      decision === "deny" ? options.denyMessage : undefined,
    );
    await this.#options.scheduler.sendApproval(sessionId, session.turns, toolCallId, {
      decision,
      userId: caller.userId,
      inputDigest: approval.inputDigest,
      ...(decision === "deny" && options.denyMessage !== undefined
        ? { denyMessage: options.denyMessage }
        : {}),
    });
  }

  /** Reads a workspace file through the sandbox (never from the host directly, so symlinks cannot escape). */
  async readFile(caller: Caller, sessionId: string, filePath: string): Promise<Uint8Array> {
    const session = await this.get(caller, sessionId);
    const fs = this.#liveSession(session).fs;
    const resolved = fs.resolve(filePath);
    if (resolved.mount.prefix !== WORKSPACE) {
      throw new InputError(
        "invalid_path",
        `Only files under ${WORKSPACE} can be read through this route.`,
        400,
      );
    }
    return fs.read(filePath);
  }

  // ---- TurnHost: called by the scheduler, possibly on another worker than the one that started the turn.

  step(sessionId: string, turn: number): Promise<StepOutcome> {
    // The model wrapper of ops/ reads which session and turn a model call is for from this scope.
    return stepScope.run({ sessionId, turn }, () =>
      this.#track(sessionId, () => this.#timedStep(sessionId, turn)),
    );
  }

  /** The step, and (with step timings on) the time since the session's previous step ended: the checkpoint. */
  async #timedStep(sessionId: string, turn: number): Promise<StepOutcome> {
    if (!stepTimings.isEnabled) return this.#step(sessionId, turn);
    const startedAt = performance.now();
    const previousEnd = this.#stepEnds.get(sessionId);
    if (previousEnd !== undefined) stepTimings.add("step.between", startedAt - previousEnd);
    try {
      return await this.#step(sessionId, turn);
    } finally {
      const endedAt = performance.now();
      stepTimings.add("step", endedAt - startedAt);
      this.#stepEnds.set(sessionId, endedAt);
    }
  }

  async #step(sessionId: string, turn: number): Promise<StepOutcome> {
    const preparedAt = performance.now();
    const session = await this.#lookup(sessionId);
    if (!session) return { type: "idle", seq: 0 };
    const live = this.#liveSession(session);
    const runner = await this.#runner(session);
    // The log decides: a turn that ended (or was cancelled) elsewhere is over for this workflow too.
    const state = await runner.state();
    if (state.turn !== turn || state.turnStatus !== "running") return { type: "idle", seq: state.lastSeq };
    live.turn = turn;
    if (!(await this.#preparePackageLayer(session, live, turn)))
      return { type: "idle", seq: (await runner.state()).lastSeq };
    runner.setPolicy(await this.#policy(session.orgId));
    const files = session.managed ? this.#options.sessionFiles?.(session) : undefined;
    if (files) await this.#mountSessionFiles(session, live, files);
    if (session.managed)
      await this.#cloneRepositories(session, live, turn).catch((error: Error) => {
        // The turn goes on without them (a sandbox that cannot start fails the step's tool calls anyway).
        this.#options.log(`session ${sessionId}: cloning repositories: ${error.message}`);
      });
    this.#prestartSandbox(live);
    stepTimings.add("step.prepare", performance.now() - preparedAt);
    const outcome = await runner.runStep(live.controller.signal, live.interruptController.signal, {
      caughtUp: state,
    });
    // What the step wrote under /mnt/session/outputs/ becomes downloadable through the Files API.
    if (files && live.sandbox.isStarted)
      await stepTimings.time("step.outputs", () =>
        files.collectOutputs(live.proxy).catch((error: Error) => {
          this.#options.log(`session ${sessionId}: collecting outputs: ${error.message}`);
        }),
      );
    // Waiting for a person or a client: the sandbox is frozen rather than left running.
    if (outcome.type === "await_approval" || outcome.type === "await_custom_tool") live.sandbox.standbyNow();
    return outcome;
  }

  recordCustomToolResult(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: CustomToolMessage | null,
  ): Promise<void> {
    return this.#track(sessionId, async () => {
      const session = await this.#lookup(sessionId);
      if (!session || !message || message.isInterrupt) return;
      const runner = await this.#runner(session);
      if ((await runner.state()).turn !== turn) return;
      await runner.recordCustomToolResult(toolCallId, {
        content: message.content,
        isError: message.isError,
        ...(message.userId ? { userId: message.userId } : {}),
      });
    });
  }

  startQueuedTurn(sessionId: string, _turn: number): Promise<number | null> {
    return this.#track(sessionId, () => this.#startQueuedTurn(sessionId));
  }

  /** Starts the oldest queued message as the next turn when no turn runs; resolves the running turn. */
  async #startQueuedTurn(sessionId: string): Promise<number | null> {
    const started = await this.#options.store.startQueuedTurn(sessionId);
    if (started) this.#options.bus.publish(sessionId, started.event);
    const session = await this.#lookupFresh(sessionId);
    return session?.status === "running" ? session.turns : null;
  }

  /** Outside a turn's workflow (a message, a cancel): starts the queue's next turn, if any, and schedules it. */
  async #startQueued(sessionId: string): Promise<void> {
    const started = await this.#options.store.startQueuedTurn(sessionId);
    if (!started) return;
    this.#options.bus.publish(sessionId, started.event);
    await this.#options.scheduler.schedule(sessionId, started.turn);
  }

  recordApproval(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: ApprovalMessage | null,
  ): Promise<void> {
    return this.#track(sessionId, () => this.#recordApproval(sessionId, turn, toolCallId, message));
  }

  async #recordApproval(
    sessionId: string,
    turn: number,
    toolCallId: string,
    message: ApprovalMessage | null,
  ): Promise<void> {
    const session = await this.#lookup(sessionId);
    if (!session) return;
    const runner = await this.#runner(session);
    if ((await runner.state()).turn !== turn) return;
    // An interrupt woke the wait: no decision is recorded, the next step ends the turn.
    if (message?.isInterrupt) return;
    if (message)
      await runner.recordApproval(
        toolCallId,
        message.decision,
        "user",
        message.userId || undefined,
        message.inputDigest,
        message.denyMessage,
      );
    else await runner.recordApproval(toolCallId, "deny", "timeout");
  }

  get liveCount(): number {
    return this.#live.size;
  }

  /**
   * Stops taking work: a step that has not started yet waits (its turn stays pending in the durable
   * engine, resumed after a restart as after a crash). Waits up to `timeoutMs` for the steps already
   * running (a command, a model call) to finish and record their results; resolves how many still run.
   */
  async drain(timeoutMs: number): Promise<number> {
    this.#isDraining = true;
    this.#options.scheduler.stopClaiming?.();
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.#running.keys()]), deadline]);
    clearTimeout(timer);
    return this.#running.size;
  }

  /**
   * Stops the scheduler and this worker's sandboxes. A step still running keeps its sandbox and its
   * command: nothing is aborted and no failure is recorded. When this process exits, that sandbox
   * finishes its keyed call and journals it, and the restarted turn replays the result (as after a
   * crash). Call drain() first to let running steps finish.
   */
  async close(): Promise<void> {
    this.#isDraining = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    await this.#options.scheduler.close();
    const busy = new Set(this.#running.values());
    const idle = [...this.#live.values()].filter((live) => !busy.has(live.session.id));
    await Promise.allSettled(idle.map((live) => live.sandbox.destroy()));
    await Promise.allSettled([...this.#mirrors.values()].map(async (mirror) => (await mirror).close()));
  }

  /** Sessions with a step running now. */
  get busySessions(): ReadonlySet<string> {
    return new Set(this.#running.values());
  }

  /** Runs a scheduler callback unless the worker is stopping; then it never settles (see drain()). */
  #track<T>(sessionId: string, work: () => Promise<T>): Promise<T> {
    if (this.#isDraining) return new Promise<T>(() => undefined);
    const task = work();
    this.#running.set(task, sessionId);
    const forget = () => this.#running.delete(task);
    task.then(forget, forget);
    return task;
  }

  /** The session's immutable facts (org, model, system prompt), cached once known. */
  async #lookup(sessionId: string): Promise<SessionRecord | null> {
    const known = this.#live.get(sessionId)?.session;
    if (known) return known;
    const orgId = await this.#options.store.findSessionOrg(sessionId);
    if (!orgId) return null;
    return this.#options.store.getSession(orgId, sessionId);
  }

  /** The session as stored now (status and turns change; #lookup's cached copy does not). */
  async #lookupFresh(sessionId: string): Promise<SessionRecord | null> {
    const orgId =
      this.#live.get(sessionId)?.session.orgId ?? (await this.#options.store.findSessionOrg(sessionId));
    return orgId ? this.#options.store.getSession(orgId, sessionId) : null;
  }

  /** Forgets this worker's cached copy of an org's policy (after this worker changed it). */
  invalidatePolicy(orgId: string): void {
    this.#policies.delete(orgId);
  }

  /** Tool policies change rarely; a step reads a copy at most a second old (changes on other workers). */
  async #policy(orgId: string): Promise<ToolPolicy> {
    const cached = this.#policies.get(orgId);
    if (cached && cached.expiresAt > Date.now()) return cached.policy;
    const policy = (await this.#options.policies?.get(orgId)) ?? DEFAULT_TOOL_POLICY;
    this.#policies.set(orgId, { policy, expiresAt: Date.now() + 1000 });
    return policy;
  }

  #runner(session: SessionRecord): Promise<SessionRunner> {
    const live = this.#liveSession(session);
    if (!live.runner) {
      live.runner = this.#createRunner(session, live);
      live.runner.catch(() => {
        live.runner = undefined; // a failed setup (e.g. the database blinked) is retried by the next step
      });
    }
    return live.runner;
  }

  async #createRunner(session: SessionRecord, live: LiveSession): Promise<SessionRunner> {
    const options = this.#options;
    const sections: string[] = [];
    if (!live.memory) {
      live.memory = this.#memoryMounts(session, live);
      live.memory.catch(() => {
        live.memory = undefined; // retried by the next step (e.g. the database blinked)
      });
    }
    const memoryStores = await live.memory;
    const pinned = await this.#pinnedSkillsOf(session, live);
    if (options.files || memoryStores || pinned) {
      const database = options.files ? await this.#databaseMounts(session) : [];
      // A session with pinned skills sees those at /skills, not the org's skill folders.
      const mounts = pinned
        ? [
            ...database.filter((mount) => mount.prefix !== "/skills"),
            { prefix: "/skills", fileSystem: pinned.fileSystem },
          ]
        : database;
      live.fs = createMountTable([...baseMounts(live.proxy), ...mounts, ...(memoryStores?.mounts ?? [])]);
    }
    if (options.files || pinned) {
      const skills = await loadSkills(live.fs);
      // Without database files there is no /memories to read (it would start the sandbox to look).
      const memory = options.files ? await loadMemoryInstructions(live.fs) : { prompt: "" };
      for (const section of [memory.prompt, buildSkillsPrompt(skills.skills)])
        if (section) sections.push(section);
    }
    if (memoryStores?.prompt) sections.push(memoryStores.prompt);
    const repositories = repositoriesPrompt(repositoryResourcesOf(session.managed?.resources ?? []));
    if (repositories) sections.push(repositories);
    // The pinned agent decides the model, the system prompt and the tools; without one, the defaults.
    const agent = await loadAgentConfig(options.store, session);
    const system = agent ? agent.system : session.system;
    const modelSpec = agent?.model ?? session.model;
    const extra = [system, ...sections].filter((part): part is string => Boolean(part)).join("\n\n");
    // What the sandbox can reach, as the org's egress policy says when the session's runner starts.
    const network = (await options.egress?.networkAccess?.(session.orgId, session.id)) ?? null;
    // A vendor-defined tool (Anthropic's memory tool) is offered only to that vendor's models.
    const provider = modelSpec.slice(0, modelSpec.indexOf(":"));
    // A vendor's own tool (Anthropic's memory tool) comes with the toolset for that vendor's models.
    const vendorTools = options.tools.filter((tool) => tool.providerTools && provider in tool.providerTools);
    const tools =
      agent && options.toolset
        ? [...options.toolset(session, agent).tools, ...vendorTools]
        : enabledTools(
            agent,
            options.tools.filter((tool) => !tool.providerTools || provider in tool.providerTools),
          );
    const fs = live.fs;
    return new SessionRunner(
      {
        store: options.store,
        tools,
        limits: options.limits,
        sleep: abortableSleep,
        random: Math.random,
        publish: (sessionId, event) => options.bus.publish(sessionId, event),
      },
      {
        sessionId: session.id,
        model: this.#model(modelSpec),
        fs,
        exec: async (request, signal) => {
          const exec = () => live.proxy.exec(request, signal);
          // Memory store copies are brought up to date before the command and committed after it.
          const run = memoryStores ? () => memoryStores.aroundExec(exec) : exec;
          const egress = options.egress;
          return explainReadOnlyMounts(await (egress ? egress.explainRefusals(session.id, run) : run()));
        },
        systemPrompt: buildSystemPrompt({ cwd: WORKSPACE, extra, network }),
        cwd: WORKSPACE,
        // A budget can only be set at create: a session made without one never pays for this read.
        ...(session.managed?.budget
          ? { isBudgetSpent: () => readBudgetSpent(options.store, session.orgId, session.id) }
          : {}),
        ...(agent
          ? {
              permissions: toolPermissionsOf(
                agent,
                tools.map((tool) => tool.name),
              ),
              customTools: agent.customTools,
            }
          : {}),
      },
    );
  }

  /** The agent session's pinned skills (set up once per worker); undefined for a session without an agent. */
  #pinnedSkillsOf(session: SessionRecord, live: LiveSession): Promise<PinnedSkillsMount | undefined> {
    if (!live.skills) {
      live.skills = (async () => {
        const load = this.#options.pinnedSkills;
        const agent = load ? await loadAgentConfig(this.#options.store, session) : undefined;
        if (!load || !agent) return undefined;
        const hostDir = path.join(this.#options.home, "session-skills", session.id);
        return mountPinnedSkills(await load(session.orgId, agent.skills), hostDir);
      })();
      live.skills.catch(() => {
        live.skills = undefined; // retried by the next step (e.g. the database blinked)
      });
    }
    return live.skills;
  }

  /** /memories and /skills for this session's user, and their read-only mirror for bash in the sandbox. */
  async #databaseMounts(session: SessionRecord) {
    const files = this.#options.files;
    if (!files) return [];
    const role = (await files.roleOf(session.orgId, session.userId)) ?? "member";
    const live = this.#liveSession(session);
    live.mirror ??= this.#mirror(session.orgId, session.userId);
    await live.mirror;
    return createDatabaseMounts({
      store: files.store,
      orgId: session.orgId,
      userId: session.userId,
      role,
      sessionId: session.id,
      turn: () => live.turn,
    });
  }

  /** The session's memory store resources, mounted (undefined when it has none). */
  async #memoryMounts(session: SessionRecord, live: LiveSession): Promise<SessionMemoryMounts | undefined> {
    const memoryStores = this.#options.memoryStores;
    if (!memoryStores) return undefined;
    const resources = await memoryStores.resourcesOf(session);
    if (resources.length === 0) return undefined;
    return createSessionMemoryMounts({
      memoryStores: memoryStores.stores,
      orgId: session.orgId,
      userId: session.userId,
      sessionId: session.id,
      resources,
      hostDir: path.join(this.#options.home, "memory-mounts", session.id),
      turn: () => live.turn,
    });
  }

  /** One mirror per (org, user) on this worker, shared by that user's sessions. */
  #mirror(orgId: string, userId: string): Promise<MountMirror> {
    const key = `${orgId}/${userId}`;
    let mirror = this.#mirrors.get(key);
    if (!mirror) {
      const files = this.#options.files;
      if (!files) throw new Error("no database files configured");
      mirror = createMountMirror({
        store: files.store,
        rootDir: this.#lifecycle.mirrorDir(orgId, userId),
        orgId,
        userId,
        onError: (error) => this.#options.log(`memory mirror ${key}: ${error.message}`),
      });
      mirror.catch(() => this.#mirrors.delete(key));
      this.#mirrors.set(key, mirror);
    }
    return mirror;
  }

  #liveSession(session: SessionRecord): LiveSession {
    let live = this.#live.get(session.id);
    if (!live) {
      const sandbox = this.#createSessionSandbox(session);
      const proxy = sandbox.proxy;
      live = {
        session,
        sandbox,
        isWarmTried: false,
        proxy,
        fs: createMountTable(baseMounts(proxy)),
        turn: session.turns,
        mirror: undefined,
        memory: undefined,
        runner: undefined,
        controller: new AbortController(),
        interruptController: new AbortController(),
        clonedRepositories: new Set(),
      };
      this.#live.set(session.id, live);
    }
    return live;
  }

  /** The session's sandbox with its lifecycle: policy limits, snapshots, idle states, events. */
  #createSessionSandbox(session: SessionRecord): SessionSandbox {
    const lifecycle = this.#lifecycle;
    return new SessionSandbox({
      provider: this.#options.sandboxProvider,
      sessionId: session.id,
      orgId: session.orgId,
      workspaceDir: lifecycle.workspaceDir(session.id),
      stateDir: lifecycle.stateDir(session.id),
      setup: () => this.#sandboxSetup(session),
      policy: () => lifecycle.policyFor(session.orgId),
      snapshots: lifecycle.snapshotsFor(session.id),
      readState: () => lifecycle.readState(session.id),
      emit: (event) => this.#append(session.id, [event]),
      log: this.#options.log,
      onWarmUsed: () => lifecycle.releaseWarm(),
      onSandboxGone: async () => this.#options.egress?.releaseSession?.(session.id),
    });
  }

  /**
   * Before a step may start the sandbox: the environment's package layer, found or built once. False
   * when the turn is over: its build failed (the turn ended with the installer's error; the next turn
   * tries again) or the turn was closed meanwhile. A cancel or an interrupt stops the wait, not the
   * build: the step goes on to end the turn, and a later sandbox setup waits for the layer.
   */
  async #preparePackageLayer(session: SessionRecord, live: LiveSession, turn: number): Promise<boolean> {
    const packageLayers = this.#options.packageLayers;
    if (!packageLayers || !session.managed || live.packageLayer) return true;
    const prepared = prepareSessionPackageLayer(packageLayers, session, turn, (events) =>
      this.#append(session.id, events, turn),
    );
    const layer = prepared.then(
      (outcome) => (outcome.type === "ready" ? outcome.setup : undefined),
      () => undefined,
    );
    live.packageLayer = layer;
    const forget = () => {
      if (live.packageLayer === layer) live.packageLayer = undefined;
    };
    prepared.then((outcome) => outcome.type === "failed" && forget(), forget);
    const stopped = [live.controller.signal, live.interruptController.signal];
    const outcome = await Promise.race([prepared, whenAborted(stopped)]).catch((error: unknown) => {
      if (isTurnClosedError(error)) return { type: "failed" as const };
      throw error;
    });
    return outcome === "aborted" || outcome.type === "ready";
  }

  /** Per-sandbox mounts, env and limits merged into each sandbox creation. */
  async #sandboxSetup(session: SessionRecord): Promise<SandboxSetup> {
    const files = session.managed ? this.#options.sessionFiles?.(session) : undefined;
    const [mirror, egress, memoryStores, fileMounts, pinned, packageLayer] = await Promise.all([
      this.#liveSession(session).mirror,
      this.#options.egress?.sandboxOptions({ ...session, vaultIds: session.managed?.vaultIds ?? [] }),
      this.#liveSession(session).memory,
      files?.sandboxMounts(),
      this.#pinnedSkillsOf(session, this.#liveSession(session)),
      this.#liveSession(session).packageLayer,
    ]);
    const writableMounts = [...(memoryStores?.writableMounts ?? []), ...(fileMounts?.writableMounts ?? [])];
    const skillsDir = pinned?.hostDir ?? mirror?.skillsDir;
    const mirrorMounts = [
      ...(mirror ? [{ hostPath: mirror.memoriesDir, sandboxPath: "/memories" }] : []),
      ...(skillsDir ? [{ hostPath: skillsDir, sandboxPath: "/skills" }] : []),
    ];
    return {
      readOnlyMounts: [
        ...mirrorMounts,
        ...(egress?.readOnlyMounts ?? []),
        ...(memoryStores?.readOnlyMounts ?? []),
        ...(fileMounts?.readOnlyMounts ?? []),
        ...(packageLayer?.readOnlyMounts ?? []),
      ],
      ...(writableMounts.length > 0 ? { writableMounts } : {}),
      ...(egress?.env || packageLayer ? { env: { ...egress?.env, ...packageLayer?.env } } : {}),
      ...(egress?.egressSocketPath ? { egressSocketPath: egress.egressSocketPath } : {}),
    };
  }

  /** Puts the session's `file` resources into its sandbox when they changed since the last time. */
  async #mountSessionFiles(session: SessionRecord, live: LiveSession, files: SessionFiles): Promise<void> {
    const resources = (session.managed?.resources ?? []).flatMap((resource) =>
      resource.type === "file" && typeof resource.file_id === "string"
        ? [
            {
              file_id: resource.file_id,
              mount_path: typeof resource.mount_path === "string" ? resource.mount_path : null,
            },
          ]
        : [],
    );
    const key = JSON.stringify(resources);
    if (resources.length === 0 || key === live.mountedFilesKey) return;
    await files.mountFiles(resources, live.proxy);
    live.mountedFilesKey = key;
  }

  /**
   * Clones the session's github_repository resources not tried yet on this worker (read fresh: one
   * may have been added or its token rotated since the session was cached), through its egress,
   * before the turn's first model call, so the model finds them in place.
   */
  async #cloneRepositories(session: SessionRecord, live: LiveSession, turn: number): Promise<void> {
    // Once per turn: a resource added or a token rotated meanwhile is seen at the next turn's first step.
    if (live.repositoriesCheckedTurn === turn) return;
    live.repositoriesCheckedTurn = turn;
    const current = await this.#options.store.getSession(session.orgId, session.id);
    const resources = repositoryResourcesOf(current?.managed?.resources ?? []);
    if (resources.every((resource) => live.clonedRepositories.has(resource.version))) return;
    const egress = this.#options.egress;
    await cloneRepositories({
      resources,
      attempted: live.clonedRepositories,
      exec: (request) => {
        const run = () => live.proxy.exec(request, live.controller.signal);
        return egress ? egress.explainRefusals(session.id, run) : run();
      },
      emit: (event) => this.#append(session.id, [event], turn),
    });
  }

  /** Starts the session's sandbox while its first model call runs, within OUTRIG_WARM_POOL_SIZE. */
  #prestartSandbox(live: LiveSession): void {
    if (live.isWarmTried || live.sandbox.isStarted) return;
    live.isWarmTried = true;
    if (!this.#lifecycle.reserveWarm()) return;
    if (!live.sandbox.prestart()) this.#lifecycle.releaseWarm();
  }

  #model(spec: string): LanguageModel {
    let model = this.#models.get(spec);
    if (!model) {
      model = this.#options.modelFactory(spec);
      this.#models.set(spec, model);
    }
    return model;
  }

  async #append(sessionId: string, events: NewSessionEvent[], turn?: number): Promise<void> {
    const stored = await this.#options.store.appendEvents(
      sessionId,
      events,
      turn === undefined ? {} : { turn },
    );
    for (const event of stored) this.#options.bus.publish(sessionId, event);
  }
}

/** Resolves "aborted" once any of the signals is; never otherwise. */
function whenAborted(signals: readonly AbortSignal[]): Promise<"aborted"> {
  return new Promise((resolve) => {
    for (const signal of signals) {
      if (signal.aborted) return resolve("aborted");
      signal.addEventListener("abort", () => resolve("aborted"), { once: true });
    }
  });
}

function isTurnClosedError(error: unknown): boolean {
  return error instanceof Error && "code" in error && error.code === "turn_closed";
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function baseMounts(proxy: Sandbox) {
  const getSandbox = async () => proxy;
  return [
    { prefix: "/", fileSystem: new SandboxFileSystem(getSandbox, "/") },
    { prefix: WORKSPACE, fileSystem: new SandboxFileSystem(getSandbox, WORKSPACE) },
  ];
}

const READ_ONLY_MOUNT_WRITE =
  /(\/memories|\/skills)\b[^\n]*Read-only file system|Read-only file system[^\n]*(\/memories|\/skills)/;

/** Bash sees /memories and /skills read-only; tell the model how to change them instead. */
function explainReadOnlyMounts(result: ExecResult): ExecResult {
  if (!READ_ONLY_MOUNT_WRITE.test(result.stderr) && !READ_ONLY_MOUNT_WRITE.test(result.stdout)) return result;
  return {
    ...result,
    stderr: `${result.stderr}${result.stderr.endsWith("\n") || result.stderr === "" ? "" : "\n"}outrig: /memories and /skills are read-only in bash; use the Write or Edit tool to change files there.\n`,
  };
}
