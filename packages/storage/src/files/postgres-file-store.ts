/**
 * Versioned files on Postgres, scoped by org and namespace. Every write appends a version row (content,
 * sha256, author, session, turn); removal appends a tombstone. Writers serialize on the path's head row,
 * and a write may carry the version it expects (compare-and-swap).
 */
import { createHash } from "node:crypto";
import { type DirEntry, FileError, type ListOptions } from "@outrig/core";
import type pg from "pg";
import type { AuditEntryInput, PostgresAuditLog } from "../audit/postgres-audit-log.js";
import { createId } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";
import { type BlameLine, blameVersions } from "./blame.js";
import { ancestorsOf, directoryPrefix, normalizeFilePath } from "./file-paths.js";

/** Default largest file: 1 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;
/** The LISTEN/NOTIFY channel every committed change is announced on. */
export const FILE_CHANGES_CHANNEL = "outrig_file_changes";

/** Which tree a path lives in: an org plus a namespace such as `skills` or `memories/org`. */
export interface FileScope {
  readonly orgId: string;
  readonly namespace: string;
}

/** Who made a change; stored on the version row. */
export interface FileAuthor {
  readonly userId?: string;
  readonly sessionId?: string;
  readonly turn?: number;
  /** The API key of a direct API call (memory stores show it as an `api_actor`). */
  readonly apiKeyId?: string;
}

export type FileLookup =
  | {
      readonly kind: "file";
      readonly version: number;
      readonly size: number;
      readonly mtimeMs: number;
      readonly sha256: string;
    }
  | { readonly kind: "directory" }
  /** `version` is the head's tombstone version, or 0 when the path never held a file. */
  | { readonly kind: "absent"; readonly version: number };

export interface StoredFile {
  readonly path: string;
  readonly version: number;
  readonly content: Uint8Array;
  readonly mtimeMs: number;
  readonly sha256: string;
  /** The executable bit (a skill's scripts); the mirror gives the file mode 0755 instead of 0644. */
  readonly isExecutable: boolean;
}

export interface FileWriteOptions {
  readonly author?: FileAuthor;
  /** The executable bit of the new version. Omitted: the current version's (false for a new file). */
  readonly isExecutable?: boolean;
  /**
   * Compare-and-swap: the head version the caller last saw (0 = the file must not exist; a tombstone's
   * version also counts as "absent as last seen"). Omitted: write unconditionally.
   */
  readonly expectedVersion?: number;
  /** The path must hold no live file (FileError `conflict` otherwise): a create that never replaces. */
  readonly mustBeAbsent?: boolean;
  /** The live file's sha256 must be this (FileError `conflict` otherwise); checked after `skipUnchanged`. */
  readonly expectedSha256?: string;
  /** The path must hold this memory (FileError `not_found` otherwise), e.g. after looking it up by id. */
  readonly expectedMemoryId?: string;
  /** Content equal to the live file's: no new version, the current one is resolved (`isUnchanged`). */
  readonly skipUnchanged?: boolean;
}

export interface FileWriteResult {
  readonly path: string;
  readonly version: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string;
  /** The version's id (`memver_…`) and the memory's (`mem_…`, kept across versions and renames). */
  readonly versionId: string;
  readonly memoryId: string;
  /** True when `skipUnchanged` found the content already there and wrote nothing. */
  readonly isUnchanged?: boolean;
}

export interface FileVersionRecord {
  readonly path: string;
  readonly version: number;
  readonly isDeleted: boolean;
  readonly size: number;
  readonly sha256: string | null;
  readonly authorUserId: string | null;
  readonly sessionId: string | null;
  readonly turn: number | null;
  readonly mtimeMs: number;
  readonly createdAt: Date;
}

/** A live file's head, as the mirror and `listFiles` see it. */
export interface FileHead {
  readonly namespace: string;
  readonly path: string;
  readonly version: number;
  readonly isDeleted: boolean;
  readonly size: number;
  readonly mtimeMs: number;
}

/** What NOTIFY carries for each committed write or removal. */
export interface FileChange {
  readonly orgId: string;
  readonly namespace: string;
  readonly path: string;
  readonly version: number;
}

export interface FileChangeSubscription {
  close(): Promise<void>;
}

export interface PostgresFileStoreOptions {
  /** Largest file accepted by `write` (default 1 MiB); larger writes fail with FileError `too_large`. */
  readonly maxFileBytes?: number;
  /** Milliseconds since the epoch, for mtimes; injected in tests. */
  readonly clock?: () => number;
  /**
   * Records every write and removal as a `memory_write` entry (path, version, size; never content) in
   * the same transaction as the version row. Omitted: not audited.
   */
  readonly audit?: PostgresAuditLog;
}

interface HeadRow {
  version: number;
  is_deleted: boolean;
  size: number;
  sha256: string | null;
  mtime_ms: string;
  memory_id: string | null;
}

/** A memory carried to a new path by a rename: it keeps its id and creation time. */
interface CarriedMemory {
  readonly memoryId: string;
  readonly createdAt: Date | null;
}

export class PostgresFileStore {
  readonly #pool: pg.Pool;
  readonly #clock: () => number;
  readonly #audit: PostgresAuditLog | undefined;
  readonly maxFileBytes: number;

  constructor(pool: pg.Pool, options: PostgresFileStoreOptions = {}) {
    this.#pool = pool;
    this.#audit = options.audit;
    this.#clock = options.clock ?? Date.now;
    this.maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  }

  /** What is at `path`: a live file, an implied directory, or nothing. Never throws for a valid path. */
  async lookup(scope: FileScope, path: string): Promise<FileLookup> {
    const normalized = normalizeFilePath(path);
    if (normalized === "/") return { kind: "directory" };
    const { rows } = await this.#pool.query<HeadRow>(
      `SELECT version, is_deleted, size, sha256, mtime_ms FROM file_heads
       WHERE org_id = $1 AND namespace = $2 AND path = $3`,
      [scope.orgId, scope.namespace, normalized],
    );
    const head = rows[0];
    if (head && !head.is_deleted) {
      return {
        kind: "file",
        version: head.version,
        size: head.size,
        mtimeMs: Number(head.mtime_ms),
        sha256: head.sha256 ?? "",
      };
    }
    if (await this.#hasFilesUnder(this.#pool, scope, normalized)) return { kind: "directory" };
    return { kind: "absent", version: head?.version ?? 0 };
  }

  /**
   * The current content, or a given version's. Throws FileError `not_found` (also for a removed file or a
   * missing version) or `is_directory`.
   */
  async read(scope: FileScope, path: string, options: { version?: number } = {}): Promise<StoredFile> {
    const normalized = normalizeFilePath(path);
    const { rows } = await this.#pool.query<{
      version: number;
      is_deleted: boolean;
      content: Buffer | null;
      sha256: string | null;
      mtime_ms: string;
      is_executable: boolean;
    }>(
      options.version === undefined
        ? `SELECT v.version, v.is_deleted, v.content, v.sha256, v.mtime_ms, v.is_executable FROM file_heads h
           JOIN file_versions v USING (org_id, namespace, path, version)
           WHERE h.org_id = $1 AND h.namespace = $2 AND h.path = $3`
        : `SELECT version, is_deleted, content, sha256, mtime_ms, is_executable FROM file_versions
           WHERE org_id = $1 AND namespace = $2 AND path = $3 AND version = $4`,
      options.version === undefined
        ? [scope.orgId, scope.namespace, normalized]
        : [scope.orgId, scope.namespace, normalized, options.version],
    );
    const row = rows[0];
    if (row && !row.is_deleted && row.content !== null) {
      return {
        path: normalized,
        version: row.version,
        content: new Uint8Array(row.content.buffer, row.content.byteOffset, row.content.byteLength),
        mtimeMs: Number(row.mtime_ms),
        sha256: row.sha256 ?? "",
        isExecutable: row.is_executable,
      };
    }
    if (
      options.version === undefined &&
      (normalized === "/" || (await this.#hasFilesUnder(this.#pool, scope, normalized)))
    ) {
      throw new FileError("is_directory", normalized, `Is a directory: ${normalized}`);
    }
    const what = options.version === undefined ? normalized : `${normalized} at version ${options.version}`;
    throw new FileError("not_found", normalized, `No such file: ${what}`);
  }

  /**
   * Stores `content` as the path's next version. Throws FileError `too_large`, `is_directory` (the path
   * holds files), `not_directory` (an ancestor is a file), or `conflict` when `expectedVersion` is stale.
   * Committed changes are announced on FILE_CHANGES_CHANNEL.
   */
  async write(
    scope: FileScope,
    path: string,
    content: Uint8Array,
    options: FileWriteOptions = {},
  ): Promise<FileWriteResult> {
    const normalized = normalizeFilePath(path);
    if (normalized === "/") throw new FileError("is_directory", normalized, "Is a directory: /");
    if (content.byteLength > this.maxFileBytes) {
      throw new FileError(
        "too_large",
        normalized,
        `File is too large: ${content.byteLength} bytes; the limit is ${this.maxFileBytes} bytes.`,
      );
    }
    return withTransaction(this.#pool, async (client) => {
      const head = await this.#lockHead(client, scope, normalized);
      return this.#writeLocked(client, scope, normalized, head, content, options);
    });
  }

  /**
   * Renames a file (a memory keeps its id) and optionally replaces its content, in one transaction: the
   * old path gets a tombstone that is no version of its own, the new path the next version (`modified`).
   * `options` apply to the source (`expectedMemoryId`, `expectedSha256`); the target must be absent.
   * Throws FileError `not_found`, `conflict` (precondition), or `is_directory`/`not_directory`/`too_large`
   * and FileError `conflict` with path = target when the target is taken.
   */
  async move(
    scope: FileScope,
    from: string,
    to: string,
    content: Uint8Array | undefined,
    options: FileWriteOptions = {},
  ): Promise<FileWriteResult> {
    const source = normalizeFilePath(from);
    const target = normalizeFilePath(to);
    if (target === "/") throw new FileError("is_directory", target, "Is a directory: /");
    return withTransaction(this.#pool, async (client) => {
      // Both heads locked in path order, so two opposite renames cannot deadlock.
      const [first, second] = source < target ? [source, target] : [target, source];
      const firstHead = await this.#lockHead(client, scope, first);
      const secondHead = await this.#lockHead(client, scope, second);
      const sourceHead = first === source ? firstHead : secondHead;
      const targetHead = first === source ? secondHead : firstHead;
      if (sourceHead.is_deleted || sourceHead.version === 0) {
        throw new FileError("not_found", source, `No such file: ${source}`);
      }
      if (options.expectedMemoryId !== undefined && sourceHead.memory_id !== options.expectedMemoryId) {
        throw new FileError("not_found", source, `No such file: ${source}`);
      }
      const current = await this.#readVersion(client, scope, source, sourceHead.version);
      const newContent = content ?? current.content;
      if (source === target) {
        return this.#writeLocked(client, scope, target, targetHead, newContent, options);
      }
      if (options.expectedSha256 !== undefined && sourceHead.sha256 !== options.expectedSha256) {
        // The precondition is about the source's current content (a rename always changes something).
        throw preconditionFailed(source);
      }
      if (!targetHead.is_deleted) {
        throw new FileError("conflict", target, `A file already exists at ${target}`);
      }
      const created = await client.query<{ memory_created_at: Date | null }>(
        `SELECT memory_created_at FROM file_heads WHERE org_id = $1 AND namespace = $2 AND path = $3`,
        [scope.orgId, scope.namespace, source],
      );
      const carried: CarriedMemory = {
        memoryId: sourceHead.memory_id ?? createId("mem"),
        createdAt: created.rows[0]?.memory_created_at ?? null,
      };
      await this.#tombstone(client, scope, source, sourceHead, options.author, { isRename: true });
      return this.#writeLocked(
        client,
        scope,
        target,
        targetHead,
        newContent,
        {
          ...options,
          expectedSha256: undefined,
          expectedMemoryId: undefined,
          isExecutable: current.isExecutable,
        },
        carried,
      );
    });
  }

  async #readVersion(
    client: pg.PoolClient,
    scope: FileScope,
    path: string,
    version: number,
  ): Promise<{ content: Uint8Array; isExecutable: boolean }> {
    const { rows } = await client.query<{ content: Buffer | null; is_executable: boolean }>(
      `SELECT content, is_executable FROM file_versions
       WHERE org_id = $1 AND namespace = $2 AND path = $3 AND version = $4`,
      [scope.orgId, scope.namespace, path, version],
    );
    const row = rows[0];
    if (row?.content == null) throw new FileError("not_found", path, `No such file: ${path}`);
    return { content: new Uint8Array(row.content), isExecutable: row.is_executable };
  }

  async #writeLocked(
    client: pg.PoolClient,
    scope: FileScope,
    normalized: string,
    head: HeadRow,
    content: Uint8Array,
    options: FileWriteOptions,
    carried?: CarriedMemory,
  ): Promise<FileWriteResult> {
    const sha256 = createHash("sha256").update(content).digest("hex");
    const isLive = !head.is_deleted && head.version > 0;
    if (options.expectedMemoryId !== undefined && (!isLive || head.memory_id !== options.expectedMemoryId)) {
      throw new FileError("not_found", normalized, `No such file: ${normalized}`);
    }
    if (options.mustBeAbsent && isLive) {
      throw new FileError("conflict", normalized, `A file already exists at ${normalized}`);
    }
    if (options.skipUnchanged && isLive && head.sha256 === sha256 && head.memory_id !== null) {
      const { rows } = await client.query<{ id: string | null; is_executable: boolean }>(
        `SELECT id, is_executable FROM file_versions
         WHERE org_id = $1 AND namespace = $2 AND path = $3 AND version = $4`,
        [scope.orgId, scope.namespace, normalized, head.version],
      );
      const row = rows[0];
      if (
        row?.id != null &&
        (options.isExecutable === undefined || options.isExecutable === row.is_executable)
      ) {
        return {
          path: normalized,
          version: head.version,
          size: head.size,
          mtimeMs: Number(head.mtime_ms),
          sha256,
          versionId: row.id,
          memoryId: head.memory_id,
          isUnchanged: true,
        };
      }
    }
    checkExpected(normalized, head, options.expectedVersion);
    if (options.expectedSha256 !== undefined && (!isLive || head.sha256 !== options.expectedSha256)) {
      throw preconditionFailed(normalized);
    }
    const blocker = await client.query<{ path: string }>(
      `SELECT path FROM file_heads WHERE org_id = $1 AND namespace = $2 AND NOT is_deleted
       AND (path = ANY($3::text[]) OR (path > $4 AND path < $5)) LIMIT 1`,
      [scope.orgId, scope.namespace, ancestorsOf(normalized), `${normalized}/`, `${normalized}0`],
    );
    const blocking = blocker.rows[0]?.path;
    if (blocking !== undefined) {
      if (blocking.startsWith(`${normalized}/`)) {
        throw new FileError("is_directory", normalized, `Is a directory: ${normalized}`);
      }
      throw new FileError("not_directory", blocking, `Not a directory: ${blocking}`);
    }
    const version = head.version + 1;
    const mtimeMs = Math.max(this.#clock(), Number(head.mtime_ms) + 1);
    // Like an edit on disk, a write that does not say keeps the file's executable bit.
    const isExecutable =
      options.isExecutable ??
      (head.is_deleted || head.version === 0
        ? false
        : await this.#isExecutable(client, scope, normalized, head.version));
    // A new file is a new memory; a rename carries its memory here; anything else continues it.
    const memoryId = carried?.memoryId ?? (isLive ? head.memory_id : null) ?? createId("mem");
    const operation = isLive || carried !== undefined ? "modified" : "created";
    const versionId = createId("memver");
    await client.query(
      `INSERT INTO file_versions (org_id, namespace, path, version, is_deleted, content, size, sha256,
         author_user_id, session_id, turn, mtime_ms, is_executable, id, memory_id, operation, api_key_id)
       VALUES ($1, $2, $3, $4, false, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
      [
        scope.orgId,
        scope.namespace,
        normalized,
        version,
        Buffer.from(content.buffer, content.byteOffset, content.byteLength),
        content.byteLength,
        sha256,
        options.author?.userId ?? null,
        options.author?.sessionId ?? null,
        options.author?.turn ?? null,
        mtimeMs,
        isExecutable,
        versionId,
        memoryId,
        operation,
        options.author?.apiKeyId ?? null,
      ],
    );
    await client.query(
      `UPDATE file_heads SET version = $4, is_deleted = false, size = $5, sha256 = $6, mtime_ms = $7,
         memory_id = $8,
         memory_created_at = CASE WHEN $9::boolean THEN COALESCE($10::timestamptz, now()) ELSE memory_created_at END
       WHERE org_id = $1 AND namespace = $2 AND path = $3`,
      [
        scope.orgId,
        scope.namespace,
        normalized,
        version,
        content.byteLength,
        sha256,
        mtimeMs,
        memoryId,
        !isLive,
        carried?.createdAt ?? null,
      ],
    );
    await notify(client, { orgId: scope.orgId, namespace: scope.namespace, path: normalized, version });
    const result = {
      path: normalized,
      version,
      size: content.byteLength,
      mtimeMs,
      sha256,
      versionId,
      memoryId,
    };
    await this.#audit?.appendIn(client, scope.orgId, [
      fileAuditEntry(scope, "write", result, options.author),
    ]);
    return result;
  }

  /**
   * Removes a file (one tombstone version) or a directory (a tombstone for every file under it).
   * `expectedVersion` applies to a file only. Throws FileError `not_found` when nothing is there, or
   * `conflict`. Resolves the tombstones written.
   */
  async remove(scope: FileScope, path: string, options: FileWriteOptions = {}): Promise<FileWriteResult[]> {
    const normalized = normalizeFilePath(path);
    if (normalized === "/") {
      throw new FileError("permission_denied", normalized, "The root of a mount cannot be removed.");
    }
    return withTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<{ path: string }>(
        `SELECT path FROM file_heads WHERE org_id = $1 AND namespace = $2 AND NOT is_deleted
         AND (path = $3 OR (path > $4 AND path < $5)) ORDER BY path`,
        [scope.orgId, scope.namespace, normalized, `${normalized}/`, `${normalized}0`],
      );
      if (rows.length === 0) {
        if (options.expectedVersion !== undefined) {
          const head = await this.#lockHead(client, scope, normalized);
          checkExpected(normalized, head, options.expectedVersion);
        }
        throw new FileError("not_found", normalized, `No such file or directory: ${normalized}`);
      }
      const results: FileWriteResult[] = [];
      for (const { path: filePath } of rows) {
        const head = await this.#lockHead(client, scope, filePath);
        if (filePath === normalized) {
          checkExpected(normalized, head, options.expectedVersion);
          if (options.expectedMemoryId !== undefined && head.memory_id !== options.expectedMemoryId) {
            throw new FileError("not_found", normalized, `No such file: ${normalized}`);
          }
          if (options.expectedSha256 !== undefined && head.sha256 !== options.expectedSha256) {
            throw preconditionFailed(normalized);
          }
        }
        if (head.is_deleted) continue;
        results.push(await this.#tombstone(client, scope, filePath, head, options.author));
      }
      await this.#audit?.appendIn(
        client,
        scope.orgId,
        results.map((result) => fileAuditEntry(scope, "delete", result, options.author)),
      );
      return results;
    });
  }

  /**
   * Entries of a directory (implied by the files under it), sorted by path. Throws FileError `not_found`
   * for a missing directory and `not_directory` for a file. The root always exists.
   */
  async list(scope: FileScope, directory: string, options: ListOptions = {}): Promise<DirEntry[]> {
    const normalized = normalizeFilePath(directory);
    const prefix = directoryPrefix(normalized);
    const { rows } = await this.#pool.query<{ path: string; size: number; mtime_ms: string }>(
      `SELECT path, size, mtime_ms FROM file_heads WHERE org_id = $1 AND namespace = $2 AND NOT is_deleted
       AND ((path > $3 AND path < $4) OR path = $5) ORDER BY path`,
      [scope.orgId, scope.namespace, prefix, `${prefix.slice(0, -1)}0`, normalized],
    );
    if (rows.some((row) => row.path === normalized)) {
      throw new FileError("not_directory", normalized, `Not a directory: ${normalized}`);
    }
    if (rows.length === 0 && normalized !== "/") {
      throw new FileError("not_found", normalized, `No such directory: ${normalized}`);
    }
    const entries = new Map<string, DirEntry>();
    for (const row of rows) {
      const relative = row.path.slice(prefix.length);
      const segments = relative.split("/");
      const mtimeMs = Number(row.mtime_ms);
      const depth = options.recursive ? segments.length - 1 : Math.min(segments.length - 1, 1);
      for (let index = 1; index <= depth; index++) {
        const directoryPath = segments.slice(0, index).join("/");
        const existing = entries.get(directoryPath);
        if (existing === undefined || existing.mtimeMs < mtimeMs) {
          entries.set(directoryPath, { path: directoryPath, kind: "directory", size: 0, mtimeMs });
        }
      }
      if (options.recursive || segments.length === 1) {
        entries.set(relative, { path: relative, kind: "file", size: row.size, mtimeMs });
      }
    }
    const sorted = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return options.limit === undefined ? sorted : sorted.slice(0, options.limit);
  }

  /** Heads of every path in the given namespaces (tombstones included), for mirrors and exports. */
  async listHeads(orgId: string, namespaces: readonly string[]): Promise<FileHead[]> {
    const { rows } = await this.#pool.query<{
      namespace: string;
      path: string;
      version: number;
      is_deleted: boolean;
      size: number;
      mtime_ms: string;
    }>(
      `SELECT namespace, path, version, is_deleted, size, mtime_ms FROM file_heads
       WHERE org_id = $1 AND namespace = ANY($2::text[]) AND version > 0 ORDER BY namespace, path`,
      [orgId, namespaces],
    );
    return rows.map((row) => ({
      namespace: row.namespace,
      path: row.path,
      version: row.version,
      isDeleted: row.is_deleted,
      size: row.size,
      mtimeMs: Number(row.mtime_ms),
    }));
  }

  /** Every version of a path, oldest first (tombstones included). Empty when the path never existed. */
  async history(scope: FileScope, path: string): Promise<FileVersionRecord[]> {
    const normalized = normalizeFilePath(path);
    const { rows } = await this.#pool.query<{
      version: number;
      is_deleted: boolean;
      size: number;
      sha256: string | null;
      author_user_id: string | null;
      session_id: string | null;
      turn: number | null;
      mtime_ms: string;
      created_at: Date;
    }>(
      `SELECT version, is_deleted, size, sha256, author_user_id, session_id, turn, mtime_ms, created_at
       FROM file_versions WHERE org_id = $1 AND namespace = $2 AND path = $3 ORDER BY version`,
      [scope.orgId, scope.namespace, normalized],
    );
    return rows.map((row) => ({
      path: normalized,
      version: row.version,
      isDeleted: row.is_deleted,
      size: row.size,
      sha256: row.sha256,
      authorUserId: row.author_user_id,
      sessionId: row.session_id,
      turn: row.turn,
      mtimeMs: Number(row.mtime_ms),
      createdAt: row.created_at,
    }));
  }

  /**
   * For each line of the current version, the version (and author) that last introduced it.
   * Throws FileError `not_found` when the file does not exist now.
   */
  async blame(scope: FileScope, path: string): Promise<BlameLine[]> {
    const normalized = normalizeFilePath(path);
    const { rows } = await this.#pool.query<{
      version: number;
      is_deleted: boolean;
      content: Buffer | null;
      author_user_id: string | null;
      session_id: string | null;
      turn: number | null;
    }>(
      `SELECT version, is_deleted, content, author_user_id, session_id, turn FROM file_versions
       WHERE org_id = $1 AND namespace = $2 AND path = $3 ORDER BY version`,
      [scope.orgId, scope.namespace, normalized],
    );
    const last = rows.at(-1);
    if (last === undefined || last.is_deleted) {
      throw new FileError("not_found", normalized, `No such file: ${normalized}`);
    }
    // Blame starts after the last removal: a re-created file has a fresh history.
    const start = rows.findLastIndex((row) => row.is_deleted) + 1;
    return blameVersions(
      rows.slice(start).map((row) => ({
        version: row.version,
        text: (row.content ?? Buffer.alloc(0)).toString("utf8"),
        authorUserId: row.author_user_id,
        sessionId: row.session_id,
        turn: row.turn,
      })),
    );
  }

  /**
   * Calls `onChange` for every committed change in any org (filter by `orgId`) until closed. Holds one
   * pooled connection. `onError` hears connection loss; the caller should fall back to polling.
   */
  async listen(
    onChange: (change: FileChange) => void,
    onError: (error: Error) => void = () => {},
  ): Promise<FileChangeSubscription> {
    const client = await this.#pool.connect();
    const handleNotification = (message: pg.Notification) => {
      if (message.channel !== FILE_CHANGES_CHANNEL || message.payload === undefined) return;
      try {
        onChange(JSON.parse(message.payload) as FileChange);
      } catch (error) {
        onError(error as Error);
      }
    };
    client.on("notification", handleNotification);
    client.on("error", onError);
    await client.query(`LISTEN ${FILE_CHANGES_CHANNEL}`);
    let closing: Promise<void> | undefined;
    return {
      close() {
        closing ??= (async () => {
          client.off("notification", handleNotification);
          let isBroken = false;
          await client.query(`UNLISTEN ${FILE_CHANGES_CHANNEL}`).catch(() => {
            isBroken = true;
          });
          client.off("error", onError);
          client.release(isBroken);
        })();
        return closing;
      },
    };
  }

  /**
   * Redacts one version: its content and hash are erased from the database (no read path can return them
   * again) and the version records when and by whom. The current version of a live file cannot be
   * redacted (FileError `conflict`: write a new version or remove the file first); a missing id is
   * FileError `not_found`. Resolves false when it was already redacted.
   */
  async redactVersion(
    scope: FileScope,
    versionId: string,
    actor: { userId?: string; apiKeyId?: string } = {},
  ): Promise<boolean> {
    return withTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<{ path: string; version: number; redacted_at: Date | null }>(
        `SELECT path, version, redacted_at FROM file_versions WHERE org_id = $1 AND namespace = $2 AND id = $3`,
        [scope.orgId, scope.namespace, versionId],
      );
      const row = rows[0];
      if (row === undefined) throw new FileError("not_found", versionId, `No such version: ${versionId}`);
      const head = await this.#lockHead(client, scope, row.path);
      if (!head.is_deleted && head.version === row.version) {
        throw new FileError(
          "conflict",
          row.path,
          "This is the memory's current version: update the memory (or delete it) first, then redact this version.",
        );
      }
      if (row.redacted_at !== null) return false;
      await client.query(
        `UPDATE file_versions SET content = NULL, sha256 = NULL, redacted_at = now(),
           redacted_by_user_id = $5, redacted_by_api_key_id = $6
         WHERE org_id = $1 AND namespace = $2 AND path = $3 AND version = $4`,
        [scope.orgId, scope.namespace, row.path, row.version, actor.userId ?? null, actor.apiKeyId ?? null],
      );
      return true;
    });
  }

  /** Appends a tombstone after `head` (locked by the caller). A rename's tombstone is no API version. */
  async #tombstone(
    client: pg.PoolClient,
    scope: FileScope,
    filePath: string,
    head: HeadRow,
    author: FileAuthor | undefined,
    options: { isRename?: boolean } = {},
  ): Promise<FileWriteResult> {
    const version = head.version + 1;
    const mtimeMs = Math.max(this.#clock(), Number(head.mtime_ms) + 1);
    const versionId = options.isRename ? null : createId("memver");
    const memoryId = head.memory_id ?? createId("mem");
    await client.query(
      `INSERT INTO file_versions (org_id, namespace, path, version, is_deleted, content, size, sha256,
         author_user_id, session_id, turn, mtime_ms, id, memory_id, operation, api_key_id)
       VALUES ($1, $2, $3, $4, true, NULL, 0, NULL, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        scope.orgId,
        scope.namespace,
        filePath,
        version,
        author?.userId ?? null,
        author?.sessionId ?? null,
        author?.turn ?? null,
        mtimeMs,
        versionId,
        memoryId,
        options.isRename ? null : "deleted",
        author?.apiKeyId ?? null,
      ],
    );
    await client.query(
      `UPDATE file_heads SET version = $4, is_deleted = true, size = 0, sha256 = NULL, mtime_ms = $5
       WHERE org_id = $1 AND namespace = $2 AND path = $3`,
      [scope.orgId, scope.namespace, filePath, version, mtimeMs],
    );
    await notify(client, { orgId: scope.orgId, namespace: scope.namespace, path: filePath, version });
    return { path: filePath, version, size: 0, mtimeMs, sha256: "", versionId: versionId ?? "", memoryId };
  }

  async #hasFilesUnder(
    queryable: pg.Pool | pg.PoolClient,
    scope: FileScope,
    directory: string,
  ): Promise<boolean> {
    const prefix = directoryPrefix(directory);
    const { rows } = await queryable.query(
      `SELECT 1 FROM file_heads WHERE org_id = $1 AND namespace = $2 AND NOT is_deleted
       AND path > $3 AND path < $4 LIMIT 1`,
      [scope.orgId, scope.namespace, prefix, `${prefix.slice(0, -1)}0`],
    );
    return rows.length > 0;
  }

  /** Creates the head row if missing (version 0, absent) and locks it until the transaction ends. */
  async #isExecutable(
    client: pg.PoolClient,
    scope: FileScope,
    path: string,
    version: number,
  ): Promise<boolean> {
    const { rows } = await client.query<{ is_executable: boolean }>(
      `SELECT is_executable FROM file_versions WHERE org_id = $1 AND namespace = $2 AND path = $3 AND version = $4`,
      [scope.orgId, scope.namespace, path, version],
    );
    return rows[0]?.is_executable ?? false;
  }

  async #lockHead(client: pg.PoolClient, scope: FileScope, path: string): Promise<HeadRow> {
    await client.query(
      `INSERT INTO file_heads (org_id, namespace, path, version, is_deleted, size, sha256, mtime_ms)
       VALUES ($1, $2, $3, 0, true, 0, NULL, 0) ON CONFLICT DO NOTHING`,
      [scope.orgId, scope.namespace, path],
    );
    const { rows } = await client.query<HeadRow>(
      `SELECT version, is_deleted, size, sha256, mtime_ms, memory_id FROM file_heads
       WHERE org_id = $1 AND namespace = $2 AND path = $3 FOR UPDATE`,
      [scope.orgId, scope.namespace, path],
    );
    const head = rows[0];
    if (head === undefined) throw new FileError("io_error", path, `Lost the head row of ${path}`);
    return head;
  }
}

/** FileError `conflict` for a failed content-hash precondition (`memory_precondition_failed` on the API). */
function preconditionFailed(path: string): FileError {
  return new FileError(
    "conflict",
    path,
    "precondition failed: the memory's content_sha256 is not the one given; retrieve it and retry.",
  );
}

function checkExpected(path: string, head: HeadRow, expectedVersion: number | undefined): void {
  if (expectedVersion === undefined || expectedVersion === head.version) return;
  const now = head.is_deleted ? "it has been removed" : `it is now at version ${head.version}`;
  throw new FileError(
    "conflict",
    path,
    `The file has been modified since you last read it (you read version ${expectedVersion}; ${now}), ` +
      "probably by another session. Read it again before editing or writing it.",
  );
}

async function notify(client: pg.PoolClient, change: FileChange): Promise<void> {
  await client.query("SELECT pg_notify($1, $2)", [FILE_CHANGES_CHANNEL, JSON.stringify(change)]);
}

/** The audit entry of one committed version: where, which version, how big; never the content. */
function fileAuditEntry(
  scope: FileScope,
  action: "write" | "delete",
  result: FileWriteResult,
  author: FileAuthor | undefined,
): AuditEntryInput {
  return {
    kind: "memory_write",
    ...(author?.sessionId ? { sessionId: author.sessionId } : {}),
    ...(author?.userId ? { userId: author.userId } : {}),
    data: {
      action,
      namespace: scope.namespace,
      path: result.path,
      version: result.version,
      size: result.size,
      ...(action === "write" ? { sha256: result.sha256 } : {}),
      ...(author?.turn === undefined ? {} : { turn: author.turn }),
    },
  };
}
