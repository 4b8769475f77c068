/**
 * The backend's fetcher for the toolset's `web_fetch`: each request goes through the session's own
 * egress socket, exactly as a `curl` in its sandbox would (CONNECT for https, with egress terminating
 * TLS under the deployment CA), so the same allowlist, credential rules, secret scanning and audit
 * apply, and a refusal comes back as egress's own explanation.
 */
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import { isIP, type Socket } from "node:net";
import tls from "node:tls";
import zlib from "node:zlib";
import type { WebFetcher, WebFetchOutcome } from "@outrig/core";

/** The whole exchange, redirects excluded, may take this long. */
export const WEB_FETCH_TIMEOUT_MS = 30_000;

export interface EgressWebFetcherOptions {
  /** The session's egress socket (created on demand). */
  readonly socketPath: () => Promise<string>;
  /** The deployment CA egress signs its TLS certificates with. */
  readonly caCertificatePem: string;
  readonly timeoutMs?: number;
}

const REFUSAL_HEADER = "x-outrig-egress-refusal";

async function readBody(
  response: http.IncomingMessage,
  maxBytes: number,
): Promise<{ body: Uint8Array; isTruncated: boolean }> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let isTruncated = false;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    const room = maxBytes - bytes;
    if (chunk.length > room) {
      if (room > 0) chunks.push(chunk.subarray(0, room));
      bytes = maxBytes;
      isTruncated = true;
      response.destroy();
      break;
    }
    chunks.push(chunk);
    bytes += chunk.length;
  }
  return { body: new Uint8Array(Buffer.concat(chunks)), isTruncated };
}

/** Undoes a content coding the server applied although we asked for none (bounded by `maxBytes`). */
function decode(body: Uint8Array, coding: string | undefined, maxBytes: number): Uint8Array {
  const name = coding?.trim().toLowerCase();
  if (name === undefined || name === "" || name === "identity") return body;
  const options = { maxOutputLength: maxBytes };
  if (name === "gzip" || name === "x-gzip") return new Uint8Array(zlib.gunzipSync(body, options));
  if (name === "deflate") return new Uint8Array(zlib.inflateSync(body, options));
  if (name === "br") return new Uint8Array(zlib.brotliDecompressSync(body, options));
  throw new Error(`the response uses the ${name} content coding, which web_fetch cannot decode`);
}

async function toOutcome(response: http.IncomingMessage, maxBytes: number): Promise<WebFetchOutcome> {
  const refusal = response.headers[REFUSAL_HEADER];
  if (refusal !== undefined) {
    const { body } = await readBody(response, 64 * 1024);
    const reason = new TextDecoder()
      .decode(body)
      .replace(/^outrig egress: /, "")
      .trim();
    return { kind: "refused", reason: reason || String(refusal) };
  }
  const { body: raw, isTruncated } = await readBody(response, maxBytes);
  const body = isTruncated ? raw : decode(raw, response.headers["content-encoding"], maxBytes);
  const location = response.headers.location;
  return {
    kind: "response",
    status: response.statusCode ?? 0,
    contentType: response.headers["content-type"],
    location: typeof location === "string" ? location : undefined,
    body,
    isTruncated,
  };
}

/** A fetcher whose every request leaves through `options.socketPath`. */
export function createEgressWebFetcher(options: EgressWebFetcherOptions): WebFetcher {
  return {
    async fetch(url, { signal, maxBytes }) {
      const deadline = AbortSignal.any([
        signal,
        AbortSignal.timeout(options.timeoutMs ?? WEB_FETCH_TIMEOUT_MS),
      ]);
      const socketPath = await options.socketPath();
      const headers = {
        host: url.host,
        "user-agent": "Outrig-web_fetch/1",
        accept: "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
        "accept-encoding": "identity",
      };
      if (url.protocol === "http:") {
        // Absolute form, as a client of an HTTP proxy sends it.
        const request = http.request({
          socketPath,
          method: "GET",
          path: url.href,
          headers,
          signal: deadline,
        });
        request.end();
        const [response] = (await once(request, "response", { signal: deadline })) as [http.IncomingMessage];
        return toOutcome(response, maxBytes);
      }
      const port = url.port === "" ? 443 : Number(url.port);
      const authority = `${url.hostname}:${port}`;
      const connect = http.request({
        socketPath,
        method: "CONNECT",
        path: authority,
        headers: { host: authority },
        signal: deadline,
      });
      connect.end();
      const [answer, socket] = (await once(connect, "connect", { signal: deadline })) as [
        http.IncomingMessage,
        Socket,
      ];
      if (answer.statusCode !== 200) {
        socket.destroy();
        throw new Error(`egress answered CONNECT with HTTP ${answer.statusCode}`);
      }
      const request = https.request({
        method: "GET",
        path: `${url.pathname}${url.search}`,
        headers,
        signal: deadline,
        createConnection: () => {
          const host = url.hostname.replace(/^\[|\]$/g, "");
          return tls.connect({
            socket,
            host,
            // SNI carries names only; an IP literal is checked against the certificate by `host`.
            ...(isIP(host) === 0 ? { servername: host } : {}),
            ca: options.caCertificatePem,
            ALPNProtocols: ["http/1.1"],
          });
        },
      });
      request.end();
      try {
        const [response] = (await once(request, "response", { signal: deadline })) as [http.IncomingMessage];
        return await toOutcome(response, maxBytes);
      } finally {
        socket.destroy();
      }
    },
  };
}
