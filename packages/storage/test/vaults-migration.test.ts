/**
 * Migration 0011 on a database that already holds secrets: each scope's secrets become the
 * environment_variable credentials of a default vault, their ciphertext stays where it was (and still
 * opens), the org's egress rules still resolve them by name, and nothing new substitutes them until
 * the owner widens `networking`.
 */
import { randomBytes } from "node:crypto";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createSecretKeyring,
  loadMigrations,
  masterKeyFromBase64,
  PostgresAuthStore,
  PostgresSecretResolver,
  PostgresSecretStore,
  PostgresVaultStore,
  runMigrations,
} from "../src/index.js";

describe("migration 0011: secrets into default vaults", () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  const keyring = createSecretKeyring(masterKeyFromBase64(randomBytes(32).toString("base64"), "test"));
  const ids = { org: "", admin: "", member: "", other: "" };

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = new pg.Pool({ connectionString: database.url });
    const before = (await loadMigrations()).filter((migration) => migration.version < 11);
    await runMigrations(pool, before);
    const auth = new PostgresAuthStore(pool);
    const org = await auth.createOrg("legacy");
    ids.org = org.id;
    ids.admin = (await auth.createUser(org.id, { name: "admin", role: "admin" })).id;
    ids.member = (await auth.createUser(org.id, { name: "member", role: "member" })).id;
    ids.other = (await auth.createUser(org.id, { name: "other", role: "member" })).id;
    const secrets = new PostgresSecretStore(pool, keyring);
    await secrets.setSecret({ kind: "org", orgId: org.id }, "GIT_TOKEN", "tok_legacy_org_git");
    await secrets.setSecret({ kind: "org", orgId: org.id }, "NPM_TOKEN", "tok_legacy_org_npm");
    await secrets.setSecret(
      { kind: "user", orgId: org.id, userId: ids.member },
      "GIT_TOKEN",
      "tok_legacy_mine",
    );
    await runMigrations(pool);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it("gives each scope a default vault holding its secrets as credentials, without values", async () => {
    const store = new PostgresVaultStore(pool, keyring);
    const member = { orgId: ids.org, userId: ids.member, role: "member" };
    const vaults = await store.listVaults(member, { includeArchived: false, limit: 10 });
    expect(vaults.map((vault) => [vault.scope, vault.displayName, vault.metadata])).toEqual(
      expect.arrayContaining([
        ["org", "Org secrets", { outrig_migrated_from: "secrets" }],
        ["user", "My secrets", { outrig_migrated_from: "secrets" }],
      ]),
    );
    expect(vaults).toHaveLength(2);
    const orgVault = vaults.find((vault) => vault.scope === "org");
    const credentials = await store.listCredentials(member, orgVault?.id ?? "", {
      includeArchived: false,
      limit: 10,
    });
    expect(
      credentials
        ?.map((credential) => credential.auth)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual([
      {
        type: "environment_variable",
        secret_name: "GIT_TOKEN",
        networking: { type: "limited", allowed_hosts: [] },
        injection_location: { header: true, body: false },
      },
      {
        type: "environment_variable",
        secret_name: "NPM_TOKEN",
        networking: { type: "limited", allowed_hosts: [] },
        injection_location: { header: true, body: false },
      },
    ]);
    expect(credentials?.every((credential) => /^vcrd_[0-9a-f]{20}$/.test(credential.id))).toBe(true);
    // Another user sees the org's default vault, not the member's.
    const other = await store.listVaults(
      { orgId: ids.org, userId: ids.other, role: "member" },
      {
        includeArchived: false,
        limit: 10,
      },
    );
    expect(other.map((vault) => vault.scope)).toEqual(["org"]);
  });

  it("keeps the values where they were: egress rules resolve them by name, a rotation rewrites them", async () => {
    const resolver = new PostgresSecretResolver(pool, keyring);
    await expect(resolver.resolveSecret({ orgId: ids.org, userId: ids.member }, "GIT_TOKEN")).resolves.toBe(
      "tok_legacy_mine",
    );
    await expect(resolver.resolveSecret({ orgId: ids.org, userId: ids.other }, "GIT_TOKEN")).resolves.toBe(
      "tok_legacy_org_git",
    );
    const store = new PostgresVaultStore(pool, keyring);
    const admin = { orgId: ids.org, userId: ids.admin, role: "admin" };
    const [orgVault] = await store.listVaults(admin, { includeArchived: false, limit: 10 });
    const credentials =
      (await store.listCredentials(admin, orgVault?.id ?? "", { includeArchived: false, limit: 10 })) ?? [];
    const npm = credentials.find(
      (credential) =>
        credential.auth.type === "environment_variable" && credential.auth.secret_name === "NPM_TOKEN",
    );
    await store.updateCredential(admin, orgVault?.id ?? "", npm?.id ?? "", {
      change: (auth) => ({ auth, values: { main: "tok_rotated_npm" } }),
    });
    await expect(resolver.resolveSecret({ orgId: ids.org }, "NPM_TOKEN")).resolves.toBe("tok_rotated_npm");
    // Session vaults: the migrated credentials are listed, but with no allowed host they add no rule.
    const session = await store.credentialsForSession(ids.org, ids.other, [orgVault?.id ?? ""]);
    expect(session.environment.map((each) => [each.secretName, each.allowedHosts])).toEqual(
      expect.arrayContaining([
        ["GIT_TOKEN", []],
        ["NPM_TOKEN", []],
      ]),
    );
  });
});
