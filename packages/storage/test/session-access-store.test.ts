import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database } from "../src/index.js";

describe("roles, keys and session shares on Postgres", () => {
  let testDatabase: TestDatabase;
  let database: Database;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it("lists a member's own and shared sessions, every session for no filter, and never another org's", async () => {
    const org = await database.auth.createOrg("shares");
    const other = await database.auth.createOrg("shares-other");
    const ada = await database.auth.createUser(org.id, { name: "ada", role: "member" });
    const bob = await database.auth.createUser(org.id, { name: "bob", role: "member" });
    const eve = await database.auth.createUser(other.id, { name: "eve", role: "admin" });
    const create = (userId: string, orgId = org.id) =>
      database.sessions.createSession({ orgId, userId, model: "fake:x", system: null });
    const adaSession = await create(ada.id);
    const bobSession = await create(bob.id);
    await create(eve.id, other.id);

    const ids = async (visibleTo?: string) =>
      (
        await database.sessions.listSessions(org.id, {
          limit: 10,
          ...(visibleTo === undefined ? {} : { visibleTo }),
        })
      ).map((session) => session.id);
    expect(await ids(bob.id)).toEqual([bobSession.id]);
    expect(await ids()).toEqual([bobSession.id, adaSession.id]);

    await database.shares.put(org.id, adaSession.id, bob.id, "viewer", ada.id);
    expect(await ids(bob.id)).toEqual([bobSession.id, adaSession.id]);
    await expect(database.shares.roleOf(org.id, adaSession.id, bob.id)).resolves.toBe("viewer");
    const replaced = await database.shares.put(org.id, adaSession.id, bob.id, "steerer", ada.id);
    expect(replaced).toMatchObject({ role: "steerer", grantedBy: ada.id });
    expect(await database.shares.list(org.id, adaSession.id)).toHaveLength(1);
    // Another org's user cannot be named in a share.
    await expect(database.shares.put(org.id, adaSession.id, eve.id, "viewer", ada.id)).rejects.toMatchObject({
      code: "user_not_found",
    });
    await expect(database.shares.roleOf(other.id, adaSession.id, bob.id)).resolves.toBeNull();
    await expect(database.shares.delete(org.id, adaSession.id, bob.id)).resolves.toBe(true);
    await expect(database.shares.delete(org.id, adaSession.id, bob.id)).resolves.toBe(false);
    expect(await ids(bob.id)).toEqual([bobSession.id]);
  });

  it("has viewer users, lists and revokes keys per user, and keeps the last admin", async () => {
    const org = await database.auth.createOrg("keys");
    const admin = await database.auth.createUser(org.id, { name: "root", role: "admin" });
    const viewer = await database.auth.createUser(org.id, { name: "vic", role: "viewer" });
    const adminKey = await database.auth.createApiKey(org.id, admin.id, "laptop");
    const viewerKey = await database.auth.createApiKey(org.id, viewer.id, "ci");
    await expect(database.auth.authenticate(viewerKey.key)).resolves.toMatchObject({ role: "viewer" });

    expect((await database.auth.listApiKeys(org.id)).map((key) => key.id).sort()).toEqual(
      [adminKey.id, viewerKey.id].sort(),
    );
    const [listed] = await database.auth.listApiKeys(org.id, { userId: viewer.id });
    expect(listed).toMatchObject({ id: viewerKey.id, userName: "vic", role: "viewer", revokedAt: null });
    expect(JSON.stringify(listed)).not.toContain(viewerKey.key.slice(13));

    // A user can revoke only their own keys; the revoke holds from the very next request.
    await expect(database.auth.revokeApiKey(org.id, adminKey.id, { userId: viewer.id })).resolves.toBe(false);
    await expect(database.auth.revokeApiKey(org.id, viewerKey.id, { userId: viewer.id })).resolves.toBe(true);
    await expect(database.auth.authenticate(viewerKey.key)).resolves.toBeNull();

    await expect(database.auth.setUserRole(org.id, admin.id, "member")).rejects.toMatchObject({
      code: "last_admin",
    });
    await expect(database.auth.setUserRole(org.id, viewer.id, "admin")).resolves.toMatchObject({
      role: "admin",
    });
    await expect(database.auth.setUserRole(org.id, admin.id, "member")).resolves.toMatchObject({
      role: "member",
    });
    await expect(
      database.pool.query("INSERT INTO users (id, org_id, name, role) VALUES ('usr_x', $1, 'x', 'owner')", [
        org.id,
      ]),
    ).rejects.toThrow(/users_role_check/);
  });
});
