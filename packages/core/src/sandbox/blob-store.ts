/**
 * Storage for opaque blobs (workspace snapshots). Keys are `/`-separated names of
 * `[A-Za-z0-9._-]` segments, so the same keys work for a local directory and for S3-compatible
 * object stores.
 */
export type BlobBody = Uint8Array | AsyncIterable<Uint8Array>;

export interface BlobStore {
  /** Stores `body` under `key`, replacing any previous blob. The blob is visible only once complete. */
  put(key: string, body: BlobBody): Promise<void>;
  /** The blob's bytes as a stream, or null when there is no blob under `key`. */
  get(key: string): Promise<AsyncIterable<Uint8Array> | null>;
  has(key: string): Promise<boolean>;
  /** Removes the blob; a no-op when it does not exist. */
  delete(key: string): Promise<void>;
  /** Keys that start with `prefix` + "/" (a session's snapshots), in no particular order. */
  list(prefix: string): Promise<string[]>;
  /** Removes every blob whose key starts with `prefix` + "/" (S3: list, then batch delete). */
  deletePrefix(prefix: string): Promise<void>;
}

const KEY_PATTERN = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** True for keys every BlobStore accepts: no empty, "." or ".." segments, no leading "/". */
export function isValidBlobKey(key: string): boolean {
  return KEY_PATTERN.test(key) && key.split("/").every((segment) => segment !== "." && segment !== "..");
}
