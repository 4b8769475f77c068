/**
 * The Files API's files: metadata rows in Postgres, bytes in a BlobStore under `files/<orgId>/<fileId>`.
 * Every read is scoped by org: another org's id is "not found", never "forbidden".
 */
import { createHash } from "node:crypto";
import { type BlobBody, type BlobStore, InputError } from "@outrig/core";
import type pg from "pg";
import { createId } from "../ids/create-id.js";

export interface ApiFileRecord {
  readonly id: string;
  /** Position in the org's list (newest has the highest); what list cursors carry. */
  readonly seq: number;
  readonly orgId: string;
  readonly filename: string;
  readonly mimeType: string;
  readonly sizeBytes: number;
  readonly sha256: string;
  readonly isDownloadable: boolean;
  /** The session a file came out of (`/mnt/session/outputs/`), or null for an upload. */
  readonly scope: { readonly type: "session"; readonly id: string } | null;
  readonly createdByUserId: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
}

/** Bytes already in the blob store (`stage`) that no row names yet. */
export interface StagedApiFileContent {
  readonly orgId: string;
  readonly id: string;
  readonly sizeBytes: number;
  readonly sha256: string;
}

export interface CreateApiFileInput {
  readonly orgId: string;
  readonly filename: string;
  readonly mimeType: string;
  /** The bytes, or what `stage` stored for this org (an upload streamed in before its row). */
  readonly content: Uint8Array | StagedApiFileContent;
  readonly createdByUserId?: string;
  readonly scope?: { readonly type: "session"; readonly id: string };
  /** A session output's path under /mnt/session/outputs/. */
  readonly scopePath?: string;
  readonly expiresAt?: Date;
}

export interface ListApiFilesOptions {
  readonly limit: number;
  /** The `seq` of the last row of the previous page (newest first). */
  readonly afterSeq?: number;
  readonly scopeId?: string;
  /** Only these ids (the API's `ids` filter); no paging. */
  readonly ids?: readonly string[];
}

interface Row {
  id: string;
  seq: string;
  org_id: string;
  filename: string;
  mime_type: string;
  size_bytes: string;
  sha256: string;
  is_downloadable: boolean;
  scope_type: "session" | null;
  scope_id: string | null;
  created_by_user_id: string | null;
  created_at: Date;
  expires_at: Date | null;
}

const COLUMNS =
  "id, seq, org_id, filename, mime_type, size_bytes, sha256, is_downloadable, scope_type, scope_id, created_by_user_id, created_at, expires_at";
/** Expired files are gone to every reader, as the API's `expires_at` says. */
const LIVE = "(expires_at IS NULL OR expires_at > clock_timestamp())";

export class PostgresApiFileStore {
  readonly #pool: pg.Pool;
  readonly #blobs: BlobStore;

  constructor(pool: pg.Pool, blobs: BlobStore) {
    this.#pool = pool;
    this.#blobs = blobs;
  }

  /**
   * Streams bytes into the blob store under a new file id, hashing and counting them on the way, so
   * an upload is never held whole in memory. The blob appears only once complete: when `content`
   * fails midway (an upload over its limit), nothing is left. No row names it until `create`;
   * `discard` removes it when the upload is refused after all.
   */
  async stage(orgId: string, content: BlobBody): Promise<StagedApiFileContent> {
    const id = createId("file");
    const hash = createHash("sha256");
    let sizeBytes = 0;
    async function* counted(): AsyncIterable<Uint8Array> {
      for await (const chunk of content instanceof Uint8Array ? [content] : content) {
        hash.update(chunk);
        sizeBytes += chunk.byteLength;
        yield chunk;
      }
    }
    await this.#blobs.put(blobKey(orgId, id), counted());
    return { orgId, id, sizeBytes, sha256: hash.digest("hex") };
  }

  /** Removes staged bytes no row names (an upload refused after its bytes were stored). */
  async discard(staged: StagedApiFileContent): Promise<void> {
    await this.#blobs.delete(blobKey(staged.orgId, staged.id));
  }

  /** Stores the bytes, then the row: a row never names missing bytes (a crash between leaves an orphan blob). */
  async create(input: CreateApiFileInput): Promise<ApiFileRecord> {
    const staged = "sha256" in input.content ? input.content : await this.stage(input.orgId, input.content);
    if (staged.orgId !== input.orgId) {
      throw new InputError("invalid_request", "staged file content belongs to another org", 400);
    }
    const { id, sha256 } = staged;
    const { rows } = await this.#pool.query<Row>(
      `INSERT INTO api_files (id, org_id, filename, mime_type, size_bytes, sha256, is_downloadable,
         scope_type, scope_id, scope_path, created_by_user_id, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8, $9, $10, $11) RETURNING ${COLUMNS}`,
      [
        id,
        input.orgId,
        input.filename,
        input.mimeType,
        staged.sizeBytes,
        sha256,
        input.scope?.type ?? null,
        input.scope?.id ?? null,
        input.scopePath ?? null,
        input.createdByUserId ?? null,
        input.expiresAt ?? null,
      ],
    );
    return toRecord(rows[0] as Row);
  }

  /** The file's metadata, or undefined when it does not exist in this org (or expired). */
  async get(orgId: string, id: string): Promise<ApiFileRecord | undefined> {
    const { rows } = await this.#pool.query<Row>(
      `SELECT ${COLUMNS} FROM api_files WHERE org_id = $1 AND id = $2 AND ${LIVE}`,
      [orgId, id],
    );
    return rows[0] === undefined ? undefined : toRecord(rows[0]);
  }

  /** The file's bytes as a stream (downloads), or undefined when the file (or its blob) is gone. */
  async open(
    orgId: string,
    id: string,
  ): Promise<{ record: ApiFileRecord; content: AsyncIterable<Uint8Array> } | undefined> {
    const record = await this.get(orgId, id);
    if (record === undefined) return undefined;
    const content = await this.#blobs.get(blobKey(orgId, id));
    return content === null ? undefined : { record, content };
  }

  /** The file's bytes in memory, or undefined when the file (or its blob) is gone. */
  async read(orgId: string, id: string): Promise<{ record: ApiFileRecord; content: Uint8Array } | undefined> {
    const found = await this.open(orgId, id);
    if (found === undefined) return undefined;
    const chunks: Uint8Array[] = [];
    for await (const chunk of found.content) chunks.push(chunk);
    return { record: found.record, content: new Uint8Array(Buffer.concat(chunks)) };
  }

  /** Newest first; reads `limit` rows after `after` (ask for one more to learn whether a next page exists). */
  async list(orgId: string, options: ListApiFilesOptions): Promise<ApiFileRecord[]> {
    const conditions = [`org_id = $1`, LIVE];
    const values: unknown[] = [orgId];
    if (options.ids !== undefined) {
      values.push([...options.ids]);
      conditions.push(`id = ANY($${values.length}::text[])`);
    }
    if (options.scopeId !== undefined) {
      values.push(options.scopeId);
      conditions.push(`scope_id = $${values.length}`);
    }
    if (options.afterSeq !== undefined) {
      values.push(options.afterSeq);
      conditions.push(`seq < $${values.length}`);
    }
    values.push(options.limit);
    const { rows } = await this.#pool.query<Row>(
      `SELECT ${COLUMNS} FROM api_files WHERE ${conditions.join(" AND ")}
       ORDER BY seq DESC LIMIT $${values.length}`,
      values,
    );
    return rows.map(toRecord);
  }

  /** The sha256 of the newest file stored from each output path of a scope (a session). */
  async latestByScopePath(orgId: string, scopeId: string): Promise<Map<string, string>> {
    const { rows } = await this.#pool.query<{ scope_path: string; sha256: string }>(
      `SELECT DISTINCT ON (scope_path) scope_path, sha256 FROM api_files
       WHERE org_id = $1 AND scope_id = $2 AND scope_path IS NOT NULL ORDER BY scope_path, seq DESC`,
      [orgId, scopeId],
    );
    return new Map(rows.map((row) => [row.scope_path, row.sha256]));
  }

  /** Removes the row, then the bytes. False when there was no such file in this org. */
  async delete(orgId: string, id: string): Promise<boolean> {
    const { rowCount } = await this.#pool.query("DELETE FROM api_files WHERE org_id = $1 AND id = $2", [
      orgId,
      id,
    ]);
    if (rowCount === 0) return false;
    await this.#blobs.delete(blobKey(orgId, id));
    return true;
  }
}

function blobKey(orgId: string, id: string): string {
  return `files/${orgId}/${id}`;
}

function toRecord(row: Row): ApiFileRecord {
  return {
    id: row.id,
    seq: Number(row.seq),
    orgId: row.org_id,
    filename: row.filename,
    mimeType: row.mime_type,
    sizeBytes: Number(row.size_bytes),
    sha256: row.sha256,
    isDownloadable: row.is_downloadable,
    scope:
      row.scope_type === null || row.scope_id === null ? null : { type: row.scope_type, id: row.scope_id },
    createdByUserId: row.created_by_user_id,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}
