/**
 * Per-org sandbox policies (limits and idle times) on Postgres, table `sandbox_policies`. The
 * policy is stored as the org wrote it (validated by the server); no row means the server defaults.
 */
import type pg from "pg";

export class PostgresSandboxPolicyStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** The org's stored policy object, or null when it has none. */
  async get(orgId: string): Promise<Record<string, unknown> | null> {
    const { rows } = await this.#pool.query<{ policy: unknown }>(
      "SELECT policy FROM sandbox_policies WHERE org_id = $1",
      [orgId],
    );
    const policy = rows[0]?.policy;
    return policy && typeof policy === "object" && !Array.isArray(policy)
      ? (policy as Record<string, unknown>)
      : null;
  }

  async put(orgId: string, policy: Record<string, unknown>): Promise<void> {
    await this.#pool.query(
      `INSERT INTO sandbox_policies (org_id, policy, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (org_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()`,
      [orgId, JSON.stringify(policy)],
    );
  }
}
