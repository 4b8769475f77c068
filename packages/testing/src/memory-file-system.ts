/**
 * An in-memory FileSystem for fast tests: files with mtimes, folders implied by files (plus empty folders
 * made by `mkdir`), and the same FileError codes as real backends.
 */
import {
  type DirEntry,
  FileError,
  type FileStat,
  type FileSystem,
  type ListOptions,
  normalizePath,
} from "@outrig/core";

interface StoredFile {
  data: Uint8Array;
  mtimeMs: number;
}

export interface MemoryFileSystemOptions {
  /** Milliseconds since the epoch; mtimes are kept strictly increasing even when it stands still. */
  readonly clock?: () => number;
}

function parentOf(path: string): string {
  const index = path.lastIndexOf("/");
  return index <= 0 ? "/" : path.slice(0, index);
}

export class MemoryFileSystem implements FileSystem {
  readonly #files = new Map<string, StoredFile>();
  readonly #directories = new Set<string>(["/"]);
  readonly #clock: () => number;
  #lastMtime = 0;

  /** @param files initial contents by absolute path (strings are UTF-8 encoded). */
  constructor(
    files: Readonly<Record<string, string | Uint8Array>> = {},
    options: MemoryFileSystemOptions = {},
  ) {
    this.#clock = options.clock ?? Date.now;
    for (const [path, content] of Object.entries(files)) this.#put(normalizePath(path), content);
  }

  #nextMtime(): number {
    this.#lastMtime = Math.max(this.#clock(), this.#lastMtime + 1);
    return this.#lastMtime;
  }

  #isDirectory(path: string): boolean {
    return this.#directories.has(path);
  }

  #put(path: string, content: string | Uint8Array): void {
    if (path === "/" || this.#isDirectory(path))
      throw new FileError("is_directory", path, `Is a directory: ${path}`);
    const directories: string[] = [];
    for (let parent = parentOf(path); ; parent = parentOf(parent)) {
      if (this.#files.has(parent)) throw new FileError("not_directory", parent, `Not a directory: ${parent}`);
      directories.push(parent);
      if (parent === "/") break;
    }
    for (const directory of directories) this.#directories.add(directory);
    const data = typeof content === "string" ? new TextEncoder().encode(content) : new Uint8Array(content);
    this.#files.set(path, { data, mtimeMs: this.#nextMtime() });
  }

  /** Creates a folder (and its parents). */
  mkdir(path: string): void {
    const normalized = normalizePath(path);
    for (let directory = normalized; ; directory = parentOf(directory)) {
      if (this.#files.has(directory))
        throw new FileError("not_directory", directory, `Not a directory: ${directory}`);
      this.#directories.add(directory);
      if (directory === "/") break;
    }
  }

  /** Sets a file's mtime, e.g. to simulate an outside change or order Glob results. */
  touch(path: string, mtimeMs?: number): void {
    const file = this.#files.get(normalizePath(path));
    if (file === undefined) throw new FileError("not_found", path, `No such file: ${path}`);
    file.mtimeMs = mtimeMs ?? this.#nextMtime();
  }

  async read(path: string): Promise<Uint8Array> {
    const normalized = normalizePath(path);
    const file = this.#files.get(normalized);
    if (file !== undefined) return new Uint8Array(file.data);
    if (this.#isDirectory(normalized))
      throw new FileError("is_directory", normalized, `Is a directory: ${normalized}`);
    throw new FileError("not_found", normalized, `No such file: ${normalized}`);
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    this.#put(normalizePath(path), data);
  }

  async stat(path: string): Promise<FileStat | null> {
    const normalized = normalizePath(path);
    const file = this.#files.get(normalized);
    if (file !== undefined) return { kind: "file", size: file.data.length, mtimeMs: file.mtimeMs };
    if (this.#isDirectory(normalized)) return { kind: "directory", size: 0, mtimeMs: 0 };
    return null;
  }

  async list(path: string, options: ListOptions = {}): Promise<DirEntry[]> {
    const root = normalizePath(path);
    if (this.#files.has(root)) throw new FileError("not_directory", root, `Not a directory: ${root}`);
    if (!this.#isDirectory(root)) throw new FileError("not_found", root, `No such directory: ${root}`);
    const prefix = root === "/" ? "/" : `${root}/`;
    const entries: DirEntry[] = [];
    const consider = (fullPath: string, entry: Omit<DirEntry, "path">) => {
      if (!fullPath.startsWith(prefix) || fullPath === root) return;
      const relative = fullPath.slice(prefix.length);
      if (!options.recursive && relative.includes("/")) return;
      entries.push({ path: relative, ...entry });
    };
    for (const directory of this.#directories)
      consider(directory, { kind: "directory", size: 0, mtimeMs: 0 });
    for (const [filePath, file] of this.#files) {
      consider(filePath, { kind: "file", size: file.data.length, mtimeMs: file.mtimeMs });
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return options.limit === undefined ? entries : entries.slice(0, options.limit);
  }

  async remove(path: string): Promise<void> {
    const normalized = normalizePath(path);
    if (this.#files.delete(normalized)) return;
    if (!this.#isDirectory(normalized) || normalized === "/") {
      throw new FileError("not_found", normalized, `No such file: ${normalized}`);
    }
    const prefix = `${normalized}/`;
    for (const filePath of [...this.#files.keys()])
      if (filePath.startsWith(prefix)) this.#files.delete(filePath);
    for (const directory of [...this.#directories]) {
      if (directory === normalized || directory.startsWith(prefix)) this.#directories.delete(directory);
    }
  }
}
