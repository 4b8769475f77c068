/**
 * A fixed tree of files held in memory, readable and listable like any mount, never writable: e.g. a
 * session's `/skills`, the pinned versions of its agent's skills. Directories are the paths' prefixes.
 * Writes and removes fail with FileError `read_only` carrying the given hint.
 */
import type { DirEntry, FileStat, ListOptions } from "../sandbox/sandbox.js";
import { FileError } from "../sandbox/sandbox-errors.js";
import type { FileSystem } from "./file-system.js";

/** One file of the tree: its path relative to the tree's root (`/`-separated, no leading slash). */
export interface FileTreeEntry {
  readonly path: string;
  readonly content: Uint8Array;
}

export class ReadOnlyFileTree implements FileSystem {
  readonly #files = new Map<string, Uint8Array>();
  readonly #directories = new Set<string>(["/"]);
  readonly #writeHint: string;

  constructor(files: readonly FileTreeEntry[], writeHint: string) {
    for (const file of files) {
      const segments = file.path.split("/").filter((segment) => segment !== "");
      if (segments.length === 0 || segments.some((segment) => segment === "." || segment === ".."))
        throw new FileError("invalid_path", file.path, `Bad path in a file tree: ${file.path}`);
      this.#files.set(`/${segments.join("/")}`, file.content);
      for (let depth = 1; depth < segments.length; depth++)
        this.#directories.add(`/${segments.slice(0, depth).join("/")}`);
    }
    this.#writeHint = writeHint;
  }

  async read(path: string): Promise<Uint8Array> {
    const key = normalize(path);
    const content = this.#files.get(key);
    if (content) return content;
    if (this.#directories.has(key)) throw new FileError("is_directory", path, `Is a directory: ${path}`);
    throw new FileError("not_found", path, `No such file: ${path}`);
  }

  async write(path: string): Promise<void> {
    throw new FileError("read_only", path, this.#writeHint);
  }

  async remove(path: string): Promise<void> {
    throw new FileError("read_only", path, this.#writeHint);
  }

  async stat(path: string): Promise<FileStat | null> {
    const key = normalize(path);
    const content = this.#files.get(key);
    if (content) return { kind: "file", size: content.byteLength, mtimeMs: 0 };
    return this.#directories.has(key) ? { kind: "directory", size: 0, mtimeMs: 0 } : null;
  }

  async list(path: string, options: ListOptions = {}): Promise<DirEntry[]> {
    const key = normalize(path);
    if (this.#files.has(key)) throw new FileError("not_directory", path, `Not a directory: ${path}`);
    if (!this.#directories.has(key)) throw new FileError("not_found", path, `No such directory: ${path}`);
    const prefix = key === "/" ? "/" : `${key}/`;
    const entries: DirEntry[] = [];
    const visit = (kind: "file" | "directory", full: string, size: number) => {
      if (full === key || !full.startsWith(prefix)) return;
      const relative = full.slice(prefix.length);
      if (!options.recursive && relative.includes("/")) return;
      entries.push({ path: relative, kind, size, mtimeMs: 0 });
    };
    for (const directory of this.#directories) visit("directory", directory, 0);
    for (const [file, content] of this.#files) visit("file", file, content.byteLength);
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return options.limit === undefined ? entries : entries.slice(0, options.limit);
  }
}

function normalize(path: string): string {
  const segments = path.split("/").filter((segment) => segment !== "" && segment !== ".");
  return `/${segments.join("/")}`;
}
