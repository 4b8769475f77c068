/** Loads the vault's master key from config or from a 0600 key file that is created on first use. */
import { createHash, randomBytes } from "node:crypto";
import { open, readFile, stat } from "node:fs/promises";
import { ConfigError } from "@outrig/core";

export const MASTER_KEY_BYTES = 32;

/** A 256-bit AES key and its id (stored beside every ciphertext it makes). */
export interface MasterKey {
  readonly id: string;
  readonly key: Buffer;
}

export interface LoadMasterKeyOptions {
  /** Base64 of 32 bytes (the server passes `OUTRIG_MASTER_KEY`). Wins over `keyFile`. */
  readonly masterKey?: string;
  /** Path of the key file (e.g. `<home>/master.key`), created with mode 0600 when missing. */
  readonly keyFile?: string;
}

/**
 * Returns the master key. Throws ConfigError `master_key_invalid` for a value that is not base64 of 32
 * bytes, `master_key_file_insecure` for a key file readable by group or others, and
 * `master_key_missing` when neither option is given. Messages never contain key material.
 */
export async function loadMasterKey(options: LoadMasterKeyOptions): Promise<MasterKey> {
  if (options.masterKey !== undefined) return masterKeyFromBase64(options.masterKey, "masterKey");
  if (options.keyFile === undefined) {
    throw new ConfigError("master_key_missing", "set masterKey (OUTRIG_MASTER_KEY) or a master key file");
  }
  const file = options.keyFile;
  try {
    // "wx" fails when the file exists, so two first starts cannot both write a key.
    const handle = await open(file, "wx", 0o600);
    try {
      await handle.writeFile(`${randomBytes(MASTER_KEY_BYTES).toString("base64")}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as { code?: string }).code !== "EEXIST") {
      throw new ConfigError("master_key_file_unwritable", `cannot create the master key file ${file}`, {
        cause: error,
      });
    }
  }
  const info = await stat(file);
  if ((info.mode & 0o077) !== 0) {
    throw new ConfigError(
      "master_key_file_insecure",
      `master key file ${file} has mode ${(info.mode & 0o777).toString(8)}; run chmod 600 on it`,
    );
  }
  const text = (await readFile(file, "utf8")).trim();
  return masterKeyFromBase64(text, file);
}

/** Parses base64 of exactly 32 bytes; `source` names the config key or file in the error. */
export function masterKeyFromBase64(value: string, source: string): MasterKey {
  const trimmed = value.trim();
  const key = Buffer.from(trimmed, "base64");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || key.length !== MASTER_KEY_BYTES) {
    throw new ConfigError(
      "master_key_invalid",
      `${source} must be base64 of exactly ${MASTER_KEY_BYTES} bytes (e.g. \`openssl rand -base64 32\`)`,
    );
  }
  return { id: masterKeyId(key), key };
}

/** A short public fingerprint of a key: `mk_` + 16 hex chars of sha256 over a domain tag and the key. */
export function masterKeyId(key: Buffer): string {
  return `mk_${createHash("sha256").update("outrig-master-key-id\0").update(key).digest("hex").slice(0, 16)}`;
}
