/** Per-org tool policies and worker heartbeats on Postgres. */
import { DEFAULT_TOOL_POLICY } from "@outrig/core";
import { ToolPolicy } from "@outrig/protocol";
import type pg from "pg";
import type { PostgresAuditLog } from "../audit/postgres-audit-log.js";
import { withTransaction } from "../with-transaction.js";

export interface PostgresPolicyStoreOptions {
  /** Records every `put` as a `policy_change` entry in the same transaction. Omitted: not audited. */
  readonly audit?: PostgresAuditLog;
}

export class PostgresPolicyStore {
  readonly #pool: pg.Pool;
  readonly #audit: PostgresAuditLog | undefined;

  constructor(pool: pg.Pool, options: PostgresPolicyStoreOptions = {}) {
    this.#pool = pool;
    this.#audit = options.audit;
  }

  /** The org's policy, or the default (allow everything) when none was set. */
  async get(orgId: string): Promise<ToolPolicy> {
    const { rows } = await this.#pool.query<{ policy: unknown }>(
      "SELECT policy FROM tool_policies WHERE org_id = $1",
      [orgId],
    );
    if (!rows[0]) return DEFAULT_TOOL_POLICY;
    const parsed = ToolPolicy.safeParse(rows[0].policy);
    // A stored policy that no longer parses fails closed: every call needs approval.
    return parsed.success
      ? parsed.data
      : { rules: [{ tool: "*", action: "ask" }], approvalTimeoutMs: 3600_000 };
  }

  /** Replaces the org's policy; with an audit log, the change and its entry commit together. */
  async put(orgId: string, policy: ToolPolicy, actor: { userId?: string } = {}): Promise<void> {
    const audit = this.#audit;
    await withTransaction(this.#pool, async (client) => {
      await client.query(
        `INSERT INTO tool_policies (org_id, policy, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (org_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()`,
        [orgId, JSON.stringify(policy)],
      );
      await audit?.appendIn(client, orgId, [
        {
          kind: "policy_change",
          ...(actor.userId ? { userId: actor.userId } : {}),
          data: { policy: "tool", ...auditedPolicy(policy) },
        },
      ]);
    });
  }
}

/** The new policy itself when small (it always is in practice), else its rule count and size. */
function auditedPolicy(policy: ToolPolicy): Record<string, unknown> {
  const json = JSON.stringify(policy);
  if (Buffer.byteLength(json, "utf8") <= 4096) return { value: policy };
  return { rules: policy.rules.length, bytes: Buffer.byteLength(json, "utf8"), isValueTruncated: true };
}

export interface WorkerRecord {
  readonly id: string;
  readonly version: string;
  readonly heartbeatAt: Date;
}

export class PostgresWorkerRegistry {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async heartbeat(id: string, version: string): Promise<void> {
    await this.#pool.query(
      `INSERT INTO workers (id, version) VALUES ($1, $2)
       ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, heartbeat_at = now()`,
      [id, version],
    );
  }

  /** Workers whose last heartbeat is older than `staleMs`. */
  async stale(staleMs: number): Promise<WorkerRecord[]> {
    const { rows } = await this.#pool.query<{ id: string; version: string; heartbeat_at: Date }>(
      "SELECT id, version, heartbeat_at FROM workers WHERE heartbeat_at < now() - make_interval(secs => $1::float / 1000)",
      [staleMs],
    );
    return rows.map((row) => ({ id: row.id, version: row.version, heartbeatAt: row.heartbeat_at }));
  }

  /** Workers whose last heartbeat is within `freshMs`. */
  async live(freshMs: number): Promise<WorkerRecord[]> {
    const { rows } = await this.#pool.query<{ id: string; version: string; heartbeat_at: Date }>(
      "SELECT id, version, heartbeat_at FROM workers WHERE heartbeat_at >= now() - make_interval(secs => $1::float / 1000)",
      [freshMs],
    );
    return rows.map((row) => ({ id: row.id, version: row.version, heartbeatAt: row.heartbeat_at }));
  }

  /** Deletes a dead worker's row; true for exactly one caller, which then owns its takeover. */
  async claim(id: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query("DELETE FROM workers WHERE id = $1", [id]);
    return rowCount === 1;
  }
}
