/**
 * What a red team used to get the injected credential back into the sandbox, or to reach what the
 * allowlist did not mean to open: encoded and transformed echoes, domain fronting, a Host header
 * that disagrees with the URL, ports an entry did not name, and the server's own API.
 */
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  anyAddress,
  createCertificateAuthority,
  createEgressProxy,
  type EgressAuditEvent,
  type EgressPolicy,
  type EgressProxy,
  type EgressProxyOptions,
} from "../src/index.js";
import { type ProxiedResponse, requestThroughProxy } from "./helpers/proxy-client.js";
import { type RecordedRequest, startUpstream, type Upstream } from "./helpers/upstream-server.js";

const TOKEN = "ghs_echoedUpstreamToken_1a2b3c4d5e6f";
const context = { orgId: "org_test", userId: "usr_test", sessionId: "ses_test" };
const reverse = (value: string) => [...value].reverse().join("");

/** What an echoing upstream sends back for each path: the Authorization it received, transformed. */
function echoBody(request: RecordedRequest): { body: Buffer; encoding?: string } {
  const seen = String(request.headers.authorization ?? "");
  const text = `{"you sent":"${seen}"}`;
  switch (new URL(request.url, "http://x").pathname) {
    case "/gzip":
      return { body: gzipSync(text), encoding: "gzip" };
    case "/br":
      return { body: brotliCompressSync(Buffer.from(text)), encoding: "br" };
    case "/gzip-then-br":
      return { body: brotliCompressSync(gzipSync(text)), encoding: "gzip, br" };
    case "/reversed":
      return { body: Buffer.from(reverse(seen)) };
    case "/reversed-base64":
      return { body: Buffer.from(Buffer.from(reverse(seen)).toString("base64")) };
    case "/unknown-coding":
      // A coding egress does not know (rot13 of the token); it must not pass unread.
      return {
        body: Buffer.from(
          seen.replace(/[a-z]/gi, (letter) =>
            String.fromCharCode(letter.charCodeAt(0) + (letter.toLowerCase() < "n" ? 13 : -13)),
          ),
        ),
        encoding: "x-rot13",
      };
    case "/gzip-ok":
      return { body: gzipSync("compressed and fine"), encoding: "gzip" };
    case "/split": {
      // Two halves, far apart: no single needle of the whole value is in it.
      const token = seen.replace(/^Bearer /, "");
      const half = Math.floor(token.length / 2);
      return {
        body: Buffer.from(`a=${token.slice(0, half)}&padding=${"x".repeat(64)}&b=${token.slice(half)}`),
      };
    }
    default:
      return { body: Buffer.from("nothing to see") };
  }
}

describe("egress against echoing, fronting and self-addressed upstreams", () => {
  let directory: string;
  const egressCa = createCertificateAuthority();
  const upstreamCa = createCertificateAuthority(undefined, { commonName: "upstream test CA" });
  let echoUpstream: Upstream;
  let plainUpstream: Upstream;
  let ownApi: Upstream;
  let proxy: EgressProxy;
  let socketPath: string;
  const audit: EgressAuditEvent[] = [];
  let policy: EgressPolicy;

  // Every entry names the upstream's random port. Each is listed bare too: a bare name means 443 and
  // 80 only, so it changes nothing here, but a proxy from before ports read the policy the same way,
  // and each test below fails there for its own reason, not for an unreadable allowlist.
  const withBare = <Entry extends { host: string } | string>(entries: Entry[]): Entry[] =>
    entries.flatMap((entry) =>
      typeof entry === "string"
        ? [entry, entry.replace(/:\d+$/, "") as Entry]
        : [entry, { ...entry, host: entry.host.replace(/:\d+$/, "") }],
    );
  const basePolicy = (): EgressPolicy => ({
    allowedHosts: withBare([
      `echo.test:${echoUpstream.port}`,
      `strict.test:${echoUpstream.port}`,
      `plain.test:${plainUpstream.port}`,
      `other.test:${echoUpstream.port}`,
      `self.test:${ownApi.port}`,
    ]),
    credentials: withBare([
      { host: `echo.test:${echoUpstream.port}`, secretName: "API_TOKEN", scheme: "bearer" as const },
      {
        host: `strict.test:${echoUpstream.port}`,
        secretName: "STRICT_TOKEN",
        scheme: "bearer" as const,
        isHeaderOnly: true,
      },
    ]),
    canaries: [],
  });
  const secrets = new Map([
    ["API_TOKEN", TOKEN],
    ["STRICT_TOKEN", `${TOKEN}_strict`],
  ]);

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "outrig-egress-echo-"));
    socketPath = join(directory, "proxy.sock");
    const leaf = upstreamCa.issueLeaf("echo.test");
    const names = ["echo.test", "strict.test", "other.test"];
    const contexts = new Map(
      names.map((name) => {
        const issued = upstreamCa.issueLeaf(name);
        return [name, tls.createSecureContext({ key: issued.keyPem, cert: issued.certificatePem })];
      }),
    );
    echoUpstream = await startUpstream({
      tls: {
        key: leaf.keyPem,
        cert: leaf.certificatePem,
        ...({
          SNICallback: (name: string, done: (error: Error | null, context?: tls.SecureContext) => void) =>
            done(null, contexts.get(name)),
        } as object),
      } as { key: string; cert: string },
      handler: (request, response) => {
        const { body, encoding } = echoBody(request);
        response.writeHead(200, {
          "content-type": "text/plain",
          "content-length": body.length,
          ...(encoding ? { "content-encoding": encoding } : {}),
        });
        response.end(body);
      },
    });
    plainUpstream = await startUpstream();
    // Stands in for Outrig's own API: a loopback listener the server would be.
    ownApi = await startUpstream();
    const options: EgressProxyOptions = {
      ca: egressCa,
      policy: () => policy,
      secrets: {
        resolveSecret: async (_context, name) => secrets.get(name) ?? null,
        resolveAllSecrets: async () => secrets,
      },
      onAudit: (event) => audit.push(event),
      resolveHost: async () => [{ address: "127.0.0.1", family: 4 }],
      addressPolicy: anyAddress,
      upstreamCa: upstreamCa.certificatePem,
      // The operator pinned self.test to this machine; the server listens on every address.
      pinnedHosts: new Map([["self.test", ["127.0.0.1"]]]),
      ownEndpoints: () => [{ address: "0.0.0.0", port: ownApi.port }],
    };
    proxy = createEgressProxy(options);
    await proxy.listen({ socketPath }, context);
  });
  afterAll(async () => {
    await proxy?.close();
    await echoUpstream?.close();
    await plainUpstream?.close();
    await ownApi?.close();
    await rm(directory, { recursive: true, force: true });
  });
  beforeEach(() => {
    policy = basePolicy();
    audit.length = 0;
  });

  const through = (request: Parameters<typeof requestThroughProxy>[2]) =>
    requestThroughProxy(socketPath, egressCa.certificatePem, request);

  /** The body as the client would read it: decoded per Content-Encoding. */
  function readable(response: ProxiedResponse, raw: Buffer): string {
    const encoding = String(response.headers["content-encoding"] ?? "");
    if (encoding === "gzip") return gunzipSync(raw).toString("latin1");
    if (encoding === "br") return brotliDecompressSync(raw).toString("latin1");
    return raw.toString("latin1");
  }

  /** Asks for `path` on echo.test through a tunnel, keeping the raw body bytes. */
  function fetchRaw(
    path: string,
    host = "echo.test",
    headers: Record<string, string> = {},
  ): Promise<{ response: ProxiedResponse; raw: Buffer } | Error> {
    return rawThroughTunnel({ connectTo: `${host}:${echoUpstream.port}`, servername: host, path, headers });
  }

  function rawThroughTunnel(options: {
    connectTo: string;
    servername: string | null;
    path: string;
    headers: Record<string, string>;
  }): Promise<{ response: ProxiedResponse; raw: Buffer } | Error> {
    return new Promise((resolve) => {
      const connect = http.request({ socketPath, method: "CONNECT", path: options.connectTo });
      connect.once("error", resolve);
      connect.once("connect", (_response, socket) => {
        const secure = tls.connect({
          socket,
          ...(options.servername === null ? {} : { servername: options.servername }),
          // The leaf is for the CONNECT target; a mismatched SNI is the attack, not a test mistake.
          rejectUnauthorized: false,
        });
        secure.once("error", resolve);
        const request = http.request({
          createConnection: () => secure,
          path: options.path,
          headers: { host: options.connectTo, ...options.headers },
        });
        request.once("error", resolve);
        request.once("response", (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.once("error", resolve);
          response.once("end", () => {
            const raw = Buffer.concat(chunks);
            resolve({
              response: {
                status: response.statusCode ?? 0,
                headers: response.headers,
                body: raw.toString("utf8"),
              },
              raw,
            });
            secure.destroy();
          });
        });
        request.end();
      });
      connect.end();
    });
  }

  const forms = (value: string) => [
    value,
    reverse(value),
    Buffer.from(value).toString("base64"),
    Buffer.from(reverse(value)).toString("base64"),
  ];

  /** Neither the response the client read nor its decoded form holds the token in any form. */
  function expectWithheld(result: { response: ProxiedResponse; raw: Buffer } | Error, token = TOKEN) {
    if (!(result instanceof Error)) {
      const text = readable(result.response, result.raw);
      for (const form of forms(token)) expect(text).not.toContain(form.slice(0, 16));
      expect(result.response.status).toBe(502);
    }
    expect(audit.filter((event) => event.kind === "egress")).toEqual([
      expect.objectContaining({ refusal: "secret_in_response", isFlagged: true }),
    ]);
  }

  it.each(["/gzip", "/br", "/gzip-then-br"])(
    "withholds a %s-encoded echo of the credential",
    async (path) => {
      const result = await fetchRaw(path, "echo.test", { "accept-encoding": "gzip, br, zstd" });
      expectWithheld(result);
      // Egress only asked for codings it can decode.
      expect(echoUpstream.requests.at(-1)?.headers["accept-encoding"]).toBe("gzip, br");
    },
  );

  it.each(["/reversed", "/reversed-base64"])("withholds a %s echo of the credential", async (path) => {
    expectWithheld(await fetchRaw(path));
  });

  it("refuses a response in a coding it cannot decode when a credential went out", async () => {
    const result = await fetchRaw("/unknown-coding");
    expect(result).not.toBeInstanceOf(Error);
    const { response } = result as { response: ProxiedResponse };
    expect(response.status).toBe(502);
    expect(response.headers["x-outrig-egress-refusal"]).toBe("response_encoding_unsupported");
    expect(response.body).toContain('encoded as "x-rot13", which egress cannot decode');
  });

  it("forwards a compressed answer decoded, so the client reads what was scanned", async () => {
    policy = {
      ...basePolicy(),
      credentials: withBare([
        { host: `echo.test:${echoUpstream.port}`, secretName: "API_TOKEN", scheme: "bearer" as const },
      ]),
    };
    const result = await fetchRaw("/gzip-ok", "echo.test", { "accept-encoding": "gzip" });
    expect(result).not.toBeInstanceOf(Error);
    const { response } = result as { response: ProxiedResponse };
    expect(response).toMatchObject({ status: 200, body: "compressed and fine" });
    expect(response.headers["content-encoding"]).toBeUndefined();
  });

  it("withholds a split echo of a request-headers-only credential whole, flags it and withdraws the credential", async () => {
    const strictToken = `${TOKEN}_strict`;
    const before = echoUpstream.started.length;
    const result = await fetchRaw("/split", "strict.test");
    expect(result).not.toBeInstanceOf(Error);
    const { response } = result as { response: ProxiedResponse };
    // Read whole before any byte left: a clean refusal, not a cut connection.
    expect(response.status).toBe(502);
    expect(response.headers["x-outrig-egress-refusal"]).toBe("secret_in_response");
    expect(response.body).not.toContain(strictToken.slice(0, 12));
    expect(audit.map((event) => [event.kind, event.refusal, event.isFlagged, event.secretNames])).toEqual([
      ["egress", "secret_in_response", true, ["STRICT_TOKEN"]],
      ["secret_use", "secret_in_response", true, ["STRICT_TOKEN"]],
    ]);
    // The session does not get a second try with another transform.
    audit.length = 0;
    const again = await fetchRaw("/harmless", "strict.test");
    expect((again as { response: ProxiedResponse }).response).toMatchObject({ status: 403 });
    expect((again as { response: ProxiedResponse }).response.headers["x-outrig-egress-refusal"]).toBe(
      "credential_withdrawn",
    );
    expect(audit[0]).toMatchObject({ refusal: "credential_withdrawn", isFlagged: true });
    // Also on the session's next listener (its sandbox went cold and came back).
    const nextSocket = join(directory, "next.sock");
    const next = await proxy.listen({ socketPath: nextSocket }, context);
    try {
      const later = await requestThroughProxy(nextSocket, egressCa.certificatePem, {
        url: `https://strict.test:${echoUpstream.port}/harmless`,
      });
      expect(later.headers["x-outrig-egress-refusal"]).toBe("credential_withdrawn");
    } finally {
      await next.close();
    }
    expect(echoUpstream.started.length).toBe(before + 1);
  });

  it("refuses domain fronting: a Host header naming another host inside a CONNECT tunnel", async () => {
    const before = echoUpstream.started.length;
    const fronted = await rawThroughTunnel({
      connectTo: `echo.test:${echoUpstream.port}`,
      servername: "echo.test",
      path: "/gzip",
      headers: { host: `other.test:${echoUpstream.port}` },
    });
    expect(fronted).not.toBeInstanceOf(Error);
    const { response } = fronted as { response: ProxiedResponse };
    expect(response.status).toBe(421);
    expect(response.headers["x-outrig-egress-refusal"]).toBe("host_mismatch");
    expect(response.body).toContain("does not match the CONNECT target echo.test");
    expect(echoUpstream.started.length).toBe(before);
  });

  it("refuses a TLS server name that differs from the CONNECT target, and a missing one", async () => {
    const before = echoUpstream.started.length;
    for (const servername of ["other.test", null]) {
      const result = await rawThroughTunnel({
        connectTo: `echo.test:${echoUpstream.port}`,
        servername,
        path: "/",
        headers: {},
      });
      expect(result).not.toBeInstanceOf(Error);
      expect((result as { response: ProxiedResponse }).response).toMatchObject({ status: 421 });
    }
    expect(echoUpstream.started.length).toBe(before);
  });

  it("refuses a plain HTTP request whose Host header disagrees with its absolute URL", async () => {
    const before = plainUpstream.started.length;
    const mismatched = await through({
      url: `http://plain.test:${plainUpstream.port}/`,
      headers: { host: "elsewhere.test" },
    });
    expect(mismatched.status).toBe(421);
    expect(mismatched.body).toContain('the Host header "elsewhere.test" does not match the request URL');
    expect(plainUpstream.started.length).toBe(before);
    const agreeing = await through({ url: `http://plain.test:${plainUpstream.port}/` });
    expect(agreeing.status).toBe(200);
  });

  it("reads an allowlist entry without a port as 443 and 80 only", async () => {
    policy = { ...basePolicy(), allowedHosts: ["plain.test"] };
    const before = plainUpstream.started.length;
    const response = await through({ url: `http://plain.test:${plainUpstream.port}/` });
    expect(response.status).toBe(403);
    expect(response.headers["x-outrig-egress-refusal"]).toBe("host_not_allowed");
    expect(response.body).toContain(
      `host plain.test:${plainUpstream.port} is not on this org's egress allowlist (an entry without a port allows 443 and 80 only`,
    );
    expect(plainUpstream.started.length).toBe(before);
  });

  it("never connects to the server's own API, even for an allowlisted name pinned to its address", async () => {
    const response = await through({ url: `http://self.test:${ownApi.port}/v1/sessions` });
    expect(response.status).toBe(403);
    expect(response.headers["x-outrig-egress-refusal"]).toBe("address_not_allowed");
    expect(response.body).toContain("this Outrig server's own API");
    expect(ownApi.started).toEqual([]);
  });
});
