/**
 * The sandbox's only way out: an HTTP(S) forward proxy on a unix socket per session. It enforces the
 * org's host allowlist and the address policy (SSRF), terminates TLS with the deployment CA so it
 * can see and scan every request, injects configured credentials, blocks requests that carry a
 * secret or canary, and reports every request through `onAudit`. Refusals carry a readable body.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { chmod, unlink } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction, type Socket } from "node:net";
import { type Duplex, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tls from "node:tls";
import { type AddressPolicy, publicAddressesOnly } from "./address-policy.js";
import { applyCredential, credentialApplies } from "./apply-credential.js";
import type { CertificateAuthority } from "./certificate-authority.js";
import type { EgressContext, EgressPolicy, EgressSecrets } from "./egress-policy.js";
import { forwardHeaders } from "./forward-headers.js";
import { DEFAULT_ALLOWED_PORTS, isHostAllowed, normalizeHost } from "./host-pattern.js";
import { isOwnEndpoint, type OwnEndpoint } from "./own-endpoints.js";
import { formatAuthority, parseAuthority, parseHostHeader } from "./parse-authority.js";
import { ResponseWithheldError, relayResponse } from "./relay-response.js";
import { replayingDuplex } from "./replaying-duplex.js";
import { acceptedEncoding } from "./response-decoding.js";
import {
  createFragmentScanner,
  createScanningTransform,
  createSecretScanner,
  SecretInRequestError,
  type SecretScanner,
} from "./secret-scanner.js";

export type EgressRefusal =
  | "bad_request"
  | "host_not_allowed"
  | "host_mismatch"
  | "address_not_allowed"
  | "secret_in_request"
  | "credential_missing"
  | "credential_requires_tls"
  | "credential_withdrawn"
  | "unsupported"
  | "secret_in_response"
  | "response_encoding_unsupported"
  | "response_too_large"
  | "upstream_unreachable";

/** One per request (`egress`), plus one per injected secret (`secret_use`). Never holds a value. */
export interface EgressAuditEvent {
  readonly kind: "egress" | "secret_use";
  readonly context: EgressContext;
  readonly at: Date;
  readonly method: string;
  readonly scheme: "http" | "https";
  readonly host: string;
  readonly port: number;
  /** Path without the query string (queries may carry data); `[redacted]` when it carried a secret. */
  readonly path: string;
  readonly decision: "allowed" | "refused";
  readonly refusal?: EgressRefusal;
  /** True when the request carried a secret or canary. */
  readonly isFlagged: boolean;
  /** Name of the secret or label of the canary found. */
  readonly matched?: string;
  /** Why it was refused, as the sandbox was told (names hosts and secrets, never a value). */
  readonly message?: string;
  /** Status sent to the sandbox, when a response started. */
  readonly status?: number;
  /** Names of the secrets injected into this request. */
  readonly secretNames: readonly string[];
  readonly durationMs: number;
}

export type ResolveHost = (host: string) => Promise<readonly { address: string; family: number }[]>;

export interface EgressProxyOptions {
  readonly ca: CertificateAuthority;
  /** The org's current policy; called per request, so changes apply at once (cache it if costly). */
  readonly policy: (context: EgressContext) => EgressPolicy | Promise<EgressPolicy>;
  readonly secrets: EgressSecrets;
  /** Must not throw; called synchronously after each decision or response. */
  readonly onAudit: (event: EgressAuditEvent) => void;
  /** Default `publicAddressesOnly`. Tests with loopback upstreams pass `anyAddress`. */
  readonly addressPolicy?: AddressPolicy;
  /** Default: the system resolver (`dns.lookup`, all addresses). */
  readonly resolveHost?: ResolveHost;
  /**
   * Host names the operator pins to fixed addresses (an internal git server, a loopback test
   * upstream): no DNS lookup and no address policy for them. They must still be on the allowlist.
   */
  readonly pinnedHosts?: ReadonlyMap<string, readonly string[]>;
  /**
   * The server's own listeners (its HTTP API), called per request: egress never connects to them,
   * whatever the allowlist or `pinnedHosts` say.
   */
  readonly ownEndpoints?: () => readonly OwnEndpoint[];
  /** Appended to the "not on this org's egress allowlist" refusal: how to get a host added. */
  readonly allowlistHint?: string;
  /** CA certificates trusted for upstream TLS instead of Node's roots (tests). */
  readonly upstreamCa?: string | readonly string[];
  readonly clock?: () => Date;
}

export type EgressListenTarget =
  | { readonly socketPath: string; readonly socketMode?: number }
  | { readonly port: number; readonly host?: string };

export interface EgressListener {
  /** The socket path, or `host:port` for TCP. */
  readonly address: string;
  /** Stops accepting and destroys open connections. Idempotent. */
  close(): Promise<void>;
}

export interface EgressProxy {
  /** Serves one context (e.g. a session) on its own socket; the socket is how requests are attributed. */
  listen(target: EgressListenTarget, context: EgressContext): Promise<EgressListener>;
  /** Closes every listener. */
  close(): Promise<void>;
}

interface Target {
  readonly scheme: "http" | "https";
  readonly host: string;
  readonly port: number;
}

class Refusal extends Error {
  constructor(
    readonly code: EgressRefusal,
    readonly status: number,
    message: string,
    readonly matched?: string,
    /** Where a secret was found, when that part must not be reported. */
    readonly redact?: "host" | "path",
  ) {
    super(message);
  }
}

/** A body up to this size is read and scanned before the upstream is contacted at all. */
const BUFFERED_BODY_BYTES = 1024 * 1024;

export function createEgressProxy(options: EgressProxyOptions): EgressProxy {
  const addressPolicy = options.addressPolicy ?? publicAddressesOnly;
  const resolveHost: ResolveHost =
    options.resolveHost ?? ((host) => dnsLookup(host, { all: true, verbatim: true }));
  const clock = options.clock ?? (() => new Date());
  const pinnedHosts = new Map(
    [...(options.pinnedHosts ?? [])].flatMap(([name, addresses]) => {
      const host = normalizeHost(name);
      return host ? [[host, addresses] as const] : [];
    }),
  );
  const allowlistHint = options.allowlistHint ?? "ask an org admin to add it to the egress policy";
  const upstreamCa = options.upstreamCa === undefined ? undefined : [options.upstreamCa].flat();
  // noDelay: the scanner holds back a body's tail, so a request leaves in two writes; with Nagle the
  // second waits for the upstream's delayed ACK (~40 ms). https.Agent does not pass noDelay on to
  // its TLS sockets, hence also setNoDelay per request below.
  const httpAgent = new http.Agent({ keepAlive: true, noDelay: true });
  const httpsAgent = new https.Agent({
    keepAlive: true,
    noDelay: true,
    ...(upstreamCa ? { ca: upstreamCa } : {}),
  });
  const secureContexts = new Map<string, tls.SecureContext>();
  const listeners = new Set<EgressListener>();
  // Header-only secrets a response echoed, per session (org, user, session): secret name -> the host
  // that echoed it. Per session, not per listener, so a sandbox that went cold and came back (a new
  // listener) keeps them; entries are only made on an echo, so the map stays small.
  const withdrawals = new Map<string, Map<string, string>>();
  const sessionKey = (context: EgressContext) =>
    JSON.stringify([context.orgId, context.userId ?? null, context.sessionId ?? null]);

  function secureContextFor(host: string): tls.SecureContext {
    let context = secureContexts.get(host);
    if (!context) {
      const leaf = options.ca.issueLeaf(host);
      context = tls.createSecureContext({ key: leaf.keyPem, cert: leaf.certificatePem });
      secureContexts.set(host, context);
      if (secureContexts.size > 1000) {
        const oldest = secureContexts.keys().next().value;
        if (oldest !== undefined) secureContexts.delete(oldest);
      }
    }
    return context;
  }

  async function checkAddresses(host: string, port: number): Promise<{ address: string; family: number }[]> {
    const addresses = await resolveAllowed(host);
    const own = options.ownEndpoints?.() ?? [];
    for (const { address } of addresses) {
      if (isOwnEndpoint(own, address, port)) {
        throw new Refusal(
          "address_not_allowed",
          403,
          `host ${host} reaches ${formatAuthority(address, port)}, this Outrig server's own API, which egress never connects to`,
        );
      }
    }
    return addresses;
  }

  async function resolveAllowed(host: string): Promise<{ address: string; family: number }[]> {
    const pinned = pinnedHosts.get(host);
    if (pinned && pinned.length > 0) {
      // The operator vouched for these addresses: no lookup, no address policy (but never our own API).
      return pinned.map((address) => ({ address, family: isIP(address) === 6 ? 6 : 4 }));
    }
    const literal = isIP(host);
    let addresses: { address: string; family: number }[];
    if (literal !== 0) {
      addresses = [{ address: host, family: literal }];
    } else {
      try {
        addresses = [...(await resolveHost(host))];
      } catch (error) {
        const code = (error as { code?: string }).code ?? "lookup failed";
        throw new Refusal("upstream_unreachable", 502, `cannot resolve host ${host} (${code})`);
      }
    }
    if (addresses.length === 0) {
      throw new Refusal("upstream_unreachable", 502, `host ${host} has no addresses`);
    }
    for (const { address } of addresses) {
      const reason = addressPolicy(address);
      if (reason !== null) {
        throw new Refusal(
          "address_not_allowed",
          403,
          `host ${host} resolves to ${address} (${reason}), which egress never connects to`,
        );
      }
    }
    return addresses;
  }

  function report(event: EgressAuditEvent): void {
    try {
      options.onAudit(event);
    } catch {
      // Invariant: onAudit must not throw; if it does, the request's outcome stands.
    }
  }

  async function handle(
    context: EgressContext,
    request: http.IncomingMessage,
    response: http.ServerResponse,
    target: Target | null,
  ): Promise<void> {
    const startedAt = performance.now();
    const method = request.method ?? "GET";
    let scheme: "http" | "https" = target?.scheme ?? "http";
    let host = target?.host ?? "";
    let port = target?.port ?? 80;
    let path = "/";
    let isFlagged = false;
    let matched: string | undefined;
    let refusal: EgressRefusal | undefined;
    let message: string | undefined;
    let secretNames: string[] = [];
    let isCredentialFlagged = false;
    const audit = (status: number | undefined) => {
      const base = {
        context,
        at: clock(),
        method,
        scheme,
        host,
        port,
        path,
        decision: refusal === undefined ? ("allowed" as const) : ("refused" as const),
        ...(refusal === undefined ? {} : { refusal }),
        isFlagged,
        ...(matched === undefined ? {} : { matched }),
        ...(message === undefined ? {} : { message }),
        ...(status === undefined ? {} : { status }),
        durationMs: performance.now() - startedAt,
      };
      report({ kind: "egress", ...base, secretNames });
      // A withheld echo still means the credential went out: its use is recorded, flagged.
      if (refusal === undefined || isCredentialFlagged) {
        for (const name of secretNames) report({ kind: "secret_use", ...base, secretNames: [name] });
      }
    };
    const refuse = (error: Refusal) => {
      refusal = error.code;
      message = error.message;
      if (
        error.code === "secret_in_request" ||
        error.code === "secret_in_response" ||
        error.code === "credential_withdrawn"
      ) {
        isFlagged = true;
        matched = error.matched;
      }
      if (error.redact === "host") host = "[redacted]";
      if (error.redact === "host" || error.redact === "path") path = "[redacted]";
      request.resume();
      if (response.headersSent) {
        response.destroy();
      } else {
        const body = `outrig egress: ${error.message}\n`;
        response.writeHead(error.status, {
          "content-type": "text/plain; charset=utf-8",
          "content-length": Buffer.byteLength(body),
          "x-outrig-egress-refusal": error.code,
        });
        response.end(body);
      }
      audit(error.status);
    };

    try {
      const rawUrl = request.url ?? "/";
      let url: URL;
      if (target) {
        url = new URL(rawUrl.startsWith("/") ? rawUrl : "/", `https://${formatAuthority(host, port)}`);
        checkTunnelAuthority(request, target, rawUrl);
      } else {
        if (!/^http:\/\//i.test(rawUrl)) {
          throw new Refusal(
            "bad_request",
            400,
            /^https:/i.test(rawUrl)
              ? "send https:// requests through CONNECT (set HTTPS_PROXY)"
              : "this is an HTTP proxy: send an absolute http:// URL or use CONNECT",
          );
        }
        url = new URL(rawUrl);
        const normalized = normalizeHost(url.hostname);
        if (!normalized) throw new Refusal("bad_request", 400, `malformed host in ${url.origin}`);
        scheme = "http";
        host = normalized;
        port = url.port === "" ? 80 : Number(url.port);
        checkHostHeader(request, { host, port }, "the request URL");
      }
      path = url.pathname;
      if (request.headers.upgrade) {
        throw new Refusal("unsupported", 501, "protocol upgrades (WebSocket) are not supported by egress");
      }

      const [policy, secrets] = await Promise.all([
        options.policy(context),
        options.secrets.resolveAllSecrets(context),
      ]);
      const scanner = createSecretScanner([
        ...[...secrets].map(([name, value]) => ({ label: `secret ${name}`, value })),
        ...policy.canaries.map((canary, index) =>
          typeof canary === "string"
            ? { label: `canary #${index + 1}`, value: canary }
            : { label: `canary ${canary.label}`, value: canary.value },
        ),
      ]);
      // Before the allowlist: a request that carries a secret is flagged wherever it was going.
      scanHead(scanner, host, rawUrl, request.rawHeaders);
      if (!isHostAllowed(policy.allowedHosts, host, port)) {
        const empty = policy.allowedHosts.length === 0 ? " (it is empty)" : "";
        const isDefaultPort = port === (scheme === "https" ? 443 : 80);
        const portNote =
          !isDefaultPort &&
          DEFAULT_ALLOWED_PORTS.some((each) => isHostAllowed(policy.allowedHosts, host, each))
            ? ` (an entry without a port allows ${DEFAULT_ALLOWED_PORTS.join(" and ")} only; list ${formatAuthority(host, port)})`
            : "";
        throw new Refusal(
          "host_not_allowed",
          403,
          `host ${isDefaultPort ? host : formatAuthority(host, port)} is not on this org's egress allowlist${empty}${portNote}; ${allowlistHint}`,
        );
      }

      const rules = policy.credentials.filter((rule) =>
        credentialApplies(rule, host, port, request.headers, path),
      );
      if (rules.length > 0 && scheme !== "https") {
        throw new Refusal(
          "credential_requires_tls",
          403,
          `credentials for ${host} are only added over HTTPS; use https://${host}`,
        );
      }
      const headers = forwardHeaders(request.headers);
      const injected: { label: string; value: string }[] = [];
      const headerOnly: { label: string; value: string }[] = [];
      for (const rule of rules) {
        const withdrawnBy = rule.isHeaderOnly
          ? withdrawals.get(sessionKey(context))?.get(rule.secretName)
          : undefined;
        if (withdrawnBy !== undefined) {
          throw new Refusal(
            "credential_withdrawn",
            403,
            `secret ${rule.secretName} is withdrawn from this session: a response from ${withdrawnBy} repeated it, and it is bound as request-headers-only`,
            `secret ${rule.secretName}`,
          );
        }
        const value = await options.secrets.resolveSecret(context, rule.secretName);
        if (value === null) {
          throw new Refusal(
            "credential_missing",
            403,
            `host ${host} needs secret ${rule.secretName}, which is not set; ask an admin to set it`,
          );
        }
        applyCredential(headers, rule, value);
        injected.push({ label: `secret ${rule.secretName}`, value });
        if (rule.isHeaderOnly) headerOnly.push({ label: `secret ${rule.secretName}`, value });
        secretNames.push(rule.secretName);
      }
      secretNames = [...new Set(secretNames)];
      // The response will be scanned for the credential: ask only for codings egress can undo.
      if (injected.length > 0)
        headers["accept-encoding"] = acceptedEncoding(request.headers["accept-encoding"]);

      // Small bodies are read and scanned whole before any byte goes upstream; larger ones stream
      // through the scanner, which forwards nothing of a match.
      const head = await readBodyHead(request, BUFFERED_BODY_BYTES);
      const headLabel = scanner.isEmpty ? null : scanner.find(Buffer.concat(head.chunks));
      if (headLabel !== null) throw new SecretInRequestError(headLabel);
      if (head.isComplete && head.size > 0 && headers["content-length"] === undefined) {
        headers["content-length"] = String(head.size);
      }

      const addresses = await checkAddresses(host, port);
      // Connect to exactly the addresses just checked: no second lookup, no DNS rebinding window.
      const pinnedLookup: LookupFunction = (_hostname, lookupOptions, callback) => {
        if (lookupOptions.all) {
          callback(null, addresses);
        } else {
          const first = addresses[0] ?? { address: "", family: 4 };
          callback(null, first.address, first.family);
        }
      };
      const echoScanner = createSecretScanner(injected);
      const strictScanner = headerOnly.length > 0 ? createFragmentScanner(headerOnly) : null;
      const upstreamRequest = (scheme === "https" ? https : http).request({
        method,
        host,
        port,
        path: `${url.pathname}${url.search}`,
        headers,
        lookup: pinnedLookup,
        agent: scheme === "https" ? httpsAgent : httpAgent,
        ...(scheme === "https" ? { servername: isIP(host) === 0 ? host : undefined } : {}),
      });
      upstreamRequest.setNoDelay(true);
      const responded = new Promise<void>((resolve, reject) => {
        upstreamRequest.once("response", (upstreamResponse) => {
          // A host that reflects what it received (an echo endpoint) must not hand the sandbox the
          // credential that was just injected, however encoded or transformed.
          relayResponse({ method, upstream: upstreamResponse, response, echoScanner, strictScanner }).then(
            resolve,
            (error: unknown) => {
              if (!(error instanceof ResponseWithheldError)) {
                reject(error);
              } else if (error.reason === "encoding") {
                reject(
                  new Refusal(
                    "response_encoding_unsupported",
                    502,
                    `the response from ${host} is encoded as ${JSON.stringify(error.message)}, which egress cannot decode to check it for the injected credential; it was withheld`,
                  ),
                );
              } else if (error.reason === "too_large") {
                reject(
                  new Refusal(
                    "response_too_large",
                    502,
                    `the response from ${host} is larger than ${Number(error.message) / 1024 / 1024} MiB, the most egress reads whole for a request-headers-only credential; it was withheld`,
                  ),
                );
              } else {
                const label = error.label ?? "credential";
                isCredentialFlagged = true;
                // The host is now known to echo: none of the header-only secrets sent to it here
                // (whichever was found) may go out again in this session.
                for (const rule of rules) {
                  if (rule.isHeaderOnly) {
                    const key = sessionKey(context);
                    const withdrawn = withdrawals.get(key) ?? new Map<string, string>();
                    withdrawn.set(rule.secretName, host);
                    withdrawals.set(key, withdrawn);
                  }
                }
                reject(
                  new Refusal(
                    "secret_in_response",
                    502,
                    `the response from ${host} repeats the injected ${label}; it was withheld`,
                    label,
                  ),
                );
              }
            },
          );
        });
        upstreamRequest.once("error", reject);
      });
      const source = head.isComplete ? Readable.from(head.chunks) : Readable.from(head.rest());
      const body = scanner.isEmpty || head.isComplete ? [source] : [source, createScanningTransform(scanner)];
      // Settles either way; a canary found mid-body destroys the upstream request, which then rejects.
      const sendError = pipeline(...(body as [Readable]), upstreamRequest).then(
        () => null,
        (error: unknown) => error,
      );
      try {
        await responded;
      } catch (error) {
        upstreamRequest.destroy();
        const cause = await sendError;
        throw cause instanceof SecretInRequestError ? cause : error;
      }
      // An upstream may answer before reading the whole body; only a secret found in it still matters.
      const late = await sendError;
      if (late instanceof SecretInRequestError) throw late;
      audit(response.statusCode);
    } catch (error) {
      if (error instanceof Refusal) {
        refuse(error);
      } else if (error instanceof SecretInRequestError) {
        refuse(
          new Refusal(
            "secret_in_request",
            403,
            `request to ${host} blocked: its body carries the value of ${error.label}; secrets never leave through egress`,
            error.label,
          ),
        );
      } else {
        const code = (error as { code?: string }).code ?? "error";
        refuse(new Refusal("upstream_unreachable", 502, `cannot reach ${host}:${port} (${code})`));
      }
    }
  }

  return {
    async listen(target, context) {
      const sockets = new Set<Socket | Duplex>();
      const tunnelTargets = new WeakMap<object, Target>();
      const track = (socket: Socket | Duplex) => {
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
      };
      const inner = http.createServer((request, response) => {
        const tunnel = tunnelTargets.get(request.socket);
        handle(context, request, response, tunnel ?? null).catch(() => response.destroy());
      });
      const server = http.createServer((request, response) => {
        handle(context, request, response, null).catch(() => response.destroy());
      });
      for (const each of [server, inner]) {
        each.on("upgrade", (_request, socket: Duplex) => {
          socket.end(
            rawResponse(501, "unsupported", "protocol upgrades (WebSocket) are not supported by egress"),
          );
        });
      }
      server.on("connection", track);
      server.on("connect", (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
        socket.on("error", () => socket.destroy());
        const authority = parseAuthority(request.url ?? "");
        if (!authority) {
          socket.end(
            rawResponse(400, "bad_request", `malformed CONNECT target ${JSON.stringify(request.url)}`),
          );
          return;
        }
        socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        // Every tunnel is terminated here, even to refused hosts, so the refusal reaches the client as
        // a readable HTTP response rather than a bare CONNECT failure.
        const transport = head.length > 0 ? replayingDuplex(socket, head) : socket;
        const secure = new tls.TLSSocket(transport, {
          isServer: true,
          secureContext: secureContextFor(authority.host),
          ALPNProtocols: ["http/1.1"],
        });
        tunnelTargets.set(secure, { scheme: "https", ...authority });
        track(secure);
        secure.on("error", () => {
          secure.destroy();
          socket.destroy();
        });
        inner.emit("connection", secure);
      });

      let address: string;
      if ("socketPath" in target) {
        await unlink(target.socketPath).catch((error: { code?: string }) => {
          if (error.code !== "ENOENT") throw error;
        });
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(target.socketPath, () => resolve());
        });
        await chmod(target.socketPath, target.socketMode ?? 0o600);
        address = target.socketPath;
      } else {
        await new Promise<void>((resolve, reject) => {
          server.once("error", reject);
          server.listen(target.port, target.host ?? "127.0.0.1", () => resolve());
        });
        const bound = server.address();
        address = typeof bound === "object" && bound ? `${bound.address}:${bound.port}` : String(bound);
      }
      let closing: Promise<void> | undefined;
      const listener: EgressListener = {
        address,
        close() {
          closing ??= new Promise<void>((resolve) => {
            listeners.delete(listener);
            server.close(() => resolve());
            inner.close();
            for (const socket of sockets) socket.destroy();
          });
          return closing;
        },
      };
      listeners.add(listener);
      return listener;
    },
    async close() {
      await Promise.all([...listeners].map((listener) => listener.close()));
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/**
 * Inside a CONNECT tunnel the TLS name (SNI), the `Host` header and any absolute request target must
 * name the CONNECT target: a request for one host must not travel in a tunnel opened for another
 * (domain fronting). A client may leave out SNI only for an IP literal.
 */
function checkTunnelAuthority(request: http.IncomingMessage, target: Target, rawUrl: string): void {
  const expected = formatAuthority(target.host, target.port);
  const servername = (request.socket as tls.TLSSocket).servername;
  if (typeof servername === "string" && servername !== "") {
    if (normalizeHost(servername) !== target.host) {
      throw new Refusal(
        "host_mismatch",
        421,
        `the TLS server name ${JSON.stringify(servername)} does not match the CONNECT target ${expected}`,
      );
    }
  } else if (isIP(target.host) === 0) {
    throw new Refusal("host_mismatch", 421, `the TLS handshake named no server; expected ${target.host}`);
  }
  if (!rawUrl.startsWith("/")) {
    const absolute = /^https:\/\//i.test(rawUrl) ? safeUrl(rawUrl) : null;
    const authority = absolute ? parseHostHeader(absolute.host, 443) : null;
    if (!authority || authority.host !== target.host || authority.port !== target.port) {
      throw new Refusal(
        "host_mismatch",
        421,
        `the request target ${JSON.stringify(rawUrl.slice(0, 200))} does not match the CONNECT target ${expected}`,
      );
    }
  }
  checkHostHeader(request, target, "the CONNECT target");
}

/** The `Host` header, when present, must name `target` (its port defaulting to the scheme's). */
function checkHostHeader(
  request: http.IncomingMessage,
  target: { readonly host: string; readonly port: number; readonly scheme?: "http" | "https" },
  what: string,
): void {
  const value = request.headers.host;
  if (value === undefined) return;
  const authority = parseHostHeader(value, target.scheme === "https" ? 443 : 80);
  if (!authority || authority.host !== target.host || authority.port !== target.port) {
    throw new Refusal(
      "host_mismatch",
      421,
      `the Host header ${JSON.stringify(value.slice(0, 200))} does not match ${what} ${formatAuthority(target.host, target.port)}`,
    );
  }
}

function safeUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

function scanHead(scanner: SecretScanner, host: string, rawUrl: string, rawHeaders: readonly string[]): void {
  if (scanner.isEmpty) return;
  const hostLabel = scanner.find(host);
  const block = (where: string, label: string, redact?: "host" | "path") =>
    new Refusal(
      "secret_in_request",
      403,
      `request to ${hostLabel === null ? host : "a host"} blocked: its ${where} carries the value of ${label}; secrets never leave through egress`,
      label,
      redact,
    );
  if (hostLabel !== null) throw block("host name", hostLabel, "host");
  for (const candidate of [rawUrl, safeDecode(rawUrl)]) {
    const label = scanner.find(candidate);
    if (label !== null) throw block("URL", label, "path");
  }
  for (let index = 0; index + 1 < rawHeaders.length; index += 2) {
    const value = rawHeaders[index + 1] ?? "";
    const basic = /^basic\s+(\S+)$/i.exec(value)?.[1];
    const candidates = [`${rawHeaders[index]}: ${value}`, safeDecode(value)];
    if (basic) candidates.push(Buffer.from(basic, "base64").toString("utf8"));
    for (const candidate of candidates) {
      const label = scanner.find(candidate);
      if (label !== null) throw block(`header ${rawHeaders[index]}`, label);
    }
  }
}

interface BodyHead {
  readonly chunks: Buffer[];
  readonly size: number;
  /** True when the whole body is in `chunks`. */
  readonly isComplete: boolean;
  /** The buffered chunks, then the rest of the body as it arrives. */
  rest(): AsyncGenerator<Buffer>;
}

/** Reads the body until it ends or exceeds `limit` bytes (then pauses it). */
function readBodyHead(request: http.IncomingMessage, limit: number): Promise<BodyHead> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (isComplete: boolean) => {
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("error", onError);
      request.off("close", onClose);
      resolve({
        chunks,
        size,
        isComplete,
        async *rest() {
          yield* chunks;
          if (!isComplete) for await (const chunk of request) yield chunk as Buffer;
        },
      });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) {
        request.pause();
        settle(false);
      }
    };
    const onEnd = () => settle(true);
    const onError = (error: Error) => {
      request.off("data", onData);
      reject(error);
    };
    const onClose = () => {
      if (!request.complete) onError(new Error("the client closed the request"));
    };
    request.on("data", onData);
    request.once("end", onEnd);
    request.once("error", onError);
    request.once("close", onClose);
  });
}

function rawResponse(status: number, code: string, message: string): string {
  const body = `outrig egress: ${message}\n`;
  const reason = http.STATUS_CODES[status] ?? "Error";
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\nx-outrig-egress-refusal: ${code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replaceAll("+", " "));
  } catch {
    return value;
  }
}
