/**
 * Append-only, hash-chained audit log per org. Entry n stores `prevHash` (entry n-1's hash, or 64
 * zeros) and `hash = sha256(prevHash || canonicalJson(entry))`. Appends of one org serialize on its
 * `audit_heads` row; a trigger rejects UPDATE, DELETE and TRUNCATE of entries.
 */
import { createHash } from "node:crypto";
import { InvariantError } from "@outrig/core";
import type pg from "pg";
import { withTransaction } from "../with-transaction.js";
import { canonicalJson, type JsonValue, normalizeJson } from "./canonical-json.js";

export const AUDIT_KINDS = [
  "tool_call",
  "secret_use",
  "egress",
  "approval",
  "memory_write",
  "secret_write",
  "policy_change",
  "session_message",
  "session_cancel",
  "session_share",
  "api_key",
] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];
export const GENESIS_HASH = "0".repeat(64);
const VERIFY_PAGE = 1000;

export interface AuditEntryInput {
  readonly kind: AuditKind;
  readonly sessionId?: string;
  readonly userId?: string;
  /** Plain JSON. Never put a secret value here: record names. */
  readonly data: Record<string, unknown>;
}

export interface AuditEntry {
  readonly orgId: string;
  readonly seq: number;
  readonly kind: AuditKind;
  readonly at: Date;
  readonly sessionId: string | null;
  readonly userId: string | null;
  readonly data: JsonValue;
  readonly prevHash: string;
  readonly hash: string;
}

export type AuditChainProblem =
  /** The entry's content no longer matches its hash. */
  | "altered"
  /** A seq is absent: the entry was deleted. */
  | "missing"
  /** The entry does not commit to the previous entry's hash: something was inserted or replaced. */
  | "broken_link"
  /** Entries end before or after the head the log recorded: the tail was deleted or extended. */
  | "head_mismatch"
  /** The entry at a checkpoint's seq has another hash than the checkpoint: history was rewritten. */
  | "checkpoint_mismatch"
  /** The log ends before a checkpoint's seq: entries were deleted and the head moved back. */
  | "truncated"
  /** A line of the checkpoint file is not a checkpoint signed with the master key. */
  | "checkpoint_invalid";

/** A head (org, seq, hash) recorded outside the database; see AuditCheckpoints. */
export interface AuditCheckpointMark {
  readonly seq: number;
  readonly hash: string;
  /** When it was taken (ISO), for messages. */
  readonly at: string;
}

export interface VerifyAuditChainOptions {
  /** Checkpoints the chain must contain (each seq with that hash, none beyond the end). */
  readonly checkpoints?: readonly AuditCheckpointMark[];
  /** Verify only the entries after this one (already verified), e.g. the newest checkpoint. */
  readonly startAfter?: { readonly seq: number; readonly hash: string };
}

export type AuditChainReport =
  | { readonly isValid: true; readonly count: number; readonly headHash: string }
  | {
      readonly isValid: false;
      readonly count: number;
      /** The first seq at which the chain is wrong. */
      readonly seq: number;
      readonly problem: AuditChainProblem;
      readonly message: string;
    };

export interface AuditListOptions {
  readonly afterSeq?: number;
  readonly limit?: number;
  readonly kind?: AuditKind;
  readonly sessionId?: string;
}

export interface PostgresAuditLogOptions {
  readonly clock?: () => Date;
}

interface EntryRow {
  org_id: string;
  seq: string;
  kind: AuditKind;
  at: Date;
  session_id: string | null;
  user_id: string | null;
  data: JsonValue;
  prev_hash: string;
  hash: string;
}

export class PostgresAuditLog {
  readonly #pool: pg.Pool;
  readonly #clock: () => Date;

  constructor(pool: pg.Pool, options: PostgresAuditLogOptions = {}) {
    this.#pool = pool;
    this.#clock = options.clock ?? (() => new Date());
  }

  /**
   * Appends one entry in its own transaction and returns it with its seq and hash. Concurrent appends
   * of one org are serialized (row lock on the org's head), so seqs are gap-free. Throws InputError
   * `invalid_audit_data` for data that is not plain JSON.
   */
  async append(orgId: string, input: AuditEntryInput): Promise<AuditEntry> {
    const [entry] = await withTransaction(this.#pool, (client) => this.appendIn(client, orgId, [input]));
    if (!entry) throw new InvariantError("an audit append stored no entry");
    return entry;
  }

  /**
   * Appends entries inside the caller's open transaction, so they commit or roll back with the
   * caller's own writes. Two round trips: lock and read the org's head, then insert the entries and
   * move the head (hashes are computed here in between). The head stays locked until the caller's
   * transaction ends; take it after the caller's other row locks (every writer does) to avoid
   * deadlocks. Throws InputError `invalid_audit_data` for data that is not plain JSON.
   */
  async appendIn(
    client: pg.ClientBase,
    orgId: string,
    inputs: readonly AuditEntryInput[],
  ): Promise<AuditEntry[]> {
    if (inputs.length === 0) return [];
    const head = await client.query<{ org_id: string; last_seq: string; last_hash: string }>(
      lockAuditHeadSql("SELECT $1::text AS org_id", "$2"),
      [orgId, GENESIS_HASH],
    );
    const current = head.rows[0];
    if (!current) throw new InvariantError("locking the audit head returned no row");
    return this.appendLocked(client, toLockedHead(current), inputs);
  }

  /**
   * The second half of appendIn, for a caller that already locked and read the org's head in this
   * transaction with `lockAuditHeadSql` (folded into one of its own statements to save a round trip).
   * One round trip. Calling it without holding the head's lock breaks the chain: don't.
   */
  async appendLocked(
    client: pg.ClientBase,
    head: LockedAuditHead,
    inputs: readonly AuditEntryInput[],
  ): Promise<AuditEntry[]> {
    if (inputs.length === 0) return [];
    const orgId = head.orgId;
    const prepared = inputs.map((input) => ({ input, data: normalizeJson(input.data) }));
    // Postgres keeps microseconds, JS milliseconds: hash what will read back.
    const at = new Date(this.#clock().getTime());
    let seq = head.lastSeq;
    let prevHash = head.lastHash;
    const entries: AuditEntry[] = prepared.map(({ input, data }) => {
      seq += 1;
      const entry: Omit<AuditEntry, "hash"> = {
        orgId,
        seq,
        kind: input.kind,
        at,
        sessionId: input.sessionId ?? null,
        userId: input.userId ?? null,
        data,
        prevHash,
      };
      prevHash = hashEntry(entry);
      return { ...entry, hash: prevHash };
    });
    const moved = await client.query(
      `WITH inserted AS (
         INSERT INTO audit_entries (org_id, seq, kind, at, session_id, user_id, data, prev_hash, hash)
         SELECT $1, seq, kind, $2::timestamptz, session_id, user_id, data, prev_hash, hash
         FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[])
           AS entry(seq, kind, session_id, user_id, data, prev_hash, hash)
         RETURNING 1
       )
       UPDATE audit_heads SET last_seq = $10, last_hash = $11
       WHERE org_id = $1 AND (SELECT count(*) FROM inserted) = $12`,
      [
        orgId,
        at.toISOString(),
        entries.map((entry) => entry.seq),
        entries.map((entry) => entry.kind),
        entries.map((entry) => entry.sessionId),
        entries.map((entry) => entry.userId),
        entries.map((entry) => JSON.stringify(entry.data)),
        entries.map((entry) => entry.prevHash),
        entries.map((entry) => entry.hash),
        seq,
        prevHash,
        entries.length,
      ],
    );
    if (moved.rowCount !== 1) throw new InvariantError("the audit head did not move with its entries");
    return entries;
  }

  /**
   * Entries after `afterSeq` (default 0), ascending, at most `limit` (default 100, max 1000), optionally
   * only one kind or one session's.
   */
  async list(orgId: string, options: AuditListOptions = {}): Promise<AuditEntry[]> {
    return this.#listOn(this.#pool, orgId, options);
  }

  async #listOn(
    queryable: pg.Pool | pg.ClientBase,
    orgId: string,
    options: AuditListOptions,
  ): Promise<AuditEntry[]> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), VERIFY_PAGE);
    const { rows } = await queryable.query<EntryRow>(
      `SELECT org_id, seq, kind, at, session_id, user_id, data, prev_hash, hash FROM audit_entries
       WHERE org_id = $1 AND seq > $2 AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR session_id = $5)
       ORDER BY seq LIMIT $3`,
      [orgId, options.afterSeq ?? 0, limit, options.kind ?? null, options.sessionId ?? null],
    );
    return rows.map(toEntry);
  }

  /**
   * Walks the org's chain from seq 1 (or after `startAfter`) and reports the first altered, missing,
   * inserted or replaced entry, a tail that disagrees with the recorded head, an entry that differs
   * from a checkpoint, or a log that ends before a checkpoint. Reads in pages from one snapshot (a
   * concurrent append is not mistaken for tampering); takes no lock.
   */
  async verifyAuditChain(orgId: string, options: VerifyAuditChainOptions = {}): Promise<AuditChainReport> {
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const report = await this.#verifyOn(client, orgId, options);
      await client.query("COMMIT");
      return report;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async #verifyOn(
    client: pg.ClientBase,
    orgId: string,
    options: VerifyAuditChainOptions,
  ): Promise<AuditChainReport> {
    const checkpoints = new Map<number, AuditCheckpointMark>();
    for (const mark of options.checkpoints ?? []) checkpoints.set(mark.seq, mark);
    let expectedSeq = (options.startAfter?.seq ?? 0) + 1;
    let previousHash = options.startAfter?.hash ?? GENESIS_HASH;
    let count = expectedSeq - 1;
    for (;;) {
      const page = await this.#listOn(client, orgId, { afterSeq: expectedSeq - 1, limit: VERIFY_PAGE });
      for (const entry of page) {
        if (entry.seq !== expectedSeq) {
          return broken(count, expectedSeq, "missing", `entry ${expectedSeq} is missing (deleted)`);
        }
        if (entry.prevHash !== previousHash) {
          return broken(
            count,
            entry.seq,
            "broken_link",
            `entry ${entry.seq} does not commit to entry ${entry.seq - 1}: an entry was inserted, replaced or deleted before it`,
          );
        }
        if (hashEntry(entry) !== entry.hash) {
          return broken(count, entry.seq, "altered", `entry ${entry.seq} was altered after it was written`);
        }
        const mark = checkpoints.get(entry.seq);
        if (mark && mark.hash !== entry.hash) {
          return broken(
            count,
            entry.seq,
            "checkpoint_mismatch",
            `entry ${entry.seq} is not the entry the checkpoint of ${mark.at} recorded (hash ${mark.hash.slice(0, 16)}…): the log was rewritten from entry ${entry.seq} or before`,
          );
        }
        previousHash = entry.hash;
        expectedSeq += 1;
        count += 1;
      }
      if (page.length < VERIFY_PAGE) break;
    }
    const head = await client.query<{ last_seq: string; last_hash: string }>(
      "SELECT last_seq, last_hash FROM audit_heads WHERE org_id = $1",
      [orgId],
    );
    const lastSeq = Number(head.rows[0]?.last_seq ?? 0);
    const lastHash = head.rows[0]?.last_hash ?? GENESIS_HASH;
    if (lastSeq !== count || lastHash !== previousHash) {
      const seq = Math.min(lastSeq, count) + 1;
      return broken(
        count,
        seq,
        "head_mismatch",
        `the log ends at entry ${count} but its head records entry ${lastSeq}: entries from ${seq} on were ${lastSeq > count ? "deleted" : "appended outside the log"}`,
      );
    }
    let beyond: AuditCheckpointMark | undefined;
    for (const mark of checkpoints.values())
      if (mark.seq > count && mark.seq > (beyond?.seq ?? 0)) beyond = mark;
    if (beyond) {
      return broken(
        count,
        count + 1,
        "truncated",
        `the log ends at entry ${count} but the checkpoint of ${beyond.at} recorded entry ${beyond.seq} (hash ${beyond.hash.slice(0, 16)}…): entries from ${count + 1} on were deleted and the head moved back`,
      );
    }
    return { isValid: true, count, headHash: previousHash };
  }

  /** Every org's recorded head (orgs with at least one entry), for checkpoints. */
  async heads(): Promise<{ orgId: string; seq: number; hash: string }[]> {
    const { rows } = await this.#pool.query<{ org_id: string; last_seq: string; last_hash: string }>(
      "SELECT org_id, last_seq, last_hash FROM audit_heads WHERE last_seq > 0 ORDER BY org_id",
    );
    return rows.map((row) => ({ orgId: row.org_id, seq: Number(row.last_seq), hash: row.last_hash }));
  }
}

/** An org's audit head as read under its row lock. */
export interface LockedAuditHead {
  readonly orgId: string;
  readonly lastSeq: number;
  readonly lastHash: string;
}

/**
 * SQL that locks the audit head of the org in `source` (a query with an `org_id` column), creating it
 * for the org's first entry, and returns `org_id, last_seq, last_hash`. Usable as the body of a CTE.
 * `genesisParameter` is a placeholder bound to GENESIS_HASH. ON CONFLICT DO UPDATE takes the row lock
 * and returns the newest committed row, even one committed after the statement's snapshot.
 */
export function lockAuditHeadSql(source: string, genesisParameter: string): string {
  return `INSERT INTO audit_heads (org_id, last_seq, last_hash)
    SELECT source.org_id, 0, ${genesisParameter}::text FROM (${source}) AS source
    ON CONFLICT (org_id) DO UPDATE SET last_seq = audit_heads.last_seq
    RETURNING org_id, last_seq, last_hash`;
}

/** A row returned by `lockAuditHeadSql`. */
export function toLockedHead(row: {
  org_id: string;
  last_seq: string | number;
  last_hash: string;
}): LockedAuditHead {
  return { orgId: row.org_id, lastSeq: Number(row.last_seq), lastHash: row.last_hash };
}

/** sha256 hex of `prevHash` followed by the canonical JSON of every other field. */
export function hashEntry(entry: Omit<AuditEntry, "hash">): string {
  const body = canonicalJson({
    orgId: entry.orgId,
    seq: entry.seq,
    kind: entry.kind,
    at: entry.at.toISOString(),
    sessionId: entry.sessionId,
    userId: entry.userId,
    data: entry.data,
  });
  return createHash("sha256").update(entry.prevHash, "utf8").update(body, "utf8").digest("hex");
}

function toEntry(row: EntryRow): AuditEntry {
  return {
    orgId: row.org_id,
    seq: Number(row.seq),
    kind: row.kind,
    at: row.at,
    sessionId: row.session_id,
    userId: row.user_id,
    data: row.data,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function broken(count: number, seq: number, problem: AuditChainProblem, message: string): AuditChainReport {
  return { isValid: false, count, seq, problem, message };
}
