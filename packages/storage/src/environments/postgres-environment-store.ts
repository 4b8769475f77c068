/** Environments on Postgres (table `environments`; migration 0008). */
import {
  type EnvironmentListOptions,
  type EnvironmentRecord,
  type EnvironmentStore,
  InvariantError,
} from "@outrig/core";
import type { EnvironmentConfigResource, EnvironmentDefinition } from "@outrig/protocol";
import type pg from "pg";
import { createId } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";

interface EnvironmentRow {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  scope: "organization" | "account";
  config: EnvironmentConfigResource;
  metadata: Record<string, string>;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
}

const COLUMNS = "id, org_id, name, description, scope, config, metadata, created_at, updated_at, archived_at";

export class PostgresEnvironmentStore implements EnvironmentStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async create(orgId: string, definition: EnvironmentDefinition): Promise<EnvironmentRecord> {
    const { rows } = await this.#pool.query<EnvironmentRow>(
      `INSERT INTO environments (id, org_id, name, description, scope, config, metadata)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [
        createId("env"),
        orgId,
        definition.name,
        definition.description,
        definition.scope,
        JSON.stringify(definition.config),
        JSON.stringify(definition.metadata),
      ],
    );
    return toRecord(rows[0]);
  }

  async get(orgId: string, id: string): Promise<EnvironmentRecord | null> {
    const { rows } = await this.#pool.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments WHERE org_id = $1 AND id = $2`,
      [orgId, id],
    );
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async update(
    orgId: string,
    id: string,
    change: (current: EnvironmentRecord) => EnvironmentDefinition | null,
  ): Promise<EnvironmentRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<EnvironmentRow>(
        `SELECT ${COLUMNS} FROM environments WHERE org_id = $1 AND id = $2 FOR UPDATE`,
        [orgId, id],
      );
      if (!rows[0]) return null;
      const current = toRecord(rows[0]);
      const next = change(current);
      if (next === null) return current;
      const updated = await client.query<EnvironmentRow>(
        `UPDATE environments SET name = $3, description = $4, scope = $5, config = $6, metadata = $7,
           updated_at = date_trunc('milliseconds', clock_timestamp())
         WHERE org_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
        [
          orgId,
          id,
          next.name,
          next.description,
          next.scope,
          JSON.stringify(next.config),
          JSON.stringify(next.metadata),
        ],
      );
      return toRecord(updated.rows[0]);
    });
  }

  async archive(orgId: string, id: string): Promise<EnvironmentRecord | null> {
    await this.#pool.query(
      `UPDATE environments SET archived_at = date_trunc('milliseconds', clock_timestamp()),
         updated_at = date_trunc('milliseconds', clock_timestamp())
       WHERE org_id = $1 AND id = $2 AND archived_at IS NULL`,
      [orgId, id],
    );
    return this.get(orgId, id);
  }

  async delete(
    orgId: string,
    id: string,
    isInUse: () => Promise<boolean>,
  ): Promise<"deleted" | "in_use" | "not_found"> {
    return withTransaction(this.#pool, async (client) => {
      const locked = await client.query(
        "SELECT 1 FROM environments WHERE org_id = $1 AND id = $2 FOR UPDATE",
        [orgId, id],
      );
      if (locked.rowCount === 0) return "not_found";
      if (await isInUse()) return "in_use";
      await client.query("DELETE FROM environments WHERE org_id = $1 AND id = $2", [orgId, id]);
      return "deleted";
    });
  }

  async list(orgId: string, options: EnvironmentListOptions): Promise<EnvironmentRecord[]> {
    const { rows } = await this.#pool.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments
        WHERE org_id = $1 AND ($2::boolean OR archived_at IS NULL)
          AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
        ORDER BY created_at DESC, id DESC LIMIT $5`,
      [
        orgId,
        options.includeArchived,
        options.after?.createdAt ?? null,
        options.after?.id ?? null,
        options.limit,
      ],
    );
    return rows.map(toRecord);
  }
}

function toRecord(row: EnvironmentRow | undefined): EnvironmentRecord {
  // Invariant: INSERT/UPDATE … RETURNING on a row locked or just written returns it.
  if (!row) throw new InvariantError("environment row missing after its write");
  return {
    id: row.id,
    orgId: row.org_id,
    definition: {
      name: row.name,
      description: row.description,
      scope: row.scope,
      config: row.config,
      metadata: row.metadata,
    },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    archivedAt: row.archived_at,
  };
}
