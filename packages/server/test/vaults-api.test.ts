/**
 * Vaults and credentials end to end: a real server (startServer on the test Postgres, real HTTP) and
 * the official SDK (`client.beta.vaults`, `client.beta.vaults.credentials`) as the client, every
 * response body captured raw and searched for the values; raw HTTP for what the SDK hides (error
 * bodies, strict bodies, cursors, sizes); org and user isolation; the audit log; and a credential
 * injected by egress into a request made through a session's proxy socket while the session only
 * ever holds the placeholder.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { createCertificateAuthority } from "@outrig/egress";
import {
  createDatabase,
  createSecretKeyring,
  type Database,
  masterKeyFromBase64,
  PostgresSecretResolver,
  PostgresVaultStore,
} from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { startUpstream, type Upstream } from "@outrig/testing/upstreams";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestThroughProxy } from "../../egress/test/helpers/proxy-client.js";
import { loadConfig } from "../src/config.js";
import { SessionEgress } from "../src/egress/session-egress.js";
import { type RunningServer, startServer } from "../src/start-server.js";

const BEARER = "tok_vaultBearer_neverShown_5521";
const BEARER_ROTATED = "tok_vaultBearerRotated_neverShown_8812";
const ENV_VALUE = "tok_vaultEnvValue_neverShown_3307";
const ENV_ROTATED = "tok_vaultEnvRotated_neverShown_6640";
const ACCESS = "tok_vaultAccess_neverShown_1188";
const REFRESH = "tok_vaultRefresh_neverShown_2299";
const CLIENT_SECRET = "tok_vaultClientSecret_neverShown_4410";
const VALUES = [BEARER, BEARER_ROTATED, ENV_VALUE, ENV_ROTATED, ACCESS, REFRESH, CLIENT_SECRET];

let testDatabase: TestDatabase;
let database: Database;
let server: RunningServer;
let home: string;
const masterKeyBase64 = randomBytes(32).toString("base64");
const keys = { admin: "", member: "", member2: "", viewer: "", other: "" };
const ids = { org: "", member: "", member2: "", otherOrg: "" };
/** Every response body the SDK clients received, as bytes on the wire. */
const rawBodies: string[] = [];
const logged: string[] = [];

function sdk(key: string): Anthropic {
  return new Anthropic({
    apiKey: key,
    baseURL: server.url,
    maxRetries: 0,
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      rawBodies.push(await response.clone().text());
      return response;
    },
  });
}

async function raw(
  key: string,
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{
  status: number;
  text: string;
  json: { error?: { type?: string; code?: string } } & Record<string, unknown>;
}> {
  const response = await fetch(`${server.url}${url}`, {
    method,
    headers: { "x-api-key": key, "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  rawBodies.push(text);
  return { status: response.status, text, json: text ? JSON.parse(text) : {} };
}

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-vaults-api-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-vaults",
    OUTRIG_MASTER_KEY: masterKeyBase64,
    OUTRIG_WORKER_ID: `vaults-api-${process.pid}`,
    OUTRIG_STANDBY_AFTER_MS: "0",
  });
  server = await startServer(config, { log: (line) => logged.push(line) });
  keys.admin = server.bootstrapKey ?? "";
  database = await createDatabase({ url: testDatabase.url });
  const org = await database.auth.ensureOrg("default");
  ids.org = org.id;
  const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
  ids.member = member.id;
  keys.member = (await database.auth.createApiKey(org.id, member.id, "member")).key;
  const member2 = await database.auth.createUser(org.id, { name: "member2", role: "member" });
  ids.member2 = member2.id;
  keys.member2 = (await database.auth.createApiKey(org.id, member2.id, "member2")).key;
  const viewer = await database.auth.createUser(org.id, { name: "viewer", role: "viewer" });
  keys.viewer = (await database.auth.createApiKey(org.id, viewer.id, "viewer")).key;
  const other = await database.auth.createOrg("other-org");
  ids.otherOrg = other.id;
  const mallory = await database.auth.createUser(other.id, { name: "mallory", role: "admin" });
  keys.other = (await database.auth.createApiKey(other.id, mallory.id, "mallory")).key;
}, 120_000);

afterAll(async () => {
  await server?.close();
  await database?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

describe("vaults through the SDK", () => {
  it("creates, retrieves, updates, lists, archives and deletes vaults", async () => {
    const client = sdk(keys.member);
    const created = await client.beta.vaults.create({
      display_name: "Alice",
      metadata: { external_user_id: "usr_abc123", tier: "gold" },
    });
    expect(created).toMatchObject({
      type: "vault",
      display_name: "Alice",
      metadata: { external_user_id: "usr_abc123", tier: "gold" },
      archived_at: null,
      scope: "user",
    });
    expect(created.id).toMatch(/^vlt_[A-Za-z0-9]{20}$/);
    expect(new Date(created.created_at).toISOString()).toBe(created.created_at);

    expect(await client.beta.vaults.retrieve(created.id)).toEqual(created);

    const updated = await client.beta.vaults.update(created.id, {
      display_name: "Alice B.",
      metadata: { tier: null, region: "eu" },
    });
    expect(updated).toMatchObject({
      id: created.id,
      display_name: "Alice B.",
      metadata: { external_user_id: "usr_abc123", region: "eu" },
    });
    expect(updated.metadata).not.toHaveProperty("tier");

    const second = await client.beta.vaults.create({ display_name: "Second" });
    const third = await client.beta.vaults.create({ display_name: "Third" });
    const pages: string[][] = [];
    let page = await client.beta.vaults.list({ limit: 2 });
    pages.push(page.data.map((vault) => vault.id));
    while (page.hasNextPage()) {
      page = await page.getNextPage();
      pages.push(page.data.map((vault) => vault.id));
    }
    expect(pages.flat()).toEqual([created.id, second.id, third.id]);
    expect(pages[0]).toHaveLength(2);
    const iterated: string[] = [];
    for await (const vault of client.beta.vaults.list({ limit: 1 })) iterated.push(vault.id);
    expect(iterated).toEqual([created.id, second.id, third.id]);

    const archived = await client.beta.vaults.archive(third.id);
    expect(archived.archived_at).not.toBeNull();
    const active = (await client.beta.vaults.list()).data.map((vault) => vault.id);
    expect(active).toEqual([created.id, second.id]);
    const all = (await client.beta.vaults.list({ include_archived: true })).data.map((vault) => vault.id);
    expect(all).toEqual([created.id, second.id, third.id]);

    expect(await client.beta.vaults.delete(second.id)).toEqual({ id: second.id, type: "vault_deleted" });
    await expect(client.beta.vaults.retrieve(second.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(client.beta.vaults.delete(second.id)).rejects.toMatchObject({ status: 404 });
  });

  it("manages all three credential kinds without ever returning a value", async () => {
    const client = sdk(keys.member);
    const vault = await client.beta.vaults.create({ display_name: "Credentials" });
    const bearer = await client.beta.vaults.credentials.create(vault.id, {
      display_name: "Linear",
      auth: { type: "static_bearer", token: BEARER, mcp_server_url: "https://mcp.linear.app/mcp" },
    });
    expect(bearer).toMatchObject({
      type: "vault_credential",
      vault_id: vault.id,
      display_name: "Linear",
      metadata: {},
      archived_at: null,
      auth: { type: "static_bearer", mcp_server_url: "https://mcp.linear.app/mcp" },
    });
    expect(bearer.id).toMatch(/^vcrd_[A-Za-z0-9]{20}$/);
    expect(Object.keys(bearer.auth).sort()).toEqual(["mcp_server_url", "type"]);

    const variable = await client.beta.vaults.credentials.create(vault.id, {
      metadata: { purpose: "ci" },
      auth: {
        type: "environment_variable",
        secret_name: "API_TOKEN",
        secret_value: ENV_VALUE,
        networking: { type: "limited", allowed_hosts: ["api.example.com", "*.example.org"] },
      },
    });
    expect(variable.auth).toEqual({
      type: "environment_variable",
      secret_name: "API_TOKEN",
      networking: { type: "limited", allowed_hosts: ["api.example.com", "*.example.org"] },
      injection_location: { header: true, body: false },
    });

    const oauth = await client.beta.vaults.credentials.create(vault.id, {
      auth: {
        type: "mcp_oauth",
        access_token: ACCESS,
        mcp_server_url: "https://mcp.example.com/sse",
        expires_at: "2027-01-01T00:00:00Z",
        refresh: {
          client_id: "client-1",
          refresh_token: REFRESH,
          token_endpoint: "https://auth.example.com/token",
          token_endpoint_auth: { type: "client_secret_post", client_secret: CLIENT_SECRET },
          scope: "read",
        },
      },
    });
    expect(oauth.auth).toEqual({
      type: "mcp_oauth",
      mcp_server_url: "https://mcp.example.com/sse",
      expires_at: "2027-01-01T00:00:00Z",
      refresh: {
        client_id: "client-1",
        token_endpoint: "https://auth.example.com/token",
        token_endpoint_auth: { type: "client_secret_post" },
        resource: null,
        scope: "read",
      },
    });

    expect(await client.beta.vaults.credentials.retrieve(bearer.id, { vault_id: vault.id })).toEqual(bearer);

    const rotated = await client.beta.vaults.credentials.update(bearer.id, {
      vault_id: vault.id,
      auth: { type: "static_bearer", token: BEARER_ROTATED },
      metadata: { rotated: "yes" },
    });
    expect(rotated).toMatchObject({ id: bearer.id, metadata: { rotated: "yes" }, auth: bearer.auth });
    const renetworked = await client.beta.vaults.credentials.update(variable.id, {
      vault_id: vault.id,
      auth: { type: "environment_variable", secret_value: ENV_ROTATED, networking: { type: "unrestricted" } },
    });
    expect(renetworked.auth).toMatchObject({
      networking: { type: "unrestricted" },
      secret_name: "API_TOKEN",
    });
    const refreshed = await client.beta.vaults.credentials.update(oauth.id, {
      vault_id: vault.id,
      auth: { type: "mcp_oauth", refresh: { scope: "read write" } },
    });
    expect(refreshed.auth).toMatchObject({ refresh: { scope: "read write", client_id: "client-1" } });

    const listedIds: string[] = [];
    for await (const credential of client.beta.vaults.credentials.list(vault.id, { limit: 2 })) {
      listedIds.push(credential.id);
    }
    expect(listedIds).toEqual([bearer.id, variable.id, oauth.id]);

    const archived = await client.beta.vaults.credentials.archive(oauth.id, { vault_id: vault.id });
    expect(archived.archived_at).not.toBeNull();
    expect((await client.beta.vaults.credentials.list(vault.id)).data.map((each) => each.id)).toEqual([
      bearer.id,
      variable.id,
    ]);
    expect(
      (await client.beta.vaults.credentials.list(vault.id, { include_archived: true })).data.map(
        (each) => each.id,
      ),
    ).toEqual([bearer.id, variable.id, oauth.id]);
    // Archiving purges the values: none of the oauth credential's rows is left in the store.
    const { rows } = await database.pool.query("SELECT name FROM secrets WHERE name LIKE $1", [
      `${oauth.id}%`,
    ]);
    expect(rows).toEqual([]);
    await expect(
      client.beta.vaults.credentials.update(oauth.id, {
        vault_id: vault.id,
        auth: { type: "mcp_oauth", access_token: ACCESS },
      }),
    ).rejects.toMatchObject({ status: 409 });

    expect(await client.beta.vaults.credentials.delete(bearer.id, { vault_id: vault.id })).toEqual({
      id: bearer.id,
      type: "vault_credential_deleted",
    });
    await expect(
      client.beta.vaults.credentials.retrieve(bearer.id, { vault_id: vault.id }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);

    // The audit log holds create, rotate, update, archive and delete, without a value.
    const entries = (await database.audit.list(ids.org, { limit: 1000 })).filter(
      (entry) => entry.kind === "secret_write",
    );
    const actions = entries
      .filter((entry) => (entry.data as { vault_id?: string }).vault_id === vault.id)
      .map((entry) => {
        const data = entry.data as { object: string; action: string; credential_id?: string };
        return `${data.object}:${data.action}:${data.credential_id ?? ""}`;
      });
    expect(actions).toEqual([
      `vault:create:`,
      `vault_credential:create:${bearer.id}`,
      `vault_credential:create:${variable.id}`,
      `vault_credential:create:${oauth.id}`,
      `vault_credential:rotate:${bearer.id}`,
      `vault_credential:rotate:${variable.id}`,
      `vault_credential:update:${oauth.id}`,
      `vault_credential:archive:${oauth.id}`,
      `vault_credential:delete:${bearer.id}`,
    ]);
    expect(entries.every((entry) => entry.userId === ids.member)).toBe(true);
    const auditText = JSON.stringify(entries);
    for (const value of VALUES) expect(auditText).not.toContain(value);
    expect((await database.audit.verifyAuditChain(ids.org)).isValid).toBe(true);
  });

  it("keeps a user's vault to that user, org vaults to admins for writes, and other orgs out (404)", async () => {
    const member = sdk(keys.member);
    const own = await member.beta.vaults.create({ display_name: "Mine" });
    const credential = await member.beta.vaults.credentials.create(own.id, {
      auth: { type: "static_bearer", token: BEARER, mcp_server_url: "https://mcp.example.net/" },
    });
    for (const key of [keys.member2, keys.admin, keys.other]) {
      const client = sdk(key);
      await expect(client.beta.vaults.retrieve(own.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
      await expect(client.beta.vaults.update(own.id, { display_name: "x" })).rejects.toMatchObject({
        status: 404,
      });
      await expect(client.beta.vaults.archive(own.id)).rejects.toMatchObject({ status: 404 });
      await expect(client.beta.vaults.delete(own.id)).rejects.toMatchObject({ status: 404 });
      await expect(client.beta.vaults.credentials.list(own.id)).rejects.toMatchObject({ status: 404 });
      await expect(
        client.beta.vaults.credentials.retrieve(credential.id, { vault_id: own.id }),
      ).rejects.toMatchObject({ status: 404 });
      await expect(
        client.beta.vaults.credentials.create(own.id, {
          auth: { type: "static_bearer", token: BEARER, mcp_server_url: "https://evil.example/" },
        }),
      ).rejects.toMatchObject({ status: 404 });
      await expect(
        client.beta.vaults.credentials.delete(credential.id, { vault_id: own.id }),
      ).rejects.toMatchObject({ status: 404 });
      const listed = (await client.beta.vaults.list({ include_archived: true })).data.map(
        (vault) => vault.id,
      );
      expect(listed).not.toContain(own.id);
    }

    // An org vault: created by an admin, seen by members, changed by admins only.
    const admin = sdk(keys.admin);
    const orgVault = await admin.beta.vaults.create({
      display_name: "Org",
      scope: "org",
    } as Anthropic.Beta.VaultCreateParams);
    expect(orgVault).toMatchObject({ scope: "org" });
    expect((await member.beta.vaults.retrieve(orgVault.id)).id).toBe(orgVault.id);
    await expect(member.beta.vaults.update(orgVault.id, { display_name: "mine now" })).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    await expect(
      member.beta.vaults.credentials.create(orgVault.id, {
        auth: { type: "static_bearer", token: BEARER, mcp_server_url: "https://x.example/" },
      }),
    ).rejects.toMatchObject({ status: 403 });
    const refused = await raw(keys.member, "POST", "/v1/vaults", { display_name: "Org 2", scope: "org" });
    expect(refused.status).toBe(403);
    expect(refused.json.error?.type).toBe("permission_error");
    const viewer = await raw(keys.viewer, "POST", "/v1/vaults", { display_name: "Viewer's" });
    expect(viewer.status).toBe(403);
    await expect(sdk(keys.other).beta.vaults.retrieve(orgVault.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    const otherList = (await sdk(keys.other).beta.vaults.list()).data.map((vault) => vault.id);
    expect(otherList).not.toContain(orgVault.id);
  });

  it("turns a session's vault_ids into its credentials, refusing another org's or user's vault with 404", async () => {
    const store = new PostgresVaultStore(
      database.pool,
      createSecretKeyring(masterKeyFromBase64(masterKeyBase64, "test")),
    );
    const member = sdk(keys.member);
    const first = await member.beta.vaults.create({ display_name: "First" });
    const second = await member.beta.vaults.create({ display_name: "Second" });
    const firstVariable = await member.beta.vaults.credentials.create(first.id, {
      auth: {
        type: "environment_variable",
        secret_name: "SHARED",
        secret_value: ENV_VALUE,
        networking: { type: "unrestricted" },
      },
    });
    await member.beta.vaults.credentials.create(second.id, {
      auth: {
        type: "environment_variable",
        secret_name: "SHARED",
        secret_value: ENV_ROTATED,
        networking: { type: "unrestricted" },
      },
    });
    const bearer = await member.beta.vaults.credentials.create(second.id, {
      auth: { type: "static_bearer", token: BEARER, mcp_server_url: "https://mcp.example.io/" },
    });
    const credentials = await store.credentialsForSession(ids.org, ids.member, [
      first.id,
      second.id,
      first.id,
    ]);
    expect(credentials.vaultIds).toEqual([first.id, second.id]);
    // The first vault listed wins a variable name.
    expect(credentials.environment).toEqual([
      expect.objectContaining({ credentialId: firstVariable.id, secretName: "SHARED", allowedHosts: null }),
    ]);
    expect(credentials.mcpServers).toEqual([
      expect.objectContaining({
        credentialId: bearer.id,
        type: "static_bearer",
        mcpServerUrl: "https://mcp.example.io/",
      }),
    ]);
    expect(JSON.stringify(credentials)).not.toContain(ENV_VALUE);
    // The MCP client gets the token by its reference, through the resolver only egress and MCP hold.
    const resolver = new PostgresSecretResolver(
      database.pool,
      createSecretKeyring(masterKeyFromBase64(masterKeyBase64, "test")),
    );
    await expect(
      resolver.resolveSecret(
        { orgId: ids.org, userId: ids.member },
        credentials.mcpServers[0]?.secretRef ?? "",
      ),
    ).resolves.toBe(BEARER);

    const otherVault = await sdk(keys.other).beta.vaults.create({ display_name: "Other org" });
    await expect(store.credentialsForSession(ids.org, ids.member, [otherVault.id])).rejects.toMatchObject({
      status: 404,
      code: "not_found",
    });
    await expect(store.credentialsForSession(ids.org, ids.member2, [first.id])).rejects.toMatchObject({
      status: 404,
    });
    await expect(store.credentialsForSession(ids.otherOrg, ids.member, [first.id])).rejects.toMatchObject({
      status: 404,
    });
    await member.beta.vaults.archive(second.id);
    await expect(store.credentialsForSession(ids.org, ids.member, [second.id])).rejects.toMatchObject({
      status: 409,
      code: "vault_archived",
    });
    // A running session keeps an archived vault's credentials, and a vault gone since costs it only that vault.
    await member.beta.vaults.delete(first.id);
    const running = await store.credentialsForSession(
      ids.org,
      ids.member,
      [first.id, second.id, otherVault.id],
      {
        isRunning: true,
      },
    );
    expect(running.vaultIds).toEqual([second.id]);
    expect(running.environment.map((each) => each.vaultId)).toEqual([second.id]);
  });
});

describe("vaults over raw HTTP", () => {
  it("answers bad input with the API's error shape, never echoing a value", async () => {
    const vault = await sdk(keys.member).beta.vaults.create({ display_name: "Raw" });
    const cred = (auth: unknown, extra: Record<string, unknown> = {}) => ({ auth, ...extra });
    const bearer = { type: "static_bearer", token: BEARER, mcp_server_url: "https://mcp.raw.example/" };
    const cases: [string, string, unknown, number, string, string][] = [
      [
        "POST",
        "/v1/vaults",
        { display_name: "x", extra: BEARER },
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      ["POST", "/v1/vaults", { display_name: 42 }, 400, "invalid_request_error", "invalid_request"],
      ["POST", "/v1/vaults", { display_name: "" }, 400, "invalid_request_error", "invalid_request"],
      [
        "POST",
        "/v1/vaults",
        { display_name: "x".repeat(256) },
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        "/v1/vaults",
        { display_name: "x", scope: "team" },
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        "/v1/vaults",
        {
          display_name: "x",
          metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])),
        },
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      ["GET", "/v1/vaults?page=garbage", undefined, 400, "invalid_request_error", "invalid_request"],
      ["GET", "/v1/vaults?limit=0", undefined, 400, "invalid_request_error", "invalid_request"],
      ["GET", "/v1/vaults?color=red", undefined, 400, "invalid_request_error", "invalid_request"],
      ["GET", "/v1/vaults/vlt_doesNotExist00000000", undefined, 404, "not_found_error", "not_found"],
      ["GET", "/v1/vaults/%00bad", undefined, 404, "not_found_error", "not_found"],
      [
        "POST",
        `/v1/vaults/${vault.id}/credentials`,
        cred({ ...bearer, extra: BEARER }),
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        `/v1/vaults/${vault.id}/credentials`,
        cred({ type: "password", token: BEARER }),
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        `/v1/vaults/${vault.id}/credentials`,
        cred({ ...bearer, mcp_server_url: "not a url" }),
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        `/v1/vaults/${vault.id}/credentials`,
        cred({ ...bearer, token: "" }),
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        `/v1/vaults/${vault.id}/credentials`,
        cred({
          type: "environment_variable",
          secret_name: "PATH",
          secret_value: ENV_VALUE,
          networking: { type: "unrestricted" },
        }),
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        `/v1/vaults/${vault.id}/credentials`,
        cred({
          type: "environment_variable",
          secret_name: "TOKEN",
          secret_value: ENV_VALUE,
          networking: { type: "limited", allowed_hosts: ["https://api.example.com/path"] },
        }),
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "POST",
        `/v1/vaults/${vault.id}/credentials`,
        cred({
          type: "environment_variable",
          secret_name: "TOKEN",
          secret_value: ENV_VALUE,
          networking: { type: "unrestricted" },
          injection_location: { body: true },
        }),
        400,
        "invalid_request_error",
        "injection_location_unsupported",
      ],
      [
        "GET",
        `/v1/vaults/${vault.id}/credentials?page=%%%`,
        undefined,
        400,
        "invalid_request_error",
        "invalid_request",
      ],
      [
        "GET",
        `/v1/vaults/${vault.id}/credentials/vcrd_doesNotExist0000000`,
        undefined,
        404,
        "not_found_error",
        "not_found",
      ],
    ];
    for (const [method, url, body, status, type, code] of cases) {
      const response = await raw(keys.member, method, url, body);
      expect([method, url, response.status]).toEqual([method, url, status]);
      expect(response.json).toMatchObject({ type: "error", error: { type, code } });
      expect(typeof response.json.request_id).toBe("string");
    }

    // A value over 64 KiB is refused; a body over the server's limit is a 413.
    const tooLarge = await raw(
      keys.member,
      "POST",
      `/v1/vaults/${vault.id}/credentials`,
      cred({ ...bearer, token: "a".repeat(70_000) }),
    );
    expect(tooLarge.status).toBe(400);
    const huge = await raw(
      keys.member,
      "POST",
      `/v1/vaults/${vault.id}/credentials`,
      cred({ ...bearer, token: "a".repeat(2_000_000) }),
    );
    expect(huge.status).toBe(413);
    expect(huge.json.error?.type).toBe("request_too_large");
    const malformed = await raw(
      keys.member,
      "POST",
      `/v1/vaults/${vault.id}/credentials`,
      `{"auth": {"token": "${BEARER}"`,
    );
    expect(malformed.status).toBe(400);

    // Conflicts, type changes and archived vaults.
    const created = await raw(keys.member, "POST", `/v1/vaults/${vault.id}/credentials`, cred(bearer));
    expect(created.status).toBe(200);
    const duplicate = await raw(keys.member, "POST", `/v1/vaults/${vault.id}/credentials`, cred(bearer));
    expect(duplicate.status).toBe(409);
    expect(duplicate.json.error?.code).toBe("credential_conflict");
    const retyped = await raw(keys.member, "POST", `/v1/vaults/${vault.id}/credentials/${created.json.id}`, {
      auth: { type: "environment_variable", secret_value: ENV_VALUE },
    });
    expect(retyped.status).toBe(400);
    await raw(keys.member, "POST", `/v1/vaults/${vault.id}/archive`);
    const intoArchived = await raw(
      keys.member,
      "POST",
      `/v1/vaults/${vault.id}/credentials`,
      cred({ ...bearer, mcp_server_url: "https://b.example/" }),
    );
    expect(intoArchived.status).toBe(409);
    expect(intoArchived.json.error?.code).toBe("vault_archived");
    expect((await raw("outrig_nobody", "GET", "/v1/vaults")).status).toBe(401);
  });

  it("never returned or logged a value, in any response of this file", () => {
    expect(rawBodies.length).toBeGreaterThan(50);
    const everything = rawBodies.join("\n");
    for (const value of VALUES) expect(everything).not.toContain(value);
    const log = logged.join("\n");
    for (const value of VALUES) expect(log).not.toContain(value);
  });
});

describe("vault credentials at egress", () => {
  let upstream: Upstream;
  let otherUpstream: Upstream;
  let egress: SessionEgress;
  let egressHome: string;

  beforeAll(async () => {
    egressHome = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-vaults-egress-"));
    const upstreamCa = createCertificateAuthority(undefined, { commonName: "vaults test upstream CA" });
    const leaf = upstreamCa.issueLeaf("api.vault.test");
    const otherLeaf = upstreamCa.issueLeaf("other.vault.test");
    upstream = await startUpstream({
      tls: { key: leaf.keyPem, cert: leaf.certificatePem },
      handler: (_request, response) => response.end("ok\n"),
    });
    otherUpstream = await startUpstream({
      tls: { key: otherLeaf.keyPem, cert: otherLeaf.certificatePem },
      handler: (_request, response) => response.end("other\n"),
    });
    await database.egressPolicies.put(ids.org, {
      allowedHosts: [`api.vault.test:${upstream.port}`, `other.vault.test:${otherUpstream.port}`],
      credentials: [],
    });
    const keyring = createSecretKeyring(masterKeyFromBase64(masterKeyBase64, "test"));
    const store = new PostgresVaultStore(database.pool, keyring);
    egress = await SessionEgress.create({
      home: egressHome,
      masterKey: Buffer.from(masterKeyBase64, "base64"),
      policies: database.egressPolicies,
      secrets: new PostgresSecretResolver(database.pool, keyring),
      vaultCredentials: (orgId, userId, vaultIds, options) =>
        store.credentialsForSession(orgId, userId, vaultIds, options),
      audit: { append: (orgId, entry) => database.audit.append(orgId, entry) },
      pinnedHosts: new Map([
        ["api.vault.test", ["127.0.0.1"]],
        ["other.vault.test", ["127.0.0.1"]],
      ]),
      upstreamCa: upstreamCa.certificatePem,
      log: (line) => logged.push(line),
    });
  });
  afterAll(async () => {
    await egress?.close();
    await upstream?.close();
    await otherUpstream?.close();
    if (egressHome) await fs.rm(egressHome, { recursive: true, force: true });
  });

  it("substitutes the placeholder on the credential's hosts only, and the sandbox holds only the placeholder", async () => {
    const member = sdk(keys.member);
    const vault = await member.beta.vaults.create({ display_name: "Egress" });
    const credential = await member.beta.vaults.credentials.create(vault.id, {
      auth: {
        type: "environment_variable",
        secret_name: "VAULT_API_TOKEN",
        secret_value: ENV_VALUE,
        networking: { type: "limited", allowed_hosts: ["api.vault.test"] },
      },
    });
    const options = await egress.sandboxOptions({
      id: "sesn_vaultEgress",
      orgId: ids.org,
      userId: ids.member,
      vaultIds: [vault.id],
    });
    const placeholder = options.env.VAULT_API_TOKEN ?? "";
    expect(placeholder).toMatch(/^OUTRIG_SECRET_PLACEHOLDER_vcrd_/);
    expect(JSON.stringify(options)).not.toContain(ENV_VALUE);
    const caPem = await fs.readFile(path.join(egressHome, "egress-ca", "egress-ca.crt"), "utf8");

    const response = await requestThroughProxy(options.egressSocketPath, caPem, {
      url: `https://api.vault.test:${upstream.port}/v1/things`,
      headers: { authorization: `Bearer ${placeholder}`, "x-api-key": placeholder },
    });
    expect(response).toMatchObject({ status: 200, body: "ok\n" });
    expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${ENV_VALUE}`);
    expect(upstream.requests.at(-1)?.headers["x-api-key"]).toBe(ENV_VALUE);
    expect(JSON.stringify(response)).not.toContain(ENV_VALUE);

    // Another allowed host, not among the credential's: the placeholder goes out as it is.
    const elsewhere = await requestThroughProxy(options.egressSocketPath, caPem, {
      url: `https://other.vault.test:${otherUpstream.port}/`,
      headers: { authorization: `Bearer ${placeholder}` },
    });
    expect(elsewhere.status).toBe(200);
    expect(otherUpstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${placeholder}`);

    // The real value sent by the sandbox itself is refused wherever it goes.
    const leaked = await requestThroughProxy(options.egressSocketPath, caPem, {
      url: `https://other.vault.test:${otherUpstream.port}/`,
      headers: { "x-leak": ENV_VALUE },
    });
    expect(leaked.status).toBe(403);

    // A rotation through the API applies to the next request.
    await member.beta.vaults.credentials.update(credential.id, {
      vault_id: vault.id,
      auth: { type: "environment_variable", secret_value: ENV_ROTATED },
    });
    await requestThroughProxy(options.egressSocketPath, caPem, {
      url: `https://api.vault.test:${upstream.port}/v1/things`,
      headers: { authorization: `Bearer ${placeholder}` },
    });
    expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${ENV_ROTATED}`);

    // Archived: the value is purged and the placeholder is no longer substituted.
    await member.beta.vaults.credentials.archive(credential.id, { vault_id: vault.id });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await requestThroughProxy(options.egressSocketPath, caPem, {
      url: `https://api.vault.test:${upstream.port}/v1/things`,
      headers: { authorization: `Bearer ${placeholder}` },
    });
    expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${placeholder}`);

    const audit = JSON.stringify(await database.audit.list(ids.org, { limit: 1000 }));
    expect(audit).toContain(credential.id);
    for (const value of VALUES) expect(audit).not.toContain(value);
    await egress.releaseSession("sesn_vaultEgress");
  });
});
