/**
 * The Managed Agents API's Files resource: `POST /v1/files` (multipart upload), `GET /v1/files`,
 * `GET /v1/files/{id}`, `GET /v1/files/{id}/content`, `DELETE /v1/files/{id}`. Scoped by the caller's
 * org; another org's id is a 404. Uploads have their own size limit (413), not the JSON body limit.
 */
import { InputError } from "@outrig/core";
import type { ApiFileRecord, PostgresApiFileStore, StagedApiFileContent } from "@outrig/storage";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { notFound } from "../http-error.js";
import { parseInput } from "../http-input.js";
import { decodeCursor, pageQueryFields, toPage } from "../page-cursor.js";
import { readMultipartParts, readTextPart } from "../read-multipart-parts.js";
import { DEFAULT_MAX_FILE_UPLOAD_BYTES, uploadBodyLimit } from "../upload-requests.js";

export interface FilesApiCaller {
  readonly orgId: string;
  readonly userId: string;
}

export type FilesApiRoutesEnv = { Variables: { caller: FilesApiCaller } };

export interface FilesApiRoutesDependencies {
  readonly files: PostgresApiFileStore;
  /** The largest upload, multipart framing included (default 100 MiB). */
  readonly maxUploadBytes?: number;
}

/** The API's file object (`BetaFileMetadata`). */
export interface FileMetadata {
  readonly id: string;
  readonly type: "file";
  readonly filename: string;
  readonly mime_type: string;
  readonly size_bytes: number;
  readonly created_at: string;
  readonly downloadable: boolean;
  readonly expires_at: string | null;
  readonly scope: { readonly type: "session"; readonly id: string } | null;
}

const MIN_EXPIRES_IN_SECONDS = 3600;
const MAX_EXPIRES_IN_SECONDS = 7_776_000;
const MAX_FILENAME_LENGTH = 255;
const MAX_IDS = 100;
const MAX_TEXT_FIELD_BYTES = 1024;
const FileId = z.string().regex(/^file_[A-Za-z0-9]{1,64}$/);
const ListQuery = z.strictObject({
  ...pageQueryFields,
  scope_id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .optional(),
  ids: z.array(FileId).max(MAX_IDS).optional(),
});
const Cursor = z.strictObject({ seq: z.number().int().min(0) });

/** By extension, for parts sent without a type (the SDK's `toFile` without `{ type }`). */
const MIME_TYPES: Readonly<Record<string, string>> = {
  txt: "text/plain",
  md: "text/markdown",
  csv: "text/csv",
  json: "application/json",
  html: "text/html",
  xml: "application/xml",
  pdf: "application/pdf",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  zip: "application/zip",
  py: "text/x-python",
  js: "text/javascript",
  ts: "text/plain",
  sh: "text/x-shellscript",
};

export function toFileMetadata(record: ApiFileRecord): FileMetadata {
  return {
    id: record.id,
    type: "file",
    filename: record.filename,
    mime_type: record.mimeType,
    size_bytes: record.sizeBytes,
    created_at: record.createdAt.toISOString(),
    downloadable: record.isDownloadable,
    expires_at: record.expiresAt?.toISOString() ?? null,
    scope: record.scope,
  };
}

/** The MIME type to store: the part's own, else one guessed from the name, else octet-stream. */
export function mimeTypeOf(filename: string, partType: string): string {
  const declared = partType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/.test(declared) && declared !== "application/octet-stream") {
    return partType.trim().slice(0, 255);
  }
  const extension = /\.([A-Za-z0-9]+)$/.exec(filename)?.[1]?.toLowerCase();
  return (extension === undefined ? undefined : MIME_TYPES[extension]) ?? "application/octet-stream";
}

/** The final path component of a part's filename, or `unnamed` (plus an extension for a known type). */
export function storedFilename(raw: string, mimeType: string): string {
  const base = raw.split(/[\\/]/).pop() ?? "";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (/[\u0000-\u001f\u007f]/.test(base)) {
    throw new InputError("invalid_request", "file: the filename holds control characters", 400);
  }
  if (base.length > MAX_FILENAME_LENGTH) {
    throw new InputError("invalid_request", `file: the filename is longer than ${MAX_FILENAME_LENGTH}`, 400);
  }
  if (base !== "" && base !== "." && base !== "..") return base;
  const extension = Object.entries(MIME_TYPES).find(([, type]) => type === mimeType)?.[0];
  return extension === undefined ? "unnamed" : `unnamed.${extension}`;
}

const oneFilePart = () =>
  new InputError("invalid_request", "file: send exactly one file part named file", 400);

/** The file id of the path; anything not shaped like one names no file (404, never a database error). */
function fileIdOf(c: Context): string {
  const id = c.req.param("id") ?? "";
  if (!FileId.safeParse(id).success) throw notFound("File");
  return id;
}

export function registerFilesApiRoutes<E extends FilesApiRoutesEnv>(
  app: Hono<E>,
  deps: FilesApiRoutesDependencies,
): void {
  const callerOf = (c: Context<E>): FilesApiCaller => c.get("caller") as FilesApiCaller;
  const maxUploadBytes = deps.maxUploadBytes ?? DEFAULT_MAX_FILE_UPLOAD_BYTES;

  app.use("/v1/files", uploadBodyLimit(maxUploadBytes, "The upload"));
  app.post("/v1/files", async (c) => {
    const caller = callerOf(c);
    // The file part streams into the blob store as it arrives; the row comes once every part is read.
    let file: { filename: string; mimeType: string; content: StagedApiFileContent } | undefined;
    try {
      const expires: string[] = [];
      for await (const part of readMultipartParts(c.req.raw)) {
        if (part.name === "file") {
          if (part.filename === undefined || file !== undefined) throw oneFilePart();
          const mimeType = mimeTypeOf(part.filename, part.contentType);
          const filename = storedFilename(part.filename, mimeType);
          file = { filename, mimeType, content: await deps.files.stage(caller.orgId, part.body) };
        } else if (part.name === "expires_in_seconds") {
          expires.push(await readTextPart(part, MAX_TEXT_FIELD_BYTES));
        } else {
          throw new InputError("invalid_request", `${part.name.slice(0, 100)}: unknown field`, 400);
        }
      }
      if (file === undefined) throw oneFilePart();
      let expiresAt: Date | undefined;
      if (expires.length > 0) {
        const seconds = parseInput(
          z.coerce.number().int().min(MIN_EXPIRES_IN_SECONDS).max(MAX_EXPIRES_IN_SECONDS),
          expires.length === 1 ? expires[0] : undefined,
        );
        expiresAt = new Date(Date.now() + seconds * 1000);
      }
      const record = await deps.files.create({
        orgId: caller.orgId,
        createdByUserId: caller.userId,
        filename: file.filename,
        mimeType: file.mimeType,
        content: file.content,
        ...(expiresAt === undefined ? {} : { expiresAt }),
      });
      return c.json(toFileMetadata(record));
    } catch (error) {
      if (file !== undefined) await deps.files.discard(file.content);
      throw error;
    }
  });

  app.get("/v1/files", async (c) => {
    const raw = c.req.queries();
    const { "ids[]": ids, ...single } = raw;
    const query = parseInput(ListQuery, {
      ...Object.fromEntries(
        Object.entries(single).map(([key, values]) => [key, values.length === 1 ? values[0] : values]),
      ),
      ...(ids === undefined ? {} : { ids }),
    });
    const caller = callerOf(c);
    if (query.ids !== undefined) {
      if (query.page !== undefined) {
        throw new InputError("invalid_request", "ids: cannot be combined with page", 400);
      }
      const records = await deps.files.list(caller.orgId, {
        ids: [...new Set(query.ids)],
        limit: MAX_IDS,
        ...(query.scope_id === undefined ? {} : { scopeId: query.scope_id }),
      });
      return c.json({ data: records.map(toFileMetadata), next_page: null });
    }
    const cursor = query.page === undefined ? undefined : decodeCursor(query.page, Cursor);
    const records = await deps.files.list(caller.orgId, {
      limit: query.limit + 1,
      ...(cursor === undefined ? {} : { afterSeq: cursor.seq }),
      ...(query.scope_id === undefined ? {} : { scopeId: query.scope_id }),
    });
    return c.json(toPage(records, query.limit, toFileMetadata, (record) => ({ seq: record.seq })));
  });

  app.get("/v1/files/:id", async (c) => {
    const record = await deps.files.get(callerOf(c).orgId, fileIdOf(c));
    if (record === undefined) throw notFound("File");
    return c.json(toFileMetadata(record));
  });

  app.get("/v1/files/:id/content", async (c) => {
    const found = await deps.files.open(callerOf(c).orgId, fileIdOf(c));
    if (found === undefined) throw notFound("File");
    if (!found.record.isDownloadable) {
      throw new InputError("file_not_downloadable", "This file cannot be downloaded", 400);
    }
    // Streamed from the blob store, never read whole into memory.
    return c.body(ReadableStream.from(found.content), 200, {
      "content-type": found.record.mimeType,
      "content-length": String(found.record.sizeBytes),
      "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(found.record.filename)}`,
      "x-content-type-options": "nosniff",
    });
  });

  app.delete("/v1/files/:id", async (c) => {
    const id = fileIdOf(c);
    if (!(await deps.files.delete(callerOf(c).orgId, id))) throw notFound("File");
    return c.json({ id, type: "file_deleted" });
  });
}
