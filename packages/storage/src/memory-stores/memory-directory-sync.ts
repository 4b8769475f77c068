/**
 * A session's writable host copy of one memory store, bound into its sandbox so bash can change it.
 * `pull()` (before each command) brings in what others committed; `push()` (after it) commits every file
 * the command changed, created or removed as a new version attributed to the session, compare-and-swap
 * against the version the copy was based on. When that base is stale (another session wrote the memory
 * meanwhile), nothing is lost: the other session's version stays current, this session's content is
 * committed as a conflict copy beside it (`<path>.conflict-<session id>`), and the returned notice tells
 * the model.
 */
import { createHash, randomBytes } from "node:crypto";
import { lstat, mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ensureError, FileError, isFileError } from "@outrig/core";
import { normalizeFilePath } from "../files/file-paths.js";
import type { FileAuthor, FileScope, PostgresFileStore } from "../files/postgres-file-store.js";

export interface MemoryDirectorySyncOptions {
  readonly store: PostgresFileStore;
  readonly scope: FileScope;
  /** The host directory bound into the sandbox. Created (emptied) by `create()`. */
  readonly directory: string;
  /** How paths are shown to the model, e.g. `/mnt/memory/notes`. */
  readonly displayPrefix: string;
  readonly sessionId: string;
  readonly author: () => FileAuthor;
  /** Largest file committed; a larger one is reported and left uncommitted. */
  readonly maxFileBytes: number;
}

/** One version a push committed (for the file tools' read-before-write bookkeeping). */
export interface CommittedChange {
  readonly path: string;
  readonly version: number;
}

export interface PushResult {
  readonly committed: readonly CommittedChange[];
  /** Lines for the model (`outrig: …`), empty when every change was committed as based. */
  readonly notices: readonly string[];
}

interface Base {
  /** The store version the local copy reflects (a tombstone's or 0 when absent). */
  readonly version: number;
  /** sha256 of the local content at that version; null when absent. */
  readonly sha256: string | null;
}

const sha256Of = (content: Uint8Array) => createHash("sha256").update(content).digest("hex");

export class MemoryDirectorySync {
  readonly #options: MemoryDirectorySyncOptions;
  readonly #base = new Map<string, Base>();
  readonly #tempDir: string;

  private constructor(options: MemoryDirectorySyncOptions) {
    this.#options = options;
    this.#tempDir = `${path.resolve(options.directory)}.tmp`;
  }

  /** Creates the directory, empty, and fills it from the store. */
  static async create(options: MemoryDirectorySyncOptions): Promise<MemoryDirectorySync> {
    const sync = new MemoryDirectorySync(options);
    for (const directory of [options.directory, sync.#tempDir]) {
      await rm(directory, { recursive: true, force: true });
      await mkdir(directory, { recursive: true, mode: 0o755 });
    }
    await sync.pull();
    return sync;
  }

  get directory(): string {
    return this.#options.directory;
  }

  /** Brings every memory changed in the store into the copy, except files with an uncommitted local change. */
  async pull(): Promise<void> {
    const { store, scope } = this.#options;
    for (const head of await store.listHeads(scope.orgId, [scope.namespace])) {
      const base = this.#base.get(head.path);
      if (base && base.version >= head.version) continue;
      const local = this.#localPath(head.path);
      if (local === undefined) continue;
      const localSha = await readSha(local);
      if (localSha !== (base?.sha256 ?? null)) continue; // changed here: push() decides
      await this.#restore(head.path, local);
    }
  }

  /** True when the copy differs from what was last pulled or pushed (what push() would commit). */
  async hasChanges(): Promise<boolean> {
    const { files } = await this.#scan();
    for (const [filePath, local] of files) {
      if ((await readSha(local)) !== (this.#base.get(filePath)?.sha256 ?? null)) return true;
    }
    for (const [filePath, base] of this.#base) if (base.sha256 !== null && !files.has(filePath)) return true;
    return false;
  }

  /** Commits what changed in the copy since the last pull or push. */
  async push(): Promise<PushResult> {
    const committed: CommittedChange[] = [];
    const notices: string[] = [];
    const { files, skipped } = await this.#scan();
    for (const reason of skipped) notices.push(`outrig: not saved to the memory store: ${reason}`);
    for (const [filePath, local] of files) {
      const base = this.#base.get(filePath);
      const content = await readFile(local).catch(() => undefined);
      if (content === undefined) continue;
      const sha256 = sha256Of(content);
      if (base?.sha256 === sha256) continue;
      const shown = `${this.#options.displayPrefix}${filePath}`;
      if (content.byteLength > this.#options.maxFileBytes) {
        notices.push(
          `outrig: ${shown} was not saved: it is ${content.byteLength} bytes, the limit is ${this.#options.maxFileBytes}. Make it smaller.`,
        );
        continue;
      }
      try {
        const result = await this.#options.store.write(this.#options.scope, filePath, content, {
          author: this.#options.author(),
          expectedVersion: base?.version ?? 0,
        });
        this.#base.set(filePath, { version: result.version, sha256 });
        committed.push({ path: filePath, version: result.version });
      } catch (error) {
        if (isFileError(error, "conflict")) {
          notices.push(await this.#keepConflictCopy(filePath, local, content, base, committed));
        } else if (error instanceof FileError) {
          notices.push(`outrig: ${shown} was not saved: ${error.message}`);
        } else throw error;
      }
    }
    // Paths this push wrote itself (conflict copies) were not in the scan, and are not removals.
    const written = new Set(committed.map((change) => change.path));
    for (const [filePath, base] of [...this.#base]) {
      if (base.sha256 === null || files.has(filePath) || written.has(filePath)) continue;
      const shown = `${this.#options.displayPrefix}${filePath}`;
      try {
        const [removed] = await this.#options.store.remove(this.#options.scope, filePath, {
          author: this.#options.author(),
          expectedVersion: base.version,
        });
        this.#base.set(filePath, { version: removed?.version ?? base.version, sha256: null });
        if (removed) committed.push({ path: filePath, version: removed.version });
      } catch (error) {
        if (isFileError(error, "conflict")) {
          const local = this.#localPath(filePath);
          if (local !== undefined) await this.#restore(filePath, local);
          notices.push(
            `outrig: ${shown} was not deleted: another session changed it while this command ran, so its new content was put back. Look at it and delete it again if it should still go.`,
          );
        } else if (isFileError(error, "not_found")) {
          this.#base.set(filePath, { version: base.version, sha256: null });
        } else if (error instanceof FileError) {
          notices.push(`outrig: ${shown} was not deleted: ${error.message}`);
        } else throw error;
      }
    }
    return { committed, notices };
  }

  /** The stale write goes to a conflict copy; the local file gets the current version back. */
  async #keepConflictCopy(
    filePath: string,
    local: string,
    content: Uint8Array,
    base: Base | undefined,
    committed: CommittedChange[],
  ): Promise<string> {
    const { store, scope, displayPrefix, sessionId } = this.#options;
    const shown = `${displayPrefix}${filePath}`;
    const copyPath = `${filePath}.conflict-${sessionId}`;
    const head = await store.lookup(scope, filePath);
    const now = head.kind === "file" ? `version ${head.version}` : "deleted";
    let saved: string;
    try {
      const copy = await store.write(scope, copyPath, content, { author: this.#options.author() });
      this.#base.set(copyPath, { version: copy.version, sha256: sha256Of(content) });
      committed.push({ path: copyPath, version: copy.version });
      const copyLocal = this.#localPath(copyPath);
      if (copyLocal !== undefined) await this.#writeLocal(copyLocal, content);
      saved = `your content was saved as ${displayPrefix}${copyPath} (memory version ${copy.versionId})`;
    } catch (error) {
      // Keep the local file as this command left it: the next command retries.
      return `outrig: ${shown} was not saved: another session changed it while this command ran (it is now ${now}), and the conflict copy could not be written (${ensureError(error).message}). Your change is still in the file here; read the file and redo your change.`;
    }
    await this.#restore(filePath, local);
    const from = base === undefined || base.sha256 === null ? "absent" : `version ${base.version}`;
    return `outrig: ${shown} was changed by another session while this command ran (this command started from ${from}; it is now ${now}). Your change was NOT applied to ${shown}: ${saved}, and ${shown} now holds the other session's content. Merge your change into it (then delete the conflict copy).`;
  }

  /** Makes the local file equal to the store's current version (or absent) and records it as the base. */
  async #restore(filePath: string, local: string): Promise<void> {
    const { store, scope } = this.#options;
    try {
      const file = await store.read(scope, filePath);
      await this.#writeLocal(local, file.content);
      this.#base.set(filePath, { version: file.version, sha256: file.sha256 });
    } catch (error) {
      if (!isFileError(error, "not_found") && !isFileError(error, "is_directory")) throw error;
      const head = await store.lookup(scope, filePath);
      const found = await lstat(local).catch(() => undefined);
      if (found?.isFile()) await this.#removeLocal(local);
      this.#base.set(filePath, { version: head.kind === "absent" ? head.version : 0, sha256: null });
    }
  }

  async #writeLocal(local: string, content: Uint8Array): Promise<void> {
    const directory = path.dirname(local);
    const root = path.resolve(this.#options.directory);
    // A file standing where a directory must be (it was a memory, now a folder of memories) goes.
    for (let parent = directory; parent !== root && parent.startsWith(root); parent = path.dirname(parent)) {
      const found = await lstat(parent).catch(() => undefined);
      if (found !== undefined && !found.isDirectory()) await rm(parent, { force: true });
    }
    await mkdir(directory, { recursive: true });
    const temp = path.join(this.#tempDir, randomBytes(8).toString("hex"));
    await writeFile(temp, content, { mode: 0o644 });
    await rename(temp, local);
  }

  async #removeLocal(local: string): Promise<void> {
    await rm(local, { force: true });
    const root = path.resolve(this.#options.directory);
    for (let directory = path.dirname(local); directory !== root && directory.startsWith(root); ) {
      try {
        await rmdir(directory);
      } catch {
        break;
      }
      directory = path.dirname(directory);
    }
  }

  #localPath(filePath: string): string | undefined {
    const root = path.resolve(this.#options.directory);
    const local = path.join(root, ...filePath.split("/").filter((part) => part !== ""));
    return local.startsWith(`${root}${path.sep}`) ? local : undefined;
  }

  /** Regular files in the copy by store path; symlinks and other special files are reported, not followed. */
  async #scan(): Promise<{ files: Map<string, string>; skipped: string[] }> {
    const files = new Map<string, string>();
    const skipped: string[] = [];
    const root = path.resolve(this.#options.directory);
    const walk = async (directory: string, prefix: string): Promise<void> => {
      const entries = await readdir(directory, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const local = path.join(directory, entry.name);
        const storePath = `${prefix}/${entry.name}`;
        if (entry.isDirectory()) await walk(local, storePath);
        else if (entry.isFile()) {
          try {
            files.set(normalizeFilePath(storePath), local);
          } catch (error) {
            skipped.push(`${this.#options.displayPrefix}${storePath}: ${ensureError(error).message}`);
          }
        } else {
          skipped.push(
            `${this.#options.displayPrefix}${storePath} is not a regular file (a symlink or special file); only regular files are stored.`,
          );
        }
      }
    };
    await walk(root, "");
    return { files, skipped };
  }
}

async function readSha(local: string): Promise<string | null> {
  const found = await lstat(local).catch(() => undefined);
  if (!found?.isFile()) return null;
  return sha256Of(await readFile(local));
}
