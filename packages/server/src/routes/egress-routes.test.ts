import { randomBytes } from "node:crypto";
import {
  createDatabase,
  createSecretKeyring,
  type Database,
  masterKeyFromBase64,
  PostgresAuditLog,
  PostgresSecretStore,
} from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthenticatedCaller, createApp } from "../app.js";
import { registerEgressRoutes } from "./egress-routes.js";

const POLICY = {
  allowedHosts: ["git.example.com", "*.npmjs.org"],
  credentials: [{ host: "git.example.com", secretName: "GIT_TOKEN", scheme: "basic" }],
};

describe("egress policy routes", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let audit: PostgresAuditLog;
  let app: ReturnType<typeof createApp>;
  const callers: Record<string, AuthenticatedCaller> = {};
  const changed: string[] = [];
  const logged: string[] = [];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const org = await database.auth.createOrg("egress-routes");
    const other = await database.auth.createOrg("egress-routes-other");
    const admin = await database.auth.createUser(org.id, { name: "admin", role: "admin" });
    const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
    const outsider = await database.auth.createUser(other.id, { name: "admin", role: "admin" });
    callers.admin = { orgId: org.id, userId: admin.id, keyId: "key_1", role: "admin" };
    callers.member = { orgId: org.id, userId: member.id, keyId: "key_2", role: "member" };
    callers.outsider = { orgId: other.id, userId: outsider.id, keyId: "key_3", role: "admin" };
    audit = new PostgresAuditLog(database.pool);
    const keyring = createSecretKeyring(masterKeyFromBase64(randomBytes(32).toString("base64"), "test"));
    const secrets = new PostgresSecretStore(database.pool, keyring);
    await secrets.setSecret({ kind: "org", orgId: org.id }, "GIT_TOKEN", "tok_egress_routes_git");
    await secrets.setSecret({ kind: "user", orgId: org.id, userId: member.id }, "MY_TOKEN", "tok_member");
    await secrets.setSecret({ kind: "org", orgId: other.id }, "OTHER_TOKEN", "tok_other_org");
    app = createApp({
      auth: { authenticate: async (key) => callers[key] ?? null },
      sessions: {} as never,
      store: {} as never,
      bus: {} as never,
      log: (message) => logged.push(message),
    });
    registerEgressRoutes(app, {
      policies: database.egressPolicies,
      audit,
      secrets,
      onChange: (orgId) => changed.push(orgId),
    });
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  const call = (key: string | null, method: string, body?: string, contentType = "application/json") =>
    app.request("/v1/egress-policy", {
      method,
      headers: {
        ...(key === null ? {} : { authorization: `Bearer ${key}` }),
        "content-type": contentType,
      },
      ...(body === undefined ? {} : { body }),
    });

  it("needs an API key", async () => {
    expect((await call(null, "GET")).status).toBe(401);
    expect((await call("not-a-key", "PUT", JSON.stringify(POLICY))).status).toBe(401);
  });

  it("returns an empty policy (every host refused) until an admin sets one", async () => {
    const response = await call("member", "GET");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ allowedHosts: [], credentials: [] });
  });

  it("lets only admins change it, audits the change and keeps orgs apart", async () => {
    const denied = await call("member", "PUT", JSON.stringify(POLICY));
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: { code: "forbidden" } });
    expect((await call("member", "DELETE")).status).toBe(403);

    const put = await call(
      "admin",
      "PUT",
      JSON.stringify({ ...POLICY, allowedHosts: ["Git.Example.com", "*.npmjs.org"] }),
    );
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual(POLICY);
    expect(changed).toContain(callers.admin?.orgId);
    expect(await (await call("member", "GET")).json()).toEqual(POLICY);
    expect(await (await call("outsider", "GET")).json()).toEqual({ allowedHosts: [], credentials: [] });

    const entries = await audit.list(callers.admin?.orgId ?? "");
    expect(entries.at(-1)).toMatchObject({
      kind: "policy_change",
      userId: callers.admin?.userId,
      data: { policy: "egress", action: "put", allowedHosts: POLICY.allowedHosts },
    });
    expect((await audit.verifyAuditChain(callers.admin?.orgId ?? "")).isValid).toBe(true);
  });

  it.each([
    [
      "an IP literal",
      { allowedHosts: ["10.0.0.5"] },
      "allowedHosts.0: must be a host name, not an IP address",
    ],
    ["an IPv6 literal", { allowedHosts: ["::1"] }, "not an IP address"],
    ["a host with a port out of range", { allowedHosts: ["git.example.com:70000"] }, "1-65535"],
    ["a URL", { allowedHosts: ["https://git.example.com/"] }, "a host name only"],
    // NUL is refused for every JSON body before the route sees it; other control characters by the schema.
    ["a NUL byte", { allowedHosts: ["git.example.com\u0000.evil"] }, "allowedHosts[0]: NUL characters"],
    ["a control character", { allowedHosts: ["git.example.com\u0001.evil"] }, "control characters"],
    ["a bare wildcard", { allowedHosts: ["*"] }, "leading *."],
    ["a top-level wildcard", { allowedHosts: ["*.com"] }, "at least two labels"],
    ["an unknown key", { allowedHosts: [], extra: true }, 'Unrecognized key: "extra"'],
    ["a missing allowlist", { credentials: [] }, "allowedHosts"],
    [
      "a bad secret name",
      {
        allowedHosts: ["a.example"],
        credentials: [{ host: "a.example", secretName: "1X", scheme: "bearer" }],
      },
      "credentials.0.secretName",
    ],
    [
      "a header rule without its header",
      {
        allowedHosts: ["a.example"],
        credentials: [{ host: "a.example", secretName: "X", scheme: "header" }],
      },
      'credentials.0.header: required when scheme is "header"',
    ],
    [
      "a reserved header",
      {
        allowedHosts: ["a.example"],
        credentials: [{ host: "a.example", secretName: "X", scheme: "header", header: "Host" }],
      },
      "cannot carry a credential",
    ],
    [
      "a NUL byte in a username",
      {
        allowedHosts: ["a.example"],
        credentials: [{ host: "a.example", secretName: "X", scheme: "basic", username: "a\u0000b" }],
      },
      "credentials[0].username: NUL characters",
    ],
    [
      "too many hosts",
      { allowedHosts: Array.from({ length: 501 }, (_, index) => `h${index}.example`) },
      "allowedHosts",
    ],
  ])("refuses %s with a clear 400", async (_name, body, message) => {
    const before = await (await call("admin", "GET")).json();
    const response = await call("admin", "PUT", JSON.stringify(body));
    expect(response.status).toBe(400);
    const error = (await response.json()) as { error: { code: string; message: string } };
    expect(error.error.code).toBe("invalid_request");
    expect(error.error.message).toContain(message);
    expect(await (await call("admin", "GET")).json()).toEqual(before);
  });

  it("refuses a credential rule for a host off the allowlist, naming the rule, and keeps the policy", async () => {
    const before = await (await call("admin", "GET")).json();
    for (const [credentials, message] of [
      [
        [
          { host: "git.example.com", secretName: "GIT_TOKEN", scheme: "basic" },
          { host: "evil.example.net", secretName: "GIT_TOKEN", scheme: "bearer" },
        ],
        "credentials.1.host: evil.example.net is not on allowedHosts",
      ],
      // A wildcard rule is wider than the one exact host allowed.
      [
        [{ host: "*.example.com", secretName: "GIT_TOKEN", scheme: "bearer" }],
        "credentials.0.host: *.example.com is not on allowedHosts",
      ],
      // Ports: a bare allowed name covers 443 and 80 only.
      [
        [{ host: "git.example.com:8443", secretName: "GIT_TOKEN", scheme: "bearer" }],
        "credentials.0.host: git.example.com:8443 is not on allowedHosts",
      ],
    ] as const) {
      const response = await call(
        "admin",
        "PUT",
        JSON.stringify({ allowedHosts: ["git.example.com"], credentials }),
      );
      expect(response.status).toBe(400);
      const error = (await response.json()) as { error: { code: string; message: string } };
      expect(error.error.code).toBe("invalid_request");
      expect(error.error.message).toContain(message);
    }
    expect(await (await call("admin", "GET")).json()).toEqual(before);
    // Under an allowed wildcard, and a user's secret, are fine.
    const covered = await call(
      "admin",
      "PUT",
      JSON.stringify({
        allowedHosts: ["*.npmjs.org"],
        credentials: [{ host: "registry.npmjs.org", secretName: "MY_TOKEN", scheme: "bearer" }],
      }),
    );
    expect(covered.status).toBe(200);
    // A rule on an explicit port is covered by the same name on that port, and a bare rule (443 and
    // 80) is not covered by one port alone.
    const ported = await call(
      "admin",
      "PUT",
      JSON.stringify({
        allowedHosts: ["git.example.com:8443", "*.example.org:443"],
        credentials: [
          { host: "git.example.com:8443", secretName: "GIT_TOKEN", scheme: "bearer" },
          { host: "api.example.org:443", secretName: "GIT_TOKEN", scheme: "bearer" },
        ],
      }),
    );
    expect(ported.status).toBe(200);
    const narrower = await call(
      "admin",
      "PUT",
      JSON.stringify({
        allowedHosts: ["*.example.org:443"],
        credentials: [{ host: "api.example.org", secretName: "GIT_TOKEN", scheme: "bearer" }],
      }),
    );
    expect(narrower.status).toBe(400);
    expect((await call("admin", "PUT", JSON.stringify(POLICY))).status).toBe(200);
  });

  it("refuses a credential rule naming a secret the org does not have, even one another org has", async () => {
    const before = await (await call("admin", "GET")).json();
    for (const secretName of ["NO_SUCH_SECRET", "OTHER_TOKEN"]) {
      const response = await call(
        "admin",
        "PUT",
        JSON.stringify({
          allowedHosts: ["git.example.com"],
          credentials: [{ host: "git.example.com", secretName, scheme: "bearer" }],
        }),
      );
      expect(response.status).toBe(400);
      const error = (await response.json()) as { error: { code: string; message: string } };
      expect(error.error).toMatchObject({ code: "invalid_request" });
      expect(error.error.message).toContain(
        `credentials.0.secretName: this org has no secret named ${secretName}`,
      );
    }
    expect(await (await call("admin", "GET")).json()).toEqual(before);
  });

  it("refuses malformed JSON, a wrong content type and a NUL-laden body", async () => {
    expect((await call("admin", "PUT", "{")).status).toBe(400);
    expect((await call("admin", "PUT", "\u0000")).status).toBe(400);
    expect((await call("admin", "PUT", JSON.stringify(POLICY), "text/plain")).status).toBe(415);
    expect(logged).toEqual([]);
  });

  it("deletes the policy so every host is refused again", async () => {
    expect((await call("admin", "DELETE")).status).toBe(204);
    expect(await (await call("member", "GET")).json()).toEqual({ allowedHosts: [], credentials: [] });
    const entries = await audit.list(callers.admin?.orgId ?? "");
    expect(entries.at(-1)).toMatchObject({
      kind: "policy_change",
      data: { policy: "egress", action: "delete" },
    });
  });
});
