/**
 * The `authorization_token` of a session's github_repository resources, encrypted at rest with the
 * secrets' key ring (bound to org, session and resource, so a row copied elsewhere does not open).
 * Write-only for routes (`set`, `delete`); the plaintext comes back only through `tokensOf`, which
 * only the egress proxy is given. Values never appear in errors or logs.
 */
import { InputError } from "@outrig/core";
import type pg from "pg";
import { MAX_SECRET_BYTES } from "../secrets/postgres-secret-store.js";
import type { SecretBinding, SecretKeyring } from "../secrets/secret-cipher.js";

interface TokenRow {
  resource_id: string;
  ciphertext: Buffer;
  nonce: Buffer;
  auth_tag: Buffer;
  key_id: string;
}

export class PostgresSessionResourceTokens {
  readonly #pool: pg.Pool;
  readonly #keyring: SecretKeyring;

  constructor(pool: pg.Pool, keyring: SecretKeyring) {
    this.#pool = pool;
    this.#keyring = keyring;
  }

  /** Creates or replaces (rotates) the resource's token. The session must exist in the org. */
  async set(orgId: string, sessionId: string, resourceId: string, token: string): Promise<void> {
    if (Buffer.byteLength(token, "utf8") > MAX_SECRET_BYTES)
      throw new InputError("secret_too_large", `a token is at most ${MAX_SECRET_BYTES} bytes`, 400);
    const sealed = this.#keyring.seal(bindingOf(orgId, sessionId, resourceId), token);
    await this.#pool.query(
      `INSERT INTO session_resource_tokens (org_id, session_id, resource_id, ciphertext, nonce, auth_tag, key_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (session_id, resource_id) DO UPDATE SET ciphertext = EXCLUDED.ciphertext,
         nonce = EXCLUDED.nonce, auth_tag = EXCLUDED.auth_tag, key_id = EXCLUDED.key_id, updated_at = now()
       WHERE session_resource_tokens.org_id = EXCLUDED.org_id`,
      [orgId, sessionId, resourceId, sealed.ciphertext, sealed.nonce, sealed.authTag, sealed.keyId],
    );
  }

  /** True when this call deleted a token. */
  async delete(orgId: string, sessionId: string, resourceId: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      "DELETE FROM session_resource_tokens WHERE org_id = $1 AND session_id = $2 AND resource_id = $3",
      [orgId, sessionId, resourceId],
    );
    return rowCount === 1;
  }

  /**
   * Resource id → plaintext token of every resource of the session that has one, the least recently
   * set first. For the egress proxy only. Throws StorageError `secret_key_unknown` / `secret_undecryptable` (fails closed).
   */
  async tokensOf(orgId: string, sessionId: string): Promise<Map<string, string>> {
    const { rows } = await this.#pool.query<TokenRow>(
      `SELECT resource_id, ciphertext, nonce, auth_tag, key_id FROM session_resource_tokens
       WHERE org_id = $1 AND session_id = $2 ORDER BY updated_at, resource_id`,
      [orgId, sessionId],
    );
    const tokens = new Map<string, string>();
    for (const row of rows) {
      const sealed = {
        ciphertext: row.ciphertext,
        nonce: row.nonce,
        authTag: row.auth_tag,
        keyId: row.key_id,
      };
      tokens.set(row.resource_id, this.#keyring.open(bindingOf(orgId, sessionId, row.resource_id), sealed));
    }
    return tokens;
  }
}

function bindingOf(orgId: string, sessionId: string, resourceId: string): SecretBinding {
  return { orgId, userId: null, name: `session_resource_token:${sessionId}:${resourceId}` };
}
