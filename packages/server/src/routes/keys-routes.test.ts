import { createDatabase, type Database } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../app.js";
import { registerKeysRoutes } from "./keys-routes.js";

describe("keys routes", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let app: ReturnType<typeof createApp>;
  const keys = { admin: "", member: "", viewer: "", outsider: "" };
  const users = { admin: "", member: "", viewer: "" };

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const org = await database.auth.createOrg("keys-routes");
    const other = await database.auth.createOrg("keys-routes-other");
    for (const role of ["admin", "member", "viewer"] as const) {
      const user = await database.auth.createUser(org.id, { name: role, role });
      users[role] = user.id;
      keys[role] = (await database.auth.createApiKey(org.id, user.id, `${role}-laptop`)).key;
    }
    const outsider = await database.auth.createUser(other.id, { name: "admin", role: "admin" });
    keys.outsider = (await database.auth.createApiKey(other.id, outsider.id, "x")).key;
    // The real authenticator: a revoked key must fail its very next request.
    app = createApp({
      auth: database.auth,
      sessions: {} as never,
      store: {} as never,
      bus: {} as never,
      log: () => undefined,
    });
    registerKeysRoutes(app, {
      auth: database.auth,
      audit: async (orgId, entry) => {
        await database.audit.append(orgId, entry);
      },
    });
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  const call = (key: string, method: string, url: string, body?: unknown) =>
    app.request(url, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const json = async <T>(response: Response | Promise<Response>) => (await (await response).json()) as T;

  it("tells a key who it belongs to", async () => {
    const me = await json<{ userName: string; role: string; userId: string }>(
      call(keys.viewer, "GET", "/v1/me"),
    );
    expect(me).toMatchObject({ userName: "viewer", role: "viewer", userId: users.viewer });
  });

  it("lists only your own keys unless you are an admin, and never the secret part", async () => {
    const own = await json<{ keys: { userId: string; prefix: string }[] }>(
      call(keys.member, "GET", "/v1/keys"),
    );
    expect(own.keys.map((key) => key.userId)).toEqual([users.member]);
    expect(JSON.stringify(own)).not.toContain(keys.member.slice(13));
    expect((await call(keys.member, "GET", `/v1/keys?userId=${users.admin}`)).status).toBe(403);
    const all = await json<{ keys: { userId: string }[] }>(call(keys.admin, "GET", "/v1/keys"));
    expect(new Set(all.keys.map((key) => key.userId))).toEqual(new Set(Object.values(users)));
    const outsider = await json<{ keys: unknown[] }>(call(keys.outsider, "GET", "/v1/keys"));
    expect(JSON.stringify(outsider)).not.toContain(users.member);
  });

  it("creates keys with roles for new and existing users (admins), and a member's key only for themselves", async () => {
    const forSelf = await call(keys.member, "POST", "/v1/keys", { name: "second" });
    expect(forSelf.status).toBe(201);
    expect(await forSelf.json()).toMatchObject({ userId: users.member, role: "member", name: "second" });
    for (const body of [{ userName: "mallory" }, { userId: users.admin }, { role: "admin" }]) {
      const refused = await call(keys.member, "POST", "/v1/keys", body);
      expect(refused.status, JSON.stringify(body)).toBe(403);
    }
    expect((await call(keys.viewer, "POST", "/v1/keys", { name: "x" })).status).toBe(403);

    const created = await json<{ key: string; userName: string; role: string; userId: string }>(
      call(keys.admin, "POST", "/v1/keys", { userName: "newbie", role: "viewer", name: "ci" }),
    );
    expect(created).toMatchObject({ userName: "newbie", role: "viewer" });
    const me = await json<{ role: string }>(call(created.key, "GET", "/v1/me"));
    expect(me.role).toBe("viewer");
    // Promoting an existing user: their other keys carry the new role at once.
    await call(keys.admin, "POST", "/v1/keys", { userId: created.userId, role: "member" });
    expect((await json<{ role: string }>(call(created.key, "GET", "/v1/me"))).role).toBe("member");
    expect((await call(keys.admin, "POST", "/v1/keys", { userId: "usr_nobody" })).status).toBe(404);
    const audit = await database.audit.list((await database.auth.ensureOrg("keys-routes")).id);
    expect(
      audit
        .filter((entry) => entry.kind === "api_key")
        .map((entry) => (entry.data as { action: string }).action),
    ).toEqual(["create", "create", "set_role", "create"]);
  });

  it("revokes your own key (viewers too) and others' only as an admin, effective on the next request", async () => {
    const spare = await json<{ id: string; key: string }>(call(keys.viewer, "GET", "/v1/me")).then(async () =>
      database.auth.createApiKey((await database.auth.ensureOrg("keys-routes")).id, users.viewer, "spare"),
    );
    // A member cannot revoke someone else's key: it is as unknown to them as a missing one.
    expect((await call(keys.member, "DELETE", `/v1/keys/${spare.id}`)).status).toBe(404);
    expect((await call(keys.outsider, "DELETE", `/v1/keys/${spare.id}`)).status).toBe(404);
    expect((await call(spare.key, "GET", "/v1/me")).status).toBe(200);
    expect((await call(keys.viewer, "DELETE", `/v1/keys/${spare.id}`)).status).toBe(204);
    expect((await call(spare.key, "GET", "/v1/me")).status).toBe(401);
    expect((await call(keys.viewer, "DELETE", `/v1/keys/${spare.id}`)).status).toBe(404);

    const memberKeys = await json<{ keys: { id: string; name: string }[] }>(
      call(keys.member, "GET", "/v1/keys"),
    );
    const laptop = memberKeys.keys.find((key) => key.name === "member-laptop");
    expect((await call(keys.admin, "DELETE", `/v1/keys/${laptop?.id}`)).status).toBe(204);
    expect((await call(keys.member, "GET", "/v1/me")).status).toBe(401);
  });
});
