/** Headers that belong to one connection (RFC 9110 §7.6.1) and must not be forwarded by a proxy. */
import type http from "node:http";

export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
]);

/** Copies headers minus hop-by-hop ones and any the `Connection` header lists. */
export function forwardHeaders(incoming: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const listed = new Set(
    String(incoming.connection ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase()),
  );
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    headers[name] = value;
  }
  return headers;
}
