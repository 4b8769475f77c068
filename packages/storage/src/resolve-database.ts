/** Picks the database for the server: the external one from config, else embedded Postgres under OUTRIG_HOME. */
import path from "node:path";
import { StorageError } from "@outrig/core";
import pg from "pg";
import { type CreateDatabaseOptions, createDatabase, type Database } from "./create-database.js";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./embedded/start-embedded-postgres.js";

export const EMBEDDED_DATABASE_NAME = "outrig";

export interface ResolveDatabaseOptions {
  /** From config (`DATABASE_URL`); this function never reads the environment itself. */
  readonly databaseUrl?: string | undefined;
  /** Embedded Postgres keeps its cluster in `<outrigHome>/postgres`. */
  readonly outrigHome: string;
  readonly poolSize?: number;
  readonly onPoolError?: CreateDatabaseOptions["onPoolError"];
  readonly log?: (line: string) => void;
  /**
   * When an embedded postmaster was already running (adopted), leave it running on close(). Set by
   * short-lived clients such as `outrig keys create`, so they never stop a live server's database.
   * The server leaves it unset: it owns a postmaster orphaned by its own crash.
   */
  readonly keepAdoptedPostgres?: boolean;
}

export interface ResolvedDatabase extends Database {
  /** Set when embedded Postgres is in use; close() stops it. */
  readonly embedded: EmbeddedPostgres | null;
}

/**
 * With `databaseUrl`, opens that database. Otherwise starts (or adopts) embedded Postgres, creates the
 * `outrig` database when missing and opens it. Migrations run either way. close() closes the pool and
 * then stops embedded Postgres.
 */
export async function resolveDatabase(options: ResolveDatabaseOptions): Promise<ResolvedDatabase> {
  const common = { poolSize: options.poolSize, onPoolError: options.onPoolError };
  if (options.databaseUrl) {
    const database = await createDatabase({ url: options.databaseUrl, ...common });
    return { ...database, embedded: null };
  }
  const embedded = await startEmbeddedPostgres({
    dataDir: path.join(options.outrigHome, "postgres"),
    log: options.log,
  });
  try {
    const url = await ensureDatabase(embedded.url, EMBEDDED_DATABASE_NAME);
    const database = await createDatabase({ url, ...common });
    let closing: Promise<void> | undefined;
    return {
      ...database,
      embedded,
      close() {
        const keep = embedded.isReused && options.keepAdoptedPostgres === true;
        closing ??= database.close().finally(() => (keep ? undefined : embedded.stop()));
        return closing;
      },
    };
  } catch (error) {
    if (!(embedded.isReused && options.keepAdoptedPostgres)) await embedded.stop().catch(() => undefined);
    throw error;
  }
}

/** Creates database `name` on the server at `adminUrl` if missing; returns its URL. Safe under races. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  try {
    await client.connect();
    const existing = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (existing.rowCount === 0) {
      await client
        .query(`CREATE DATABASE ${client.escapeIdentifier(name)}`)
        .catch((error: { code?: string }) => {
          // 42P04 duplicate_database, 23505: another process created it between our check and our CREATE.
          if (error.code !== "42P04" && error.code !== "23505") throw error;
        });
    }
  } catch (error) {
    throw new StorageError(
      "database_unavailable",
      `cannot create database ${name}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
