/** SessionStore on Postgres. The event log is the source of truth; `sessions.last_seq` hands out seqs. */
import type {
  AgentConfig,
  AppendOptions,
  BudgetLimit,
  CreateSessionInput,
  ListSessionsOptions,
  ManagedSessionPatch,
  MessageOptions,
  SessionRecord,
  SessionStore,
  SubmittedMessage,
} from "@outrig/core";
import {
  InputError,
  InvariantError,
  MAX_SESSION_RESOURCES,
  SESSION_EVENTS_CHANNEL,
  StorageError,
  terminalSessionStatus,
} from "@outrig/core";
import { type NewSessionEvent, SessionEvent, type SessionStatus } from "@outrig/protocol";
import type pg from "pg";
import {
  GENESIS_HASH,
  lockAuditHeadSql,
  type PostgresAuditLog,
  toLockedHead,
} from "../audit/postgres-audit-log.js";
import { auditEntriesForEvents, isAuditedEvent } from "../audit/session-audit-entries.js";
import { createId } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";
import { escapeText, fromStoredJson, toStorableJson, unescapeText } from "./storable-json.js";

/** Version written into every stored payload; readers accept the versions listed below. */
export const SESSION_EVENT_SCHEMA_VERSION = 1;
/**
 * Version 2 is version 1 with its strings escaped by `toStorableJson` (NUL, unpaired surrogates, U+FDD0):
 * written only for a payload that needs it, so older readers refuse it instead of misreading it.
 */
export const ESCAPED_SESSION_EVENT_SCHEMA_VERSION = 2;
const READABLE_SCHEMA_VERSIONS: readonly number[] = [1, ESCAPED_SESSION_EVENT_SCHEMA_VERSION];

export interface PostgresSessionStoreOptions {
  /** Injected for tests; defaults to the wall clock. */
  readonly clock?: () => Date;
  /**
   * Audits tool calls (`tool.start`) and approval decisions (`approval.response`) in the same
   * transaction as the events: neither is stored without the other. Omitted: nothing is audited.
   */
  readonly audit?: PostgresAuditLog;
}

interface SessionRow {
  id: string;
  org_id: string;
  user_id: string;
  model: string;
  system: string | null;
  status: SessionStatus;
  turns: number;
  last_seq: string;
  created_at: Date;
  updated_at: Date;
  agent: Record<string, unknown> | null;
  agent_config: AgentConfig | null;
  environment_id: string | null;
  title: string | null;
  metadata: Record<string, string>;
  vault_ids: string[];
  resources: Record<string, unknown>[];
  archived_at: Date | null;
  input_tokens: string;
  output_tokens: string;
  budget: BudgetLimit | null;
}

interface EventRow {
  seq: string;
  payload: Record<string, unknown>;
  at: Date;
}

const SESSION_COLUMNS = `id, org_id, user_id, model, system, status, turns, last_seq, created_at, updated_at,
  agent, agent_config, environment_id, title, metadata, vault_ids, resources, archived_at, input_tokens, output_tokens, budget`;

export class PostgresSessionStore implements SessionStore {
  readonly #pool: pg.Pool;
  readonly #clock: () => Date;
  readonly #audit: PostgresAuditLog | undefined;

  constructor(pool: pg.Pool, options: PostgresSessionStoreOptions = {}) {
    this.#pool = pool;
    this.#clock = options.clock ?? (() => new Date());
    this.#audit = options.audit;
  }

  /** Throws StorageError `session_invalid_owner` when the user is not in the org. */
  async createSession(input: CreateSessionInput): Promise<SessionRecord> {
    const now = this.#clock();
    try {
      const { rows } = await this.#pool.query<SessionRow>(
        `INSERT INTO sessions (id, org_id, user_id, model, system, status, turns, last_seq, created_at, updated_at,
           agent, agent_config, environment_id, title, metadata, vault_ids, resources, budget)
         VALUES ($1, $2, $3, $4, $5, 'idle', 0, 0, $6, $6, $7, $8, $9, $10, COALESCE($11, '{}'::jsonb),
           COALESCE($12, '[]'::jsonb), COALESCE($13, '[]'::jsonb), $14)
         RETURNING ${SESSION_COLUMNS}`,
        [
          createId("sesn"),
          input.orgId,
          input.userId,
          input.model,
          input.system,
          now,
          jsonOrNull(input.managed?.agent),
          jsonOrNull(input.managed?.agentConfig),
          input.managed?.environmentId ?? null,
          input.managed?.title ?? null,
          jsonOrNull(input.managed?.metadata),
          jsonOrNull(input.managed?.vaultIds),
          jsonOrNull(input.managed?.resources),
          jsonOrNull(input.managed?.budget ?? undefined),
        ],
      );
      return toSessionRecord(single(rows));
    } catch (error) {
      if ((error as { code?: string }).code === "23503") {
        throw new StorageError("session_invalid_owner", `user ${input.userId} is not in org ${input.orgId}`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async getSession(orgId: string, sessionId: string): Promise<SessionRecord | null> {
    const { rows } = await this.#pool.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE org_id = $1 AND id = $2`,
      [orgId, sessionId],
    );
    return rows[0] ? toSessionRecord(rows[0]) : null;
  }

  async listSessions(orgId: string, options: ListSessionsOptions): Promise<SessionRecord[]> {
    const values: unknown[] = [orgId, options.limit];
    const where = ["org_id = $1"];
    const param = (value: unknown) => {
      values.push(value);
      return `$${values.length}`;
    };
    if (options.visibleTo !== undefined) {
      const user = param(options.visibleTo);
      where.push(
        `(user_id = ${user} OR id IN (SELECT session_id FROM session_shares WHERE org_id = $1 AND user_id = ${user}))`,
      );
    }
    if (options.excludeArchived) where.push("archived_at IS NULL");
    if (options.agentId !== undefined) where.push(`agent_id = ${param(options.agentId)}`);
    if (options.agentVersion !== undefined)
      where.push(`(agent ->> 'version')::int = ${param(options.agentVersion)}`);
    if (options.memoryStoreId !== undefined)
      where.push(
        `resources @> jsonb_build_array(jsonb_build_object('memory_store_id', ${param(options.memoryStoreId)}::text))`,
      );
    if (options.statuses && options.statuses.length > 0)
      where.push(`status = ANY(${param(options.statuses)}::text[])`);
    const range = options.createdAt ?? {};
    if (range.gt) where.push(`created_at > ${param(range.gt)}`);
    if (range.gte) where.push(`created_at >= ${param(range.gte)}`);
    if (range.lt) where.push(`created_at < ${param(range.lt)}`);
    if (range.lte) where.push(`created_at <= ${param(range.lte)}`);
    const isAscending = options.order === "asc";
    // `before` reads backwards from the position and flips the rows back into `order`.
    const isBackwards = options.before !== undefined;
    const position = options.after ?? options.before;
    if (position) {
      const isGreater = isAscending !== isBackwards;
      where.push(
        `(created_at, id) ${isGreater ? ">" : "<"} (${param(position.createdAt)}::timestamptz, ${param(position.id)})`,
      );
    }
    const direction = isAscending !== isBackwards ? "ASC" : "DESC";
    const { rows } = await this.#pool.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE ${where.join(" AND ")}
       ORDER BY created_at ${direction}, id ${direction} LIMIT $2`,
      values,
    );
    const records = rows.map(toSessionRecord);
    return isBackwards ? records.reverse() : records;
  }

  async updateManagedSession(
    orgId: string,
    sessionId: string,
    patch: ManagedSessionPatch,
  ): Promise<SessionRecord | null> {
    const { rows } = await this.#pool.query<SessionRow>(
      `UPDATE sessions SET
         title = CASE WHEN $3 THEN $4 ELSE title END,
         metadata = COALESCE($5, metadata),
         vault_ids = COALESCE($6, vault_ids),
         resources = CASE
           WHEN $10::jsonb IS NOT NULL THEN resources || jsonb_build_array($10::jsonb)
           WHEN $11::text IS NOT NULL THEN (
             SELECT COALESCE(jsonb_agg(resource ORDER BY position), '[]'::jsonb)
             FROM jsonb_array_elements(resources) WITH ORDINALITY AS item(resource, position)
             WHERE resource ->> 'id' IS DISTINCT FROM $11)
           ELSE COALESCE($7, resources) END,
         archived_at = COALESCE(archived_at, $8),
         budget = CASE WHEN $13 THEN $14::jsonb ELSE budget END,
         updated_at = GREATEST($9::timestamptz, updated_at)
       WHERE org_id = $1 AND id = $2 AND ($10::jsonb IS NULL OR jsonb_array_length(resources) < $12)
       RETURNING ${SESSION_COLUMNS}`,
      [
        orgId,
        sessionId,
        patch.title !== undefined,
        patch.title ?? null,
        jsonOrNull(patch.metadata),
        jsonOrNull(patch.vaultIds),
        jsonOrNull(patch.resources),
        patch.archivedAt ?? null,
        this.#clock(),
        jsonOrNull(patch.addResource),
        patch.removeResourceId ?? null,
        MAX_SESSION_RESOURCES,
        patch.budget !== undefined,
        jsonOrNull(patch.budget ?? undefined),
      ],
    );
    return rows[0] ? toSessionRecord(rows[0]) : null;
  }

  /** The session's events and shares go with it (ON DELETE CASCADE). */
  async deleteSession(orgId: string, sessionId: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query("DELETE FROM sessions WHERE org_id = $1 AND id = $2", [
      orgId,
      sessionId,
    ]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * Bumps `sessions.last_seq` with UPDATE … RETURNING and inserts the events in the same transaction. The
   * row lock taken by the UPDATE serializes concurrent writers, and a rollback returns the seqs, so the
   * log stays gap-free. Strings Postgres cannot hold (NUL, unpaired surrogates) are stored escaped and
   * read back as they were. Throws InvariantError for an event the protocol schema rejects (nothing is
   * written), StorageError `session_not_found` for an unknown session, and StorageError `event_unstorable`
   * (not retryable) when Postgres refuses the data itself (a value out of range, a row too large).
   */
  async appendEvents(
    sessionId: string,
    events: readonly NewSessionEvent[],
    options: AppendOptions = {},
  ): Promise<SessionEvent[]> {
    if (events.length === 0) return [];
    const at = this.#clock().toISOString();
    // Validate before writing: seq is a placeholder here, the real one comes from the database.
    for (const event of events) {
      const parsed = SessionEvent.safeParse({ ...event, seq: 0, at });
      if (!parsed.success) {
        throw new InvariantError(
          `refusing to store an invalid ${event.type} event: ${parsed.error.issues[0]?.message}`,
        );
      }
    }
    const status = terminalSessionStatus(events);
    const usage = usageOf(events);
    const values = [
      sessionId,
      events.length,
      at,
      options.turn ?? null,
      status,
      events.map((event) => event.type),
      events.map(toStoredPayload),
      SESSION_EVENTS_CHANNEL,
      usage.inputTokens,
      usage.outputTokens,
    ];
    try {
      return await this.#insertAppended(sessionId, events, options, values);
    } catch (error) {
      throw unstorable(error, sessionId) ?? error;
    }
  }

  async #insertAppended(
    sessionId: string,
    events: readonly NewSessionEvent[],
    options: AppendOptions,
    values: unknown[],
  ): Promise<SessionEvent[]> {
    const audit = this.#audit;
    if (!audit || !events.some(isAuditedEvent)) {
      const { rows } = await this.#pool.query<AppendedRow>(APPEND_EVENTS_SQL, values);
      const session = rows[0] ?? (await appendRefused(this.#pool, sessionId, options));
      return storedEvents(events, Number(session.last_seq), session.updated_at.toISOString());
    }
    // Audited events: the events and their audit entries commit together or not at all. The event
    // statement also locks the org's audit head, so this is 4 round trips (BEGIN, events, entries, COMMIT).
    return withTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<AppendedRow & AuditHeadColumns>(APPEND_AUDITED_EVENTS_SQL, [
        ...values,
        GENESIS_HASH,
      ]);
      const session = rows[0] ?? (await appendRefused(client, sessionId, options));
      const entries = auditEntriesForEvents(
        { id: sessionId, userId: session.actor_id, ownerId: session.user_id },
        events,
        await approvedToolNames(client, sessionId, events),
      );
      await audit.appendLocked(
        client,
        toLockedHead({ org_id: session.org_id, last_seq: session.audit_seq, last_hash: session.audit_hash }),
        entries,
      );
      return storedEvents(events, Number(session.last_seq), session.updated_at.toISOString());
    });
  }

  /**
   * With an audit log, the message is audited (`session_message`, as `options.userId` or the owner) in
   * the same transaction, and the turn's later tool calls are audited as that user too.
   */
  async startTurn(
    orgId: string,
    sessionId: string,
    text: string,
    options: MessageOptions = {},
  ): Promise<{ turn: number; event: SessionEvent }> {
    const at = this.#clock().toISOString();
    return withTransaction(this.#pool, async (client) => {
      const started = await this.#startTurnIn(client, orgId, sessionId, text, options, at, false);
      if (started) return started;
      const exists = await client.query("SELECT 1 FROM sessions WHERE org_id = $1 AND id = $2", [
        orgId,
        sessionId,
      ]);
      if (exists.rowCount === 0) throw new InputError("not_found", "Session not found", 404);
      throw new InputError(
        "session_busy",
        "A turn is already running in this session; wait for it to end.",
        409,
      );
    });
  }

  /**
   * Starts the turn when the session is not running (and, with `requireEmptyQueue`, nothing is queued);
   * null otherwise. The caller holds the transaction.
   */
  async #startTurnIn(
    client: pg.PoolClient,
    orgId: string,
    sessionId: string,
    text: string,
    options: MessageOptions,
    at: string,
    requireEmptyQueue: boolean,
  ): Promise<{ turn: number; event: SessionEvent } | null> {
    const { rows } = await client.query<{
      turns: number;
      last_seq: string;
      updated_at: Date;
      user_id: string;
    }>(
      `UPDATE sessions SET turns = turns + 1, last_seq = last_seq + 1, status = 'running',
         updated_at = GREATEST($3::timestamptz, updated_at), turn_user_id = $4
       WHERE org_id = $1 AND id = $2 AND status <> 'running'
         AND (NOT $5::boolean OR cardinality(queued_seqs) = 0)
       RETURNING turns, last_seq, updated_at, user_id`,
      [orgId, sessionId, at, options.userId ?? null, requireEmptyQueue],
    );
    const row = rows[0];
    if (!row) return null;
    const [event] = await insertEvents(
      client,
      orgId,
      sessionId,
      Number(row.last_seq),
      [
        {
          type: "turn.start",
          turn: row.turns,
          text,
          ...(options.content ? { content: options.content } : {}),
          ...(options.userId ? { userId: options.userId } : {}),
        },
      ],
      row.updated_at.toISOString(),
    );
    if (!event) throw new InvariantError("turn.start was not stored");
    await this.#auditMessage(client, orgId, sessionId, row.user_id, text, options.userId, row.turns);
    return { turn: row.turns, event };
  }

  /** `session_message`, as `userId` or the owner, in the caller's transaction. */
  async #auditMessage(
    client: pg.PoolClient,
    orgId: string,
    sessionId: string,
    ownerId: string,
    text: string,
    userId: string | undefined,
    turn: number | undefined,
  ): Promise<void> {
    const actor = userId ?? ownerId;
    await this.#audit?.appendIn(client, orgId, [
      {
        kind: "session_message",
        sessionId,
        userId: actor,
        data: {
          ...(turn === undefined ? { queued: true } : { turn }),
          textBytes: Buffer.byteLength(text, "utf8"),
          ...(actor === ownerId ? {} : { sessionOwnerId: ownerId }),
        },
      },
    ]);
  }

  /**
   * Starts the turn, or queues the message (a `message.queue` event and its seq at the queue's end) while
   * a turn runs or earlier messages wait. The session row is locked first, so this and startQueuedTurn
   * see one order.
   */
  async submitMessage(
    orgId: string,
    sessionId: string,
    text: string,
    options: MessageOptions = {},
  ): Promise<SubmittedMessage> {
    const at = this.#clock().toISOString();
    return withTransaction(this.#pool, async (client) => {
      const locked = await client.query("SELECT 1 FROM sessions WHERE org_id = $1 AND id = $2 FOR UPDATE", [
        orgId,
        sessionId,
      ]);
      if (locked.rowCount === 0) throw new InputError("not_found", "Session not found", 404);
      const started = await this.#startTurnIn(client, orgId, sessionId, text, options, at, true);
      if (started) return { type: "started", ...started };
      const { rows } = await client.query<{ last_seq: string; updated_at: Date; user_id: string }>(
        `UPDATE sessions SET last_seq = last_seq + 1, updated_at = GREATEST($2::timestamptz, updated_at),
           queued_seqs = array_append(queued_seqs, last_seq + 1)
         WHERE id = $1 RETURNING last_seq, updated_at, user_id`,
        [sessionId, at],
      );
      const row = rows[0];
      if (!row) throw new InvariantError("the locked session row is gone");
      const [event] = await insertEvents(
        client,
        orgId,
        sessionId,
        Number(row.last_seq),
        [
          {
            type: "message.queue",
            text,
            ...(options.content ? { content: options.content } : {}),
            ...(options.userId ? { userId: options.userId } : {}),
          },
        ],
        row.updated_at.toISOString(),
      );
      if (!event) throw new InvariantError("message.queue was not stored");
      await this.#auditMessage(client, orgId, sessionId, row.user_id, text, options.userId, undefined);
      return { type: "queued", event };
    });
  }

  async startQueuedTurn(sessionId: string): Promise<{ turn: number; event: SessionEvent } | null> {
    const at = this.#clock().toISOString();
    return withTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<{ org_id: string; status: SessionStatus; head: string | null }>(
        "SELECT org_id, status, queued_seqs[1] AS head FROM sessions WHERE id = $1 FOR UPDATE",
        [sessionId],
      );
      const session = rows[0];
      if (!session || session.status === "running" || session.head === null) return null;
      const head = Number(session.head);
      const queued = await client.query<EventRow>(
        "SELECT seq, payload, at FROM session_events WHERE session_id = $1 AND seq = $2",
        [sessionId, head],
      );
      const row = queued.rows[0];
      const message = row ? toSessionEvent(sessionId, row) : undefined;
      if (message?.type !== "message.queue") {
        throw new InvariantError(`queued seq ${head} of session ${sessionId} is no message.queue event`);
      }
      const started = await client.query<{ turns: number; last_seq: string; updated_at: Date }>(
        `UPDATE sessions SET turns = turns + 1, last_seq = last_seq + 1, status = 'running',
           updated_at = GREATEST($2::timestamptz, updated_at), turn_user_id = $3,
           queued_seqs = queued_seqs[2:]
         WHERE id = $1 RETURNING turns, last_seq, updated_at`,
        [sessionId, at, message.userId ?? null],
      );
      const turnRow = started.rows[0];
      if (!turnRow) throw new InvariantError("the locked session row is gone");
      const [event] = await insertEvents(
        client,
        session.org_id,
        sessionId,
        Number(turnRow.last_seq),
        [
          {
            type: "turn.start",
            turn: turnRow.turns,
            text: message.text,
            ...(message.content ? { content: message.content } : {}),
            queuedSeq: head,
            ...(message.userId ? { userId: message.userId } : {}),
          },
        ],
        turnRow.updated_at.toISOString(),
      );
      if (!event) throw new InvariantError("turn.start was not stored");
      return { turn: turnRow.turns, event };
    });
  }

  async findSessionOrg(sessionId: string): Promise<string | null> {
    const { rows } = await this.#pool.query<{ org_id: string }>("SELECT org_id FROM sessions WHERE id = $1", [
      sessionId,
    ]);
    return rows[0]?.org_id ?? null;
  }

  async listRunningSessions(options: { limit: number }): Promise<SessionRecord[]> {
    const { rows } = await this.#pool.query<SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE status = 'running' ORDER BY created_at, id LIMIT $1`,
      [options.limit],
    );
    return rows.map(toSessionRecord);
  }

  /** Throws StorageError `event_unreadable` when a stored payload fails the protocol schema. */
  async readEvents(sessionId: string, options: { afterSeq: number; limit: number }): Promise<SessionEvent[]> {
    const { rows } = await this.#pool.query<EventRow>(
      "SELECT seq, payload, at FROM session_events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
      [sessionId, options.afterSeq, options.limit],
    );
    return rows.map((row) => toSessionEvent(sessionId, row));
  }

  /** Throws StorageError `session_not_found` for an unknown session. */
  async updateSession(sessionId: string, patch: { status?: SessionStatus; turns?: number }): Promise<void> {
    const { rowCount } = await this.#pool.query(
      `UPDATE sessions SET status = COALESCE($2, status), turns = COALESCE($3, turns),
         updated_at = GREATEST($4::timestamptz, updated_at)
       WHERE id = $1`,
      [sessionId, patch.status ?? null, patch.turns ?? null, this.#clock()],
    );
    if (rowCount === 0) throw new StorageError("session_not_found", `session ${sessionId} does not exist`);
  }
}

/** Inserts events whose seqs end at `lastSeq` (already reserved by the caller's UPDATE) and notifies listeners. */
async function insertEvents(
  client: pg.PoolClient,
  orgId: string,
  sessionId: string,
  lastSeq: number,
  events: readonly NewSessionEvent[],
  at: string,
): Promise<SessionEvent[]> {
  const firstSeq = lastSeq - events.length + 1;
  const stored = events.map((event, index) => ({ ...event, seq: firstSeq + index, at }) as SessionEvent);
  await client.query(
    `INSERT INTO session_events (org_id, session_id, seq, type, payload, at)
     SELECT $1, $2, seq, type, payload, $6 FROM unnest($3::bigint[], $4::text[], $5::jsonb[]) AS e(seq, type, payload)`,
    [
      orgId,
      sessionId,
      stored.map((event) => event.seq),
      stored.map((event) => event.type),
      events.map(toStoredPayload),
      at,
    ],
  );
  // Delivered at commit, so a listener never sees a seq it cannot read yet.
  await client.query("SELECT pg_notify($1, $2)", [SESSION_EVENTS_CHANNEL, `${sessionId}:${lastSeq}`]);
  return stored;
}

// One statement (so one round trip, atomic on its own): reserve the seqs with UPDATE … RETURNING
// (the row lock serializes writers), insert the events, and notify listeners at commit. Events are
// stamped with the session's updated_at, which never goes back: `at` does not decrease as seq grows,
// even when this worker's clock steps back or another worker's runs behind.
const APPEND_EVENTS_CTES = `WITH session AS (
   UPDATE sessions SET last_seq = last_seq + $2, updated_at = GREATEST($3::timestamptz, updated_at),
     status = COALESCE($5, status), input_tokens = input_tokens + $9, output_tokens = output_tokens + $10
   WHERE id = $1 AND ($4::int IS NULL OR (status = 'running' AND turns = $4))
   RETURNING org_id, user_id, COALESCE(turn_user_id, user_id) AS actor_id, last_seq, updated_at
 ), inserted AS (
   INSERT INTO session_events (org_id, session_id, seq, type, payload, at)
   SELECT session.org_id, $1, session.last_seq - $2 + event.position, event.type, event.payload,
     session.updated_at
   FROM session, unnest($6::text[], $7::jsonb[]) WITH ORDINALITY AS event(type, payload, position)
   RETURNING 1
 ), notified AS (
   SELECT pg_notify($8, $1 || ':' || session.last_seq) FROM session
 )`;
const APPEND_EVENTS_SQL = `${APPEND_EVENTS_CTES}
 SELECT org_id, user_id, actor_id, last_seq, updated_at, (SELECT count(*) FROM inserted) AS inserted,
   (SELECT count(*) FROM notified) AS notified
 FROM session`;
// The same, and then the org's audit head is locked and read (after the session row, as every writer
// orders its locks: the audit head last). $11 is GENESIS_HASH.
const APPEND_AUDITED_EVENTS_SQL = `${APPEND_EVENTS_CTES}, head AS (
   ${lockAuditHeadSql("SELECT org_id FROM session", "$11")}
 )
 SELECT session.org_id, user_id, actor_id, session.last_seq, session.updated_at, head.last_seq AS audit_seq, head.last_hash AS audit_hash,
   (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM notified) AS notified
 FROM session, head`;

interface AuditHeadColumns {
  audit_seq: string;
  audit_hash: string;
}

interface AppendedRow {
  org_id: string;
  user_id: string;
  /** Who started the running turn (the owner unless someone it was shared with did). */
  actor_id: string;
  last_seq: string;
  /** The `at` of the appended events. */
  updated_at: Date;
}

/**
 * Postgres refusing the data itself (SQLSTATE class 22, data exception, or 54, program limit exceeded)
 * as a StorageError that no retry can fix; null for anything else (a lost connection is worth a retry).
 */
function unstorable(error: unknown, sessionId: string): StorageError | null {
  if (!(error instanceof Error)) return null;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !/^(22|54)[0-9A-Z]{3}$/.test(code)) return null;
  return new StorageError(
    "event_unstorable",
    `Postgres refused an event of session ${sessionId} (SQLSTATE ${code}): ${error.message}`,
    { cause: error },
  );
}

/** Why an append matched no session row: StorageError `session_not_found` or `turn_closed`. */
async function appendRefused(
  queryable: pg.Pool | pg.PoolClient,
  sessionId: string,
  options: AppendOptions,
): Promise<never> {
  const exists = await queryable.query("SELECT 1 FROM sessions WHERE id = $1", [sessionId]);
  if (exists.rowCount === 0)
    throw new StorageError("session_not_found", `session ${sessionId} does not exist`);
  throw new StorageError("turn_closed", `turn ${options.turn} of session ${sessionId} is no longer running`);
}

function storedEvents(events: readonly NewSessionEvent[], lastSeq: number, at: string): SessionEvent[] {
  const firstSeq = lastSeq - events.length + 1;
  return events.map((event, index) => ({ ...event, seq: firstSeq + index, at }) as SessionEvent);
}

/** Tool names of the calls a batch answers approvals for, from their `approval.request` events. */
async function approvedToolNames(
  client: pg.PoolClient,
  sessionId: string,
  events: readonly NewSessionEvent[],
): Promise<Map<string, string>> {
  const ids = events.flatMap((event) => (event.type === "approval.response" ? [event.toolCallId] : []));
  if (ids.length === 0) return new Map();
  const { rows } = await client.query<{ tool_call_id: string; name: string }>(
    `SELECT DISTINCT ON (payload->>'toolCallId') payload->>'toolCallId' AS tool_call_id, payload->>'name' AS name
     FROM session_events
     WHERE session_id = $1 AND type = 'approval.request' AND payload->>'toolCallId' = ANY($2::text[])
     ORDER BY payload->>'toolCallId', seq DESC`,
    [sessionId, ids.map(escapeText)],
  );
  return new Map(rows.map((row) => [unescapeText(row.tool_call_id), unescapeText(row.name)]));
}

function toSessionRecord(row: SessionRow): SessionRecord {
  return {
    id: row.id,
    orgId: row.org_id,
    userId: row.user_id,
    model: row.model,
    system: row.system,
    status: row.status,
    turns: row.turns,
    lastSeq: Number(row.last_seq),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    archivedAt: row.archived_at,
    usage: { inputTokens: Number(row.input_tokens), outputTokens: Number(row.output_tokens) },
    ...(row.agent && row.agent_config && row.environment_id !== null
      ? {
          managed: {
            agent: row.agent,
            agentConfig: row.agent_config,
            environmentId: row.environment_id,
            title: row.title,
            metadata: row.metadata,
            vaultIds: row.vault_ids,
            resources: row.resources,
            budget: row.budget,
          },
        }
      : {}),
  };
}

/** Token totals of the model calls in a batch of events. */
function usageOf(events: readonly NewSessionEvent[]): { inputTokens: number; outputTokens: number } {
  let inputTokens = 0;
  let outputTokens = 0;
  for (const event of events) {
    if (event.type !== "message.end") continue;
    inputTokens += event.usage.inputTokens;
    outputTokens += event.usage.outputTokens;
  }
  return { inputTokens, outputTokens };
}

function jsonOrNull(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

/** The `jsonb` text of an event: version 1, or version 2 when a string had to be escaped. */
function toStoredPayload(event: NewSessionEvent): string {
  const { json, isEscaped } = toStorableJson(event);
  // Invariant: an event is an object with at least `type`, so its JSON is `{"type":…}`.
  const version = isEscaped ? ESCAPED_SESSION_EVENT_SCHEMA_VERSION : SESSION_EVENT_SCHEMA_VERSION;
  return `{"schemaVersion":${version},${json.slice(1)}`;
}

function toSessionEvent(sessionId: string, row: EventRow): SessionEvent {
  const { schemaVersion, ...stored } = row.payload;
  const fields = schemaVersion === ESCAPED_SESSION_EVENT_SCHEMA_VERSION ? fromStoredJson(stored) : stored;
  if (typeof schemaVersion !== "number" || !READABLE_SCHEMA_VERSIONS.includes(schemaVersion)) {
    throw new StorageError(
      "event_unreadable",
      `event ${row.seq} of session ${sessionId} has schemaVersion ${String(schemaVersion)}, expected one of ${READABLE_SCHEMA_VERSIONS.join(", ")}`,
    );
  }
  const parsed = SessionEvent.safeParse({ ...fields, seq: Number(row.seq), at: row.at.toISOString() });
  if (!parsed.success) {
    throw new StorageError(
      "event_unreadable",
      `event ${row.seq} of session ${sessionId} does not match the protocol: ${parsed.error.issues[0]?.message}`,
    );
  }
  return parsed.data;
}

function single<T>(rows: T[]): T {
  const [row] = rows;
  if (!row) throw new InvariantError("INSERT … RETURNING returned no row");
  return row;
}
