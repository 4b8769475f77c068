/**
 * Memory stores of the Managed Agents API on the versioned file store: a store is a record here plus one
 * namespace (`memory_stores/<id>`) of PostgresFileStore, whose heads and versions carry the memory and
 * version ids. Writes (API, file tools, bash) all go through PostgresFileStore, so they serialize on the
 * same head rows, notify the same mirrors and land in the same audit log.
 */
import { FileError } from "@outrig/core";
import type pg from "pg";
import type {
  FileAuthor,
  FileScope,
  FileWriteResult,
  PostgresFileStore,
} from "../files/postgres-file-store.js";
import { createId } from "../ids/create-id.js";
import { withTransaction } from "../with-transaction.js";

/** The file-store namespace holding a memory store's memories. */
export function memoryStoreNamespace(storeId: string): string {
  return `memory_stores/${storeId}`;
}

export interface MemoryStoreRecord {
  readonly id: string;
  readonly orgId: string;
  readonly name: string;
  readonly description: string;
  readonly metadata: Record<string, string>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly archivedAt: Date | null;
  /** `created_at` to the microsecond (a Date keeps milliseconds), for list cursors. */
  readonly createdAtExact: string;
}

export interface MemoryRecord {
  readonly id: string;
  readonly storeId: string;
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly versionId: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Only when asked for (view=full). */
  readonly content?: string;
}

export interface MemoryVersionRecord {
  readonly id: string;
  readonly storeId: string;
  readonly memoryId: string;
  readonly operation: "created" | "modified" | "deleted";
  readonly path: string;
  readonly sha256: string | null;
  readonly size: number | null;
  readonly createdAt: Date;
  readonly userId: string | null;
  readonly sessionId: string | null;
  readonly apiKeyId: string | null;
  readonly redactedAt: Date | null;
  readonly redactedByUserId: string | null;
  readonly redactedByApiKeyId: string | null;
  /** Write order in the store (the list cursor). */
  readonly seq: number;
  /** Only when asked for (view=full) and the version has content. */
  readonly content?: string | null;
}

export type MemoryListItem = MemoryRecord | { readonly kind: "prefix"; readonly path: string };

interface StoreRow {
  id: string;
  org_id: string;
  name: string;
  description: string;
  metadata: Record<string, string>;
  created_at: Date;
  updated_at: Date;
  archived_at: Date | null;
  created_at_exact: string;
}

/** Selects a store row with its exact creation time. */
const STORE_COLUMNS = `*, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_exact`;

/** Most heads a depth-1 listing reads to fold into prefixes (the API caps a store at 2,000 memories). */
const MAX_FOLD_ROWS = 10_000;

export class PostgresMemoryStores {
  readonly #pool: pg.Pool;
  readonly files: PostgresFileStore;

  constructor(pool: pg.Pool, files: PostgresFileStore) {
    this.#pool = pool;
    this.files = files;
  }

  scopeOf(orgId: string, storeId: string): FileScope {
    return { orgId, namespace: memoryStoreNamespace(storeId) };
  }

  async createStore(
    orgId: string,
    input: { name: string; description?: string; metadata?: Record<string, string> },
  ): Promise<MemoryStoreRecord> {
    const { rows } = await this.#pool.query<StoreRow>(
      `INSERT INTO memory_stores (org_id, id, name, description, metadata) VALUES ($1, $2, $3, $4, $5)
       RETURNING ${STORE_COLUMNS}`,
      [
        orgId,
        createId("memstore"),
        input.name,
        input.description ?? "",
        JSON.stringify(input.metadata ?? {}),
      ],
    );
    return toStore(rows[0] as StoreRow);
  }

  async getStore(orgId: string, storeId: string): Promise<MemoryStoreRecord | null> {
    const { rows } = await this.#pool.query<StoreRow>(
      `SELECT ${STORE_COLUMNS} FROM memory_stores WHERE org_id = $1 AND id = $2`,
      [orgId, storeId],
    );
    return rows[0] ? toStore(rows[0]) : null;
  }

  /** Newest first; `after` is the last row of the previous page. Reads `limit` rows (ask for one more). */
  async listStores(
    orgId: string,
    options: {
      limit: number;
      includeArchived?: boolean;
      createdGte?: Date;
      createdLte?: Date;
      after?: { createdAt: string; id: string };
    },
  ): Promise<MemoryStoreRecord[]> {
    const { rows } = await this.#pool.query<StoreRow>(
      `SELECT ${STORE_COLUMNS} FROM memory_stores WHERE org_id = $1
         AND ($2::boolean OR archived_at IS NULL)
         AND ($3::timestamptz IS NULL OR created_at >= $3)
         AND ($4::timestamptz IS NULL OR created_at <= $4)
         AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
       ORDER BY created_at DESC, id DESC LIMIT $7`,
      [
        orgId,
        options.includeArchived ?? false,
        options.createdGte ?? null,
        options.createdLte ?? null,
        options.after?.createdAt ?? null,
        options.after?.id ?? "",
        options.limit,
      ],
    );
    return rows.map(toStore);
  }

  /** `metadata` merges: a null value removes its key. Null when the store does not exist. */
  async updateStore(
    orgId: string,
    storeId: string,
    patch: { name?: string; description?: string; metadata?: Record<string, string | null> },
    checkMetadata: (merged: Record<string, string>) => void = () => {},
  ): Promise<MemoryStoreRecord | null> {
    return withTransaction(this.#pool, async (client) => {
      const { rows } = await client.query<StoreRow>(
        "SELECT * FROM memory_stores WHERE org_id = $1 AND id = $2 FOR UPDATE",
        [orgId, storeId],
      );
      const row = rows[0];
      if (!row) return null;
      const metadata: Record<string, string> = { ...row.metadata };
      for (const [key, value] of Object.entries(patch.metadata ?? {})) {
        if (value === null) delete metadata[key];
        else metadata[key] = value;
      }
      checkMetadata(metadata);
      const updated = await client.query<StoreRow>(
        `UPDATE memory_stores SET name = $3, description = $4, metadata = $5, updated_at = now()
         WHERE org_id = $1 AND id = $2 RETURNING ${STORE_COLUMNS}`,
        [
          orgId,
          storeId,
          patch.name ?? row.name,
          patch.description ?? row.description,
          JSON.stringify(metadata),
        ],
      );
      return toStore(updated.rows[0] as StoreRow);
    });
  }

  async archiveStore(orgId: string, storeId: string): Promise<MemoryStoreRecord | null> {
    const { rows } = await this.#pool.query<StoreRow>(
      `UPDATE memory_stores SET archived_at = COALESCE(archived_at, now()), updated_at = now()
       WHERE org_id = $1 AND id = $2 RETURNING ${STORE_COLUMNS}`,
      [orgId, storeId],
    );
    return rows[0] ? toStore(rows[0]) : null;
  }

  /** Deletes the store with every memory and version. False when it did not exist. */
  async deleteStore(orgId: string, storeId: string): Promise<boolean> {
    return withTransaction(this.#pool, async (client) => {
      const { rowCount } = await client.query("DELETE FROM memory_stores WHERE org_id = $1 AND id = $2", [
        orgId,
        storeId,
      ]);
      if (!rowCount) return false;
      // Versions go with their heads (ON DELETE CASCADE).
      await client.query("DELETE FROM file_heads WHERE org_id = $1 AND namespace = $2", [
        orgId,
        memoryStoreNamespace(storeId),
      ]);
      return true;
    });
  }

  /** The live memory with this id, or null (deleted, never existed, or in another store). */
  async getMemory(
    orgId: string,
    storeId: string,
    memoryId: string,
    options: { withContent?: boolean } = {},
  ): Promise<MemoryRecord | null> {
    const { rows } = await this.#pool.query<MemoryRow>(
      `${memorySelect(options.withContent ?? false)}
       WHERE h.org_id = $1 AND h.namespace = $2 AND h.memory_id = $3 AND NOT h.is_deleted AND h.version > 0`,
      [orgId, memoryStoreNamespace(storeId), memoryId],
    );
    return rows[0] ? toMemory(storeId, rows[0]) : null;
  }

  /**
   * Live memories under `pathPrefix` (ending in `/`) in path order, after `after` (exclusive; a prefix
   * cursor skips everything under it). `depth` 1 folds deeper memories into prefix items.
   */
  async listMemories(
    orgId: string,
    storeId: string,
    options: {
      limit: number;
      pathPrefix?: string;
      depth?: number;
      after?: string;
      withContent?: boolean;
    },
  ): Promise<MemoryListItem[]> {
    const prefix = options.pathPrefix ?? "/";
    const upper = `${prefix.slice(0, -1)}0`; // just past every path under the prefix (paths compare byte-wise)
    const after = options.after ?? prefix;
    const isDepthOne = options.depth === 1;
    const { rows } = await this.#pool.query<MemoryRow>(
      `${memorySelect(options.withContent ?? false)}
       WHERE h.org_id = $1 AND h.namespace = $2 AND NOT h.is_deleted AND h.version > 0
         AND h.path > $3 AND h.path < $4 AND h.path >= $5
       ORDER BY h.path LIMIT $6`,
      [
        orgId,
        memoryStoreNamespace(storeId),
        after,
        upper,
        prefix,
        isDepthOne ? MAX_FOLD_ROWS : options.limit,
      ],
    );
    if (!isDepthOne) return rows.map((row) => toMemory(storeId, row));
    const items: MemoryListItem[] = [];
    for (const row of rows) {
      const relative = row.path.slice(prefix.length);
      const slash = relative.indexOf("/");
      if (slash === -1) items.push(toMemory(storeId, row));
      else {
        const marker = `${prefix}${relative.slice(0, slash + 1)}`;
        const last = items.at(-1);
        if (!(last && "kind" in last && last.path === marker)) items.push({ kind: "prefix", path: marker });
      }
      if (items.length >= options.limit) break;
    }
    return items;
  }

  /** Creates a memory; FileError `conflict` when the path is taken, `is_directory`/`not_directory` on overlap. */
  createMemory(
    orgId: string,
    storeId: string,
    path: string,
    content: string,
    author: FileAuthor,
  ): Promise<FileWriteResult> {
    return this.files.write(this.scopeOf(orgId, storeId), path, Buffer.from(content, "utf8"), {
      author,
      mustBeAbsent: true,
    });
  }

  /**
   * Changes a memory's content and/or path. Nothing changed: no new version. `expectedSha256` is the
   * content-hash precondition (FileError `conflict` path = current path when it fails).
   */
  async updateMemory(
    orgId: string,
    storeId: string,
    memoryId: string,
    change: { content?: string; path?: string; expectedSha256?: string },
    author: FileAuthor,
  ): Promise<FileWriteResult> {
    const scope = this.scopeOf(orgId, storeId);
    const current = await this.getMemory(orgId, storeId, memoryId);
    if (!current) throw new FileError("not_found", memoryId, `No such memory: ${memoryId}`);
    const content = change.content === undefined ? undefined : Buffer.from(change.content, "utf8");
    const common = {
      author,
      expectedMemoryId: memoryId,
      skipUnchanged: true,
      ...(change.expectedSha256 === undefined ? {} : { expectedSha256: change.expectedSha256 }),
    };
    if (change.path !== undefined && change.path !== current.path) {
      return this.files.move(scope, current.path, change.path, content, common);
    }
    if (content === undefined) {
      // Nothing to change: the precondition still applies.
      const file = await this.files.read(scope, current.path);
      return this.files.write(scope, current.path, file.content, common);
    }
    return this.files.write(scope, current.path, content, common);
  }

  async deleteMemory(
    orgId: string,
    storeId: string,
    memoryId: string,
    options: { expectedSha256?: string; author: FileAuthor },
  ): Promise<void> {
    const current = await this.getMemory(orgId, storeId, memoryId);
    if (!current) throw new FileError("not_found", memoryId, `No such memory: ${memoryId}`);
    await this.files.remove(this.scopeOf(orgId, storeId), current.path, {
      author: options.author,
      expectedMemoryId: memoryId,
      ...(options.expectedSha256 === undefined ? {} : { expectedSha256: options.expectedSha256 }),
    });
  }

  /** Versions newest first, after `beforeSeq` (exclusive). Reads `limit` rows (ask for one more). */
  async listVersions(
    orgId: string,
    storeId: string,
    options: {
      limit: number;
      beforeSeq?: number;
      memoryId?: string;
      operation?: string;
      sessionId?: string;
      apiKeyId?: string;
      createdGte?: Date;
      createdLte?: Date;
      withContent?: boolean;
    },
  ): Promise<MemoryVersionRecord[]> {
    const { rows } = await this.#pool.query<VersionRow>(
      `${versionSelect(options.withContent ?? false)}
       WHERE org_id = $1 AND namespace = $2 AND id IS NOT NULL
         AND ($3::bigint IS NULL OR seq < $3)
         AND ($4::text IS NULL OR memory_id = $4)
         AND ($5::text IS NULL OR operation = $5)
         AND ($6::text IS NULL OR session_id = $6)
         AND ($7::text IS NULL OR api_key_id = $7)
         AND ($8::timestamptz IS NULL OR created_at >= $8)
         AND ($9::timestamptz IS NULL OR created_at <= $9)
       ORDER BY seq DESC LIMIT $10`,
      [
        orgId,
        memoryStoreNamespace(storeId),
        options.beforeSeq ?? null,
        options.memoryId ?? null,
        options.operation ?? null,
        options.sessionId ?? null,
        options.apiKeyId ?? null,
        options.createdGte ?? null,
        options.createdLte ?? null,
        options.limit,
      ],
    );
    return rows.map((row) => toVersion(storeId, row));
  }

  async getVersion(
    orgId: string,
    storeId: string,
    versionId: string,
    options: { withContent?: boolean } = {},
  ): Promise<MemoryVersionRecord | null> {
    const { rows } = await this.#pool.query<VersionRow>(
      `${versionSelect(options.withContent ?? false)} WHERE org_id = $1 AND namespace = $2 AND id = $3`,
      [orgId, memoryStoreNamespace(storeId), versionId],
    );
    return rows[0] ? toVersion(storeId, rows[0]) : null;
  }

  /** See PostgresFileStore.redactVersion. */
  redactVersion(
    orgId: string,
    storeId: string,
    versionId: string,
    actor: { userId?: string; apiKeyId?: string },
  ): Promise<boolean> {
    return this.files.redactVersion(this.scopeOf(orgId, storeId), versionId, actor);
  }
}

interface MemoryRow {
  memory_id: string;
  path: string;
  sha256: string;
  size: number;
  version_id: string;
  memory_created_at: Date | null;
  updated_at: Date;
  content?: Buffer | null;
}

function memorySelect(withContent: boolean): string {
  return `SELECT h.memory_id, h.path, h.sha256, h.size, v.id AS version_id, h.memory_created_at,
      v.created_at AS updated_at${withContent ? ", v.content" : ""}
    FROM file_heads h JOIN file_versions v
      ON v.org_id = h.org_id AND v.namespace = h.namespace AND v.path = h.path AND v.version = h.version`;
}

interface VersionRow {
  id: string;
  memory_id: string;
  operation: "created" | "modified" | "deleted";
  path: string;
  sha256: string | null;
  size: number;
  is_deleted: boolean;
  created_at: Date;
  author_user_id: string | null;
  session_id: string | null;
  api_key_id: string | null;
  redacted_at: Date | null;
  redacted_by_user_id: string | null;
  redacted_by_api_key_id: string | null;
  seq: string;
  content?: Buffer | null;
}

function versionSelect(withContent: boolean): string {
  return `SELECT id, memory_id, operation, path, sha256, size, is_deleted, created_at, author_user_id,
      session_id, api_key_id, redacted_at, redacted_by_user_id, redacted_by_api_key_id, seq
      ${withContent ? ", content" : ""}
    FROM file_versions`;
}

function toStore(row: StoreRow): MemoryStoreRecord {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    description: row.description,
    metadata: row.metadata,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    archivedAt: row.archived_at,
    createdAtExact: row.created_at_exact,
  };
}

function toMemory(storeId: string, row: MemoryRow): MemoryRecord {
  return {
    id: row.memory_id,
    storeId,
    path: row.path,
    sha256: row.sha256,
    size: row.size,
    versionId: row.version_id,
    createdAt: row.memory_created_at ?? row.updated_at,
    updatedAt: row.updated_at,
    ...(row.content === undefined
      ? {}
      : { content: row.content === null ? "" : row.content.toString("utf8") }),
  };
}

function toVersion(storeId: string, row: VersionRow): MemoryVersionRecord {
  const hasContent = !row.is_deleted && row.redacted_at === null;
  return {
    id: row.id,
    storeId,
    memoryId: row.memory_id,
    operation: row.operation,
    path: row.path,
    sha256: hasContent ? row.sha256 : null,
    size: hasContent ? row.size : null,
    createdAt: row.created_at,
    userId: row.author_user_id,
    sessionId: row.session_id,
    apiKeyId: row.api_key_id,
    redactedAt: row.redacted_at,
    redactedByUserId: row.redacted_by_user_id,
    redactedByApiKeyId: row.redacted_by_api_key_id,
    seq: Number(row.seq),
    ...(row.content === undefined
      ? {}
      : { content: hasContent && row.content !== null ? row.content.toString("utf8") : null }),
  };
}
