/**
 * Who a session is shared with, and as what (`viewer`, `approver`, `steerer`). Scoped by org: a share
 * can only name a session and a user of the same org (composite foreign keys).
 */
import { InputError } from "@outrig/core";
import type pg from "pg";

export const SHARE_ROLES = ["viewer", "approver", "steerer"] as const;
export type ShareRole = (typeof SHARE_ROLES)[number];

export interface SessionShare {
  readonly sessionId: string;
  readonly userId: string;
  readonly role: ShareRole;
  readonly grantedBy: string;
  readonly createdAt: Date;
}

interface ShareRow {
  session_id: string;
  user_id: string;
  role: ShareRole;
  granted_by: string;
  created_at: Date;
}

export class PostgresSessionShareStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** The role `userId` was given on the session, or null. */
  async roleOf(orgId: string, sessionId: string, userId: string): Promise<ShareRole | null> {
    const { rows } = await this.#pool.query<{ role: ShareRole }>(
      "SELECT role FROM session_shares WHERE org_id = $1 AND session_id = $2 AND user_id = $3",
      [orgId, sessionId, userId],
    );
    return rows[0]?.role ?? null;
  }

  async list(orgId: string, sessionId: string): Promise<SessionShare[]> {
    const { rows } = await this.#pool.query<ShareRow>(
      `SELECT session_id, user_id, role, granted_by, created_at FROM session_shares
       WHERE org_id = $1 AND session_id = $2 ORDER BY created_at, user_id`,
      [orgId, sessionId],
    );
    return rows.map(toShare);
  }

  /**
   * Creates or replaces the share. Throws InputError `user_not_found` (404) when the user is not in the
   * org (the caller checked the session already).
   */
  async put(
    orgId: string,
    sessionId: string,
    userId: string,
    role: ShareRole,
    grantedBy: string,
  ): Promise<SessionShare> {
    try {
      const { rows } = await this.#pool.query<ShareRow>(
        `INSERT INTO session_shares (org_id, session_id, user_id, role, granted_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (session_id, user_id) DO UPDATE SET role = EXCLUDED.role, granted_by = EXCLUDED.granted_by
         RETURNING session_id, user_id, role, granted_by, created_at`,
        [orgId, sessionId, userId, role, grantedBy],
      );
      const [row] = rows;
      if (!row) throw new InputError("not_found", "Session not found", 404);
      return toShare(row);
    } catch (error) {
      if ((error as { code?: string }).code === "23503")
        throw new InputError("user_not_found", "No such user in this org.", 404, { cause: error });
      throw error;
    }
  }

  /** True when a share was removed. */
  async delete(orgId: string, sessionId: string, userId: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query(
      "DELETE FROM session_shares WHERE org_id = $1 AND session_id = $2 AND user_id = $3",
      [orgId, sessionId, userId],
    );
    return rowCount === 1;
  }
}

function toShare(row: ShareRow): SessionShare {
  return {
    sessionId: row.session_id,
    userId: row.user_id,
    role: row.role,
    grantedBy: row.granted_by,
    createdAt: row.created_at,
  };
}
