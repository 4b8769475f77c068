/**
 * Who-am-I, users and API keys: `GET /v1/me`, `GET /v1/users`, `GET`/`POST /v1/keys` and
 * `DELETE /v1/keys/:id`. Anyone may list, create and revoke their own keys; keys of other users, new
 * users and role changes are for admins. A revoked key fails its very next request (keys are looked up
 * on every request, never cached).
 */
import { InputError } from "@outrig/core";
import { CreateApiKeyBody, type UserRole } from "@outrig/protocol";
import type { ApiKeyRecord } from "@outrig/storage";
import type { Hono } from "hono";
import { z } from "zod";
import { notFound } from "../http-error.js";
import { parseQuery, readJson } from "../http-input.js";

export interface KeysRouteUser {
  readonly id: string;
  readonly name: string;
  readonly role: UserRole;
  readonly createdAt: Date;
}

/** An API key as the routes list it (the store's record without the org, which the caller knows). */
export type KeysRouteKey = Omit<ApiKeyRecord, "orgId">;

/** The part of PostgresAuthStore the routes use. */
export interface KeysRouteStore {
  getUser(orgId: string, userId: string): Promise<KeysRouteUser | null>;
  listUsers(orgId: string): Promise<KeysRouteUser[]>;
  ensureUser(orgId: string, user: { name: string; role: UserRole }): Promise<KeysRouteUser>;
  setUserRole(orgId: string, userId: string, role: UserRole): Promise<KeysRouteUser | null>;
  createApiKey(orgId: string, userId: string, name: string): Promise<{ id: string; key: string }>;
  listApiKeys(orgId: string, options?: { userId?: string }): Promise<KeysRouteKey[]>;
  revokeApiKey(orgId: string, keyId: string, options?: { userId?: string }): Promise<boolean>;
}

export interface KeysRoutesDependencies {
  readonly auth: KeysRouteStore;
  /** Audits a key or role change as the person who made it. */
  readonly audit: (
    orgId: string,
    entry: { kind: "api_key"; userId: string; data: Record<string, unknown> },
  ) => Promise<void>;
}

interface KeysCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly keyId: string;
  readonly role: string;
}

type KeysEnv = { Variables: { caller: KeysCaller } };

const ID = /^[A-Za-z0-9_-]{1,128}$/;
const ListKeysQuery = z.strictObject({ userId: z.string().regex(ID).optional() });

/** Registers the routes on an app whose `/v1/*` middleware has set `caller` (see createApp). */
export function registerKeysRoutes<E extends KeysEnv>(app: Hono<E>, deps: KeysRoutesDependencies): void {
  const routes = app as unknown as Hono<KeysEnv>;

  routes.get("/v1/me", async (c) => {
    const caller = c.get("caller");
    const user = await deps.auth.getUser(caller.orgId, caller.userId);
    if (!user) throw new InputError("unauthorized", "Invalid API key", 401);
    return c.json({
      orgId: caller.orgId,
      userId: user.id,
      userName: user.name,
      role: user.role,
      keyId: caller.keyId,
    });
  });

  routes.get("/v1/users", async (c) => {
    const users = await deps.auth.listUsers(c.get("caller").orgId);
    return c.json({ users: users.map(toUserResource) });
  });

  routes.get("/v1/keys", async (c) => {
    const caller = c.get("caller");
    const { userId } = parseQuery(c, ListKeysQuery);
    if (userId !== undefined && userId !== caller.userId) requireAdmin(caller, "list other users' keys");
    const scope = caller.role === "admin" ? userId : caller.userId;
    const keys = await deps.auth.listApiKeys(caller.orgId, scope === undefined ? {} : { userId: scope });
    return c.json({ keys: keys.map(toKeyResource) });
  });

  routes.post("/v1/keys", async (c) => {
    const caller = c.get("caller");
    const body = await readJson(c, CreateApiKeyBody);
    const isForSelf = body.userName === undefined && (body.userId ?? caller.userId) === caller.userId;
    if (!isForSelf) requireAdmin(caller, "create keys for other users");
    if (body.role !== undefined) requireAdmin(caller, "give roles");
    let user: KeysRouteUser | null;
    if (body.userName !== undefined) {
      user = await deps.auth.ensureUser(caller.orgId, { name: body.userName, role: body.role ?? "member" });
    } else {
      user = await deps.auth.getUser(caller.orgId, body.userId ?? caller.userId);
      if (!user) throw new InputError("user_not_found", "No such user in this org.", 404);
    }
    if (body.role !== undefined && user.role !== body.role) {
      const previous = user.role;
      user = await deps.auth.setUserRole(caller.orgId, user.id, body.role);
      if (!user) throw new InputError("user_not_found", "No such user in this org.", 404);
      await deps.audit(caller.orgId, {
        kind: "api_key",
        userId: caller.userId,
        data: { action: "set_role", targetUserId: user.id, role: user.role, previousRole: previous },
      });
    }
    const created = await deps.auth.createApiKey(caller.orgId, user.id, body.name ?? "api");
    await deps.audit(caller.orgId, {
      kind: "api_key",
      userId: caller.userId,
      data: { action: "create", keyId: created.id, targetUserId: user.id, role: user.role },
    });
    const [listed] = (await deps.auth.listApiKeys(caller.orgId, { userId: user.id })).filter(
      (key) => key.id === created.id,
    );
    if (!listed) throw notFound("Key");
    return c.json({ ...toKeyResource(listed), key: created.key }, 201);
  });

  routes.delete("/v1/keys/:id", async (c) => {
    const caller = c.get("caller");
    const keyId = c.req.param("id");
    // Someone else's key is as unknown to a non-admin as a key that does not exist.
    const isRevoked =
      ID.test(keyId) &&
      (await deps.auth.revokeApiKey(
        caller.orgId,
        keyId,
        caller.role === "admin" ? {} : { userId: caller.userId },
      ));
    if (!isRevoked) throw notFound("Key");
    await deps.audit(caller.orgId, {
      kind: "api_key",
      userId: caller.userId,
      data: { action: "revoke", keyId },
    });
    return c.body(null, 204);
  });
}

function requireAdmin(caller: KeysCaller, what: string): void {
  if (caller.role !== "admin") throw new InputError("forbidden", `Only org admins can ${what}.`, 403);
}

function toUserResource(user: KeysRouteUser) {
  return { id: user.id, name: user.name, role: user.role, createdAt: user.createdAt.toISOString() };
}

function toKeyResource(key: KeysRouteKey) {
  return {
    id: key.id,
    userId: key.userId,
    userName: key.userName,
    role: key.role,
    name: key.name,
    prefix: key.prefix,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}
