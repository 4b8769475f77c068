/**
 * A session's FileSystem over one PostgresFileStore namespace. It remembers, per path, the version this
 * session last saw and makes every write a compare-and-swap against it, so a write based on a stale read
 * fails with FileError `conflict` instead of silently replacing another session's change.
 */
import { type DirEntry, FileError, type FileStat, type FileSystem, type ListOptions } from "@outrig/core";
import type { FileAuthor, FileScope, PostgresFileStore } from "./postgres-file-store.js";

export interface DatabaseFileSystemOptions {
  readonly store: PostgresFileStore;
  readonly scope: FileScope;
  /** Stored on every version; `turn` may be a function so one instance serves a whole session. */
  readonly author?: {
    readonly userId?: string;
    readonly sessionId?: string;
    readonly turn?: number | (() => number);
  };
  /** When set, writes and removals fail with FileError `permission_denied` and this message. */
  readonly writeDeniedMessage?: string;
}

/**
 * Which version a write is checked against:
 * - `read` records the version it returned;
 * - `stat` records the head version when the path is absent (0 or a tombstone), and a file's version only
 *   when nothing is recorded yet (so the stat the tools make after their own write cannot make this
 *   session "know" a version another session wrote in between);
 * - `write`/`remove` record the version they created.
 * A path with nothing recorded is written unconditionally.
 */
export class DatabaseFileSystem implements FileSystem {
  readonly #store: PostgresFileStore;
  readonly #scope: FileScope;
  readonly #author: DatabaseFileSystemOptions["author"];
  readonly #writeDeniedMessage: string | undefined;
  readonly #known = new Map<string, number>();

  constructor(options: DatabaseFileSystemOptions) {
    this.#store = options.store;
    this.#scope = options.scope;
    this.#author = options.author;
    this.#writeDeniedMessage = options.writeDeniedMessage;
  }

  /** The version a write of `path` would be checked against, if any (for tests and diagnostics). */
  knownVersion(path: string): number | undefined {
    return this.#known.get(path);
  }

  /**
   * Records a version this session wrote by another way (a bash command's change committed by the
   * session's memory sync), so its next write here is checked against it.
   */
  noteVersion(path: string, version: number): void {
    this.#known.set(path, version);
  }

  async read(path: string): Promise<Uint8Array> {
    const file = await this.#store.read(this.#scope, path);
    this.#known.set(file.path, file.version);
    return file.content;
  }

  async write(path: string, data: Uint8Array): Promise<void> {
    this.#checkWritable(path);
    const result = await this.#store.write(this.#scope, path, data, {
      author: this.#currentAuthor(),
      expectedVersion: this.#known.get(path),
    });
    this.#known.set(result.path, result.version);
  }

  async stat(path: string): Promise<FileStat | null> {
    const found = await this.#store.lookup(this.#scope, path);
    switch (found.kind) {
      case "file":
        if (!this.#known.has(path)) this.#known.set(path, found.version);
        return { kind: "file", size: found.size, mtimeMs: found.mtimeMs };
      case "directory":
        return { kind: "directory", size: 0, mtimeMs: 0 };
      case "absent":
        this.#known.set(path, found.version);
        return null;
    }
  }

  list(path: string, options?: ListOptions): Promise<DirEntry[]> {
    return this.#store.list(this.#scope, path, options);
  }

  async remove(path: string): Promise<void> {
    this.#checkWritable(path);
    const results = await this.#store.remove(this.#scope, path, {
      author: this.#currentAuthor(),
      expectedVersion: this.#known.get(path),
    });
    for (const result of results) this.#known.set(result.path, result.version);
  }

  #checkWritable(path: string): void {
    if (this.#writeDeniedMessage !== undefined) {
      throw new FileError("permission_denied", path, this.#writeDeniedMessage);
    }
  }

  #currentAuthor(): FileAuthor {
    const author = this.#author;
    if (author === undefined) return {};
    const turn = typeof author.turn === "function" ? author.turn() : author.turn;
    return {
      ...(author.userId === undefined ? {} : { userId: author.userId }),
      ...(author.sessionId === undefined ? {} : { sessionId: author.sessionId }),
      ...(turn === undefined ? {} : { turn }),
    };
  }
}
