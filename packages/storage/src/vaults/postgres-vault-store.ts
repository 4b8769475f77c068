/**
 * Vaults and their credentials (the Managed Agents API's `/v1/vaults`), on top of the encrypted
 * secret store: a credential's values are rows of `secrets` sealed with the same keyring and bound to
 * the vault's owner (the org for an org vault, the user for a user's vault). `vault_credentials`
 * holds only what may be shown (`auth` without values) and `secret_ref`, the name of the row with its
 * main value. Nothing here returns a value: plaintext reaches only the egress proxy and the MCP client
 * through `PostgresSecretResolver`, by `secret_ref`.
 *
 * Who sees what: an org vault is visible to everyone in the org and changed only by an admin; a
 * user's vault is visible to and changed by that user only (another user, admins included, gets 404).
 * Every create, rotation, change, archive and delete is a `secret_write` audit entry in the same
 * transaction (ids, names and what changed; never a value).
 */
import { InputError, InvariantError, StorageError } from "@outrig/core";
import type pg from "pg";
import type { AuditEntryInput, PostgresAuditLog } from "../audit/postgres-audit-log.js";
import { createId, randomBase62 } from "../ids/create-id.js";
import { MAX_SECRET_BYTES } from "../secrets/postgres-secret-store.js";
import type { SecretKeyring } from "../secrets/secret-cipher.js";
import { withTransaction } from "../with-transaction.js";

/** Who is asking: vault visibility and write rights follow from org, user and role. */
export interface VaultCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly role: string;
}

export type VaultScope = "org" | "user";

export interface VaultRecord {
  readonly id: string;
  readonly scope: VaultScope;
  readonly displayName: string;
  readonly metadata: Record<string, string>;
  readonly archivedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A credential's `auth` as the API shows it (never a value). */
export type CredentialAuth =
  | { readonly type: "static_bearer"; readonly mcp_server_url: string }
  | {
      readonly type: "mcp_oauth";
      readonly mcp_server_url: string;
      readonly expires_at: string | null;
      readonly refresh: {
        readonly client_id: string;
        readonly token_endpoint: string;
        readonly token_endpoint_auth: {
          readonly type: "none" | "client_secret_basic" | "client_secret_post";
        };
        readonly resource: string | null;
        readonly scope: string | null;
      } | null;
    }
  | {
      readonly type: "environment_variable";
      readonly secret_name: string;
      readonly networking:
        | { readonly type: "unrestricted" }
        | { readonly type: "limited"; readonly allowed_hosts: readonly string[] };
      readonly injection_location: { readonly header: boolean; readonly body: boolean };
    };

/**
 * The values of a credential: `main` is the token, access token or secret value. On update a string
 * sets (rotates) it, null removes it, undefined keeps it.
 */
export interface CredentialValues {
  readonly main?: string | null;
  readonly refresh_token?: string | null;
  readonly client_secret?: string | null;
}

export interface CredentialRecord {
  readonly id: string;
  readonly vaultId: string;
  readonly displayName: string | null;
  readonly metadata: Record<string, string>;
  readonly auth: CredentialAuth;
  readonly archivedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What an update changes; `metadata` is a patch (null deletes a key). */
export interface CredentialChange {
  readonly auth: CredentialAuth;
  readonly values: CredentialValues;
}

export interface ListPosition {
  readonly createdAt: string;
  readonly id: string;
}

/** What a session's vaults give it. No values: those are resolved by `secretRef` at use. */
export interface SessionVaultCredentials {
  readonly vaultIds: readonly string[];
  /** environment_variable credentials, substituted at egress; the first vault listed wins a name. */
  readonly environment: readonly {
    readonly credentialId: string;
    readonly vaultId: string;
    /** The variable the sandbox gets (holding a placeholder, never the value). */
    readonly secretName: string;
    /** The `secrets` row of the value (the egress rule's secret name). */
    readonly secretRef: string;
    /** null: every host the org's egress allowlist admits. */
    readonly allowedHosts: readonly string[] | null;
    readonly injectHeader: boolean;
    readonly injectBody: boolean;
  }[];
  /** Credentials for MCP servers, used by the server's MCP client; the first vault listed wins a URL. */
  readonly mcpServers: readonly {
    readonly credentialId: string;
    readonly vaultId: string;
    readonly type: "static_bearer" | "mcp_oauth";
    readonly mcpServerUrl: string;
    readonly secretRef: string;
  }[];
}

interface VaultRow {
  id: string;
  org_id: string;
  user_id: string | null;
  display_name: string;
  metadata: Record<string, string>;
  archived_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface CredentialRow {
  id: string;
  vault_id: string;
  display_name: string | null;
  metadata: Record<string, string>;
  auth: CredentialAuth;
  secret_ref: string | null;
  archived_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

const VAULT_COLUMNS = "id, org_id, user_id, display_name, metadata, archived_at, created_at, updated_at";
const CREDENTIAL_COLUMNS =
  "id, vault_id, display_name, metadata, auth, secret_ref, archived_at, created_at, updated_at";
const MAX_SESSION_VAULTS = 50;

export interface PostgresVaultStoreOptions {
  readonly audit?: PostgresAuditLog;
}

export class PostgresVaultStore {
  readonly #pool: pg.Pool;
  readonly #keyring: SecretKeyring;
  readonly #audit: PostgresAuditLog | undefined;

  constructor(pool: pg.Pool, keyring: SecretKeyring, options: PostgresVaultStoreOptions = {}) {
    this.#pool = pool;
    this.#keyring = keyring;
    this.#audit = options.audit;
  }

  /** A `user` vault belongs to the caller; an `org` vault needs the admin role (403 otherwise). */
  async createVault(
    caller: VaultCaller,
    input: { displayName: string; metadata: Record<string, string>; scope: VaultScope },
  ): Promise<VaultRecord> {
    if (input.scope === "org") assertAdmin(caller);
    const id = createId("vlt");
    return withTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<VaultRow>(
        `INSERT INTO vaults (id, org_id, user_id, display_name, metadata) VALUES ($1, $2, $3, $4, $5)
         RETURNING ${VAULT_COLUMNS}`,
        [id, caller.orgId, input.scope === "org" ? null : caller.userId, input.displayName, input.metadata],
      );
      const row = single(rows);
      await this.#record(client, caller, row, { object: "vault", action: "create", vault_id: id });
      return toVault(row);
    });
  }

  /** The vault if the caller may see it, else null (another org's or another user's: null alike). */
  async getVault(caller: VaultCaller, vaultId: string): Promise<VaultRecord | null> {
    const row = await this.#visibleVault(this.#pool, caller, vaultId);
    return row ? toVault(row) : null;
  }

  /**
   * Up to `limit` vaults the caller sees, oldest first, after `after` (ordered by the millisecond, as a
   * cursor's ISO time holds it, then id).
   */
  async listVaults(
    caller: VaultCaller,
    options: { includeArchived: boolean; limit: number; after?: ListPosition },
  ): Promise<VaultRecord[]> {
    const { rows } = await this.#pool.query<VaultRow>(
      `SELECT ${VAULT_COLUMNS} FROM vaults
       WHERE org_id = $1 AND (user_id IS NULL OR user_id = $2) AND ($3 OR archived_at IS NULL)
         AND ($4::timestamptz IS NULL OR (date_trunc('milliseconds', created_at), id) > ($4::timestamptz, $5::text))
       ORDER BY date_trunc('milliseconds', created_at), id LIMIT $6`,
      [
        caller.orgId,
        caller.userId,
        options.includeArchived,
        options.after?.createdAt ?? null,
        options.after?.id ?? "",
        options.limit,
      ],
    );
    return rows.map(toVault);
  }

  /** Renames and patches metadata (a null value deletes the key). Null when the caller cannot see it. */
  async updateVault(
    caller: VaultCaller,
    vaultId: string,
    change: { displayName?: string; metadata?: Record<string, string | null> },
  ): Promise<VaultRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const current = await this.#writableVault(client, caller, vaultId);
      if (!current) return null;
      const metadata = patchMetadata(current.metadata, change.metadata);
      const { rows } = await client.query<VaultRow>(
        `UPDATE vaults SET display_name = $2, metadata = $3, updated_at = now() WHERE id = $1
         RETURNING ${VAULT_COLUMNS}`,
        [vaultId, change.displayName ?? current.display_name, metadata],
      );
      const row = single(rows);
      await this.#record(client, caller, row, { object: "vault", action: "update", vault_id: vaultId });
      return toVault(row);
    });
  }

  /** Archives the vault (new sessions can no longer name it); its credentials are kept. */
  async archiveVault(caller: VaultCaller, vaultId: string): Promise<VaultRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const current = await this.#writableVault(client, caller, vaultId);
      if (!current) return null;
      if (current.archived_at) return toVault(current);
      const { rows } = await client.query<VaultRow>(
        `UPDATE vaults SET archived_at = now(), updated_at = now() WHERE id = $1 RETURNING ${VAULT_COLUMNS}`,
        [vaultId],
      );
      const row = single(rows);
      await this.#record(client, caller, row, { object: "vault", action: "archive", vault_id: vaultId });
      return toVault(row);
    });
  }

  /** Deletes the vault, its credentials and their values. False when the caller cannot see it. */
  async deleteVault(caller: VaultCaller, vaultId: string): Promise<boolean> {
    return withTransaction(this.#pool, async (client) => {
      const current = await this.#writableVault(client, caller, vaultId);
      if (!current) return false;
      const { rows } = await client.query<CredentialRow>(
        `SELECT ${CREDENTIAL_COLUMNS} FROM vault_credentials WHERE vault_id = $1`,
        [vaultId],
      );
      for (const credential of rows) await this.#deleteValues(client, current, credential.secret_ref);
      await client.query("DELETE FROM vaults WHERE id = $1", [vaultId]);
      await this.#record(client, caller, current, {
        object: "vault",
        action: "delete",
        vault_id: vaultId,
        credential_ids: rows.map((credential) => credential.id),
      });
      return true;
    });
  }

  /**
   * Adds a credential and seals its values. 409 `vault_archived` for an archived vault, 409
   * `credential_conflict` when an active credential of the vault has the same MCP server URL or
   * variable name.
   */
  async createCredential(
    caller: VaultCaller,
    vaultId: string,
    input: {
      displayName: string | null;
      metadata: Record<string, string>;
      auth: CredentialAuth;
      values: CredentialValues;
    },
  ): Promise<CredentialRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const vault = await this.#writableVault(client, caller, vaultId);
      if (!vault) return null;
      if (vault.archived_at) {
        throw new InputError(
          "vault_archived",
          `vault ${vaultId} is archived; add credentials to another`,
          409,
        );
      }
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`outrig-vault:${vaultId}`]);
      await assertNoConflict(client, vaultId, input.auth, null);
      const id = createId("vcrd");
      await this.#writeValues(client, vault, id, input.values);
      const { rows } = await client.query<CredentialRow>(
        `INSERT INTO vault_credentials (id, vault_id, org_id, display_name, metadata, auth, secret_ref)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${CREDENTIAL_COLUMNS}`,
        [id, vaultId, caller.orgId, input.displayName, input.metadata, input.auth, id],
      );
      const row = single(rows);
      await this.#record(client, caller, vault, {
        object: "vault_credential",
        action: "create",
        ...describe(row),
      });
      return toCredential(row);
    });
  }

  async getCredential(
    caller: VaultCaller,
    vaultId: string,
    credentialId: string,
  ): Promise<CredentialRecord | null> {
    const vault = await this.#visibleVault(this.#pool, caller, vaultId);
    if (!vault) return null;
    const { rows } = await this.#pool.query<CredentialRow>(
      `SELECT ${CREDENTIAL_COLUMNS} FROM vault_credentials WHERE id = $1 AND vault_id = $2`,
      [credentialId, vaultId],
    );
    return rows[0] ? toCredential(rows[0]) : null;
  }

  /** Null when the caller cannot see the vault. */
  async listCredentials(
    caller: VaultCaller,
    vaultId: string,
    options: { includeArchived: boolean; limit: number; after?: ListPosition },
  ): Promise<CredentialRecord[] | null> {
    const vault = await this.#visibleVault(this.#pool, caller, vaultId);
    if (!vault) return null;
    const { rows } = await this.#pool.query<CredentialRow>(
      `SELECT ${CREDENTIAL_COLUMNS} FROM vault_credentials
       WHERE vault_id = $1 AND ($2 OR archived_at IS NULL)
         AND ($3::timestamptz IS NULL OR (date_trunc('milliseconds', created_at), id) > ($3::timestamptz, $4::text))
       ORDER BY date_trunc('milliseconds', created_at), id LIMIT $5`,
      [
        vaultId,
        options.includeArchived,
        options.after?.createdAt ?? null,
        options.after?.id ?? "",
        options.limit,
      ],
    );
    return rows.map(toCredential);
  }

  /**
   * Changes a credential: `change` gets the current `auth` and returns the new one and the values to
   * set (a rotation) or remove. 409 `credential_archived` once archived.
   */
  async updateCredential(
    caller: VaultCaller,
    vaultId: string,
    credentialId: string,
    update: {
      displayName?: string | null;
      metadata?: Record<string, string | null>;
      change: (current: CredentialAuth) => CredentialChange;
    },
  ): Promise<CredentialRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const vault = await this.#writableVault(client, caller, vaultId);
      if (!vault) return null;
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`outrig-vault:${vaultId}`]);
      const current = await lockedCredential(client, vaultId, credentialId);
      if (!current) return null;
      if (current.archived_at || current.secret_ref === null) {
        throw new InputError("credential_archived", `credential ${credentialId} is archived`, 409);
      }
      const { auth, values } = update.change(current.auth);
      await assertNoConflict(client, vaultId, auth, credentialId);
      await this.#writeValues(client, vault, current.secret_ref, values);
      const { rows } = await client.query<CredentialRow>(
        `UPDATE vault_credentials SET display_name = $2, metadata = $3, auth = $4, updated_at = now()
         WHERE id = $1 RETURNING ${CREDENTIAL_COLUMNS}`,
        [
          credentialId,
          update.displayName === undefined ? current.display_name : update.displayName,
          patchMetadata(current.metadata, update.metadata),
          auth,
        ],
      );
      const row = single(rows);
      const rotated = Object.entries(values)
        .filter(([, value]) => value !== undefined)
        .map(([field]) => field);
      await this.#record(client, caller, vault, {
        object: "vault_credential",
        action: rotated.length > 0 ? "rotate" : "update",
        ...describe(row),
        ...(rotated.length > 0 ? { values: rotated } : {}),
      });
      return toCredential(row);
    });
  }

  /** Archives the credential and purges its values; its record stays. */
  async archiveCredential(
    caller: VaultCaller,
    vaultId: string,
    credentialId: string,
  ): Promise<CredentialRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const vault = await this.#writableVault(client, caller, vaultId);
      if (!vault) return null;
      const current = await lockedCredential(client, vaultId, credentialId);
      if (!current) return null;
      if (current.archived_at) return toCredential(current);
      await this.#deleteValues(client, vault, current.secret_ref);
      const { rows } = await client.query<CredentialRow>(
        `UPDATE vault_credentials SET archived_at = now(), updated_at = now(), secret_ref = NULL
         WHERE id = $1 RETURNING ${CREDENTIAL_COLUMNS}`,
        [credentialId],
      );
      const row = single(rows);
      await this.#record(client, caller, vault, {
        object: "vault_credential",
        action: "archive",
        ...describe(row),
      });
      return toCredential(row);
    });
  }

  async deleteCredential(caller: VaultCaller, vaultId: string, credentialId: string): Promise<boolean> {
    return withTransaction(this.#pool, async (client) => {
      const vault = await this.#writableVault(client, caller, vaultId);
      if (!vault) return false;
      const current = await lockedCredential(client, vaultId, credentialId);
      if (!current) return false;
      await this.#deleteValues(client, vault, current.secret_ref);
      await client.query("DELETE FROM vault_credentials WHERE id = $1", [credentialId]);
      await this.#record(client, caller, vault, {
        object: "vault_credential",
        action: "delete",
        ...describe(current),
      });
      return true;
    });
  }

  /**
   * The credentials a session of `userId` gets from `vaultIds` (what the session's egress injects and
   * its MCP servers are called with). Throws InputError 404 `not_found` for a vault of another org or
   * another user, or none at all (which of these is not said), 409 `vault_archived` for an archived
   * one, 400 for too many. Archived credentials are left out. For a session already running
   * (`isRunning`: egress re-reading them), an archived vault still serves it and a vault gone or no
   * longer visible is skipped instead of failing the others.
   */
  async credentialsForSession(
    orgId: string,
    userId: string,
    vaultIds: readonly string[],
    options: { isRunning?: boolean } = {},
  ): Promise<SessionVaultCredentials> {
    const ids = [...new Set(vaultIds)];
    if (ids.length > MAX_SESSION_VAULTS) {
      throw new InputError("invalid_request", `vault_ids: at most ${MAX_SESSION_VAULTS} vaults`, 400);
    }
    if (ids.length === 0) return { vaultIds: [], environment: [], mcpServers: [] };
    const { rows: vaults } = await this.#pool.query<VaultRow>(
      `SELECT ${VAULT_COLUMNS} FROM vaults
       WHERE id = ANY($1::text[]) AND org_id = $2 AND (user_id IS NULL OR user_id = $3)`,
      [ids, orgId, userId],
    );
    for (const id of options.isRunning ? [] : ids) {
      const vault = vaults.find((row) => row.id === id);
      if (!vault) throw new InputError("not_found", `vault ${id} not found`, 404);
      if (vault.archived_at) throw new InputError("vault_archived", `vault ${id} is archived`, 409);
    }
    const usable = ids.filter((id) => vaults.some((row) => row.id === id));
    const { rows } = await this.#pool.query<CredentialRow>(
      `SELECT ${CREDENTIAL_COLUMNS} FROM vault_credentials
       WHERE vault_id = ANY($1::text[]) AND archived_at IS NULL AND secret_ref IS NOT NULL
       ORDER BY created_at, id`,
      [usable],
    );
    rows.sort((a, b) => usable.indexOf(a.vault_id) - usable.indexOf(b.vault_id));
    const environment: SessionVaultCredentials["environment"][number][] = [];
    const mcpServers: SessionVaultCredentials["mcpServers"][number][] = [];
    for (const row of rows) {
      const secretRef = row.secret_ref;
      if (secretRef === null) continue;
      const auth = row.auth;
      if (auth.type === "environment_variable") {
        if (environment.some((each) => each.secretName === auth.secret_name)) continue;
        environment.push({
          credentialId: row.id,
          vaultId: row.vault_id,
          secretName: auth.secret_name,
          secretRef,
          allowedHosts: auth.networking.type === "limited" ? auth.networking.allowed_hosts : null,
          injectHeader: auth.injection_location.header,
          injectBody: auth.injection_location.body,
        });
      } else {
        if (mcpServers.some((each) => each.mcpServerUrl === auth.mcp_server_url)) continue;
        mcpServers.push({
          credentialId: row.id,
          vaultId: row.vault_id,
          type: auth.type,
          mcpServerUrl: auth.mcp_server_url,
          secretRef,
        });
      }
    }
    return { vaultIds: usable, environment, mcpServers };
  }

  async #visibleVault(
    queryable: pg.Pool | pg.ClientBase,
    caller: VaultCaller,
    vaultId: string,
    lock = false,
  ): Promise<VaultRow | null> {
    const { rows } = await queryable.query<VaultRow>(
      `SELECT ${VAULT_COLUMNS} FROM vaults WHERE id = $1 AND org_id = $2 AND (user_id IS NULL OR user_id = $3)
       ${lock ? "FOR UPDATE" : ""}`,
      [vaultId, caller.orgId, caller.userId],
    );
    return rows[0] ?? null;
  }

  /** The vault locked for a write, null when not visible; 403 for an org vault and a non-admin. */
  async #writableVault(
    client: pg.ClientBase,
    caller: VaultCaller,
    vaultId: string,
  ): Promise<VaultRow | null> {
    const row = await this.#visibleVault(client, caller, vaultId, true);
    if (row && row.user_id === null) assertAdmin(caller);
    if (row && caller.role === "viewer") {
      throw new InputError("forbidden", "a viewer cannot change vaults", 403);
    }
    return row;
  }

  /** Seals and upserts (string), deletes (null) or keeps (undefined) each value of a credential. */
  async #writeValues(
    client: pg.ClientBase,
    vault: VaultRow,
    secretRef: string,
    values: CredentialValues,
  ): Promise<void> {
    for (const [field, value] of Object.entries(values) as [keyof CredentialValues, string | null][]) {
      if (value === undefined) continue;
      const name = valueName(secretRef, field);
      if (value === null) {
        await client.query(
          "DELETE FROM secrets WHERE org_id = $1 AND user_id IS NOT DISTINCT FROM $2 AND name = $3",
          [vault.org_id, vault.user_id, name],
        );
        continue;
      }
      if (Buffer.byteLength(value, "utf8") > MAX_SECRET_BYTES) {
        throw new InputError(
          "secret_too_large",
          `a credential value is at most ${MAX_SECRET_BYTES} bytes`,
          400,
        );
      }
      const sealed = this.#keyring.seal({ orgId: vault.org_id, userId: vault.user_id, name }, value);
      const updated = await client.query(
        `UPDATE secrets SET ciphertext = $1, nonce = $2, auth_tag = $3, key_id = $4,
           version = version + 1, updated_at = now()
         WHERE org_id = $5 AND user_id IS NOT DISTINCT FROM $6 AND name = $7`,
        [sealed.ciphertext, sealed.nonce, sealed.authTag, sealed.keyId, vault.org_id, vault.user_id, name],
      );
      if (updated.rowCount === 1) continue;
      try {
        await client.query(
          `INSERT INTO secrets (id, org_id, user_id, name, ciphertext, nonce, auth_tag, key_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            `sec_${randomBase62(20)}`,
            vault.org_id,
            vault.user_id,
            name,
            sealed.ciphertext,
            sealed.nonce,
            sealed.authTag,
            sealed.keyId,
          ],
        );
      } catch (error) {
        if ((error as { code?: string }).code === "23503") {
          throw new StorageError("user_not_found", "the vault's owner no longer exists", { cause: error });
        }
        throw error;
      }
    }
  }

  async #deleteValues(client: pg.ClientBase, vault: VaultRow, secretRef: string | null): Promise<void> {
    if (secretRef === null) return;
    await client.query(
      "DELETE FROM secrets WHERE org_id = $1 AND user_id IS NOT DISTINCT FROM $2 AND name = ANY($3::text[])",
      [
        vault.org_id,
        vault.user_id,
        (["main", "refresh_token", "client_secret"] as const).map((field) => valueName(secretRef, field)),
      ],
    );
  }

  async #record(
    client: pg.ClientBase,
    caller: VaultCaller,
    vault: VaultRow,
    data: Record<string, unknown>,
  ): Promise<void> {
    const entry: AuditEntryInput = {
      kind: "secret_write",
      userId: caller.userId,
      data: {
        ...data,
        scope: vault.user_id === null ? "org" : "user",
        ...(vault.user_id === null ? {} : { ownerUserId: vault.user_id }),
      },
    };
    await this.#audit?.appendIn(client, caller.orgId, [entry]);
  }
}

/** The `secrets` row name of one value of a credential. */
export function valueName(secretRef: string, field: keyof CredentialValues): string {
  return field === "main" ? secretRef : `${secretRef}__${field}`;
}

function assertAdmin(caller: VaultCaller): void {
  if (caller.role !== "admin") {
    throw new InputError("forbidden", "only an org admin may change org vaults; use a user vault", 403);
  }
}

async function lockedCredential(
  client: pg.ClientBase,
  vaultId: string,
  credentialId: string,
): Promise<CredentialRow | null> {
  const { rows } = await client.query<CredentialRow>(
    `SELECT ${CREDENTIAL_COLUMNS} FROM vault_credentials WHERE id = $1 AND vault_id = $2 FOR UPDATE`,
    [credentialId, vaultId],
  );
  return rows[0] ?? null;
}

/** One active credential per MCP server URL, and per variable name, in a vault. */
async function assertNoConflict(
  client: pg.ClientBase,
  vaultId: string,
  auth: CredentialAuth,
  exceptId: string | null,
): Promise<void> {
  const isVariable = auth.type === "environment_variable";
  const key = isVariable ? auth.secret_name : auth.mcp_server_url;
  const { rows } = await client.query<{ id: string }>(
    `SELECT id FROM vault_credentials
     WHERE vault_id = $1 AND archived_at IS NULL AND id IS DISTINCT FROM $2
       AND ${isVariable ? "auth->>'type' = 'environment_variable' AND auth->>'secret_name' = $3" : "auth->>'type' <> 'environment_variable' AND auth->>'mcp_server_url' = $3"}
     LIMIT 1`,
    [vaultId, exceptId, key],
  );
  const other = rows[0];
  if (other) {
    throw new InputError(
      "credential_conflict",
      isVariable
        ? `credential ${other.id} of this vault already sets ${key}; update or archive it`
        : `credential ${other.id} of this vault is already for ${key}; update or archive it`,
      409,
    );
  }
}

function patchMetadata(
  current: Record<string, string>,
  patch: Record<string, string | null> | undefined,
): Record<string, string> {
  if (!patch) return current;
  const next: Record<string, string> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  if (Object.keys(next).length > 16) {
    throw new InputError("invalid_request", "metadata: at most 16 keys", 400);
  }
  return next;
}

function describe(row: CredentialRow): Record<string, unknown> {
  return {
    vault_id: row.vault_id,
    credential_id: row.id,
    auth_type: row.auth.type,
    ...(row.auth.type === "environment_variable"
      ? { secret_name: row.auth.secret_name }
      : { mcp_server_url: row.auth.mcp_server_url }),
  };
}

function single<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (!row) throw new InvariantError("a write … RETURNING gave no row");
  return row;
}

function toVault(row: VaultRow): VaultRecord {
  return {
    id: row.id,
    scope: row.user_id === null ? "org" : "user",
    displayName: row.display_name,
    metadata: row.metadata,
    archivedAt: row.archived_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toCredential(row: CredentialRow): CredentialRecord {
  return {
    id: row.id,
    vaultId: row.vault_id,
    displayName: row.display_name,
    metadata: row.metadata,
    auth: row.auth,
    archivedAt: row.archived_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
