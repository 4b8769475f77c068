/** Opens a pool on a Postgres URL, applies migrations and builds the stores on it. */
import { StorageError } from "@outrig/core";
import pg from "pg";
import { PostgresAuditLog } from "./audit/postgres-audit-log.js";
import { PostgresAuthStore } from "./auth/postgres-auth-store.js";
import { PostgresEgressPolicyStore } from "./egress/postgres-egress-policy-store.js";
import { runMigrations } from "./migrations/run-migrations.js";
import { PostgresPolicyStore, PostgresWorkerRegistry } from "./policies/postgres-policy-store.js";
import { PostgresSessionShareStore } from "./sessions/postgres-session-share-store.js";
import { PostgresSessionStore } from "./sessions/postgres-session-store.js";

export interface CreateDatabaseOptions {
  readonly url: string;
  /** Maximum pooled connections (default 10). */
  readonly poolSize?: number;
  /** Errors of idle pooled connections (e.g. Postgres restarted); they must not crash the process. */
  readonly onPoolError?: (error: Error) => void;
}

export interface Database {
  readonly pool: pg.Pool;
  readonly sessions: PostgresSessionStore;
  /** Who each session is shared with, and as what. */
  readonly shares: PostgresSessionShareStore;
  readonly auth: PostgresAuthStore;
  readonly policies: PostgresPolicyStore;
  readonly workers: PostgresWorkerRegistry;
  /** The org audit log; `sessions` and `policies` append to it in their own transactions. */
  readonly audit: PostgresAuditLog;
  /** Per-org egress allowlists and credential rules. */
  readonly egressPolicies: PostgresEgressPolicyStore;
  /** The connection URL, for components that open their own connections (LISTEN, the durable engine). */
  readonly url: string;
  /** Ends the pool. Idempotent. */
  close(): Promise<void>;
}

/**
 * Connects and runs pending migrations before returning. Throws StorageError `database_unavailable`
 * when Postgres cannot be reached, or a migration error. The caller owns the result and must close() it.
 */
export async function createDatabase(options: CreateDatabaseOptions): Promise<Database> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10 });
  pool.on("error", options.onPoolError ?? (() => {}));
  try {
    await runMigrations(pool);
  } catch (error) {
    await pool.end().catch(() => undefined);
    if (error instanceof StorageError) throw error;
    throw new StorageError("database_unavailable", `cannot open the database: ${(error as Error).message}`, {
      cause: error,
      retryable: true,
    });
  }
  let closing: Promise<void> | undefined;
  const audit = new PostgresAuditLog(pool);
  return {
    pool,
    sessions: new PostgresSessionStore(pool, { audit }),
    shares: new PostgresSessionShareStore(pool),
    auth: new PostgresAuthStore(pool),
    policies: new PostgresPolicyStore(pool, { audit }),
    audit,
    workers: new PostgresWorkerRegistry(pool),
    egressPolicies: new PostgresEgressPolicyStore(pool),
    url: options.url,
    close() {
      closing ??= pool.end();
      return closing;
    },
  };
}
