/**
 * What one egress request writes to the audit log, through the server's SessionEgress with the real
 * proxy, a TLS upstream, the Postgres vault and the hash-chained audit log.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createCertificateAuthority } from "@outrig/egress";
import {
  createDatabase,
  createSecretKeyring,
  type Database,
  masterKeyFromBase64,
  PostgresSecretResolver,
  PostgresSecretStore,
} from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { startUpstream, type Upstream } from "@outrig/testing/upstreams";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestThroughProxy } from "../../../egress/test/helpers/proxy-client.js";
import { SessionEgress } from "./session-egress.js";

const TOKEN = "tok_sessionEgressAudit_4821";

describe("egress audit entries", () => {
  let home: string;
  let testDatabase: TestDatabase;
  let database: Database;
  let upstream: Upstream;
  let egress: SessionEgress;
  let orgId: string;
  let socketPath: string;
  let caPem: string;
  const appends: Promise<unknown>[] = [];

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), "outrig-egress-audit-"));
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const upstreamCa = createCertificateAuthority(undefined, { commonName: "audit test upstream CA" });
    const leaf = upstreamCa.issueLeaf("api.audit.test");
    upstream = await startUpstream({
      tls: { key: leaf.keyPem, cert: leaf.certificatePem },
      // `/echo` reflects the request's Authorization header, as a careless debugging endpoint would.
      handler: (request, response) =>
        response.end(request.url === "/echo" ? String(request.headers.authorization) : "ok\n"),
    });
    const masterKey = masterKeyFromBase64(randomBytes(32).toString("base64"), "test");
    const keyring = createSecretKeyring(masterKey);
    const org = await database.auth.createOrg("egress-audit");
    const user = await database.auth.createUser(org.id, { name: "admin", role: "admin" });
    orgId = org.id;
    await new PostgresSecretStore(database.pool, keyring).setSecret(
      { kind: "org", orgId },
      "API_TOKEN",
      TOKEN,
    );
    await database.egressPolicies.put(orgId, {
      // Entries name the upstream's port: a bare name means 443 and 80 only.
      allowedHosts: [`api.audit.test:${upstream.port}`, "plain.audit.test"],
      credentials: [{ host: `api.audit.test:${upstream.port}`, secretName: "API_TOKEN", scheme: "bearer" }],
    });
    egress = await SessionEgress.create({
      home,
      masterKey: masterKey.key,
      policies: database.egressPolicies,
      secrets: new PostgresSecretResolver(database.pool, keyring),
      audit: {
        // Counted when called: the proxy reports one request's entries in one synchronous pass.
        append: (id, entry) => {
          const appended = database.audit.append(id, entry);
          appends.push(appended);
          return appended;
        },
      },
      pinnedHosts: new Map([["api.audit.test", ["127.0.0.1"]]]),
      upstreamCa: upstreamCa.certificatePem,
      log: () => undefined,
    });
    socketPath = (await egress.sandboxOptions({ id: "ses_audit", orgId, userId: user.id })).egressSocketPath;
    caPem = await readFile(path.join(home, "egress-ca", "egress-ca.crt"), "utf8");
  });
  afterAll(async () => {
    await egress?.close();
    await upstream?.close();
    await database?.close();
    await testDatabase?.drop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** Resolves once the request's audit appends were made and have committed. */
  async function settledAppends(before: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (appends.length === before) {
      if (Date.now() > deadline) throw new Error("the request wrote no audit entry");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await Promise.all(appends);
  }

  it("writes one entry for a request that had a credential injected, naming the secret", async () => {
    const before = (await database.audit.list(orgId, { limit: 1000 })).length;
    const started = appends.length;
    const response = await requestThroughProxy(socketPath, caPem, {
      url: `https://api.audit.test:${upstream.port}/v1/things`,
      headers: { authorization: "Bearer OUTRIG_SECRET_PLACEHOLDER_API_TOKEN" },
    });
    expect(response).toMatchObject({ status: 200, body: "ok\n" });
    expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    await settledAppends(started);
    const entries = (await database.audit.list(orgId, { limit: 1000 })).slice(before);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      kind: "egress",
      sessionId: "ses_audit",
      data: {
        method: "GET",
        url: `https://api.audit.test:${upstream.port}/v1/things`,
        decision: "allowed",
        status: 200,
        secretNames: ["API_TOKEN"],
      },
    });
    expect(JSON.stringify(entries)).not.toContain(TOKEN);
    expect((await database.audit.verifyAuditChain(orgId)).isValid).toBe(true);
  });

  it("writes one entry for a refused request", async () => {
    const before = (await database.audit.list(orgId, { limit: 1000 })).length;
    const started = appends.length;
    const response = await requestThroughProxy(socketPath, caPem, { url: "http://evil.audit.test/x" });
    expect(response.status).toBe(403);
    await settledAppends(started);
    const entries = (await database.audit.list(orgId, { limit: 1000 })).slice(before);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      kind: "egress",
      data: { decision: "refused", refusal: "host_not_allowed", secretNames: [] },
    });
  });

  it("keeps the flagged secret_use entry when the credential came back in a response", async () => {
    const before = (await database.audit.list(orgId, { limit: 1000 })).length;
    const started = appends.length;
    // A streamed echo of an ordinary credential is cut off once found: the client sees the body end
    // early or the connection drop, never the token.
    const response = await requestThroughProxy(socketPath, caPem, {
      url: `https://api.audit.test:${upstream.port}/echo`,
      headers: { authorization: "Bearer OUTRIG_SECRET_PLACEHOLDER_API_TOKEN" },
    }).catch(() => undefined);
    expect(response?.body ?? "").not.toContain(TOKEN);
    await settledAppends(started);
    await new Promise((resolve) => setTimeout(resolve, 200)); // both entries come from one pass
    await Promise.all(appends);
    const entries = (await database.audit.list(orgId, { limit: 1000 })).slice(before);
    expect(entries.map((entry) => entry.kind).sort()).toEqual(["egress", "secret_use"]);
    expect(entries.find((entry) => entry.kind === "secret_use")).toMatchObject({
      data: { isFlagged: true, secretNames: ["API_TOKEN"] },
    });
    expect(JSON.stringify(entries)).not.toContain(TOKEN);
  });
});
