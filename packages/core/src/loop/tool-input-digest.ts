/**
 * A digest of a tool call's input, so an approval names the exact call it allows: sha256 hex of the
 * input's canonical JSON (object keys sorted, no whitespace), stable across a round trip through
 * Postgres jsonb, which does not keep key order.
 */
import { createHash } from "node:crypto";

export function toolInputDigest(input: unknown): string {
  return createHash("sha256")
    .update(canonicalJson(input ?? null), "utf8")
    .digest("hex");
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
}
