/**
 * Canonical JSON for hashing: object keys sorted by code unit, no whitespace, `undefined` members
 * dropped, NUL characters replaced (Postgres jsonb cannot hold them, so they could not round-trip).
 */
import { InputError } from "@outrig/core";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Throws InputError `invalid_audit_data` for non-finite numbers, cycles or non-JSON values. */
export function canonicalJson(value: unknown): string {
  return encode(value, new Set());
}

/** The value as it will read back from jsonb: canonical, with NULs replaced. */
export function normalizeJson(value: unknown): JsonValue {
  return JSON.parse(canonicalJson(value)) as JsonValue;
}

function encode(value: unknown, seen: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw invalid("a number that is not finite");
      return JSON.stringify(value);
    case "string":
      return JSON.stringify(value.replaceAll("\u0000", "\uFFFD"));
    case "object": {
      if (seen.has(value)) throw invalid("a cycle");
      seen.add(value);
      try {
        if (Array.isArray(value)) return `[${value.map((item) => encode(item ?? null, seen)).join(",")}]`;
        if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
          throw invalid("a non-plain object");
        }
        const members = Object.keys(value)
          .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
          .sort()
          .map(
            (key) =>
              `${JSON.stringify(key.replaceAll("\u0000", "\uFFFD"))}:${encode((value as Record<string, unknown>)[key], seen)}`,
          );
        return `{${members.join(",")}}`;
      } finally {
        seen.delete(value);
      }
    }
    default:
      throw invalid(`a ${typeof value}`);
  }
}

function invalid(what: string): InputError {
  return new InputError("invalid_audit_data", `audit data must be plain JSON; it contains ${what}`, 400);
}
