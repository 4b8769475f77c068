/** Persistence the loop and the API need for sessions. The event log is the source of truth. */
import type { NewSessionEvent, SessionEvent, SessionStatus, UserContentPart } from "@outrig/protocol";
import type { AgentConfig } from "../agents/agent-config.js";
import type { BudgetLimit } from "../budget/model-list-price.js";

/**
 * What a Managed Agents API session adds to a session: the agent it pinned (as a config and as the
 * API's Agent object), its environment, and the fields a client sets. Absent on sessions created
 * before the API.
 */
export interface ManagedSessionFields {
  /** The API's Agent object the session pinned, as `session.agent` shows it. */
  readonly agent: Record<string, unknown>;
  readonly agentConfig: AgentConfig;
  readonly environmentId: string;
  readonly title: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly vaultIds: readonly string[];
  /** The API's session resources (memory_store, file, github_repository), each with its `id`. */
  readonly resources: readonly Record<string, unknown>[];
  /** The spend ceiling (`budget`); absent or null when the session has none. */
  readonly budget?: BudgetLimit | null;
}

/** What an update may change; `archivedAt` is set once, by archiving. */
export interface ManagedSessionPatch {
  readonly title?: string | null;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly vaultIds?: readonly string[];
  readonly resources?: readonly Record<string, unknown>[];
  /** Appends one resource atomically (nothing changes when the session has `MAX_SESSION_RESOURCES`). */
  readonly addResource?: Record<string, unknown>;
  /** Removes the resource with this `id` atomically. */
  readonly removeResourceId?: string;
  readonly archivedAt?: Date;
  /** Replaces the budget (null removes it). */
  readonly budget?: BudgetLimit | null;
}

/** How many resources a session may have. */
export const MAX_SESSION_RESOURCES = 100;

/** Filters and cursor of a session list (all optional; without them: the org's newest first). */
export interface ListSessionsOptions {
  readonly limit: number;
  /** Only the sessions this user owns or that are shared with them. */
  readonly visibleTo?: string;
  readonly order?: "asc" | "desc";
  /** Rows strictly after this position in `order`. */
  readonly after?: { readonly createdAt: Date; readonly id: string };
  /** Rows strictly before this position in `order` (the page before); they come back in `order`. */
  readonly before?: { readonly createdAt: Date; readonly id: string };
  readonly excludeArchived?: boolean;
  readonly agentId?: string;
  readonly agentVersion?: number;
  /** Only sessions with this memory store among their resources. */
  readonly memoryStoreId?: string;
  readonly statuses?: readonly SessionStatus[];
  readonly createdAt?: { readonly gt?: Date; readonly gte?: Date; readonly lt?: Date; readonly lte?: Date };
}

export interface SessionRecord {
  readonly id: string;
  readonly orgId: string;
  readonly userId: string;
  /** Provider-qualified model spec, e.g. `anthropic:claude-sonnet-4-5`. */
  readonly model: string;
  readonly system: string | null;
  /**
   * The agent version the session pinned, when the store keeps it with the session. Absent: the
   * session's `session.start` event holds it, or the session has none (it runs with the defaults).
   */
  readonly agent?: AgentConfig;
  readonly status: SessionStatus;
  /** Number of turns started so far. */
  readonly turns: number;
  /** Highest persisted event seq (0 when there are none). */
  readonly lastSeq: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly managed?: ManagedSessionFields;
  readonly archivedAt?: Date | null;
  /** Token totals of every model call the session made. */
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number };
}

export interface CreateSessionInput {
  readonly orgId: string;
  readonly userId: string;
  readonly model: string;
  readonly system: string | null;
  readonly managed?: ManagedSessionFields;
  /** The pinned agent config, for a store that keeps it with the session (optional: see SessionRecord). */
  readonly agent?: AgentConfig;
}

/**
 * Who posted a message (default: the owner) and, when it has images or documents, its blocks
 * (`turn.start` / `message.queue` carry them as `content`; `text` is then the message's text blocks).
 */
export interface MessageOptions {
  userId?: string;
  content?: UserContentPart[];
}

/** What `submitMessage` did with a message. */
export type SubmittedMessage =
  | { readonly type: "started"; readonly turn: number; readonly event: SessionEvent }
  | { readonly type: "queued"; readonly event: SessionEvent };

export interface AppendOptions {
  /**
   * Append only while `turn` is the session's running turn; otherwise nothing is written and the call
   * throws a StorageError with code `turn_closed` (the turn was cancelled or ended elsewhere).
   */
  readonly turn?: number;
}

/** Notification channel that carries `<sessionId>:<lastSeq>` after every append (multi-worker SSE). */
export const SESSION_EVENTS_CHANNEL = "outrig_session_events";

/**
 * The status a batch of events leaves the session in, when it ends the turn: `idle` after `turn.end`
 * and after a cancelled turn (`turn.error` with code `cancelled`: nothing failed), `error` after any
 * other `turn.error`; null when the batch does not end the turn.
 */
export function terminalSessionStatus(events: readonly NewSessionEvent[]): SessionStatus | null {
  let status: SessionStatus | null = null;
  for (const event of events) {
    if (event.type === "turn.end") status = "idle";
    else if (event.type === "turn.error") status = event.code === "cancelled" ? "idle" : "error";
  }
  return status;
}

export interface SessionStore {
  createSession(input: CreateSessionInput): Promise<SessionRecord>;
  /** Scoped by org: another org's session resolves null. */
  getSession(orgId: string, sessionId: string): Promise<SessionRecord | null>;
  /**
   * Newest first. With `visibleTo`, only the sessions that user owns or that are shared with them;
   * without it, every session of the org.
   */
  listSessions(orgId: string, options: ListSessionsOptions): Promise<SessionRecord[]>;
  /** Changes a session's API fields; null when `orgId` has no such session. */
  updateManagedSession(
    orgId: string,
    sessionId: string,
    patch: ManagedSessionPatch,
  ): Promise<SessionRecord | null>;
  /** Deletes a session and its events (cascade); false when `orgId` has no such session. */
  deleteSession(orgId: string, sessionId: string): Promise<boolean>;
  /**
   * Appends events atomically, assigning consecutive seqs after the session's lastSeq (gap-free,
   * first event is seq 1) and `at` timestamps that never go back as seq grows (a clock that steps
   * back, or another worker's, repeats the previous `at`). A batch that ends the turn sets the status
   * given by `terminalSessionStatus`, in the same transaction. Returns the stored events.
   */
  appendEvents(
    sessionId: string,
    events: readonly NewSessionEvent[],
    options?: AppendOptions,
  ): Promise<SessionEvent[]>;
  /**
   * Starts the next turn atomically: appends `turn.start`, bumps `turns` and sets `running`. Throws
   * InputError `session_busy` (409) while a turn runs. Scoped by org. `userId` is who posted the
   * message (default: the owner): `turn.start` carries it, and an auditing store records the message and
   * the turn's tool calls as that user's actions.
   */
  startTurn(
    orgId: string,
    sessionId: string,
    text: string,
    options?: MessageOptions,
  ): Promise<{ turn: number; event: SessionEvent }>;
  /**
   * Like startTurn, but never refused for a busy session: while a turn runs, or while earlier messages
   * wait in the queue, the message is queued instead (a `message.queue` event, audited as startTurn
   * audits a message). Atomic with the session's status, so no message jumps ahead of another.
   */
  submitMessage(
    orgId: string,
    sessionId: string,
    text: string,
    options?: MessageOptions,
  ): Promise<SubmittedMessage>;
  /**
   * Starts the next turn from the oldest queued message (its `turn.start` names it in `queuedSeq` and is
   * attributed to its sender), when no turn runs; null when one runs or nothing is queued.
   */
  startQueuedTurn(sessionId: string): Promise<{ turn: number; event: SessionEvent } | null>;
  /** Events with seq > afterSeq, ascending, at most `limit`. */
  readEvents(sessionId: string, options: { afterSeq: number; limit: number }): Promise<SessionEvent[]>;
  updateSession(sessionId: string, patch: { status?: SessionStatus; turns?: number }): Promise<void>;
  /** The org that owns a session, for workers that receive only a session id; null when unknown. */
  findSessionOrg(sessionId: string): Promise<string | null>;
  /** Sessions of every org whose status is `running`, oldest first: the ones to resume after a restart. */
  listRunningSessions(options: { limit: number }): Promise<SessionRecord[]>;
}
