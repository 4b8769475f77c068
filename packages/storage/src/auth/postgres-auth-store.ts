/** Orgs, users and API keys on Postgres. Keys are `outrig_<base62>`; only their sha256 is stored. */
import { createHash } from "node:crypto";
import { InputError, InvariantError, StorageError } from "@outrig/core";
import type pg from "pg";
import { createId, randomBase62 } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";

export const API_KEY_PREFIX = "outrig_";
const API_KEY_SECRET_LENGTH = 40;
/** Characters of the key kept in clear (`prefix` column) so people can tell their keys apart. */
const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 6;
export const DEFAULT_ORG_NAME = "default";
const BOOTSTRAP_LOCK_KEY = 0x6f757472_6963;

/** `admin`: everything in the org; `member`: own sessions, files and secrets; `viewer`: read-only. */
export const USER_ROLES = ["admin", "member", "viewer"] as const;
export type UserRole = (typeof USER_ROLES)[number];

export interface OrgRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
}

export interface UserRecord {
  readonly id: string;
  readonly orgId: string;
  readonly name: string;
  readonly role: UserRole;
  readonly createdAt: Date;
}

export interface Principal {
  readonly orgId: string;
  readonly userId: string;
  readonly keyId: string;
  readonly role: UserRole;
}

/** An API key as listed: never its secret, only the clear prefix people tell keys apart by. */
export interface ApiKeyRecord {
  readonly id: string;
  readonly orgId: string;
  readonly userId: string;
  readonly userName: string;
  readonly role: UserRole;
  readonly name: string;
  readonly prefix: string;
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

export interface CreatedApiKey {
  readonly id: string;
  /** The plaintext key. It is returned once and cannot be recovered later. */
  readonly key: string;
}

export interface BootstrapResult {
  readonly orgId: string;
  readonly userId: string;
  /** Plaintext of the key created by this call, or null when the org already had a key. */
  readonly apiKey: string | null;
}

/** sha256 hex of the whole key string, the only form in which keys are stored. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

export class PostgresAuthStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Throws InputError `org_exists` (409) when the name is taken. */
  async createOrg(name: string): Promise<OrgRecord> {
    try {
      const { rows } = await this.#pool.query<{ id: string; name: string; created_at: Date }>(
        "INSERT INTO orgs (id, name) VALUES ($1, $2) RETURNING id, name, created_at",
        [createId("org"), name],
      );
      const row = firstRow(rows);
      return { id: row.id, name: row.name, createdAt: row.created_at };
    } catch (error) {
      if ((error as { code?: string }).code === "23505") {
        throw new InputError("org_exists", `an org named "${name}" already exists`, 409, { cause: error });
      }
      throw error;
    }
  }

  /** Returns the org with this name, creating it when missing. Safe when called concurrently. */
  async ensureOrg(name: string): Promise<OrgRecord> {
    await this.#pool.query("INSERT INTO orgs (id, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [
      createId("org"),
      name,
    ]);
    const { rows } = await this.#pool.query<{ id: string; name: string; created_at: Date }>(
      "SELECT id, name, created_at FROM orgs WHERE name = $1",
      [name],
    );
    const row = firstRow(rows);
    return { id: row.id, name: row.name, createdAt: row.created_at };
  }

  /** Returns the org's oldest user with this name, creating it with `role` when missing. */
  async ensureUser(orgId: string, user: { name: string; role: UserRole }): Promise<UserRecord> {
    return withTransaction(this.#pool, async (client) => {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`outrig-user:${orgId}`]);
      const { rows } = await client.query<{
        id: string;
        org_id: string;
        name: string;
        role: UserRole;
        created_at: Date;
      }>(
        "SELECT id, org_id, name, role, created_at FROM users WHERE org_id = $1 AND name = $2 ORDER BY created_at, id LIMIT 1",
        [orgId, user.name],
      );
      const row = rows[0];
      if (row)
        return { id: row.id, orgId: row.org_id, name: row.name, role: row.role, createdAt: row.created_at };
      return insertUser(client, orgId, user);
    });
  }

  /** The user's role in the org, or null for an unknown user. */
  async userRole(orgId: string, userId: string): Promise<UserRole | null> {
    const { rows } = await this.#pool.query<{ role: UserRole }>(
      "SELECT role FROM users WHERE org_id = $1 AND id = $2",
      [orgId, userId],
    );
    return rows[0]?.role ?? null;
  }

  /** Throws StorageError `org_not_found` for an unknown org. */
  async createUser(orgId: string, user: { name: string; role: UserRole }): Promise<UserRecord> {
    return insertUser(this.#pool, orgId, user);
  }

  /** Returns the plaintext once. Throws StorageError `user_not_found` when the user is not in the org. */
  async createApiKey(orgId: string, userId: string, name: string): Promise<CreatedApiKey> {
    return insertApiKey(this.#pool, orgId, userId, name);
  }

  /** The org's users, oldest first. */
  async listUsers(orgId: string): Promise<UserRecord[]> {
    const { rows } = await this.#pool.query<UserRow>(
      "SELECT id, org_id, name, role, created_at FROM users WHERE org_id = $1 ORDER BY created_at, id",
      [orgId],
    );
    return rows.map(toUserRecord);
  }

  /** One user of the org, or null (another org's user is null too). */
  async getUser(orgId: string, userId: string): Promise<UserRecord | null> {
    const { rows } = await this.#pool.query<UserRow>(
      "SELECT id, org_id, name, role, created_at FROM users WHERE org_id = $1 AND id = $2",
      [orgId, userId],
    );
    return rows[0] ? toUserRecord(rows[0]) : null;
  }

  /**
   * Changes a user's role. Throws InputError `last_admin` (409) when it would leave the org without an
   * admin; returns null for an unknown user.
   */
  async setUserRole(orgId: string, userId: string, role: UserRole): Promise<UserRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`outrig-user:${orgId}`]);
      const { rows } = await client.query<UserRow>(
        "SELECT id, org_id, name, role, created_at FROM users WHERE org_id = $1 AND id = $2 FOR UPDATE",
        [orgId, userId],
      );
      const current = rows[0];
      if (!current) return null;
      if (current.role === "admin" && role !== "admin") {
        const admins = await client.query("SELECT 1 FROM users WHERE org_id = $1 AND role = 'admin'", [
          orgId,
        ]);
        if ((admins.rowCount ?? 0) <= 1)
          throw new InputError("last_admin", "The org's last admin cannot lose the admin role.", 409);
      }
      const updated = await client.query<UserRow>(
        "UPDATE users SET role = $3 WHERE org_id = $1 AND id = $2 RETURNING id, org_id, name, role, created_at",
        [orgId, userId, role],
      );
      return toUserRecord(firstRow(updated.rows));
    });
  }

  /** The org's keys (or one user's), newest first; revoked keys included, marked. */
  async listApiKeys(orgId: string, options: { userId?: string } = {}): Promise<ApiKeyRecord[]> {
    const { rows } = await this.#pool.query<{
      id: string;
      org_id: string;
      user_id: string;
      user_name: string;
      role: UserRole;
      name: string;
      prefix: string;
      created_at: Date;
      last_used_at: Date | null;
      revoked_at: Date | null;
    }>(
      `SELECT k.id, k.org_id, k.user_id, u.name AS user_name, u.role, k.name, k.prefix, k.created_at,
         k.last_used_at, k.revoked_at
       FROM api_keys k JOIN users u ON u.org_id = k.org_id AND u.id = k.user_id
       WHERE k.org_id = $1 AND ($2::text IS NULL OR k.user_id = $2)
       ORDER BY k.created_at DESC, k.id DESC`,
      [orgId, options.userId ?? null],
    );
    return rows.map((row) => ({
      id: row.id,
      orgId: row.org_id,
      userId: row.user_id,
      userName: row.user_name,
      role: row.role,
      name: row.name,
      prefix: row.prefix,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      revokedAt: row.revoked_at,
    }));
  }

  /**
   * Resolves a presented key to its principal, or null for an unknown, malformed or revoked key. The
   * lookup is by hash, so timing depends on the hash, not on how much of the secret matched.
   */
  async authenticate(key: string): Promise<Principal | null> {
    if (!key.startsWith(API_KEY_PREFIX) || key.length > 200) return null;
    const { rows } = await this.#pool.query<{ id: string; org_id: string; user_id: string; role: UserRole }>(
      `SELECT k.id, k.org_id, k.user_id, u.role
       FROM api_keys k JOIN users u ON u.org_id = k.org_id AND u.id = k.user_id
       WHERE k.hash = $1 AND k.revoked_at IS NULL`,
      [hashApiKey(key)],
    );
    const row = rows[0];
    if (!row) return null;
    // At most one write per key per minute, not one per request.
    await this.#pool.query(
      `UPDATE api_keys SET last_used_at = now()
       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
      [row.id],
    );
    return { orgId: row.org_id, userId: row.user_id, keyId: row.id, role: row.role };
  }

  /**
   * Scoped by org (and to one user's keys when `userId` is given). True when this call revoked the key,
   * false when it was unknown, someone else's or already revoked. Effective at once: `authenticate`
   * reads the key row on every request.
   */
  async revokeApiKey(orgId: string, keyId: string, options: { userId?: string } = {}): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      `UPDATE api_keys SET revoked_at = now()
       WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL AND ($3::text IS NULL OR user_id = $3)`,
      [orgId, keyId, options.userId ?? null],
    );
    return rowCount === 1;
  }

  /**
   * Ensures the org `default` and an admin user in it exist and, only when that org has never had a key
   * (revoked ones count), creates one. Idempotent; concurrent callers serialize on an advisory lock.
   */
  async bootstrap(): Promise<BootstrapResult> {
    return withTransaction(this.#pool, async (client) => {
      await client.query("SELECT pg_advisory_xact_lock($1)", [BOOTSTRAP_LOCK_KEY]);
      await client.query("INSERT INTO orgs (id, name) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", [
        createId("org"),
        DEFAULT_ORG_NAME,
      ]);
      const org = firstRow(
        (await client.query<{ id: string }>("SELECT id FROM orgs WHERE name = $1", [DEFAULT_ORG_NAME])).rows,
      );
      const admins = await client.query<{ id: string }>(
        "SELECT id FROM users WHERE org_id = $1 AND role = 'admin' ORDER BY created_at, id LIMIT 1",
        [org.id],
      );
      const userId =
        admins.rows[0]?.id ?? (await insertUser(client, org.id, { name: "admin", role: "admin" })).id;
      const keys = await client.query("SELECT 1 FROM api_keys WHERE org_id = $1 LIMIT 1", [org.id]);
      const apiKey =
        keys.rowCount === 0 ? (await insertApiKey(client, org.id, userId, "bootstrap")).key : null;
      return { orgId: org.id, userId, apiKey };
    });
  }
}

interface UserRow {
  id: string;
  org_id: string;
  name: string;
  role: UserRole;
  created_at: Date;
}

function toUserRecord(row: UserRow): UserRecord {
  return { id: row.id, orgId: row.org_id, name: row.name, role: row.role, createdAt: row.created_at };
}

async function insertUser(
  queryable: pg.Pool | pg.PoolClient,
  orgId: string,
  user: { name: string; role: UserRole },
): Promise<UserRecord> {
  try {
    const { rows } = await queryable.query<{
      id: string;
      org_id: string;
      name: string;
      role: UserRole;
      created_at: Date;
    }>(
      "INSERT INTO users (id, org_id, name, role) VALUES ($1, $2, $3, $4) RETURNING id, org_id, name, role, created_at",
      [createId("usr"), orgId, user.name, user.role],
    );
    const row = firstRow(rows);
    return { id: row.id, orgId: row.org_id, name: row.name, role: row.role, createdAt: row.created_at };
  } catch (error) {
    if ((error as { code?: string }).code === "23503") {
      throw new StorageError("org_not_found", `org ${orgId} does not exist`, { cause: error });
    }
    throw error;
  }
}

async function insertApiKey(
  queryable: pg.Pool | pg.PoolClient,
  orgId: string,
  userId: string,
  name: string,
): Promise<CreatedApiKey> {
  const key = `${API_KEY_PREFIX}${randomBase62(API_KEY_SECRET_LENGTH)}`;
  const id = createId("key");
  try {
    await queryable.query(
      "INSERT INTO api_keys (id, org_id, user_id, name, prefix, hash) VALUES ($1, $2, $3, $4, $5, $6)",
      [id, orgId, userId, name, key.slice(0, DISPLAY_PREFIX_LENGTH), hashApiKey(key)],
    );
  } catch (error) {
    if ((error as { code?: string }).code === "23503") {
      throw new StorageError("user_not_found", `user ${userId} is not in org ${orgId}`, { cause: error });
    }
    throw error;
  }
  return { id, key };
}

function firstRow<T>(rows: T[]): T {
  const [row] = rows;
  if (!row) throw new InvariantError("expected a row");
  return row;
}
