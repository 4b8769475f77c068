/**
 * The file namespace tools see. Backends get absolute paths relative to their own mount point
 * (`/a.txt` for `/workspace/a.txt`) and never know where they are mounted.
 * Failures are `FileError`s with a stable `code`.
 */
import type { DirEntry, FileCallOptions, FileStat, ListOptions } from "../sandbox/sandbox.js";

export interface FileSystem {
  read(path: string): Promise<Uint8Array>;
  /**
   * Creates parent directories. `options.idempotencyKey` names the tool call (backends that snapshot
   * or journal their changes use it; others ignore it), as for `remove`.
   */
  write(path: string, data: Uint8Array, options?: FileCallOptions): Promise<void>;
  /** Resolves null when the path does not exist. */
  stat(path: string): Promise<FileStat | null>;
  list(path: string, options?: ListOptions): Promise<DirEntry[]>;
  remove(path: string, options?: FileCallOptions): Promise<void>;
}
