import type http from "node:http";
import { type CredentialRule, SECRET_PLACEHOLDER_PREFIX } from "./egress-policy.js";

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
  }
}
