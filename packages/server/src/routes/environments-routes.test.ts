import { InputError } from "@outrig/core";
import { createDatabase, type Database, PostgresEnvironmentStore } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toErrorResponse } from "../http-error.js";
import { registerEnvironmentsRoutes } from "./environments-routes.js";

let testDatabase: TestDatabase;
let database: Database;
let orgId = "";
const inUse = new Set<string>();

function createTestApp() {
  const app = new Hono<{ Variables: { caller: { orgId: string; userId: string } } }>();
  app.onError((error, c) => {
    const { status, body } = toErrorResponse(error);
    return c.json(body, status as 400);
  });
  app.use("*", async (c, next) => {
    c.set("caller", { orgId, userId: "usr_test" });
    await next();
  });
  registerEnvironmentsRoutes(app, {
    environments: new PostgresEnvironmentStore(database.pool),
    egressPolicies: { get: async () => null },
    isInUse: async (_orgId, environmentId) => inUse.has(environmentId),
  });
  return app;
}

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  orgId = (await database.auth.ensureOrg("default")).id;
}, 60_000);

afterAll(async () => {
  await database?.close();
  await testDatabase?.drop();
});

describe("DELETE /v1/environments/:id", () => {
  it("refuses with 409 while a session uses the environment, and deletes it once none does", async () => {
    const app = createTestApp();
    const created = await app.request("/v1/environments", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "busy" }),
    });
    expect(created.status).toBe(200);
    const { id } = (await created.json()) as { id: string };
    inUse.add(id);
    const refused = await app.request(`/v1/environments/${id}`, { method: "DELETE" });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({
      type: "error",
      error: { type: "conflict_error", code: "environment_in_use" },
    });
    expect((await app.request(`/v1/environments/${id}`)).status).toBe(200);
    inUse.delete(id);
    const deleted = await app.request(`/v1/environments/${id}`, { method: "DELETE" });
    expect(await deleted.json()).toEqual({ id, type: "environment_deleted" });
    expect((await app.request(`/v1/environments/${id}`)).status).toBe(404);
  });

  it("keeps the check and the delete in one transaction: a failing check deletes nothing", async () => {
    const store = new PostgresEnvironmentStore(database.pool);
    const record = await store.create(orgId, {
      name: "checked",
      description: null,
      scope: "organization",
      config: { type: "self_hosted" },
      metadata: {},
    });
    await expect(
      store.delete(orgId, record.id, async () => {
        throw new InputError("probe", "check failed");
      }),
    ).rejects.toThrow(/check failed/);
    expect(await store.get(orgId, record.id)).not.toBeNull();
    expect(await store.delete("org_elsewhere", record.id, async () => false)).toBe("not_found");
  });
});
