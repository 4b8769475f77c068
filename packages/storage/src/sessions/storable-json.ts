/**
 * Reversible escaping of the characters Postgres cannot hold in `jsonb`: U+0000 and unpaired UTF-16
 * surrogates. A tool may print any bytes and a model may send any text, so the session store escapes
 * them on write and restores them on read; the escape character itself (U+FDD0) is escaped too.
 */

/** A Unicode noncharacter ("for internal use"): never meaningful in text, so rarely worth escaping. */
export const ESCAPE_CHARACTER = "\uFDD0";

// What must be escaped: NUL, the escape character, a high surrogate not followed by a low one, and a
// low surrogate not preceded by a high one. No `u` flag: the pattern sees UTF-16 code units.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point.
const UNSTORABLE = /[\u0000\uFDD0]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ESCAPED = /\uFDD0([0-9a-f]{4})/g;
// JSON.stringify writes NUL and unpaired surrogates as `\u0000` and `\udXXX`, and U+FDD0 as itself.
const MAY_NEED_ESCAPING = /\\u0000|\\ud[89a-f]|\uFDD0/i;

/** Escapes one string: each unstorable code unit becomes U+FDD0 followed by its four lowercase hex digits. */
export function escapeText(text: string): string {
  return text.replace(
    UNSTORABLE,
    (unit) => ESCAPE_CHARACTER + unit.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/** The inverse of `escapeText`. */
export function unescapeText(text: string): string {
  if (!text.includes(ESCAPE_CHARACTER)) return text;
  return text.replace(ESCAPED, (_match, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/**
 * Serializes a JSON value for a `jsonb` column. Returns `isEscaped: false` and plain JSON when nothing
 * needs escaping (the common case, one regular-expression test), otherwise JSON whose every string
 * (keys included) went through `escapeText`.
 */
export function toStorableJson(value: unknown): { json: string; isEscaped: boolean } {
  const json = JSON.stringify(value);
  if (!MAY_NEED_ESCAPING.test(json)) return { json, isEscaped: false };
  return { json: JSON.stringify(mapStrings(value, escapeText)), isEscaped: true };
}

/** Restores every string (keys included) of a value read back from an escaped payload. */
export function fromStoredJson<T>(value: T): T {
  return mapStrings(value, unescapeText) as T;
}

function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === "string") return map(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, map));
  if (value !== null && typeof value === "object") {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      // defineProperty, not assignment: a key named `__proto__` stays a plain key.
      Object.defineProperty(result, map(key), {
        value: mapStrings(item, map),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return result;
  }
  return value;
}
