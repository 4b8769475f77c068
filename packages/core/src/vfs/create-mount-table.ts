/** Routes absolute paths to file systems by longest mount prefix. Pure path logic plus delegation. */

import type { DirEntry, FileCallOptions, FileStat, ListOptions } from "../sandbox/sandbox.js";
import { FileError } from "../sandbox/sandbox-errors.js";
import type { FileSystem } from "./file-system.js";
import { rebaseFileError } from "./rebase-file-error.js";

export interface Mount {
  /** Absolute, normalized, no trailing slash except for "/". */
  readonly prefix: string;
  readonly fileSystem: FileSystem;
}

export interface ResolvedPath {
  readonly mount: Mount;
  /** Path relative to the mount, always starting with "/". */
  readonly innerPath: string;
}

export const MAX_PATH_LENGTH = 4096;

/**
 * Normalizes an absolute path: collapses `//` and `.`, resolves `..` without ever leaving `/`.
 * Throws FileError("invalid_path") for relative paths, NUL bytes and over-long paths.
 */
export function normalizePath(path: string): string {
  if (typeof path !== "string" || path.length === 0)
    throw new FileError("invalid_path", String(path), "Path is empty.");
  if (path.includes("\0")) throw new FileError("invalid_path", path, "Path contains a NUL byte.");
  if (path.length > MAX_PATH_LENGTH) {
    throw new FileError(
      "invalid_path",
      path.slice(0, 80),
      `Path is longer than ${MAX_PATH_LENGTH} characters.`,
    );
  }
  if (!path.startsWith("/")) throw new FileError("invalid_path", path, `Path must be absolute: ${path}`);
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

export class MountTable implements FileSystem {
  readonly #mounts: Mount[];

  constructor(mounts: readonly Mount[]) {
    this.#mounts = mounts
      .map((mount) => ({ ...mount, prefix: normalizePath(mount.prefix) }))
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  resolve(path: string): ResolvedPath {
    const normalized = normalizePath(path);
    for (const mount of this.#mounts) {
      if (mount.prefix === "/") return { mount, innerPath: normalized };
      if (normalized === mount.prefix) return { mount, innerPath: "/" };
      if (normalized.startsWith(`${mount.prefix}/`)) {
        return { mount, innerPath: normalized.slice(mount.prefix.length) };
      }
    }
    throw new FileError("not_found", normalized, `No file system is mounted at ${normalized}`);
  }

  read(path: string): Promise<Uint8Array> {
    return this.#route(path, (fileSystem, innerPath) => fileSystem.read(innerPath));
  }
  write(path: string, data: Uint8Array, options?: FileCallOptions): Promise<void> {
    return this.#route(path, (fileSystem, innerPath) => fileSystem.write(innerPath, data, options));
  }
  stat(path: string): Promise<FileStat | null> {
    return this.#route(path, (fileSystem, innerPath) => fileSystem.stat(innerPath));
  }
  list(path: string, options?: ListOptions): Promise<DirEntry[]> {
    return this.#route(path, (fileSystem, innerPath) => fileSystem.list(innerPath, options));
  }
  remove(path: string, options?: FileCallOptions): Promise<void> {
    return this.#route(path, (fileSystem, innerPath) => fileSystem.remove(innerPath, options));
  }

  /** Runs `work` on the mount's file system; its FileErrors name the path the caller used, not the inner one. */
  async #route<T>(path: string, work: (fileSystem: FileSystem, innerPath: string) => Promise<T>): Promise<T> {
    const { mount, innerPath } = this.resolve(path);
    try {
      return await work(mount.fileSystem, innerPath);
    } catch (error) {
      throw rebaseFileError(error, "/", mount.prefix);
    }
  }
}

export function createMountTable(mounts: readonly Mount[]): MountTable {
  return new MountTable(mounts);
}
