/**
 * The Managed Agents API's memory stores: `/v1/memory_stores` (stores), `…/{id}/memories` (memories, with
 * the `content_sha256` precondition) and `…/{id}/memory_versions` (history and redaction), on
 * PostgresMemoryStores. Everything is scoped by the caller's org: another org's id is a 404.
 */
import { createHash } from "node:crypto";
import { FileError, InputError } from "@outrig/core";
import type {
  MemoryListItem,
  MemoryRecord,
  MemoryStoreRecord,
  MemoryVersionRecord,
  PostgresMemoryStores,
} from "@outrig/storage";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { notFound } from "../http-error.js";
import { parseInput, parseQuery, readJson } from "../http-input.js";
import { decodeCursor, pageQueryFields, toPage } from "../page-cursor.js";

export interface MemoryStoresCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly keyId: string;
  readonly role: string;
}

export type MemoryStoresRoutesEnv = { Variables: { caller: MemoryStoresCaller } };

export interface MemoryStoresRoutesDependencies {
  readonly memoryStores: PostgresMemoryStores;
}

/** Largest memory content, in UTF-8 bytes (the API's 100 kB). */
export const MAX_MEMORY_BYTES = 102_400;
/** With view=full a list page holds at most this many items. */
const MAX_FULL_VIEW_LIMIT = 20;
const MAX_PATH_SEGMENTS = 20;
const ID_PATTERN = /^[A-Za-z0-9_]{1,128}$/;
const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hexadecimal characters");

/** Text Postgres can store: no lone surrogates (jsonb refuses them). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const Text = z
  .string()
  .refine((value) => !LONE_SURROGATE.test(value), "must be well-formed Unicode (no lone surrogates)");
/** An id in a filter: ids are prefixed base62; anything else matches nothing and is refused. */
const IdFilter = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "not an id");
/** RFC 3339 with a year Postgres can hold. */
const Timestamp = z
  .string()
  .datetime({ offset: true })
  .refine((value) => {
    const year = new Date(value).getUTCFullYear();
    return year >= 1 && year <= 9999;
  }, "year must be between 1 and 9999");

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to refuse control characters.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const Name = Text.pipe(
  z
    .string()
    .min(1)
    .max(255)
    .refine((value) => !CONTROL.test(value), "must not contain control characters"),
);
const Description = Text.pipe(z.string().max(1024));
const MetadataKey = Text.pipe(z.string().min(1).max(64));
const MetadataValue = Text.pipe(z.string().max(512));
const Metadata = z
  .record(MetadataKey, MetadataValue)
  .refine((value) => Object.keys(value).length <= 16, "at most 16 pairs");
const View = z.enum(["basic", "full"]);

const CreateStoreBody = z.strictObject({
  name: Name,
  description: Description.optional(),
  metadata: Metadata.optional(),
});
const UpdateStoreBody = z.strictObject({
  name: Name.nullable().optional(),
  description: Description.nullable().optional(),
  metadata: z.record(MetadataKey, MetadataValue.nullable()).nullable().optional(),
});
const ListStoresQuery = z.strictObject({
  ...pageQueryFields,
  include_archived: z.enum(["true", "false"]).optional(),
  "created_at[gte]": Timestamp.optional(),
  "created_at[lte]": Timestamp.optional(),
});
// Cursors are ours, but a client can forge one: everything in it must be safe to hand to Postgres.
const StoreCursor = z.strictObject({
  created_at: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/),
  id: z.string().regex(ID_PATTERN),
});

const MemoryContent = z.string().refine((value) => Buffer.byteLength(value, "utf8") <= MAX_MEMORY_BYTES, {
  message: `must be at most ${MAX_MEMORY_BYTES} bytes`,
});
const ViewQuery = z.strictObject({ view: View.optional() });
const CreateMemoryBody = z.strictObject({ content: MemoryContent.nullable(), path: Text });
const UpdateMemoryBody = z.strictObject({
  content: MemoryContent.nullable().optional(),
  path: Text.nullable().optional(),
  precondition: z
    .strictObject({ type: z.literal("content_sha256"), content_sha256: SHA256.optional() })
    .optional(),
});
const ListMemoriesQuery = z.strictObject({
  ...pageQueryFields,
  depth: z.coerce.number().int().min(0).max(1).optional(),
  path_prefix: Text.optional(),
  view: View.optional(),
});
const MemoryCursor = z.strictObject({
  after: Text.refine((value) => value.startsWith("/") && !CONTROL.test(value)),
  is_prefix: z.boolean(),
});
const DeleteMemoryQuery = z.strictObject({ expected_content_sha256: SHA256.optional() });
const ListVersionsQuery = z.strictObject({
  ...pageQueryFields,
  api_key_id: IdFilter.optional(),
  "created_at[gte]": Timestamp.optional(),
  "created_at[lte]": Timestamp.optional(),
  memory_id: IdFilter.optional(),
  operation: z.enum(["created", "modified", "deleted"]).optional(),
  service_account_id: IdFilter.optional(),
  session_id: IdFilter.optional(),
  view: View.optional(),
});
const VersionCursor = z.strictObject({ seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) });

/**
 * Adds the memory store routes to an app whose `/v1/*` middleware has set `caller` (see createApp).
 * Errors are InputErrors (the edge renders the API's error shape).
 */
export function registerMemoryStoresRoutes<E extends MemoryStoresRoutesEnv>(
  app: Hono<E>,
  deps: MemoryStoresRoutesDependencies,
): void {
  const routes = app as unknown as Hono<MemoryStoresRoutesEnv>;
  const stores = deps.memoryStores;

  /** The caller's store, or 404 (never saying whether another org has it). */
  const storeOf = async (c: Context<MemoryStoresRoutesEnv>): Promise<MemoryStoreRecord> => {
    const id = c.req.param("store") ?? "";
    const store = ID_PATTERN.test(id) ? await stores.getStore(c.get("caller").orgId, id) : null;
    if (!store) throw notFound("Memory store");
    return store;
  };
  const writableStoreOf = async (c: Context<MemoryStoresRoutesEnv>) => {
    const store = await storeOf(c);
    if (store.archivedAt !== null) {
      throw new InputError(
        "memory_store_archived",
        "The memory store is archived: its memories can be read and deleted, not created or changed.",
        409,
      );
    }
    return store;
  };
  const authorOf = (c: Context<MemoryStoresRoutesEnv>) => {
    const caller = c.get("caller");
    return { userId: caller.userId, apiKeyId: caller.keyId };
  };

  routes.post("/v1/memory_stores", async (c) => {
    const body = await readJson(c, CreateStoreBody);
    const store = await stores.createStore(c.get("caller").orgId, body);
    return c.json(renderStore(store));
  });

  routes.get("/v1/memory_stores", async (c) => {
    const query = parseQuery(c, ListStoresQuery);
    const after = query.page === undefined ? undefined : decodeCursor(query.page, StoreCursor);
    const rows = await stores.listStores(c.get("caller").orgId, {
      limit: query.limit + 1,
      includeArchived: query.include_archived === "true",
      ...(query["created_at[gte]"] ? { createdGte: new Date(query["created_at[gte]"]) } : {}),
      ...(query["created_at[lte]"] ? { createdLte: new Date(query["created_at[lte]"]) } : {}),
      ...(after ? { after: { createdAt: after.created_at, id: after.id } } : {}),
    });
    return c.json(
      toPage(rows, query.limit, renderStore, (row) => ({
        created_at: row.createdAtExact,
        id: row.id,
      })),
    );
  });

  routes.get("/v1/memory_stores/:store", async (c) => c.json(renderStore(await storeOf(c))));

  routes.post("/v1/memory_stores/:store", async (c) => {
    const body = await readJson(c, UpdateStoreBody);
    const store = await writableStoreOf(c);
    const updated = await stores.updateStore(
      store.orgId,
      store.id,
      {
        ...(body.name == null ? {} : { name: body.name }),
        ...(body.description == null ? {} : { description: body.description }),
        ...(body.metadata == null ? {} : { metadata: body.metadata }),
      },
      (merged) => {
        if (Object.keys(merged).length > 16) {
          throw new InputError("invalid_request", "metadata: at most 16 pairs after the change", 400);
        }
      },
    );
    if (!updated) throw notFound("Memory store");
    return c.json(renderStore(updated));
  });

  routes.delete("/v1/memory_stores/:store", async (c) => {
    const store = await storeOf(c);
    await stores.deleteStore(store.orgId, store.id);
    return c.json({ id: store.id, type: "memory_store_deleted" });
  });

  routes.post("/v1/memory_stores/:store/archive", async (c) => {
    await readEmptyBody(c);
    const store = await storeOf(c);
    const archived = await stores.archiveStore(store.orgId, store.id);
    if (!archived) throw notFound("Memory store");
    return c.json(renderStore(archived));
  });

  // ---- memories

  routes.post("/v1/memory_stores/:store/memories", async (c) => {
    const { view } = parseQuery(c, ViewQuery);
    const body = await readJson(c, CreateMemoryBody);
    const path = memoryPath(body.path, "path");
    const store = await writableStoreOf(c);
    try {
      const result = await stores.createMemory(store.orgId, store.id, path, body.content ?? "", authorOf(c));
      return c.json(await renderMemoryById(stores, store, result.memoryId, view ?? "basic"));
    } catch (error) {
      throw memoryError(error, { creating: path });
    }
  });

  routes.get("/v1/memory_stores/:store/memories", async (c) => {
    const query = parseQuery(c, ListMemoriesQuery);
    const store = await storeOf(c);
    const prefix = query.path_prefix === undefined ? "/" : pathPrefix(query.path_prefix);
    const isFull = query.view === "full";
    const limit = isFull ? Math.min(query.limit, MAX_FULL_VIEW_LIMIT) : query.limit;
    const cursor = query.page === undefined ? undefined : decodeCursor(query.page, MemoryCursor);
    if (cursor && !cursor.after.startsWith(prefix)) {
      throw new InputError("invalid_request", "page: not a cursor of this listing", 400);
    }
    const items = await stores.listMemories(store.orgId, store.id, {
      limit: limit + 1,
      pathPrefix: prefix,
      ...(query.depth === undefined ? {} : { depth: query.depth }),
      // A prefix item's cursor skips everything under it: just past the prefix, byte-wise.
      ...(cursor
        ? { after: cursor.is_prefix ? `${cursor.after.slice(0, -1)}/\u{10ffff}` : cursor.after }
        : {}),
      withContent: isFull,
    });
    return c.json(
      toPage(
        items,
        limit,
        (item) => renderListItem(item, isFull),
        (item) => ({
          after: item.path,
          is_prefix: "kind" in item,
        }),
      ),
    );
  });

  routes.get("/v1/memory_stores/:store/memories/:memory", async (c) => {
    const { view } = parseQuery(c, ViewQuery);
    const store = await storeOf(c);
    return c.json(await renderMemoryById(stores, store, c.req.param("memory"), view ?? "full"));
  });

  routes.post("/v1/memory_stores/:store/memories/:memory", async (c) => {
    const { view } = parseQuery(c, ViewQuery);
    const body = await readJson(c, UpdateMemoryBody);
    const path = body.path == null ? undefined : memoryPath(body.path, "path");
    const store = await writableStoreOf(c);
    const memoryId = memoryIdOf(c.req.param("memory"));
    try {
      const result = await stores.updateMemory(
        store.orgId,
        store.id,
        memoryId,
        {
          ...(body.content == null ? {} : { content: body.content }),
          ...(path === undefined ? {} : { path }),
          ...(body.precondition?.content_sha256 === undefined
            ? {}
            : { expectedSha256: body.precondition.content_sha256 }),
        },
        authorOf(c),
      );
      return c.json(await renderMemoryById(stores, store, result.memoryId, view ?? "basic"));
    } catch (error) {
      throw memoryError(error, path === undefined ? {} : { creating: path });
    }
  });

  routes.delete("/v1/memory_stores/:store/memories/:memory", async (c) => {
    const query = parseQuery(c, DeleteMemoryQuery);
    const store = await storeOf(c);
    const memoryId = memoryIdOf(c.req.param("memory"));
    try {
      await stores.deleteMemory(store.orgId, store.id, memoryId, {
        author: authorOf(c),
        ...(query.expected_content_sha256 === undefined
          ? {}
          : { expectedSha256: query.expected_content_sha256 }),
      });
    } catch (error) {
      throw memoryError(error, {});
    }
    return c.json({ id: memoryId, type: "memory_deleted" });
  });

  // ---- versions

  routes.get("/v1/memory_stores/:store/memory_versions", async (c) => {
    const query = parseQuery(c, ListVersionsQuery);
    const store = await storeOf(c);
    const isFull = query.view === "full";
    const limit = isFull ? Math.min(query.limit, MAX_FULL_VIEW_LIMIT) : query.limit;
    const cursor = query.page === undefined ? undefined : decodeCursor(query.page, VersionCursor);
    // Outrig has no service accounts: a filter on one matches nothing.
    const rows =
      query.service_account_id !== undefined
        ? []
        : await stores.listVersions(store.orgId, store.id, {
            limit: limit + 1,
            withContent: isFull,
            ...(cursor ? { beforeSeq: cursor.seq } : {}),
            ...(query.memory_id ? { memoryId: query.memory_id } : {}),
            ...(query.operation ? { operation: query.operation } : {}),
            ...(query.session_id ? { sessionId: query.session_id } : {}),
            ...(query.api_key_id ? { apiKeyId: query.api_key_id } : {}),
            ...(query["created_at[gte]"] ? { createdGte: new Date(query["created_at[gte]"]) } : {}),
            ...(query["created_at[lte]"] ? { createdLte: new Date(query["created_at[lte]"]) } : {}),
          });
    return c.json(
      toPage(
        rows,
        limit,
        (row) => renderVersion(row, isFull),
        (row) => ({ seq: row.seq }),
      ),
    );
  });

  routes.get("/v1/memory_stores/:store/memory_versions/:version", async (c) => {
    const { view } = parseQuery(c, ViewQuery);
    const store = await storeOf(c);
    const version = await versionOf(stores, store, c.req.param("version"), (view ?? "full") === "full");
    return c.json(renderVersion(version, (view ?? "full") === "full"));
  });

  routes.post("/v1/memory_stores/:store/memory_versions/:version/redact", async (c) => {
    await readEmptyBody(c);
    const store = await storeOf(c);
    const versionId = c.req.param("version");
    await versionOf(stores, store, versionId, false);
    try {
      await stores.redactVersion(store.orgId, store.id, versionId, authorOf(c));
    } catch (error) {
      if (error instanceof FileError && error.code === "conflict") {
        throw new InputError("conflict", error.message, 409);
      }
      throw error;
    }
    return c.json(renderVersion(await versionOf(stores, store, versionId, true), true));
  });
}

async function versionOf(
  stores: PostgresMemoryStores,
  store: MemoryStoreRecord,
  versionId: string,
  withContent: boolean,
): Promise<MemoryVersionRecord> {
  const version = ID_PATTERN.test(versionId)
    ? await stores.getVersion(store.orgId, store.id, versionId, { withContent })
    : null;
  if (!version) throw notFound("Memory version");
  return version;
}

function memoryIdOf(value: string): string {
  if (!ID_PATTERN.test(value)) throw notFound("Memory");
  return value;
}

async function renderMemoryById(
  stores: PostgresMemoryStores,
  store: MemoryStoreRecord,
  memoryId: string,
  view: "basic" | "full",
) {
  const memory = ID_PATTERN.test(memoryId)
    ? await stores.getMemory(store.orgId, store.id, memoryId, { withContent: view === "full" })
    : null;
  if (!memory) throw notFound("Memory");
  return renderMemory(memory, view === "full");
}

/** A POST that takes no parameters (archive, redact): no body, or an empty JSON object. */
async function readEmptyBody(c: Context): Promise<void> {
  const text = await c.req.text();
  if (text.trim() === "") return;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InputError("invalid_json", "Request body is not valid JSON", 400);
  }
  parseInput(z.strictObject({}), value);
}

/** The API's memory path rules; the message names the rule broken. */
export function memoryPath(value: string, field: string): string {
  const fail = (rule: string) => new InputError("invalid_request", `${field}: ${rule}`, 400);
  if (!value.startsWith("/")) throw fail("must start with /");
  if (Buffer.byteLength(value, "utf8") > 1024) throw fail("must be at most 1024 bytes");
  if (value.normalize("NFC") !== value) throw fail("must be in Unicode Normalization Form C");
  if (/[\p{Cc}\p{Cf}\u2028\u2029]/u.test(value)) {
    throw fail("must not contain control or format characters, U+2028 or U+2029");
  }
  if (value.includes("\\")) throw fail("must not contain a backslash");
  const segments = value.slice(1).split("/");
  if (segments.length > MAX_PATH_SEGMENTS) throw fail(`must have at most ${MAX_PATH_SEGMENTS} segments`);
  for (const segment of segments) {
    if (segment === "") throw fail("must not have an empty segment");
    if (segment === "." || segment === "..") throw fail('must not have "." or ".." segments');
    if (Buffer.byteLength(segment, "utf8") > 255) throw fail("a segment must be at most 255 bytes");
  }
  return value;
}

function pathPrefix(value: string): string {
  if (value === "/") return value;
  if (!value.endsWith("/")) {
    throw new InputError("invalid_request", "path_prefix: must end with /", 400);
  }
  memoryPath(value.slice(0, -1), "path_prefix");
  return value;
}

/** Maps the file store's errors onto the API's memory errors. */
function memoryError(error: unknown, context: { creating?: string }): unknown {
  if (!(error instanceof FileError)) return error;
  switch (error.code) {
    case "conflict":
      if (context.creating !== undefined && error.path === context.creating) {
        return new InputError("memory_path_conflict", `A memory already exists at ${error.path}`, 409);
      }
      return new InputError(
        "memory_precondition_failed",
        "The memory's content_sha256 is not the one in the precondition: retrieve the memory and retry.",
        409,
      );
    case "is_directory":
    case "not_directory":
      return new InputError(
        "memory_path_conflict",
        `The path overlaps another memory's path (${error.path}): one would be a directory of the other.`,
        409,
      );
    case "not_found":
      return notFound("Memory");
    case "invalid_path":
    case "too_large":
      return new InputError("invalid_request", error.message, 400);
    default:
      return error;
  }
}

function renderStore(store: MemoryStoreRecord) {
  return {
    type: "memory_store" as const,
    id: store.id,
    name: store.name,
    description: store.description,
    metadata: store.metadata,
    created_at: store.createdAt.toISOString(),
    updated_at: store.updatedAt.toISOString(),
    archived_at: store.archivedAt?.toISOString() ?? null,
  };
}

function renderMemory(memory: MemoryRecord, isFull: boolean) {
  return {
    type: "memory" as const,
    id: memory.id,
    memory_store_id: memory.storeId,
    path: memory.path,
    content: isFull ? (memory.content ?? "") : null,
    content_sha256: memory.sha256,
    content_size_bytes: memory.size,
    memory_version_id: memory.versionId,
    created_at: memory.createdAt.toISOString(),
    updated_at: memory.updatedAt.toISOString(),
  };
}

function renderListItem(item: MemoryListItem, isFull: boolean) {
  if ("kind" in item) return { type: "memory_prefix" as const, path: item.path };
  return renderMemory(item, isFull);
}

function actorOf(ids: { sessionId: string | null; apiKeyId: string | null; userId: string | null }) {
  if (ids.sessionId) return { type: "session_actor" as const, session_id: ids.sessionId };
  if (ids.apiKeyId) return { type: "api_actor" as const, api_key_id: ids.apiKeyId };
  if (ids.userId) return { type: "user_actor" as const, user_id: ids.userId };
  return null;
}

function renderVersion(version: MemoryVersionRecord, isFull: boolean) {
  const isRedacted = version.redactedAt !== null;
  return {
    type: "memory_version" as const,
    id: version.id,
    memory_id: version.memoryId,
    memory_store_id: version.storeId,
    operation: version.operation,
    path: isRedacted ? null : version.path,
    content: isFull ? (version.content ?? null) : null,
    content_sha256: version.sha256,
    content_size_bytes: version.size,
    created_at: version.createdAt.toISOString(),
    created_by: actorOf(version),
    redacted_at: version.redactedAt?.toISOString() ?? null,
    redacted_by: isRedacted
      ? actorOf({ sessionId: null, apiKeyId: version.redactedByApiKeyId, userId: version.redactedByUserId })
      : null,
  };
}

/** sha256 of a memory's content as the API computes it (UTF-8 bytes, no normalization). */
export function memoryContentSha256(content: string): string {
  return createHash("sha256").update(content, "utf8").digest("hex");
}
