/**
 * The file namespace tools see. Backends get absolute paths relative to their own mount point
 * (`/a.txt` for `/workspace/a.txt`) and never know where they are mounted.
 * Failures are `FileError`s with a stable `code`.
 */
import type { DirEntry, FileStat, ListOptions } from "../sandbox/sandbox.js";

export interface FileSystem {
  read(path: string): Promise<Uint8Array>;
  /** Creates parent directories. */
  write(path: string, data: Uint8Array): Promise<void>;
  /** Resolves null when the path does not exist. */
  stat(path: string): Promise<FileStat | null>;
  list(path: string, options?: ListOptions): Promise<DirEntry[]>;
  remove(path: string): Promise<void>;
}
