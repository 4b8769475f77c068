/**
 * The toolset's web_fetch with the server's fetcher: requests leave through the session's egress
 * socket, so an allowed host is fetched (http, and https through egress's TLS), a host off the
 * allowlist is refused with egress's explanation, a credential is added at egress without reaching
 * the model's input, and every request is in the org's audit log.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import {
  createFileStateTracker,
  createMountTable,
  createToolsetTools,
  type EnvironmentConfig,
  type Tool,
  type ToolContext,
} from "@outrig/core";
import { createCertificateAuthority } from "@outrig/egress";
import type { EgressPolicyBody } from "@outrig/protocol";
import type { AuditEntryInput } from "@outrig/storage";
import { MemoryFileSystem } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionEgress } from "./session-egress.js";

describe("web_fetch through the session's egress", () => {
  let home: string;
  let egress: SessionEgress;
  let plain: http.Server;
  let secure: https.Server;
  let plainPort: number;
  let securePort: number;
  let policy: EgressPolicyBody | null = null;
  /** Sessions' environments by session id (none: the org's policy as it is). */
  const environments = new Map<string, EnvironmentConfig>();
  const seenAuthorization: (string | undefined)[] = [];
  const audit: AuditEntryInput[] = [];
  const session = { id: "ses_fetch", orgId: "org_1", userId: "usr_1" };
  const upstreamCa = createCertificateAuthority();

  const handler: http.RequestListener = (request, response) => {
    seenAuthorization.push(request.headers.authorization);
    if (request.url === "/page") {
      response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      response.end(
        "<html><head><style>p{}</style><script>alert(1)</script></head><body><h1>Title</h1><p>Hello &amp; welcome</p></body></html>",
      );
    } else if (request.url === "/moved") {
      response.writeHead(302, { location: "/page" });
      response.end();
    } else if (request.url === "/data.json") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end('{"ok":true}');
    } else if (request.url === "/zipped") {
      response.writeHead(200, { "content-type": "text/plain", "content-encoding": "gzip" });
      response.end(gzipSync("compressed text"));
    } else if (request.url === "/image") {
      response.writeHead(200, { "content-type": "image/png" });
      response.end(Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    } else {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not here");
    }
  };

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), "outrig-web-fetch-"));
    plain = http.createServer(handler);
    const leaf = upstreamCa.issueLeaf("secure.test");
    secure = https.createServer({ key: leaf.keyPem, cert: leaf.certificatePem }, handler);
    await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => secure.listen(0, "127.0.0.1", resolve));
    plainPort = (plain.address() as AddressInfo).port;
    securePort = (secure.address() as AddressInfo).port;
    egress = await SessionEgress.create({
      home,
      masterKey: randomBytes(32),
      policies: { get: async () => policy },
      environmentOf: async (_orgId, sessionId) => environments.get(sessionId) ?? null,
      secrets: {
        resolveSecret: async (_context, name) => (name === "DOCS_TOKEN" ? "docs-secret-value-123456" : null),
        resolveAllSecrets: async () => new Map([["DOCS_TOKEN", "docs-secret-value-123456"]]),
      },
      audit: {
        append: async (_orgId, entry) => {
          audit.push(entry);
        },
      },
      pinnedHosts: new Map([
        ["plain.test", ["127.0.0.1"]],
        ["secure.test", ["127.0.0.1"]],
        ["other.test", ["127.0.0.1"]],
      ]),
      upstreamCa: upstreamCa.certificatePem,
      log: () => undefined,
    });
  });
  afterAll(async () => {
    await egress?.close();
    await new Promise((resolve) => plain?.close(resolve));
    await new Promise((resolve) => secure?.close(resolve));
    if (home) await rm(home, { recursive: true, force: true });
  });

  /** Sets the org's policy (egress caches it for a second otherwise). */
  function setPolicy(body: EgressPolicyBody): void {
    policy = body;
    egress.invalidatePolicy(session.orgId);
  }

  function webFetch(
    settings: Record<string, unknown> = {},
    fetchingSession: { id: string; orgId: string; userId: string } = session,
  ): (url: unknown) => ReturnType<Tool["execute"]> {
    const { tools } = createToolsetTools(
      { web_fetch: { enabled: true, permission: "always_allow", ...settings } },
      { webFetcher: egress.webFetcher(fetchingSession) },
    );
    const tool = tools.find((candidate) => candidate.name === "web_fetch");
    if (!tool) throw new Error("web_fetch not offered");
    const context: ToolContext = {
      fs: createMountTable([{ prefix: "/workspace", fileSystem: new MemoryFileSystem({}) }]),
      exec: async () => {
        throw new Error("web_fetch must not run in the sandbox");
      },
      fileState: createFileStateTracker(),
      signal: new AbortController().signal,
      toolCallId: "call_fetch",
      cwd: "/workspace",
    };
    return (url) => tool.execute({ url }, context);
  }

  it("narrows the org's allowlist to the session's environment", async () => {
    setPolicy({ allowedHosts: [`plain.test:${plainPort}`, `secure.test:${securePort}`], credentials: [] });
    const cloud = { kind: "cloud" as const, packages: {}, archived: false };
    const limited = { ...session, id: "ses_limited" };
    environments.set(limited.id, {
      ...cloud,
      id: "env_limited",
      networking: {
        type: "limited",
        allowedHosts: [`plain.test:${plainPort}`],
        allowPackageManagers: false,
        allowMcpServers: false,
      },
    });
    const fetchLimited = webFetch({}, limited);
    expect((await fetchLimited(`http://plain.test:${plainPort}/page`)).isError).toBe(false);
    const refused = await fetchLimited(`https://secure.test:${securePort}/page`);
    expect(refused.isError).toBe(true);
    expect(refused.output).toContain("secure.test");
    // Unrestricted is the org's whole allowlist, and only where an admin allowed such environments.
    const open = { ...session, id: "ses_unrestricted" };
    environments.set(open.id, { ...cloud, id: "env_open", networking: { type: "unrestricted" } });
    expect((await webFetch({}, open)(`http://plain.test:${plainPort}/page`)).isError).toBe(true);
    setPolicy({
      allowedHosts: [`plain.test:${plainPort}`, `secure.test:${securePort}`],
      credentials: [],
      allowUnrestrictedEnvironments: true,
    });
    const allowed = { ...session, id: "ses_unrestricted_allowed" };
    environments.set(allowed.id, { ...cloud, id: "env_open", networking: { type: "unrestricted" } });
    const fetchOpen = webFetch({}, allowed);
    expect((await fetchOpen(`http://plain.test:${plainPort}/page`)).isError).toBe(false);
    expect((await fetchOpen(`https://secure.test:${securePort}/page`)).isError).toBe(false);
  });

  it("fetches an allowed host over http and https, as text, following a redirect", async () => {
    setPolicy({ allowedHosts: [`plain.test:${plainPort}`, `secure.test:${securePort}`], credentials: [] });
    const fetch = webFetch();
    expect(await fetch(`http://plain.test:${plainPort}/page`)).toEqual({
      output: `http://plain.test:${plainPort}/page (HTTP 200, text/html)\n\nTitle\nHello & welcome`,
      isError: false,
    });
    expect(await fetch(`https://secure.test:${securePort}/moved`)).toEqual({
      output: `https://secure.test:${securePort}/page (HTTP 200, text/html)\n\nTitle\nHello & welcome`,
      isError: false,
    });
    expect((await fetch(`https://secure.test:${securePort}/data.json`)).output).toContain('{"ok":true}');
    expect((await fetch(`http://plain.test:${plainPort}/zipped`)).output).toBe(
      `http://plain.test:${plainPort}/zipped (HTTP 200, text/plain)\n\ncompressed text`,
    );
    expect(await fetch(`http://plain.test:${plainPort}/image`)).toEqual({
      output: `web_fetch: http://plain.test:${plainPort}/image returned image/png (4 bytes), which is not text`,
      isError: true,
    });
    const missing = await fetch(`http://plain.test:${plainPort}/nothing`);
    expect(missing.isError).toBe(true);
    expect(missing.output).toContain("(HTTP 404, text/plain)\n\nnot here");
  });

  it("refuses a host the policy does not allow, with egress's reason, and logs it", async () => {
    setPolicy({ allowedHosts: [`plain.test:${plainPort}`], credentials: [] });
    const before = seenAuthorization.length;
    const result = await webFetch()(`http://other.test:${plainPort}/page`);
    expect(result.isError).toBe(true);
    expect(result.output).toMatch(
      new RegExp(
        `^web_fetch: http://other.test:${plainPort}/page was refused by this session's egress policy: .*other\\.test`,
      ),
    );
    expect(result.output).toContain("allowlist");
    const refusedTls = await webFetch()(`https://secure.test:${securePort}/page`);
    expect(refusedTls.output).toMatch(/was refused by this session's egress policy/);
    expect(seenAuthorization.length).toBe(before); // nothing reached the upstream
    await expect
      .poll(() => audit.filter((entry) => JSON.stringify(entry).includes("other.test")).length)
      .toBeGreaterThan(0);
  });

  it("applies the agent's own domain lists before egress is asked, redirects included", async () => {
    setPolicy({ allowedHosts: [`plain.test:${plainPort}`, `secure.test:${securePort}`], credentials: [] });
    expect(await webFetch({ blockedDomains: ["plain.test"] })(`http://plain.test:${plainPort}/page`)).toEqual(
      {
        output: `web_fetch: http://plain.test:${plainPort}/page was not fetched: plain.test is in this agent's blocked_domains`,
        isError: true,
      },
    );
    const onlySecure = await webFetch({ allowedDomains: ["secure.test"] })(
      `http://plain.test:${plainPort}/page`,
    );
    expect(onlySecure.output).toMatch(/not in this agent's allowed_domains \(secure\.test\)/);
    expect((await webFetch()("file:///etc/passwd")).output).toBe(
      "web_fetch: only http and https URLs can be fetched, not file:",
    );
    expect((await webFetch()("not a url")).output).toBe("web_fetch: not a valid URL: not a url");
    expect((await webFetch()(42)).output).toContain("InputValidationError: web_fetch failed");
  });

  it("adds the org's credential at egress: the upstream sees it, the model's input never held it", async () => {
    setPolicy({
      allowedHosts: [`secure.test:${securePort}`],
      credentials: [{ host: `secure.test:${securePort}`, secretName: "DOCS_TOKEN", scheme: "bearer" }],
    });
    const result = await webFetch()(`https://secure.test:${securePort}/data.json`);
    expect(result.isError).toBe(false);
    expect(seenAuthorization.at(-1)).toBe("Bearer docs-secret-value-123456");
    expect(result.output).not.toContain("docs-secret-value");
  });
});
