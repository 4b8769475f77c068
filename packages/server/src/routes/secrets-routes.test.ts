import { randomBytes } from "node:crypto";
import {
  createDatabase,
  createSecretKeyring,
  type Database,
  masterKeyFromBase64,
  PostgresSecretResolver,
  PostgresSecretStore,
} from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthenticatedCaller, createApp } from "../app.js";
import { registerSecretsRoutes } from "./secrets-routes.js";

const VALUE = "tok_routeSecretValue_never_echoed_31337";

describe("secrets routes", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let app: ReturnType<typeof createApp>;
  let resolver: PostgresSecretResolver;
  const callers: Record<string, AuthenticatedCaller> = {};
  const logged: string[] = [];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const org = await database.auth.createOrg("routes");
    const other = await database.auth.createOrg("routes-other");
    const admin = await database.auth.createUser(org.id, { name: "admin", role: "admin" });
    const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
    const outsider = await database.auth.createUser(other.id, { name: "admin", role: "admin" });
    callers.admin = { orgId: org.id, userId: admin.id, keyId: "key_1", role: "admin" };
    callers.member = { orgId: org.id, userId: member.id, keyId: "key_2", role: "member" };
    callers.outsider = { orgId: other.id, userId: outsider.id, keyId: "key_3", role: "admin" };
    const keyring = createSecretKeyring(masterKeyFromBase64(randomBytes(32).toString("base64"), "test"));
    resolver = new PostgresSecretResolver(database.pool, keyring);
    app = createApp({
      auth: { authenticate: async (key) => callers[key] ?? null },
      sessions: {} as never,
      store: {} as never,
      bus: {} as never,
      log: (message) => logged.push(message),
    });
    registerSecretsRoutes(app, { secrets: new PostgresSecretStore(database.pool, keyring) });
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

  it("sets an org secret as admin, lists names only, never echoing the value", async () => {
    const created = await call("admin", "PUT", "/v1/secrets/GITHUB_TOKEN", { value: VALUE, scope: "org" });
    expect(created.status).toBe(201);
    const createdText = await created.text();
    expect(createdText).not.toContain(VALUE);
    expect(JSON.parse(createdText)).toMatchObject({ name: "GITHUB_TOKEN", scope: "org", version: 1 });
    const updated = await call("admin", "PUT", "/v1/secrets/GITHUB_TOKEN", {
      value: `${VALUE}2`,
      scope: "org",
    });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({ version: 2 });

    const listed = await call("member", "GET", "/v1/secrets");
    const text = await listed.text();
    expect(listed.status).toBe(200);
    expect(text).not.toContain(VALUE);
    expect(JSON.parse(text).secrets.map((secret: { name: string }) => secret.name)).toEqual(["GITHUB_TOKEN"]);
    await expect(resolver.resolveSecret({ orgId: callers.admin?.orgId ?? "" }, "GITHUB_TOKEN")).resolves.toBe(
      `${VALUE}2`,
    );
  });

  it("lets members manage only their own secrets", async () => {
    const forbidden = await call("member", "PUT", "/v1/secrets/ORG_THING", { value: VALUE, scope: "org" });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: "forbidden" } });
    const own = await call("member", "PUT", "/v1/secrets/MY_TOKEN", { value: VALUE, scope: "user" });
    expect(own.status).toBe(201);
    const mine = await (await call("member", "GET", "/v1/secrets?scope=user")).json();
    expect(mine.secrets.map((secret: { name: string }) => secret.name)).toEqual(["MY_TOKEN"]);
    const adminsUserScope = await (await call("admin", "GET", "/v1/secrets?scope=user")).json();
    expect(adminsUserScope.secrets).toEqual([]);
    expect((await call("member", "DELETE", "/v1/secrets/GITHUB_TOKEN?scope=org")).status).toBe(403);
    expect((await call("member", "DELETE", "/v1/secrets/MY_TOKEN?scope=user")).status).toBe(204);
    expect((await call("member", "DELETE", "/v1/secrets/MY_TOKEN?scope=user")).status).toBe(404);
  });

  it("keeps orgs apart", async () => {
    const listed = await (await call("outsider", "GET", "/v1/secrets")).json();
    expect(listed.secrets).toEqual([]);
    expect((await call("outsider", "DELETE", "/v1/secrets/GITHUB_TOKEN?scope=org")).status).toBe(404);
  });

  it("rejects bad input with 4xx bodies that never contain the value", async () => {
    const cases: [string, string, unknown, number, string][] = [
      ["PUT", "/v1/secrets/GITHUB_TOKEN", { value: VALUE }, 400, "invalid_request"],
      [
        "PUT",
        "/v1/secrets/GITHUB_TOKEN",
        { value: VALUE, scope: "org", extra: VALUE },
        400,
        "invalid_request",
      ],
      ["PUT", "/v1/secrets/GITHUB_TOKEN", { value: VALUE, scope: "team" }, 400, "invalid_request"],
      ["PUT", "/v1/secrets/GITHUB_TOKEN", { value: "", scope: "org" }, 400, "invalid_request"],
      [
        "PUT",
        "/v1/secrets/GITHUB_TOKEN",
        { value: VALUE.repeat(3000), scope: "org" },
        400,
        "invalid_request",
      ],
      ["PUT", "/v1/secrets/9LIVES", { value: VALUE, scope: "org" }, 400, "invalid_secret_name"],
      ["PUT", "/v1/secrets/has-dash", { value: VALUE, scope: "org" }, 400, "invalid_secret_name"],
      ["DELETE", "/v1/secrets/GITHUB_TOKEN", undefined, 400, "invalid_request"],
      ["GET", "/v1/secrets?scope=everyone", undefined, 400, "invalid_request"],
    ];
    for (const [method, url, body, status, code] of cases) {
      const response = await call("admin", method, url, body);
      const text = await response.text();
      expect([method, url, response.status]).toEqual([method, url, status]);
      expect(JSON.parse(text)).toMatchObject({ error: { code } });
      expect(text).not.toContain(VALUE);
    }
    const raw = await app.request("/v1/secrets/X_TOKEN", {
      method: "PUT",
      headers: { authorization: "Bearer admin", "content-type": "application/json" },
      body: `{"value": "${VALUE}", "scope": `,
    });
    expect(raw.status).toBe(400);
    expect(await raw.text()).not.toContain(VALUE);
    expect((await call("nobody", "GET", "/v1/secrets")).status).toBe(401);
    expect(logged.join("\n")).not.toContain(VALUE);
  });
});
