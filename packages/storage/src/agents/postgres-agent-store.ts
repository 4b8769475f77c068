/** Agents and their immutable versions on Postgres (tables `agents`, `agent_versions`; migration 0008). */
import { type AgentListOptions, type AgentRecord, type AgentStore, InvariantError } from "@outrig/core";
import type { AgentDefinition } from "@outrig/protocol";
import type pg from "pg";
import { createId } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";

interface AgentRow {
  id: string;
  org_id: string;
  version: number;
  definition: AgentDefinition;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
}

const SELECT_AGENT = `SELECT a.id, a.org_id, v.version, v.definition, a.created_at, v.created_at AS updated_at, a.archived_at
  FROM agents a JOIN agent_versions v ON v.agent_id = a.id`;

export class PostgresAgentStore implements AgentStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async create(orgId: string, definition: AgentDefinition): Promise<AgentRecord> {
    const id = createId("agent");
    return withTransaction(this.#pool, async (client) => {
      await client.query("INSERT INTO agents (id, org_id, current_version) VALUES ($1, $2, 1)", [id, orgId]);
      await client.query(
        "INSERT INTO agent_versions (org_id, agent_id, version, definition) VALUES ($1, $2, 1, $3)",
        [orgId, id, JSON.stringify(definition)],
      );
      return toRecord(await this.#read(client, orgId, id, undefined));
    });
  }

  async get(orgId: string, id: string, version?: number): Promise<AgentRecord | null> {
    const row = await this.#read(this.#pool, orgId, id, version);
    return row ? toRecord(row) : null;
  }

  async update(
    orgId: string,
    id: string,
    change: (current: AgentRecord) => AgentDefinition | null,
  ): Promise<AgentRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const locked = await client.query("SELECT 1 FROM agents WHERE org_id = $1 AND id = $2 FOR UPDATE", [
        orgId,
        id,
      ]);
      if (locked.rowCount === 0) return null;
      const current = toRecord(await this.#read(client, orgId, id, undefined));
      const next = change(current);
      if (next === null) return current;
      const version = current.version + 1;
      await client.query(
        "INSERT INTO agent_versions (org_id, agent_id, version, definition) VALUES ($1, $2, $3, $4)",
        [orgId, id, version, JSON.stringify(next)],
      );
      await client.query("UPDATE agents SET current_version = $3 WHERE org_id = $1 AND id = $2", [
        orgId,
        id,
        version,
      ]);
      return toRecord(await this.#read(client, orgId, id, undefined));
    });
  }

  async archive(orgId: string, id: string): Promise<AgentRecord | null> {
    await this.#pool.query(
      `UPDATE agents SET archived_at = date_trunc('milliseconds', clock_timestamp())
        WHERE org_id = $1 AND id = $2 AND archived_at IS NULL`,
      [orgId, id],
    );
    return this.get(orgId, id);
  }

  async list(orgId: string, options: AgentListOptions): Promise<AgentRecord[]> {
    const conditions = ["a.org_id = $1", "v.version = a.current_version"];
    const values: unknown[] = [orgId];
    const add = (sql: string, ...params: unknown[]) => {
      const placeholders = params.map((param) => {
        values.push(param);
        return `$${values.length}`;
      });
      conditions.push(sql.replace(/\?/g, () => placeholders.shift() ?? "NULL"));
    };
    if (!options.includeArchived) conditions.push("a.archived_at IS NULL");
    if (options.createdAtGte) add("a.created_at >= ?", options.createdAtGte);
    if (options.createdAtLte) add("a.created_at <= ?", options.createdAtLte);
    if (options.after) add("(a.created_at, a.id) < (?, ?)", options.after.createdAt, options.after.id);
    values.push(options.limit);
    const { rows } = await this.#pool.query<AgentRow>(
      `${SELECT_AGENT} WHERE ${conditions.join(" AND ")}
        ORDER BY a.created_at DESC, a.id DESC LIMIT $${values.length}`,
      values,
    );
    return rows.map(toRecord);
  }

  async listVersions(
    orgId: string,
    id: string,
    options: { readonly beforeVersion?: number; readonly limit: number },
  ): Promise<AgentRecord[] | null> {
    const exists = await this.#pool.query("SELECT 1 FROM agents WHERE org_id = $1 AND id = $2", [orgId, id]);
    if (exists.rowCount === 0) return null;
    const { rows } = await this.#pool.query<AgentRow>(
      `${SELECT_AGENT} WHERE a.org_id = $1 AND a.id = $2 AND ($3::integer IS NULL OR v.version < $3)
        ORDER BY v.version DESC LIMIT $4`,
      [orgId, id, options.beforeVersion ?? null, options.limit],
    );
    return rows.map(toRecord);
  }

  async #read(
    queryable: pg.Pool | pg.PoolClient,
    orgId: string,
    id: string,
    version: number | undefined,
  ): Promise<AgentRow | null> {
    const { rows } = await queryable.query<AgentRow>(
      `${SELECT_AGENT} WHERE a.org_id = $1 AND a.id = $2 AND v.version = COALESCE($3::integer, a.current_version)`,
      [orgId, id, version ?? null],
    );
    return rows[0] ?? null;
  }
}

function toRecord(row: AgentRow | null): AgentRecord {
  // Invariant: callers read a row they just wrote or checked exists within the same transaction.
  if (!row) throw new InvariantError("agent row vanished inside its transaction");
  return {
    id: row.id,
    orgId: row.org_id,
    version: row.version,
    definition: row.definition,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    archivedAt: row.archived_at,
  };
}
