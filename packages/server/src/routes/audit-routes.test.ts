import { randomBytes } from "node:crypto";
import {
  createDatabase,
  createSecretKeyring,
  type Database,
  masterKeyFromBase64,
  PostgresVaultStore,
} from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../app.js";
import { registerAuditRoutes } from "./audit-routes.js";
import { registerVaultsRoutes } from "./vaults-routes.js";

const VALUE = "tok_auditRouteSecret_never_in_the_log_977";

describe("audit routes", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let app: ReturnType<typeof createApp>;
  const keys: Record<"admin" | "member" | "outsider", string> = { admin: "", member: "", outsider: "" };
  let orgId: string;
  let adminId: string;
  let memberId: string;
  const vaults = { org: "", member: "" };
  const logged: string[] = [];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const org = await database.auth.createOrg("audit-routes");
    const other = await database.auth.createOrg("audit-routes-other");
    orgId = org.id;
    const admin = await database.auth.createUser(org.id, { name: "admin", role: "admin" });
    const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
    const outsider = await database.auth.createUser(other.id, { name: "admin", role: "admin" });
    adminId = admin.id;
    memberId = member.id;
    keys.admin = (await database.auth.createApiKey(org.id, admin.id, "a")).key;
    keys.member = (await database.auth.createApiKey(org.id, member.id, "m")).key;
    keys.outsider = (await database.auth.createApiKey(other.id, outsider.id, "o")).key;
    const keyring = createSecretKeyring(masterKeyFromBase64(randomBytes(32).toString("base64"), "test"));
    app = createApp({
      auth: database.auth,
      policies: database.policies,
      sessions: {} as never,
      store: {} as never,
      bus: {} as never,
      log: (message) => logged.push(message),
      extraRoutes: [
        (routes) =>
          registerVaultsRoutes(routes, {
            vaults: new PostgresVaultStore(database.pool, keyring, { audit: database.audit }),
          }),
        (routes) => registerAuditRoutes(routes, { audit: database.audit }),
      ],
    });
    // The vaults are made without an audit log, so the chain starts with the credential writes.
    const unaudited = new PostgresVaultStore(database.pool, keyring);
    vaults.org = (
      await unaudited.createVault(
        { orgId: org.id, userId: admin.id, role: "admin" },
        { displayName: "Deploy", metadata: {}, scope: "org" },
      )
    ).id;
    vaults.member = (
      await unaudited.createVault(
        { orgId: org.id, userId: member.id, role: "member" },
        { displayName: "Mine", metadata: {}, scope: "user" },
      )
    ).id;
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

  interface Listed {
    entries: { seq: number; kind: string; userId: string | null; sessionId: string | null; data: unknown }[];
    nextAfter: number | null;
  }

  const variable = (name: string) => ({
    auth: {
      type: "environment_variable",
      secret_name: name,
      secret_value: VALUE,
      networking: { type: "unrestricted" },
    },
  });

  it("lists the credential writes and policy changes an admin made, without the credential's value", async () => {
    const deployKey = await call(
      keys.admin,
      "POST",
      `/v1/vaults/${vaults.org}/credentials`,
      variable("DEPLOY_KEY"),
    );
    expect(deployKey.status).toBe(200);
    const deployKeyId = ((await deployKey.json()) as { id: string }).id;
    const mine = await call(
      keys.member,
      "POST",
      `/v1/vaults/${vaults.member}/credentials`,
      variable("MY_TOKEN"),
    );
    expect(mine.status).toBe(200);
    const mineId = ((await mine.json()) as { id: string }).id;
    const policy = {
      rules: [{ tool: "Bash", match: "*rm -rf*", action: "deny" }],
      approvalTimeoutMs: 60_000,
    };
    expect((await call(keys.admin, "PUT", "/v1/policy", policy)).status).toBe(200);
    expect(
      (await call(keys.admin, "DELETE", `/v1/vaults/${vaults.org}/credentials/${deployKeyId}`)).status,
    ).toBe(200);

    const response = await call(keys.admin, "GET", "/v1/audit");
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toContain(VALUE);
    const listed = JSON.parse(text) as Listed;
    expect(
      listed.entries.map((entry) => [entry.seq, entry.kind, entry.userId === adminId, entry.data]),
    ).toEqual([
      [1, "secret_write", true, { ...deployKeyEntry(deployKeyId), action: "create" }],
      [
        2,
        "secret_write",
        false,
        {
          object: "vault_credential",
          action: "create",
          vault_id: vaults.member,
          credential_id: mineId,
          auth_type: "environment_variable",
          secret_name: "MY_TOKEN",
          scope: "user",
          ownerUserId: memberId,
        },
      ],
      [3, "policy_change", true, { policy: "tool", value: policy }],
      [4, "secret_write", true, { ...deployKeyEntry(deployKeyId), action: "delete" }],
    ]);
    expect(listed.nextAfter).toBeNull();
  });

  function deployKeyEntry(credentialId: string) {
    return {
      object: "vault_credential",
      vault_id: vaults.org,
      credential_id: credentialId,
      auth_type: "environment_variable",
      secret_name: "DEPLOY_KEY",
      scope: "org",
    };
  }

  it("filters by kind and session and pages with after and limit", async () => {
    await database.audit.append(orgId, { kind: "tool_call", sessionId: "ses_alpha", data: { name: "Bash" } });
    await database.audit.append(orgId, { kind: "tool_call", sessionId: "ses_beta", data: { name: "Read" } });
    const kinds = (await (await call(keys.admin, "GET", "/v1/audit?kind=policy_change")).json()) as Listed;
    expect(kinds.entries.map((entry) => entry.kind)).toEqual(["policy_change"]);
    const session = (await (await call(keys.admin, "GET", "/v1/audit?sessionId=ses_beta")).json()) as Listed;
    expect(session.entries.map((entry) => [entry.seq, entry.sessionId])).toEqual([[6, "ses_beta"]]);
    const first = (await (await call(keys.admin, "GET", "/v1/audit?limit=2")).json()) as Listed;
    expect(first.entries.map((entry) => entry.seq)).toEqual([1, 2]);
    expect(first.nextAfter).toBe(2);
    const second = (await (
      await call(keys.admin, "GET", `/v1/audit?limit=2&after=${first.nextAfter}`)
    ).json()) as Listed;
    expect(second.entries.map((entry) => entry.seq)).toEqual([3, 4]);
  });

  it("reports a valid chain, and the first tampered seq after a superuser edit", async () => {
    const valid = await call(keys.admin, "GET", "/v1/audit/verify");
    expect(valid.status).toBe(200);
    expect(await valid.json()).toMatchObject({
      isValid: true,
      count: 6,
      headHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });

    const superuser = new pg.Client({ connectionString: testDatabase.url });
    await superuser.connect();
    try {
      await superuser.query("SET session_replication_role = replica");
      await superuser.query(
        `UPDATE audit_entries SET data = jsonb_set(data, '{name}', '"Innocent"') WHERE org_id = $1 AND seq = 5`,
        [orgId],
      );
    } finally {
      await superuser.end();
    }
    expect(await (await call(keys.admin, "GET", "/v1/audit/verify")).json()).toMatchObject({
      isValid: false,
      seq: 5,
      problem: "altered",
    });
  });

  it("shows another org's admin nothing of this org", async () => {
    const listed = (await (await call(keys.outsider, "GET", "/v1/audit")).json()) as Listed;
    expect(listed).toEqual({ entries: [], nextAfter: null });
    const bySession = (await (
      await call(keys.outsider, "GET", "/v1/audit?sessionId=ses_alpha")
    ).json()) as Listed;
    expect(bySession.entries).toEqual([]);
    expect(await (await call(keys.outsider, "GET", "/v1/audit/verify")).json()).toEqual({
      isValid: true,
      count: 0,
      headHash: "0".repeat(64),
    });
  });

  it("refuses members with 403 and callers without a valid key with 401", async () => {
    for (const route of ["/v1/audit", "/v1/audit/verify"]) {
      const member = await call(keys.member, "GET", route);
      expect(member.status).toBe(403);
      expect(await member.json()).toMatchObject({ error: { code: "forbidden" } });
      expect((await app.request(route)).status).toBe(401);
      expect((await call("outrig_not_a_real_key", "GET", route)).status).toBe(401);
    }
  });

  it.each([
    "after=-1",
    "after=abc",
    "after=1e3",
    "after=0x10",
    "after=%201",
    "after=",
    "after=9999999999999999",
    "limit=0",
    "limit=1001",
    "limit=2.5",
    "kind=bogus",
    "kind=tool_call%00",
    "sessionId=ses%00x",
    "sessionId=",
    `sessionId=${"a".repeat(129)}`,
    "sessionId=../etc",
    "unknown=1",
    "%00=1",
  ])("answers 400 for the query %s", async (query) => {
    const response = await call(keys.admin, "GET", `/v1/audit?${query}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "invalid_request" } });
  });

  it("answers 400 for any query on verify, and never logged a 500", async () => {
    const response = await call(keys.admin, "GET", "/v1/audit/verify?full=1");
    expect(response.status).toBe(400);
    expect(logged.filter((line) => line.includes("failed"))).toEqual([]);
  });
});
