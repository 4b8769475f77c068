/**
 * Session shares: `GET /v1/sessions/:id/shares` (anyone who can read the session),
 * `PUT /v1/sessions/:id/shares/:userId` `{role}` and `DELETE /v1/sessions/:id/shares/:userId` (the
 * owner or an admin). Sharing as `steerer` lets that user start turns, which run as the owner.
 */
import { InputError, type SessionRecord } from "@outrig/core";
import { ShareSessionBody } from "@outrig/protocol";
import type { Hono } from "hono";
import { notFound } from "../http-error.js";
import { readJson } from "../http-input.js";
import type { SessionPermission, ShareRole } from "../session-access.js";

export interface SessionShareRecord {
  readonly sessionId: string;
  readonly userId: string;
  readonly role: ShareRole;
  readonly grantedBy: string;
  readonly createdAt: Date;
}

export interface SessionShareRoutesDependencies {
  readonly sessions: {
    authorize(caller: ShareCaller, sessionId: string, permission: SessionPermission): Promise<SessionRecord>;
  };
  readonly shares: {
    list(orgId: string, sessionId: string): Promise<SessionShareRecord[]>;
    put(
      orgId: string,
      sessionId: string,
      userId: string,
      role: ShareRole,
      grantedBy: string,
    ): Promise<SessionShareRecord>;
    delete(orgId: string, sessionId: string, userId: string): Promise<boolean>;
  };
  /** Audits a share change as the person who made it. */
  readonly audit: (
    orgId: string,
    entry: { kind: "session_share"; sessionId: string; userId: string; data: Record<string, unknown> },
  ) => Promise<void>;
}

interface ShareCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly role: string;
}

type ShareEnv = { Variables: { caller: ShareCaller } };

const USER_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** Registers the routes on an app whose `/v1/*` middleware has set `caller` (see createApp). */
export function registerSessionShareRoutes<E extends ShareEnv>(
  app: Hono<E>,
  deps: SessionShareRoutesDependencies,
): void {
  const routes = app as unknown as Hono<ShareEnv>;

  routes.get("/v1/sessions/:id/shares", async (c) => {
    const session = await deps.sessions.authorize(c.get("caller"), c.req.param("id"), "read");
    const shares = await deps.shares.list(session.orgId, session.id);
    return c.json({ ownerId: session.userId, shares: shares.map(toResource) });
  });

  routes.put("/v1/sessions/:id/shares/:userId", async (c) => {
    const caller = c.get("caller");
    const session = await deps.sessions.authorize(caller, c.req.param("id"), "share");
    const userId = c.req.param("userId");
    if (!USER_ID.test(userId)) throw new InputError("user_not_found", "No such user in this org.", 404);
    if (userId === session.userId)
      throw new InputError("invalid_request", "The owner has every right on the session already.", 400);
    const { role } = await readJson(c, ShareSessionBody);
    const share = await deps.shares.put(session.orgId, session.id, userId, role, caller.userId);
    await deps.audit(session.orgId, {
      kind: "session_share",
      sessionId: session.id,
      userId: caller.userId,
      data: { targetUserId: userId, role },
    });
    return c.json(toResource(share));
  });

  routes.delete("/v1/sessions/:id/shares/:userId", async (c) => {
    const caller = c.get("caller");
    const session = await deps.sessions.authorize(caller, c.req.param("id"), "share");
    const userId = c.req.param("userId");
    if (!USER_ID.test(userId) || !(await deps.shares.delete(session.orgId, session.id, userId)))
      throw notFound("Share");
    await deps.audit(session.orgId, {
      kind: "session_share",
      sessionId: session.id,
      userId: caller.userId,
      data: { targetUserId: userId, role: null },
    });
    return c.body(null, 204);
  });
}

function toResource(share: SessionShareRecord) {
  return {
    sessionId: share.sessionId,
    userId: share.userId,
    role: share.role,
    grantedBy: share.grantedBy,
    createdAt: share.createdAt.toISOString(),
  };
}
