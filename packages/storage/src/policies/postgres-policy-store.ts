/** Per-org tool policies and worker heartbeats on Postgres. */
import { DEFAULT_TOOL_POLICY } from "@outrig/core";
import { ToolPolicy } from "@outrig/protocol";
import type pg from "pg";

export class PostgresPolicyStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
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

  async put(orgId: string, policy: ToolPolicy): Promise<void> {
    await this.#pool.query(
      `INSERT INTO tool_policies (org_id, policy, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (org_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()`,
      [orgId, JSON.stringify(policy)],
    );
  }
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
