/**
 * Forward-only SQL migrations from `packages/storage/migrations/NNNN_name.sql`. Each runs in its own
 * transaction while this process holds a session advisory lock, so concurrent starters apply each once.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { StorageError } from "@outrig/core";
import type pg from "pg";

/** Arbitrary constant shared by every Outrig process: "outrig" in ASCII. */
const MIGRATION_LOCK_KEY = 0x6f757472_6967;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** sha256 hex of the file's bytes. */
  readonly checksum: string;
}

export interface MigrationResult {
  /** Versions applied by this call, ascending. */
  readonly applied: number[];
  /** Highest version in the database afterwards. */
  readonly version: number;
}

/** `src/migrations/` and `dist/migrations/` are both two levels below the package root. */
const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

/** Reads and orders the migration files. Throws StorageError on a malformed name or a duplicate version. */
export async function loadMigrations(directory: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(directory)).filter((file) => file.endsWith(".sql")).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!match?.[1] || !match[2]) {
      throw new StorageError("migration_invalid", `migration file ${file} is not named NNNN_name.sql`);
    }
    const bytes = await readFile(`${directory}/${file}`);
    const version = Number(match[1]);
    if (migrations.some((migration) => migration.version === version)) {
      throw new StorageError("migration_invalid", `two migrations have version ${version}`);
    }
    migrations.push({
      version,
      name: match[2],
      sql: bytes.toString("utf8"),
      checksum: createHash("sha256").update(bytes).digest("hex"),
    });
  }
  return migrations;
}

/**
 * Applies pending migrations in order. Throws StorageError (and applies nothing more) when an applied
 * migration's file changed, or when the database has a version this build does not know.
 */
export async function runMigrations(
  pool: pg.Pool,
  migrations?: readonly Migration[],
): Promise<MigrationResult> {
  const all = migrations ?? (await loadMigrations());
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
        "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
      );
      for (const row of rows) {
        const known = all.find((migration) => migration.version === row.version);
        if (!known) {
          throw new StorageError(
            "migration_unknown",
            `database has migration ${row.version} (${row.name}) that this build does not know; upgrade Outrig`,
          );
        }
        if (known.checksum !== row.checksum) {
          throw new StorageError(
            "migration_changed",
            `migration ${formatVersion(row.version)}_${row.name} was changed after it was applied; add a new migration instead`,
          );
        }
      }
      const applied: number[] = [];
      for (const migration of all) {
        if (rows.some((row) => row.version === migration.version)) continue;
        await client.query("BEGIN");
        try {
          await client.query(migration.sql);
          await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
            migration.version,
            migration.name,
            migration.checksum,
          ]);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw new StorageError(
            "migration_failed",
            `migration ${formatVersion(migration.version)}_${migration.name} failed: ${(error as Error).message}`,
            { cause: error },
          );
        }
        applied.push(migration.version);
      }
      const version = Math.max(0, ...rows.map((row) => row.version), ...applied);
      return { applied, version };
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}

function formatVersion(version: number): string {
  return String(version).padStart(4, "0");
}
