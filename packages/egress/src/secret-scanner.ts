/**
 * Finds secret values and canaries in bytes: plain, percent-encoded (as `encodeURIComponent` writes it
 * and every byte escaped), hex (either case) and base64/base64url at every byte alignment, so a value
 * inside a larger encoded blob (e.g. Basic auth) is found too; each of these also of the reversed
 * value, and each reversed. A tripwire, not DLP: compressed (undecoded) or encrypted copies, and
 * transforms not listed here, are not recognized.
 */
import { Transform, type TransformCallback } from "node:stream";

/** Values shorter than this are not scanned: they would match ordinary traffic. */
export const MIN_SCANNED_SECRET_LENGTH = 8;

export interface ScannedValue {
  /** What to report on a match: a secret's name or a canary's label. Never the value. */
  readonly label: string;
  readonly value: string;
}

export interface SecretScanner {
  /** True when there is nothing to look for. */
  readonly isEmpty: boolean;
  /** Longest needle in bytes: a streaming scan must keep this many bytes minus one. */
  readonly maxNeedleBytes: number;
  /** Label of the first value found in `data`, or null. */
  find(data: Buffer | string): string | null;
}

export function createSecretScanner(values: readonly ScannedValue[]): SecretScanner {
  const needles: { label: string; bytes: Buffer }[] = [];
  for (const { label, value } of values) {
    if (value.length < MIN_SCANNED_SECRET_LENGTH) continue;
    for (const variant of transforms(value)) {
      if (variant.length >= MIN_SCANNED_SECRET_LENGTH) {
        needles.push({ label, bytes: Buffer.from(variant, "latin1") });
      }
    }
  }
  const maxNeedleBytes = needles.reduce((max, needle) => Math.max(max, needle.bytes.length), 0);
  return {
    isEmpty: needles.length === 0,
    maxNeedleBytes,
    find(data) {
      const haystack = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      for (const needle of needles) {
        if (haystack.includes(needle.bytes)) return needle.label;
      }
      return null;
    },
  };
}

/**
 * Passes bytes through, holding back the last `maxNeedleBytes - 1`, so no byte of a value is
 * forwarded before the scan that would find it. Fails with `SecretInRequestError` on a match.
 */
export function createScanningTransform(scanner: SecretScanner): Transform {
  const holdBack = Math.max(scanner.maxNeedleBytes - 1, 0);
  let tail = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      const data = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
      const label = scanner.find(data);
      if (label !== null) {
        callback(new SecretInRequestError(label));
        return;
      }
      const keep = Math.min(holdBack, data.length);
      tail = Buffer.from(data.subarray(data.length - keep));
      if (data.length > keep) this.push(data.subarray(0, data.length - keep));
      callback();
    },
    flush(callback: TransformCallback) {
      if (tail.length > 0) this.push(tail);
      callback();
    },
  });
}

export class SecretInRequestError extends Error {
  readonly label: string;
  constructor(label: string) {
    super(`the request body carries the value of ${label}`);
    this.name = "SecretInRequestError";
    this.label = label;
  }
}

/** Default `createFragmentScanner` length: long enough that ordinary traffic never matches by chance. */
export const SECRET_FRAGMENT_LENGTH = 12;

/**
 * A stricter scanner for a value that must never come back at all: it finds any `fragmentLength`
 * characters in a row of any transform `createSecretScanner` knows, ignoring case, so a value split
 * into pieces, or upper-cased, is found too. Meant for a whole buffered body; time linear in the input.
 */
export function createFragmentScanner(
  values: readonly ScannedValue[],
  fragmentLength = SECRET_FRAGMENT_LENGTH,
): SecretScanner {
  // fragment (lower-cased Latin-1) -> label, and the rolling hashes of the fragments for a fast
  // first test: one multiply-add per input byte, a string only on a hash hit.
  const fragments = new Map<string, string>();
  for (const { label, value } of values) {
    if (value.length < MIN_SCANNED_SECRET_LENGTH) continue;
    for (const variant of transforms(value)) {
      const lower = variant.toLowerCase();
      // Shorter than a fragment (a short value's plain form): the whole variant is the needle.
      const length = Math.min(fragmentLength, lower.length);
      for (let start = 0; start + length <= lower.length; start += 1) {
        const fragment = lower.slice(start, start + length);
        if (!fragments.has(fragment)) fragments.set(fragment, label);
      }
    }
  }
  // Per fragment length: the fragments' rolling hashes, and a bitmap over their top 20 bits that
  // rules out almost every window with one array read.
  const byLength = new Map<number, { hashes: Set<number>; filter: Uint32Array }>();
  for (const fragment of fragments.keys()) {
    let entry = byLength.get(fragment.length);
    if (!entry) {
      entry = { hashes: new Set(), filter: new Uint32Array(FILTER_WORDS) };
      byLength.set(fragment.length, entry);
    }
    const hash = rollingHash(Buffer.from(fragment, "latin1"), 0, fragment.length);
    entry.hashes.add(hash);
    const slot = hash >>> FILTER_SHIFT;
    entry.filter[slot >>> 5] = (entry.filter[slot >>> 5] ?? 0) | (1 << (slot & 31));
  }
  return {
    isEmpty: fragments.size === 0,
    maxNeedleBytes: Math.max(0, ...byLength.keys()),
    find(data) {
      const haystack = typeof data === "string" ? Buffer.from(data, "utf8") : data;
      for (const [length, { hashes, filter }] of byLength) {
        if (haystack.length < length) continue;
        const drop = power(length - 1);
        let hash = rollingHash(haystack, 0, length);
        for (let start = 0; ; start += 1) {
          const slot = hash >>> FILTER_SHIFT;
          if (((filter[slot >>> 5] ?? 0) & (1 << (slot & 31))) !== 0 && hashes.has(hash)) {
            const window = haystack.toString("latin1", start, start + length).toLowerCase();
            const label = fragments.get(window);
            if (label !== undefined) return label;
          }
          if (start + length >= haystack.length) break;
          const out = LOWER[haystack[start] ?? 0] ?? 0;
          const next = LOWER[haystack[start + length] ?? 0] ?? 0;
          hash = (Math.imul((hash - Math.imul(out, drop)) | 0, HASH_BASE) + next) | 0;
        }
      }
      return null;
    },
  };
}

const HASH_BASE = 257;
const FILTER_SHIFT = 12;
const FILTER_WORDS = 2 ** (32 - FILTER_SHIFT) / 32;
/** Latin-1 lower-casing as `String.prototype.toLowerCase` does it (A-Z, and À-Þ except ×). */
const LOWER = Uint8Array.from({ length: 256 }, (_, byte) =>
  (byte >= 0x41 && byte <= 0x5a) || (byte >= 0xc0 && byte <= 0xde && byte !== 0xd7) ? byte | 0x20 : byte,
);

/** Hash of `bytes[start, start + length)`, lower-cased. */
function rollingHash(bytes: Buffer, start: number, length: number): number {
  let hash = 0;
  for (let index = start; index < start + length; index += 1) {
    hash = (Math.imul(hash, HASH_BASE) + (LOWER[bytes[index] ?? 0] ?? 0)) | 0;
  }
  return hash;
}

function power(exponent: number): number {
  let result = 1;
  for (let index = 0; index < exponent; index += 1) result = Math.imul(result, HASH_BASE);
  return result;
}

/** Every form the scanners look for: the encodings of the value and of its reversal, and each reversed. */
function transforms(value: string): string[] {
  const forward = Buffer.from(value, "utf8");
  const backward = Buffer.from(forward).reverse();
  const variants = new Set<string>();
  for (const bytes of [forward, backward]) {
    for (const variant of encodings(bytes)) {
      variants.add(variant);
      variants.add([...variant].reverse().join(""));
    }
  }
  return [...variants];
}

/** Encodings of `value`, as Latin-1 strings (one character per byte: needles are compared as bytes). */
function encodings(value: Buffer): string[] {
  const hex = value.toString("hex");
  const variants = new Set<string>([value.toString("latin1"), hex, hex.toUpperCase()]);
  const utf8 = value.toString("utf8");
  // A reversed multi-byte value is not UTF-8; only a value that is gets its URL-encoded form.
  if (Buffer.from(utf8, "utf8").equals(value)) {
    variants.add(Buffer.from(encodeURIComponent(utf8), "utf8").toString("latin1"));
  }
  variants.add(hex.replace(/../g, "%$&"));
  variants.add(hex.toUpperCase().replace(/../g, "%$&"));
  for (let offset = 0; offset < 3; offset += 1) {
    // Prefix `offset` bytes, then keep only the characters that depend on the value alone.
    const encoded = Buffer.concat([Buffer.alloc(offset), value]).toString("base64");
    const start = offset === 0 ? 0 : offset === 1 ? 2 : 3;
    const end = Math.floor((8 * (offset + value.length)) / 6);
    const stable = encoded.slice(start, end);
    variants.add(stable);
    variants.add(stable.replaceAll("+", "-").replaceAll("/", "_"));
  }
  return [...variants];
}
