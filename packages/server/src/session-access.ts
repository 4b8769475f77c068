/**
 * Who may do what to a session. A session belongs to the user who created it; its turns run as that
 * user (their /memories/me and user-scoped secrets), so only the owner and people the owner (or an
 * admin) explicitly shared steering with may start turns. Pure; the share lookup is passed in.
 * See docs/decisions/2026-12-06-session-ownership.md.
 */
import { InputError, type SessionRecord } from "@outrig/core";
import { notFound } from "./http-error.js";

/** What a share grants, each including the ones before it: viewer ⊂ approver ⊂ steerer. */
export type ShareRole = "viewer" | "approver" | "steerer";

/**
 * `read`: the session, its events, files and sandbox state. `approve`: answer approval requests.
 * `steer`: post messages (start turns). `cancel`: stop the running turn. `share`: change who it is
 * shared with.
 */
export type SessionPermission = "read" | "approve" | "steer" | "cancel" | "share";

export interface SessionActor {
  readonly orgId: string;
  readonly userId: string;
  /** The user's org role (`admin`, `member`, `viewer`); absent: treated as `member`. */
  readonly role?: string;
}

/** Looks up the share role a user has on a session (null: not shared with them). */
export type ShareLookup = (orgId: string, sessionId: string, userId: string) => Promise<ShareRole | null>;

const SHARE_GRANTS: Record<ShareRole, readonly SessionPermission[]> = {
  viewer: ["read"],
  approver: ["read", "approve"],
  steerer: ["read", "approve", "steer", "cancel"],
};

/**
 * Resolves when `actor` may do `permission` on `session`. Throws 404 `not_found` when the actor may not
 * even read it (its existence is not revealed), and 403 when they can read it but not do this.
 */
export async function checkSessionAccess(
  actor: SessionActor,
  session: SessionRecord,
  permission: SessionPermission,
  lookupShare: ShareLookup | undefined,
): Promise<void> {
  if (session.orgId !== actor.orgId) throw notFound("Session");
  const isOwner = session.userId === actor.userId;
  const isAdmin = actor.role === "admin";
  const share = isOwner || !lookupShare ? null : await lookupShare(actor.orgId, session.id, actor.userId);
  if (!isOwner && !isAdmin && !share) throw notFound("Session");
  if (permission === "read") return;
  if (actor.role === "viewer") {
    throw new InputError("read_only", "Viewers have read-only access.", 403);
  }
  if (isOwner) return;
  if (share && SHARE_GRANTS[share].includes(permission)) return;
  // Stopping a turn or changing who sees a session uses nobody's credentials: admins may.
  if (isAdmin && (permission === "cancel" || permission === "share")) return;
  throw new InputError(
    "forbidden",
    isAdmin
      ? "This session belongs to another user and runs with their memories and credentials; to steer or approve it, share it with yourself first (PUT /v1/sessions/:id/shares/:userId)."
      : `This session is shared with you as ${share ?? "nobody"}, which does not allow this.`,
    403,
  );
}
