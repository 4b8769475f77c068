import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database, hashApiKey } from "../src/index.js";

describe("PostgresAuthStore", () => {
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

  it("stores only the sha256 of a key and returns the plaintext once", async () => {
    const org = await database.auth.createOrg("acme-hash");
    const user = await database.auth.createUser(org.id, { name: "ada", role: "member" });
    const created = await database.auth.createApiKey(org.id, user.id, "laptop");

    expect(created.id).toMatch(/^key_[0-9A-Za-z]{20}$/);
    expect(created.key).toMatch(/^outrig_[0-9A-Za-z]{40}$/);
    const { rows } = await database.pool.query(
      "SELECT *, row_to_json(api_keys)::text AS everything FROM api_keys WHERE id = $1",
      [created.id],
    );
    expect(rows[0].hash).toBe(hashApiKey(created.key));
    expect(rows[0].hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].prefix).toBe(created.key.slice(0, 13));
    expect(rows[0].everything).not.toContain(created.key.slice(13));
  });

  it("ensures an org and a user by name, creating each once even under concurrency", async () => {
    const orgs = await Promise.all([1, 2, 3].map(() => database.auth.ensureOrg("acme-ensure")));
    expect(new Set(orgs.map((org) => org.id)).size).toBe(1);
    const orgId = orgs[0]?.id ?? "";
    const users = await Promise.all(
      [1, 2, 3].map(() => database.auth.ensureUser(orgId, { name: "eve", role: "admin" })),
    );
    expect(new Set(users.map((user) => user.id)).size).toBe(1);
    expect(users[0]).toMatchObject({ orgId, name: "eve", role: "admin" });
    const other = await database.auth.ensureOrg("acme-ensure-other");
    const sameName = await database.auth.ensureUser(other.id, { name: "eve", role: "member" });
    expect(sameName.id).not.toBe(users[0]?.id);
  });

  it("authenticates a key to its org, user and role, and rejects unknown or malformed keys", async () => {
    const org = await database.auth.createOrg("acme-authenticate");
    const admin = await database.auth.createUser(org.id, { name: "root", role: "admin" });
    const { id, key } = await database.auth.createApiKey(org.id, admin.id, "ci");

    await expect(database.auth.authenticate(key)).resolves.toEqual({
      orgId: org.id,
      userId: admin.id,
      keyId: id,
      role: "admin",
    });
    const lastUsed = await database.pool.query("SELECT last_used_at FROM api_keys WHERE id = $1", [id]);
    expect(lastUsed.rows[0].last_used_at).toBeInstanceOf(Date);
    // One character changed (never to itself: a key ending in "x" made this check pass by chance).
    const tampered = `${key.slice(0, -1)}${key.endsWith("x") ? "y" : "x"}`;
    expect(tampered).not.toBe(key);
    await expect(database.auth.authenticate(tampered)).resolves.toBeNull();
    await expect(database.auth.authenticate(key.slice(7))).resolves.toBeNull();
    await expect(database.auth.authenticate("")).resolves.toBeNull();
  });

  it("revokes a key only within its org", async () => {
    const org = await database.auth.createOrg("acme-revoke");
    const other = await database.auth.createOrg("other-revoke");
    const user = await database.auth.createUser(org.id, { name: "bo", role: "member" });
    const { id, key } = await database.auth.createApiKey(org.id, user.id, "old");

    await expect(database.auth.revokeApiKey(other.id, id)).resolves.toBe(false);
    await expect(database.auth.authenticate(key)).resolves.not.toBeNull();
    await expect(database.auth.revokeApiKey(org.id, id)).resolves.toBe(true);
    await expect(database.auth.revokeApiKey(org.id, id)).resolves.toBe(false);
    await expect(database.auth.authenticate(key)).resolves.toBeNull();
  });

  it("rejects a duplicate org name, a user in a missing org, and a key for another org's user", async () => {
    const org = await database.auth.createOrg("acme-errors");
    const other = await database.auth.createOrg("other-errors");
    const user = await database.auth.createUser(org.id, { name: "cy", role: "member" });

    await expect(database.auth.createOrg("acme-errors")).rejects.toMatchObject({
      code: "org_exists",
      status: 409,
    });
    await expect(
      database.auth.createUser("org_missing", { name: "x", role: "member" }),
    ).rejects.toMatchObject({
      code: "org_not_found",
    });
    await expect(database.auth.createApiKey(other.id, user.id, "cross")).rejects.toMatchObject({
      code: "user_not_found",
    });
  });
});

describe("PostgresAuthStore.bootstrap", () => {
  it("creates the default org, an admin and one key, then returns no key on later calls", async () => {
    const testDatabase = await createTestDatabase();
    const database = await createDatabase({ url: testDatabase.url });
    try {
      const first = await database.auth.bootstrap();
      expect(first.apiKey).toMatch(/^outrig_/);
      const principal = await database.auth.authenticate(first.apiKey ?? "");
      expect(principal).toMatchObject({ orgId: first.orgId, userId: first.userId, role: "admin" });

      const second = await database.auth.bootstrap();
      expect(second).toEqual({ orgId: first.orgId, userId: first.userId, apiKey: null });

      // A revoked bootstrap key is not silently replaced by a new one at the next start.
      await database.auth.revokeApiKey(first.orgId, principal?.keyId ?? "");
      await expect(database.auth.bootstrap()).resolves.toMatchObject({ apiKey: null });
    } finally {
      await database.close();
      await testDatabase.drop();
    }
  });

  it("creates exactly one org, admin and key when several processes bootstrap at once", async () => {
    const testDatabase = await createTestDatabase();
    const databases = await Promise.all([1, 2, 3].map(() => createDatabase({ url: testDatabase.url })));
    try {
      const results = await Promise.all(
        databases.flatMap((database) => [1, 2].map(() => database.auth.bootstrap())),
      );

      expect(results.filter((result) => result.apiKey !== null)).toHaveLength(1);
      expect(new Set(results.map((result) => result.orgId)).size).toBe(1);
      expect(new Set(results.map((result) => result.userId)).size).toBe(1);
      const counts = await databases[0]?.pool.query(
        `SELECT (SELECT count(*) FROM orgs)::int AS orgs, (SELECT count(*) FROM users)::int AS users,
                (SELECT count(*) FROM api_keys)::int AS keys`,
      );
      expect(counts?.rows[0]).toEqual({ orgs: 1, users: 1, keys: 1 });
    } finally {
      await Promise.all(databases.map((database) => database.close()));
      await testDatabase.drop();
    }
  });
});
