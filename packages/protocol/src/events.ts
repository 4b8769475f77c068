/**
 * Session events: the persisted, per-session log that SSE replays. Every persisted event has a gap-free `seq`.
 * `message.delta` is the one live-only event: it is streamed but never persisted, so it carries no `seq`.
 */
import { z } from "zod";
import { AssistantMessage, StopReason, Usage, UserContentPart } from "./messages.js";

const base = { seq: z.number().int().nonnegative(), at: z.string() };

/** Who decides whether a toolset tool runs without asking: the pinned agent's per-tool permission policy. */
export const PermissionPolicy = z.enum(["always_allow", "always_ask"]);
export type PermissionPolicy = z.infer<typeof PermissionPolicy>;
/** What was decided for one call: run it (`allow`), wait for a confirmation (`ask`), refuse it (`deny`). */
export const EvaluatedPermission = z.enum(["allow", "ask", "deny"]);
export type EvaluatedPermission = z.infer<typeof EvaluatedPermission>;

/**
 * The agent version a session pinned when it was created (core's `AgentConfig`), as the log keeps it:
 * the model, system prompt, toolset settings and custom tools every turn of the session runs with.
 */
export const PinnedAgentConfig = z.object({
  agentId: z.string().nullable(),
  version: z.number().int(),
  model: z.string(),
  system: z.string().nullable(),
  toolset: z.record(z.string(), z.object({ enabled: z.boolean(), permission: PermissionPolicy })),
  customTools: z.array(
    z.object({ name: z.string(), description: z.string(), inputSchema: z.record(z.string(), z.unknown()) }),
  ),
  skills: z.array(z.object({ skillId: z.string(), version: z.number().int().nullable() })),
});
export type PinnedAgentConfig = z.infer<typeof PinnedAgentConfig>;

export const SessionStartEvent = z.object({
  ...base,
  type: z.literal("session.start"),
  model: z.string(),
  /** The pinned agent config (absent for a session created without an agent: the defaults apply). */
  agent: PinnedAgentConfig.optional(),
});
export const TurnStartEvent = z.object({
  ...base,
  type: z.literal("turn.start"),
  turn: z.number().int(),
  text: z.string(),
  /** The message's blocks when it has images or documents (absent for text only: `text` is the message). */
  content: z.array(UserContentPart).optional(),
  /** Who posted the message (absent in logs written before sessions could be shared: the owner). */
  userId: z.string().optional(),
  /** The `message.queue` event this turn answers, when the message was queued behind a running turn. */
  queuedSeq: z.number().int().optional(),
});
/**
 * A message sent while a turn was running: persisted at once, it starts its own turn (a `turn.start`
 * naming it in `queuedSeq`) when the turns before it have ended, in the order messages were sent.
 */
export const MessageQueueEvent = z.object({
  ...base,
  type: z.literal("message.queue"),
  text: z.string(),
  /** As on `turn.start`: the blocks when the message has images or documents. */
  content: z.array(UserContentPart).optional(),
  userId: z.string().optional(),
});
/**
 * Someone asked the running turn to stop (the API's `user.interrupt`). The step in flight finishes
 * (a command is never killed mid-write); then calls not started yet are answered as interrupted and
 * the turn ends with reason `interrupted`. Queued messages are kept and run after it.
 */
export const InterruptRequestEvent = z.object({
  ...base,
  type: z.literal("interrupt.request"),
  turn: z.number().int(),
  userId: z.string().optional(),
});
export const MessageEndEvent = z.object({
  ...base,
  type: z.literal("message.end"),
  turn: z.number().int(),
  step: z.number().int(),
  message: AssistantMessage,
  stopReason: StopReason,
  usage: Usage,
});
export const ToolStartEvent = z.object({
  ...base,
  type: z.literal("tool.start"),
  turn: z.number().int(),
  toolCallId: z.string(),
  name: z.string(),
  input: z.unknown(),
  /** How the call's permission was evaluated (absent in logs written before agents existed: `allow`). */
  evaluatedPermission: EvaluatedPermission.optional(),
  /** The agent's permission policy that produced it; absent when no agent policy applied. */
  permissionPolicy: PermissionPolicy.optional(),
});
export const ToolEndEvent = z.object({
  ...base,
  type: z.literal("tool.end"),
  turn: z.number().int(),
  toolCallId: z.string(),
  name: z.string(),
  isError: z.boolean(),
  /**
   * What the tool returned, exactly: any Unicode text, NUL (U+0000) included, which JSON carries as
   * `\u0000`. The store escapes what Postgres cannot hold and restores it on read (storage README).
   */
  output: z.string(),
  durationMs: z.number(),
  /**
   * Set when the call was not run: denied by the org's tool policy (the matching rule and the call's
   * input, which the audit log records) or by a person answering an approval.
   */
  denied: z
    .object({ by: z.enum(["policy", "person"]), rule: z.string().optional(), input: z.unknown().optional() })
    .optional(),
  /** Files this call read or wrote, for the read-before-edit rule to survive restarts. */
  fileState: z.array(z.object({ path: z.string(), mtimeMs: z.number(), isPartial: z.boolean() })).optional(),
});
export const TurnEndEvent = z.object({
  ...base,
  type: z.literal("turn.end"),
  turn: z.number().int(),
  /**
   * `interrupted`: an `interrupt.request` stopped the turn. `budget_reached`: the session's list cost
   * reached its budget, so no further model request was made.
   */
  reason: z.enum(["end_turn", "max_steps", "max_tokens", "refusal", "interrupted", "budget_reached"]),
  usage: Usage,
});
export const TurnErrorEvent = z.object({
  ...base,
  type: z.literal("turn.error"),
  turn: z.number().int(),
  code: z.string(),
  message: z.string(),
});
/** A retryable model failure the loop will retry after `delayMs`. */
export const ModelRetryEvent = z.object({
  ...base,
  type: z.literal("model.retry"),
  turn: z.number().int(),
  step: z.number().int(),
  attempt: z.number().int(),
  code: z.string(),
  message: z.string(),
  delayMs: z.number(),
});
export const SandboxStartEvent = z.object({
  ...base,
  type: z.literal("sandbox.start"),
  sandboxId: z.string(),
  provider: z.string(),
  durationMs: z.number(),
  /** Limits the sandbox was created with (memoryBytes, pids, cpus, diskBytes, commandTimeoutMs). */
  limits: z.record(z.string(), z.number()).optional(),
  /** True when it was pre-started while the session's first model call ran. */
  isWarm: z.boolean().optional(),
});

export const ApprovalRequestEvent = z.object({
  ...base,
  type: z.literal("approval.request"),
  turn: z.number().int(),
  toolCallId: z.string(),
  name: z.string(),
  input: z.unknown(),
  /** The rule that asked for approval, as written in the org's policy. */
  rule: z.string(),
  timeoutMs: z.number().int(),
  /**
   * sha256 hex of the input's canonical JSON (keys sorted, no whitespace). An approval allows only the
   * call with this id and this input; a client may send it back to say what it approved.
   */
  inputDigest: z.string().optional(),
  /** Always `ask`: recorded so the wire can show `evaluated_permission` (absent in older logs). */
  evaluatedPermission: EvaluatedPermission.optional(),
  /** `always_ask` when the agent's policy asked; absent when only the org's tool policy did. */
  permissionPolicy: PermissionPolicy.optional(),
  /** More requests of the same model answer follow in this batch (as on `custom_tool.request`). */
  moreFollow: z.boolean().optional(),
});
export const ApprovalResponseEvent = z.object({
  ...base,
  type: z.literal("approval.response"),
  turn: z.number().int(),
  toolCallId: z.string(),
  decision: z.enum(["allow", "deny"]),
  /** `user`: someone answered; `timeout`: nobody did in time (fails closed). */
  reason: z.enum(["user", "timeout"]),
  userId: z.string().optional(),
  /** The input digest the decision applies to (see approval.request). */
  inputDigest: z.string().optional(),
  /** With a deny: what the model is told (the tool result, an error), instead of the default text. */
  denyMessage: z.string().optional(),
});

/** A content block of a custom tool's result, as the client sent it (`text`, `image`, `document`, …). */
export const CustomToolContentBlock = z.looseObject({ type: z.string() });
export type CustomToolContentBlock = z.infer<typeof CustomToolContentBlock>;
/**
 * The model called one of the agent's custom tools: the client runs it. The turn waits (durably, with
 * no time limit) for its `custom_tool.result`; the session shows `idle` with `requires_action`.
 */
export const CustomToolRequestEvent = z.object({
  ...base,
  type: z.literal("custom_tool.request"),
  turn: z.number().int(),
  toolCallId: z.string(),
  name: z.string(),
  input: z.unknown(),
  /**
   * More requests (confirmations, custom tool calls) of the same model answer follow in this batch:
   * the turn waits for all of them, and the session shows `requires_action` once, after the last.
   */
  moreFollow: z.boolean().optional(),
});
/** The client's result for a custom tool call (the API's `user.custom_tool_result`); the model reads it next. */
export const CustomToolResultEvent = z.object({
  ...base,
  type: z.literal("custom_tool.result"),
  turn: z.number().int(),
  toolCallId: z.string(),
  content: z.array(CustomToolContentBlock),
  isError: z.boolean(),
  userId: z.string().optional(),
});

/** The sandbox was frozen (memory kept, no CPU) because no tool call ran for a moment. */
export const SandboxStandbyEvent = z.object({
  ...base,
  type: z.literal("sandbox.standby"),
  sandboxId: z.string(),
});
/** A tool call thawed the sandbox; `durationMs` is the resume latency. */
export const SandboxResumeEvent = z.object({
  ...base,
  type: z.literal("sandbox.resume"),
  sandboxId: z.string(),
  durationMs: z.number(),
});

/** The workspace was snapshotted after a tool call that may have changed it (incremental). */
export const SandboxSnapshotEvent = z.object({
  ...base,
  type: z.literal("sandbox.snapshot"),
  sandboxId: z.string(),
  /** BlobStore key of the snapshot's manifest. */
  key: z.string(),
  /** The tool call whose effects the snapshot includes (the last one before it). */
  toolCallId: z.string().optional(),
  sizeBytes: z.number(),
  entryCount: z.number(),
  /** From the start of the capture until the snapshot was stored (the event follows). */
  durationMs: z.number(),
  /** The capture alone (scan and read of the changes): what the session's next call waited for. */
  captureMs: z.number().optional(),
});
/** The process tree was checkpointed to disk (CRIU) and its memory freed. */
export const SandboxHibernateEvent = z.object({
  ...base,
  type: z.literal("sandbox.hibernate"),
  sandboxId: z.string(),
});
/** A dead sandbox (OOM, killed, host restart) was replaced; the workspace came back from a snapshot. */
export const SandboxReplaceEvent = z.object({
  ...base,
  type: z.literal("sandbox.replace"),
  sandboxId: z.string(),
  reason: z.string(),
  /** Snapshot the workspace was restored from; absent when there was none yet. */
  snapshotKey: z.string().optional(),
  toolCallId: z.string().optional(),
});
/** Idle long enough: a final snapshot was kept, processes were killed and the local workspace dropped. */
export const SandboxColdEvent = z.object({
  ...base,
  type: z.literal("sandbox.cold"),
  sandboxId: z.string(),
  snapshotKey: z.string().optional(),
  /** Processes (beyond the sandbox's own agent) that were killed. */
  killedProcesses: z.number().int(),
});
/** The session's sandbox, snapshots and workspace were deleted (idle past destroyAfterMs). */
export const SandboxEndEvent = z.object({
  ...base,
  type: z.literal("sandbox.end"),
  reason: z.string(),
});

/**
 * The session waits for its environment's package layer: a build started (by this session or another
 * of the same packages on this host). Not written when the layer was already built.
 */
export const PackageLayerBuildStartEvent = z.object({
  ...base,
  type: z.literal("package_layer.build_start"),
  /** The layer's digest (base image and normalized packages). */
  digest: z.string(),
});
/** The session's sandboxes start from this layer: built now, awaited (`joined`) or found (`cached`). */
export const PackageLayerReadyEvent = z.object({
  ...base,
  type: z.literal("package_layer.ready"),
  digest: z.string(),
  source: z.enum(["built", "joined", "cached"]),
  durationMs: z.number(),
});
/** The layer's build failed; the turn ends with `turn.error environment_build_failed`. */
export const PackageLayerErrorEvent = z.object({
  ...base,
  type: z.literal("package_layer.error"),
  digest: z.string(),
  /** Names the installer and ends with the tail of its output. */
  message: z.string(),
});
/**
 * A github_repository resource was cloned into the sandbox (`commit` is what was checked out), or
 * could not be (`error` is the API's repository error type). The session goes on either way.
 */
export const RepositoryCloneEvent = z.object({
  ...base,
  type: z.literal("repository.clone"),
  resourceId: z.string(),
  url: z.string(),
  mountPath: z.string(),
  commit: z.string().optional(),
  error: z
    .object({
      type: z.enum([
        "repository_authentication_error",
        "repository_forbidden_error",
        "repository_not_found_error",
        "repository_checkout_error",
        "repository_clone_error",
      ]),
      message: z.string(),
    })
    .optional(),
});

export const SessionEvent = z.discriminatedUnion("type", [
  PackageLayerBuildStartEvent,
  PackageLayerReadyEvent,
  PackageLayerErrorEvent,
  RepositoryCloneEvent,
  SandboxStandbyEvent,
  SandboxSnapshotEvent,
  SandboxHibernateEvent,
  SandboxReplaceEvent,
  SandboxColdEvent,
  SandboxEndEvent,
  SandboxResumeEvent,
  ApprovalRequestEvent,
  ApprovalResponseEvent,
  CustomToolRequestEvent,
  CustomToolResultEvent,
  MessageQueueEvent,
  InterruptRequestEvent,
  SessionStartEvent,
  TurnStartEvent,
  MessageEndEvent,
  ToolStartEvent,
  ToolEndEvent,
  TurnEndEvent,
  TurnErrorEvent,
  ModelRetryEvent,
  SandboxStartEvent,
]);
export type SessionEvent = z.infer<typeof SessionEvent>;
export type SessionEventType = SessionEvent["type"];

/** An event before the store has given it `seq` and `at`. */
export type NewSessionEvent = SessionEvent extends infer E
  ? E extends SessionEvent
    ? Omit<E, "seq" | "at">
    : never
  : never;

/** Live-only text streamed while a model call runs; never persisted, so it has no `seq`. */
export const MessageDeltaEvent = z.object({
  type: z.literal("message.delta"),
  turn: z.number().int(),
  step: z.number().int(),
  text: z.string(),
});
export type MessageDeltaEvent = z.infer<typeof MessageDeltaEvent>;

/** Events that end a turn: a client following a turn stops at one of these. */
export const TERMINAL_TURN_EVENTS: readonly SessionEventType[] = ["turn.end", "turn.error"];
