/**
 * HTTP routes for Outrig's versioned file store, which the Managed Agents API has no resource for
 * (history and blame of a path): `/v1/file_store/{list,content,history,blame}`, scoped by the caller's
 * org, user and role: `/memories/org/…` shared by the org, `/memories/me/…` the caller's own,
 * `/skills/…` org skills (read-only here: skills change through the Skills API, which versions them).
 * Paths are the ones the model sees. See docs/decisions/2026-12-06-skills-and-files-api.md.
 */
import { FileError, InputError } from "@outrig/core";
import {
  databaseMountInfo,
  type FileScope,
  normalizeFilePath,
  type PostgresFileStore,
  SKILLS_NAMESPACE,
} from "@outrig/storage";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { parseInput, readJson } from "../http-input.js";

export interface FileStoreCaller {
  readonly orgId: string;
  readonly userId: string;
  readonly role: string;
}

/** The part of the app's Env these routes need: an authenticated caller set by the /v1 middleware. */
export type FileStoreRoutesEnv = { Variables: { caller: FileStoreCaller } };

export interface FileStoreRoutesDependencies {
  readonly files: PostgresFileStore;
}

const PathQuery = z.strictObject({ path: z.string().min(1).max(4096) });
const ListQuery = z.strictObject({
  path: z.string().min(1).max(4096),
  recursive: z.enum(["true", "false"]).optional(),
});
const ReadQuery = z.strictObject({
  path: z.string().min(1).max(4096),
  version: z.coerce.number().int().min(1).optional(),
});
const DeleteQuery = z.strictObject({
  path: z.string().min(1).max(4096),
  expectedVersion: z.coerce.number().int().min(0).optional(),
});
const WriteBody = z.strictObject({
  path: z.string().min(1).max(4096),
  content: z.string(),
  encoding: z.enum(["utf8", "base64"]).default("utf8"),
  expectedVersion: z.number().int().min(0).optional(),
  /** Omitted: the file keeps its executable bit (a new file is not executable). */
  isExecutable: z.boolean().optional(),
});
interface Resolved {
  readonly scope: FileScope;
  readonly innerPath: string;
  readonly isWritable: boolean;
}

function resolve(caller: FileStoreCaller, path: string): Resolved {
  const normalized = normalizeFilePath(path);
  for (const info of databaseMountInfo(caller)) {
    if (normalized === info.prefix || normalized.startsWith(`${info.prefix}/`)) {
      return {
        scope: info.scope,
        innerPath: normalized === info.prefix ? "/" : normalized.slice(info.prefix.length),
        isWritable: info.isWritable,
      };
    }
  }
  throw new InputError(
    "invalid_path",
    `Path must be under /memories/org, /memories/me or /skills: ${normalized.slice(0, 200)}`,
    400,
  );
}

const SKILLS_READ_ONLY =
  "Skills change through the Skills API (POST /v1/skills, POST /v1/skills/{skill_id}/versions), which versions them.";

function requireWritable(resolved: Resolved, path: string): void {
  if (resolved.scope.namespace === SKILLS_NAMESPACE || !resolved.isWritable) {
    throw new FileError("permission_denied", path, SKILLS_READ_ONLY);
  }
}

/** A lost compare-and-swap is the client's to resolve: 409 instead of the generic FileError 400. */
async function withConflict<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof FileError && error.code === "conflict") {
      throw new InputError("conflict", error.message, 409, { cause: error });
    }
    throw error;
  }
}

function decodeContent(content: string, encoding: "utf8" | "base64"): Uint8Array {
  if (encoding === "utf8") return new TextEncoder().encode(content);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(content))
    throw new InputError("invalid_request", "content is not valid base64", 400);
  return new Uint8Array(Buffer.from(content, "base64"));
}

/**
 * Registers under `/v1/file_store` (list, content read/write/delete, history, blame). Expects the app's `/v1/*` auth middleware to have set `caller`. Errors are
 * thrown for the app's `onError`: InputError (400/409/415) and FileError (404/403/400).
 */
export function registerFileStoreRoutes<E extends FileStoreRoutesEnv>(
  app: Hono<E>,
  deps: FileStoreRoutesDependencies,
): void {
  const callerOf = (c: Context<E>): FileStoreCaller => c.get("caller") as FileStoreCaller;

  app.get("/v1/file_store/list", async (c) => {
    const query = parseInput(ListQuery, c.req.query());
    const resolved = resolve(callerOf(c), query.path);
    const entries = await deps.files.list(resolved.scope, resolved.innerPath, {
      recursive: query.recursive === "true",
    });
    return c.json({ path: normalizeFilePath(query.path), entries });
  });

  app.get("/v1/file_store/content", async (c) => {
    const query = parseInput(ReadQuery, c.req.query());
    const resolved = resolve(callerOf(c), query.path);
    const file = await deps.files.read(
      resolved.scope,
      resolved.innerPath,
      query.version === undefined ? {} : { version: query.version },
    );
    return c.body(file.content as Uint8Array<ArrayBuffer>, 200, {
      "content-type": "application/octet-stream",
      "x-file-version": String(file.version),
      "x-file-sha256": file.sha256,
      "x-file-executable": String(file.isExecutable),
    });
  });

  app.put("/v1/file_store/content", async (c) => {
    const body = await readJson(c, WriteBody);
    const caller = callerOf(c);
    const resolved = resolve(caller, body.path);
    requireWritable(resolved, body.path);
    const content = decodeContent(body.content, body.encoding);
    const result = await withConflict(() =>
      deps.files.write(resolved.scope, resolved.innerPath, content, {
        author: { userId: caller.userId },
        ...(body.expectedVersion === undefined ? {} : { expectedVersion: body.expectedVersion }),
        ...(body.isExecutable === undefined ? {} : { isExecutable: body.isExecutable }),
      }),
    );
    return c.json({
      path: normalizeFilePath(body.path),
      version: result.version,
      size: result.size,
      sha256: result.sha256,
    });
  });

  app.delete("/v1/file_store/content", async (c) => {
    const query = parseInput(DeleteQuery, c.req.query());
    const caller = callerOf(c);
    const resolved = resolve(caller, query.path);
    requireWritable(resolved, query.path);
    const removed = await withConflict(() =>
      deps.files.remove(resolved.scope, resolved.innerPath, {
        author: { userId: caller.userId },
        ...(query.expectedVersion === undefined ? {} : { expectedVersion: query.expectedVersion }),
      }),
    );
    return c.json({ removed: removed.map((result) => ({ path: result.path, version: result.version })) });
  });

  app.get("/v1/file_store/history", async (c) => {
    const query = parseInput(PathQuery, c.req.query());
    const resolved = resolve(callerOf(c), query.path);
    const versions = await deps.files.history(resolved.scope, resolved.innerPath);
    if (versions.length === 0)
      throw new InputError("not_found", `No such file: ${query.path.slice(0, 200)}`, 404);
    return c.json({
      path: normalizeFilePath(query.path),
      versions: versions.map((version) => ({
        version: version.version,
        isDeleted: version.isDeleted,
        size: version.size,
        sha256: version.sha256,
        authorUserId: version.authorUserId,
        sessionId: version.sessionId,
        turn: version.turn,
        mtimeMs: version.mtimeMs,
        createdAt: version.createdAt.toISOString(),
      })),
    });
  });

  app.get("/v1/file_store/blame", async (c) => {
    const query = parseInput(PathQuery, c.req.query());
    const resolved = resolve(callerOf(c), query.path);
    return c.json({
      path: normalizeFilePath(query.path),
      lines: await deps.files.blame(resolved.scope, resolved.innerPath),
    });
  });
}
