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
  | "head_mismatch";

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
   * Appends one entry and returns it with its seq and hash. Concurrent appends of one org are
   * serialized (row lock on the org's head), so seqs are gap-free. Throws InputError
   * `invalid_audit_data` for data that is not plain JSON.
   */
  async append(orgId: string, input: AuditEntryInput): Promise<AuditEntry> {
    const data = normalizeJson(input.data);
    // Postgres keeps microseconds, JS milliseconds: hash what will read back.
    const at = new Date(this.#clock().getTime());
    return withTransaction(this.#pool, async (client) => {
      await client.query(
        "INSERT INTO audit_heads (org_id, last_seq, last_hash) VALUES ($1, 0, $2) ON CONFLICT (org_id) DO NOTHING",
        [orgId, GENESIS_HASH],
      );
      const head = await client.query<{ last_seq: string; last_hash: string }>(
        "SELECT last_seq, last_hash FROM audit_heads WHERE org_id = $1 FOR UPDATE",
        [orgId],
      );
      const current = head.rows[0];
      if (!current) throw new InvariantError("audit head row vanished inside its transaction");
      const entry: Omit<AuditEntry, "hash"> = {
        orgId,
        seq: Number(current.last_seq) + 1,
        kind: input.kind,
        at,
        sessionId: input.sessionId ?? null,
        userId: input.userId ?? null,
        data,
        prevHash: current.last_hash,
      };
      const hash = hashEntry(entry);
      await client.query(
        `INSERT INTO audit_entries (org_id, seq, kind, at, session_id, user_id, data, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [
          orgId,
          entry.seq,
          entry.kind,
          entry.at,
          entry.sessionId,
          entry.userId,
          JSON.stringify(data),
          entry.prevHash,
          hash,
        ],
      );
      await client.query("UPDATE audit_heads SET last_seq = $2, last_hash = $3 WHERE org_id = $1", [
        orgId,
        entry.seq,
        hash,
      ]);
      return { ...entry, hash };
    });
  }

  /** Entries after `afterSeq` (default 0), ascending, at most `limit` (default 100, max 1000). */
  async list(orgId: string, options: { afterSeq?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    const limit = Math.min(Math.max(options.limit ?? 100, 1), VERIFY_PAGE);
    const { rows } = await this.#pool.query<EntryRow>(
      `SELECT org_id, seq, kind, at, session_id, user_id, data, prev_hash, hash FROM audit_entries
       WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [orgId, options.afterSeq ?? 0, limit],
    );
    return rows.map(toEntry);
  }

  /**
   * Walks the org's chain from seq 1 and reports the first altered, missing, inserted or replaced
   * entry, or a tail that disagrees with the recorded head. Reads in pages; does not lock.
   */
  async verifyAuditChain(orgId: string): Promise<AuditChainReport> {
    let expectedSeq = 1;
    let previousHash = GENESIS_HASH;
    let count = 0;
    for (;;) {
      const page = await this.list(orgId, { afterSeq: expectedSeq - 1, limit: VERIFY_PAGE });
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
        previousHash = entry.hash;
        expectedSeq += 1;
        count += 1;
      }
      if (page.length < VERIFY_PAGE) break;
    }
    const head = await this.#pool.query<{ last_seq: string; last_hash: string }>(
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
    return { isValid: true, count, headHash: previousHash };
  }
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
