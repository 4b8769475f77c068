/**
 * A read-only directory whose only entries are other mounts, e.g. `/memories` over `/memories/org` and
 * `/memories/me`: it makes the parent stat-able and listable (recursively through the children) so tools
 * can walk it. Writes fail with FileError `read_only` carrying the given hint.
 */
import type { DirEntry, FileStat, ListOptions } from "../sandbox/sandbox.js";
import { FileError } from "../sandbox/sandbox-errors.js";
import type { FileSystem } from "./file-system.js";

export class MountParentFileSystem implements FileSystem {
  readonly #children: ReadonlyMap<string, FileSystem>;
  readonly #writeHint: string;

  /**
   * @param children child name (one segment) → the file system mounted there.
   * @param writeHint the message of the `read_only` error a write here raises.
   */
  constructor(children: Readonly<Record<string, FileSystem>>, writeHint: string) {
    for (const name of Object.keys(children)) {
      if (name === "" || name.includes("/"))
        throw new FileError("invalid_path", name, `Bad child name: ${name}`);
    }
    this.#children = new Map(Object.entries(children).sort(([a], [b]) => (a < b ? -1 : 1)));
    this.#writeHint = writeHint;
  }

  async read(path: string): Promise<Uint8Array> {
    if (path === "/" || this.#children.has(path.slice(1))) {
      throw new FileError("is_directory", path, `Is a directory: ${path}`);
    }
    throw new FileError("not_found", path, `No such file: ${path}`);
  }

  async write(path: string, _data: Uint8Array): Promise<void> {
    throw new FileError("read_only", path, this.#writeHint);
  }

  async stat(path: string): Promise<FileStat | null> {
    if (path === "/" || this.#children.has(path.slice(1))) return { kind: "directory", size: 0, mtimeMs: 0 };
    return null;
  }

  async list(path: string, options: ListOptions = {}): Promise<DirEntry[]> {
    if (path !== "/") {
      if (this.#children.has(path.slice(1))) return [];
      throw new FileError("not_found", path, `No such directory: ${path}`);
    }
    const entries: DirEntry[] = [];
    for (const [name, fileSystem] of this.#children) {
      entries.push({ path: name, kind: "directory", size: 0, mtimeMs: 0 });
      if (!options.recursive) continue;
      for (const entry of await fileSystem.list("/", { recursive: true })) {
        entries.push({ ...entry, path: `${name}/${entry.path}` });
      }
    }
    return options.limit === undefined ? entries : entries.slice(0, options.limit);
  }

  async remove(path: string): Promise<void> {
    throw new FileError("read_only", path, this.#writeHint);
  }
}
