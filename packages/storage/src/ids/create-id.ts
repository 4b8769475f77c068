/** Random identifiers: prefixed ids (`ses_…`) and base62 secrets. Uses the OS CSPRNG, no clock. */
import { randomBytes } from "node:crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A uniformly random base62 string of `length` characters (rejection sampling, so no modulo bias). */
export function randomBase62(length: number): string {
  let result = "";
  while (result.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 62 * 4: bytes at or above it would bias the first characters.
      if (byte >= 248) continue;
      result += BASE62[byte % 62];
      if (result.length === length) break;
    }
  }
  return result;
}

/**
 * `ses` is the id of sessions made before the Managed Agents API; new ones are `sesn`. The other
 * prefixes are the API's own: agents, environments, session events, vaults and their credentials,
 * memory stores, memories and memory versions, skills and files.
 */
export type IdPrefix =
  | "org"
  | "usr"
  | "key"
  | "ses"
  | "sesn"
  | "sesrsc"
  | "agent"
  | "env"
  | "sevt"
  | "vlt"
  | "vcrd"
  | "memstore"
  | "mem"
  | "memver"
  | "skill"
  | "file";

/** `<prefix>_<20 base62 chars>` (about 119 bits of randomness). */
export function createId(prefix: IdPrefix): string {
  return `${prefix}_${randomBase62(20)}`;
}
