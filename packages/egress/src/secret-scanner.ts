/**
 * Finds secret values and canaries in outbound bytes: plain, percent-encoded, hex (either case) and
 * base64/base64url at every byte alignment, so a value inside a larger encoded blob (e.g. Basic auth)
 * is found too. A tripwire, not DLP: compressed or encrypted copies are not recognized.
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
    for (const variant of encodings(Buffer.from(value, "utf8"))) {
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

function encodings(value: Buffer): string[] {
  const text = value.toString("utf8");
  const variants = new Set<string>([text, encodeURIComponent(text), value.toString("hex")]);
  variants.add(value.toString("hex").toUpperCase());
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
