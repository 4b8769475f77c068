import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database } from "../src/index.js";

describe("egress policy store", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let orgId: string;
  let otherOrgId: string;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    orgId = (await database.auth.createOrg("egress")).id;
    otherOrgId = (await database.auth.createOrg("egress-other")).id;
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it("has no policy until one is put, stores it normalized, per org, and deletes it", async () => {
    expect(await database.egressPolicies.get(orgId)).toBeNull();
    const stored = await database.egressPolicies.put(orgId, {
      allowedHosts: ["GitHub.com", "*.npmjs.org"],
      credentials: [{ host: "github.com", secretName: "GITHUB_TOKEN", scheme: "basic" }],
    });
    expect(stored.allowedHosts).toEqual(["github.com", "*.npmjs.org"]);
    expect(await database.egressPolicies.get(orgId)).toEqual(stored);
    expect(await database.egressPolicies.get(otherOrgId)).toBeNull();
    await database.egressPolicies.put(orgId, { allowedHosts: ["api.example.com"], credentials: [] });
    expect(await database.egressPolicies.get(orgId)).toEqual({
      allowedHosts: ["api.example.com"],
      credentials: [],
    });
    expect(await database.egressPolicies.delete(orgId)).toBe(true);
    expect(await database.egressPolicies.delete(orgId)).toBe(false);
    expect(await database.egressPolicies.get(orgId)).toBeNull();
  });

  it("refuses an invalid policy and fails closed on a stored row that no longer validates", async () => {
    await expect(
      database.egressPolicies.put(orgId, { allowedHosts: ["10.0.0.1"], credentials: [] }),
    ).rejects.toMatchObject({ code: "invalid_egress_policy", status: 400 });
    await database.pool.query("INSERT INTO egress_policies (org_id, policy) VALUES ($1, $2)", [
      otherOrgId,
      JSON.stringify({ allowedHosts: ["169.254.169.254"], credentials: [] }),
    ]);
    expect(await database.egressPolicies.get(otherOrgId)).toEqual({ allowedHosts: [], credentials: [] });
  });
});
