/** A FileSystem over a host directory (node:fs), for tests where real processes and file tools share files. */
import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type DirEntry,
  FileError,
  type FileKind,
  type FileStat,
  type FileSystem,
  fileErrorCodeOf,
  type ListOptions,
  normalizePath,
} from "@outrig/core";

function toFileError(error: unknown, path: string): FileError {
  const code = (error as { code?: string }).code ?? "";
  return new FileError(fileErrorCodeOf(code), path, `${code || "error"}: ${path}`, { cause: error });
}

function kindOf(entry: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): FileKind {
  if (entry.isSymbolicLink()) return "symlink";
  if (entry.isDirectory()) return "directory";
  return entry.isFile() ? "file" : "other";
}

export class LocalDirectoryFileSystem implements FileSystem {
  readonly #root: string;

  /** @param root host directory that this file system's "/" maps to. */
  constructor(root: string) {
    this.#root = root;
  }

  #host(path: string): { inner: string; host: string } {
    const inner = normalizePath(path);
    return { inner, host: join(this.#root, inner) };
  }

  async read(path: string): Promise<Uint8Array> {
    const { inner, host } = this.#host(path);
    try {
      return new Uint8Array(await readFile(host));
    } catch (error) {
      throw toFileError(error, inner);
    }
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    const { inner, host } = this.#host(path);
    try {
      await mkdir(join(host, ".."), { recursive: true });
      await writeFile(host, data);
    } catch (error) {
      // mkdir -p reports a file in the way of a parent folder as EEXIST.
      if ((error as { code?: string }).code === "EEXIST") {
        throw new FileError("not_directory", inner, `Not a directory: a parent of ${inner} is a file`, {
          cause: error,
        });
      }
      throw toFileError(error, inner);
    }
  }

  async stat(path: string): Promise<FileStat | null> {
    const { inner, host } = this.#host(path);
    try {
      const info = await stat(host);
      return { kind: kindOf(info), size: info.size, mtimeMs: info.mtimeMs };
    } catch (error) {
      const fileError = toFileError(error, inner);
      if (fileError.code === "not_found" || fileError.code === "not_directory") return null;
      throw fileError;
    }
  }

  async list(path: string, options: ListOptions = {}): Promise<DirEntry[]> {
    const { inner, host } = this.#host(path);
    const entries: DirEntry[] = [];
    const visit = async (directory: string, relative: string): Promise<void> => {
      const children = await readdir(directory, { withFileTypes: true });
      for (const child of children.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        if (options.limit !== undefined && entries.length >= options.limit) return;
        const childPath = join(directory, child.name);
        const childRelative = relative === "" ? child.name : `${relative}/${child.name}`;
        const info = await lstat(childPath);
        entries.push({ path: childRelative, kind: kindOf(info), size: info.size, mtimeMs: info.mtimeMs });
        if (options.recursive && info.isDirectory()) await visit(childPath, childRelative);
      }
    };
    try {
      await visit(host, "");
    } catch (error) {
      throw toFileError(error, inner);
    }
    return entries;
  }

  async remove(path: string): Promise<void> {
    const { inner, host } = this.#host(path);
    try {
      await lstat(host);
      await rm(host, { recursive: true });
    } catch (error) {
      throw toFileError(error, inner);
    }
  }
}
