import type http from "node:http";
import { type CredentialRule, SECRET_PLACEHOLDER_PREFIX } from "./egress-policy.js";
import { DEFAULT_ALLOWED_PORTS, matchesHostPattern, splitHostPattern } from "./host-pattern.js";

/** Sets the credential and swaps this rule's placeholder wherever the client put it in a header. */
export function applyCredential(
  headers: http.OutgoingHttpHeaders,
  rule: CredentialRule,
  value: string,
): void {
  const placeholder = `${SECRET_PLACEHOLDER_PREFIX}${rule.secretName}`;
  for (const [name, current] of Object.entries(headers)) {
    if (typeof current === "string" && current.includes(placeholder)) {
      headers[name] = current.replaceAll(placeholder, value);
    }
  }
  switch (rule.scheme) {
    case "bearer":
      headers.authorization = `Bearer ${value}`;
      break;
    case "basic":
      headers.authorization = `Basic ${Buffer.from(`${rule.username ?? "x-access-token"}:${value}`).toString("base64")}`;
      break;
    case "header":
      headers[(rule.header ?? "authorization").toLowerCase()] = value;
      break;
    case "placeholder":
      break;
  }
}

/**
 * Whether `rule` applies to a request to `host`:`port` with these headers: by host pattern, and for a
 * `placeholder` rule by host name (any port) and only when a header carries its placeholder; a rule
 * with a `pathPrefix` only to a request `path` (normalized, as forwarded) under it.
 */
export function credentialApplies(
  rule: CredentialRule,
  host: string,
  port: number,
  headers: http.IncomingHttpHeaders,
  path = "/",
): boolean {
  if (rule.pathPrefix !== undefined && !isUnderRepositoryPath(rule.pathPrefix, path)) return false;
  if (rule.scheme !== "placeholder") return matchesHostPattern(rule.host, host, port);
  const placeholder = `${SECRET_PLACEHOLDER_PREFIX}${rule.secretName}`;
  const isCarried = Object.values(headers).some((value) =>
    Array.isArray(value) ? value.some((each) => each.includes(placeholder)) : value?.includes(placeholder),
  );
  if (!isCarried) return false;
  return (
    rule.host === "*" ||
    matchesHostPattern(splitHostPattern(rule.host).name, host, DEFAULT_ALLOWED_PORTS[0] ?? 443)
  );
}

/** `path` is `prefix`, `prefix.git`, or lies under either (`/o/r` covers `/o/r.git/info/refs`, not `/o/rx`). */
function isUnderRepositoryPath(prefix: string, path: string): boolean {
  const base = prefix.replace(/\/+$/, "");
  return [base, `${base}.git`].some((root) => path === root || path.startsWith(`${root}/`));
}
