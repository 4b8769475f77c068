/** Per-org egress policies (host allowlist and credential rules) on Postgres, table `egress_policies`. */
import { InputError } from "@outrig/core";
import { EgressPolicyBody } from "@outrig/protocol";
import type pg from "pg";

/** What egress does for an org whose stored policy no longer parses: refuse every host. */
const FAIL_CLOSED: EgressPolicyBody = { allowedHosts: [], credentials: [] };

export class PostgresEgressPolicyStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /**
   * The org's policy, or null when none was set (egress then refuses every host). A stored policy
   * that no longer validates fails closed: empty allowlist, no credentials.
   */
  async get(orgId: string): Promise<EgressPolicyBody | null> {
    const { rows } = await this.#pool.query<{ policy: unknown }>(
      "SELECT policy FROM egress_policies WHERE org_id = $1",
      [orgId],
    );
    if (!rows[0]) return null;
    const parsed = EgressPolicyBody.safeParse(rows[0].policy);
    return parsed.success ? parsed.data : FAIL_CLOSED;
  }

  /** Replaces the org's policy; returns it as stored (host patterns lower-cased). */
  async put(orgId: string, policy: EgressPolicyBody): Promise<EgressPolicyBody> {
    const parsed = EgressPolicyBody.safeParse(policy);
    if (!parsed.success) {
      throw new InputError("invalid_egress_policy", "the egress policy does not validate", 400);
    }
    await this.#pool.query(
      `INSERT INTO egress_policies (org_id, policy, updated_at) VALUES ($1, $2, now())
       ON CONFLICT (org_id) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now()`,
      [orgId, JSON.stringify(parsed.data)],
    );
    return parsed.data;
  }

  /** Removes the org's policy (every host refused again); true when there was one. */
  async delete(orgId: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query("DELETE FROM egress_policies WHERE org_id = $1", [orgId]);
    return rowCount === 1;
  }
}
