/**
 * Secrets per org and per user, encrypted at rest. `PostgresSecretStore` is write-only (set, list
 * names, delete); plaintext comes back only through `PostgresSecretResolver`, which only the egress
 * proxy is given. Values never appear in errors or logs.
 */
import { InputError, InvariantError, StorageError } from "@outrig/core";
import type pg from "pg";
import type { AuditEntryInput, PostgresAuditLog } from "../audit/postgres-audit-log.js";
import { randomBase62 } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";
import type { SecretBinding, SecretKeyring } from "./secret-cipher.js";

export const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const MAX_SECRET_BYTES = 64 * 1024;

/** Whose secret: the whole org's, or one user's within the org. */
export type SecretScope =
  | { readonly kind: "org"; readonly orgId: string }
  | { readonly kind: "user"; readonly orgId: string; readonly userId: string };

/** What may be shown about a secret: never its value. */
export interface SecretMetadata {
  readonly name: string;
  readonly scope: "org" | "user";
  readonly keyId: string;
  /** 1 on creation, +1 on every overwrite. */
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Who a secret is resolved for: their own secrets first, then the org's. */
export interface SecretOwner {
  readonly orgId: string;
  readonly userId?: string;
}

interface SecretRow {
  name: string;
  user_id: string | null;
  key_id: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

interface SealedRow extends SecretRow {
  ciphertext: Buffer;
  nonce: Buffer;
  auth_tag: Buffer;
}

export interface PostgresSecretStoreOptions {
  /** Records every set and delete as a `secret_write` entry (name, scope; never the value) in the same transaction. */
  readonly audit?: PostgresAuditLog;
}

/** Who changed a secret, for the audit log. */
export interface SecretActor {
  readonly userId?: string;
}

export class PostgresSecretStore {
  readonly #pool: pg.Pool;
  readonly #keyring: SecretKeyring;
  readonly #audit: PostgresAuditLog | undefined;

  constructor(pool: pg.Pool, keyring: SecretKeyring, options: PostgresSecretStoreOptions = {}) {
    this.#pool = pool;
    this.#keyring = keyring;
    this.#audit = options.audit;
  }

  /**
   * Creates or overwrites a secret. Throws InputError `invalid_secret_name` / `secret_too_large`, and
   * StorageError `user_not_found` when the user is not in the org.
   */
  async setSecret(
    scope: SecretScope,
    name: string,
    value: string,
    actor: SecretActor = {},
  ): Promise<SecretMetadata> {
    assertSecretName(name);
    if (Buffer.byteLength(value, "utf8") > MAX_SECRET_BYTES) {
      throw new InputError("secret_too_large", `a secret value is at most ${MAX_SECRET_BYTES} bytes`, 400);
    }
    const binding = bindingOf(scope, name);
    const sealed = this.#keyring.seal(binding, value);
    try {
      return await withTransaction(this.#pool, async (client) => {
        // Serializes writers of the same name; the partial unique indexes cannot be ON CONFLICT targets.
        await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [
          `outrig-secret:${scope.orgId}:${binding.userId ?? ""}:${name}`,
        ]);
        const updated = await client.query<SecretRow>(
          `UPDATE secrets SET ciphertext = $1, nonce = $2, auth_tag = $3, key_id = $4,
             version = version + 1, updated_at = now()
           WHERE org_id = $5 AND user_id IS NOT DISTINCT FROM $6 AND name = $7
           RETURNING name, user_id, key_id, version, created_at, updated_at`,
          [sealed.ciphertext, sealed.nonce, sealed.authTag, sealed.keyId, scope.orgId, binding.userId, name],
        );
        let row = updated.rows[0];
        if (!row) {
          const inserted = await client.query<SecretRow>(
            `INSERT INTO secrets (id, org_id, user_id, name, ciphertext, nonce, auth_tag, key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING name, user_id, key_id, version, created_at, updated_at`,
            [
              `sec_${randomBase62(20)}`,
              scope.orgId,
              binding.userId,
              name,
              sealed.ciphertext,
              sealed.nonce,
              sealed.authTag,
              sealed.keyId,
            ],
          );
          row = inserted.rows[0];
          if (!row) throw new InvariantError("INSERT … RETURNING gave no row");
        }
        const metadata = toMetadata(row);
        await this.#audit?.appendIn(client, scope.orgId, [
          secretAuditEntry(scope, name, "set", metadata.version, actor),
        ]);
        return metadata;
      });
    } catch (error) {
      if ((error as { code?: string }).code === "23503") {
        throw new StorageError("user_not_found", `the secret's org or user does not exist`, { cause: error });
      }
      throw error;
    }
  }

  /** Names and metadata of the secrets in exactly this scope, ordered by name. */
  async listSecrets(scope: SecretScope): Promise<SecretMetadata[]> {
    const binding = bindingOf(scope, "");
    const { rows } = await this.#pool.query<SecretRow>(
      `SELECT name, user_id, key_id, version, created_at, updated_at FROM secrets
       WHERE org_id = $1 AND user_id IS NOT DISTINCT FROM $2 ORDER BY name`,
      [scope.orgId, binding.userId],
    );
    return rows.map(toMetadata);
  }

  /**
   * Which of `names` exist in the org as an org secret, some user's secret or the variable name of a
   * vault's environment_variable credential (a credential rule may name a user's, resolved for each
   * session's user). Never reads a value.
   */
  async existingNames(orgId: string, names: readonly string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const { rows } = await this.#pool.query<{ name: string }>(
      `SELECT name FROM secrets WHERE org_id = $1 AND name = ANY($2::text[])
       UNION SELECT auth->>'secret_name' FROM vault_credentials
       WHERE org_id = $1 AND archived_at IS NULL AND auth->>'type' = 'environment_variable'
         AND auth->>'secret_name' = ANY($2::text[])`,
      [orgId, [...names]],
    );
    return new Set(rows.map((row) => row.name));
  }

  /** True when this call deleted the secret, false when there was none. */
  async deleteSecret(scope: SecretScope, name: string, actor: SecretActor = {}): Promise<boolean> {
    assertSecretName(name);
    return withTransaction(this.#pool, async (client) => {
      const { rowCount } = await client.query(
        "DELETE FROM secrets WHERE org_id = $1 AND user_id IS NOT DISTINCT FROM $2 AND name = $3",
        [scope.orgId, bindingOf(scope, name).userId, name],
      );
      if (rowCount !== 1) return false;
      await this.#audit?.appendIn(client, scope.orgId, [
        secretAuditEntry(scope, name, "delete", null, actor),
      ]);
      return true;
    });
  }

  /**
   * Re-encrypts every row not sealed with the current key (after a rotation, with the old key in the
   * ring as `previous`). A row that fails authentication is left as it is and counted, not thrown.
   */
  async reencryptAll(): Promise<{ reencrypted: number; undecryptable: number }> {
    const { rows } = await this.#pool.query<SealedRow & { id: string; org_id: string }>(
      `SELECT id, org_id, name, user_id, key_id, version, created_at, updated_at, ciphertext, nonce, auth_tag
       FROM secrets WHERE key_id <> $1`,
      [this.#keyring.current.id],
    );
    let reencrypted = 0;
    let undecryptable = 0;
    for (const row of rows) {
      const binding: SecretBinding = { orgId: row.org_id, userId: row.user_id, name: row.name };
      let value: string;
      try {
        value = this.#keyring.open(binding, sealedOf(row));
      } catch (error) {
        if (!(error instanceof StorageError)) throw error;
        undecryptable += 1;
        continue;
      }
      const sealed = this.#keyring.seal(binding, value);
      const { rowCount } = await this.#pool.query(
        `UPDATE secrets SET ciphertext = $1, nonce = $2, auth_tag = $3, key_id = $4
         WHERE id = $5 AND key_id = $6`,
        [sealed.ciphertext, sealed.nonce, sealed.authTag, sealed.keyId, row.id, row.key_id],
      );
      reencrypted += rowCount ?? 0;
    }
    return { reencrypted, undecryptable };
  }
}

/** Plaintext access for the egress proxy only. Do not hand this to routes, tools or the sandbox. */
export class PostgresSecretResolver {
  readonly #pool: pg.Pool;
  readonly #keyring: SecretKeyring;

  constructor(pool: pg.Pool, keyring: SecretKeyring) {
    this.#pool = pool;
    this.#keyring = keyring;
  }

  /**
   * The owner's own secret of that name, else the org's; else the value of the environment_variable
   * credential of that `secret_name` in the owner's vaults, else in the org's (see `VAULT_ALIASES`);
   * else null. Throws StorageError `secret_key_unknown` / `secret_undecryptable` (fails closed) when
   * the row cannot be authenticated.
   */
  async resolveSecret(owner: SecretOwner, name: string): Promise<string | null> {
    if (!SECRET_NAME_PATTERN.test(name)) return null;
    const value = await this.#resolveRow(owner, name);
    if (value !== null) return value;
    const aliases = await this.#pool.query<{ alias: string; secret_ref: string }>(
      `${VAULT_ALIASES.replace("ORDER BY", "AND c.auth->>'secret_name' = $3 ORDER BY")} LIMIT 1`,
      [owner.orgId, owner.userId ?? null, name],
    );
    const alias = aliases.rows[0];
    return alias ? this.#resolveRow(owner, alias.secret_ref) : null;
  }

  /** The owner's own row of exactly that name, else the org's, else null. */
  async #resolveRow(owner: SecretOwner, name: string): Promise<string | null> {
    const { rows } = await this.#pool.query<SealedRow>(
      `SELECT name, user_id, key_id, version, created_at, updated_at, ciphertext, nonce, auth_tag
       FROM secrets WHERE org_id = $1 AND name = $2 AND (user_id IS NULL OR user_id = $3)
       ORDER BY user_id NULLS LAST LIMIT 1`,
      [owner.orgId, name, owner.userId ?? null],
    );
    const row = rows[0];
    return row ? this.#keyring.open({ orgId: owner.orgId, userId: row.user_id, name }, sealedOf(row)) : null;
  }

  /** Every secret visible to the owner, name → value (user secrets shadow org ones). For canary scans. */
  async resolveAllSecrets(owner: SecretOwner): Promise<Map<string, string>> {
    const { rows } = await this.#pool.query<SealedRow>(
      `SELECT name, user_id, key_id, version, created_at, updated_at, ciphertext, nonce, auth_tag
       FROM secrets WHERE org_id = $1 AND (user_id IS NULL OR user_id = $2)
       ORDER BY name, user_id NULLS LAST`,
      [owner.orgId, owner.userId ?? null],
    );
    const values = new Map<string, string>();
    for (const row of rows) {
      if (values.has(row.name)) continue;
      values.set(
        row.name,
        this.#keyring.open({ orgId: owner.orgId, userId: row.user_id, name: row.name }, sealedOf(row)),
      );
    }
    const aliases = await this.#pool.query<{ alias: string; secret_ref: string }>(VAULT_ALIASES, [
      owner.orgId,
      owner.userId ?? null,
    ]);
    for (const { alias, secret_ref } of aliases.rows) {
      const value = values.get(secret_ref);
      if (!values.has(alias) && value !== undefined) values.set(alias, value);
    }
    return values;
  }
}

/**
 * Vault credentials by variable name, for the org's egress credential rules (which name a secret):
 * the environment_variable credentials of active vaults the owner sees, the owner's own vaults first,
 * then the org's, oldest first. A secret row of the exact name wins over an alias.
 */
const VAULT_ALIASES = `SELECT c.auth->>'secret_name' AS alias, c.secret_ref
  FROM vault_credentials c JOIN vaults v ON v.id = c.vault_id
  WHERE v.org_id = $1 AND (v.user_id IS NULL OR v.user_id = $2) AND v.archived_at IS NULL
    AND c.archived_at IS NULL AND c.secret_ref IS NOT NULL AND c.auth->>'type' = 'environment_variable'
  ORDER BY v.user_id NULLS LAST, c.created_at, c.id`;

function assertSecretName(name: string): void {
  if (!SECRET_NAME_PATTERN.test(name)) {
    throw new InputError(
      "invalid_secret_name",
      "a secret name is 1-128 letters, digits or underscores and does not start with a digit",
      400,
    );
  }
}

function bindingOf(scope: SecretScope, name: string): SecretBinding {
  return { orgId: scope.orgId, userId: scope.kind === "user" ? scope.userId : null, name };
}

function sealedOf(row: SealedRow) {
  return { ciphertext: row.ciphertext, nonce: row.nonce, authTag: row.auth_tag, keyId: row.key_id };
}

function toMetadata(row: SecretRow): SecretMetadata {
  return {
    name: row.name,
    scope: row.user_id === null ? "org" : "user",
    keyId: row.key_id,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A secret change as the audit log records it: name, scope and action, never the value. */
function secretAuditEntry(
  scope: SecretScope,
  name: string,
  action: "set" | "delete",
  version: number | null,
  actor: SecretActor,
): AuditEntryInput {
  return {
    kind: "secret_write",
    ...(actor.userId ? { userId: actor.userId } : {}),
    data: {
      name,
      scope: scope.kind,
      ...(scope.kind === "user" ? { ownerUserId: scope.userId } : {}),
      action,
      ...(version === null ? {} : { version }),
    },
  };
}
