/**
 * Files as session resources (the Files API's side of a session): a `{type: "file", file_id,
 * mount_path}` resource is copied into the sandbox (under /mnt/session/uploads/ by default, read-only,
 * or into /workspace/), and what the agent writes under /mnt/session/outputs/ becomes Files API files
 * scoped to the session (`GET /v1/files?scope_id=<session id>`). Outputs are read back through the
 * sandbox itself, so nothing the agent plants there (symlinks, FIFOs) is ever followed on the host.
 */
import { createHash } from "node:crypto";
import { type Dir, opendirSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { FileError, InputError, type ReadOnlyMount, type Sandbox } from "@outrig/core";
import type { ApiFileRecord, PostgresApiFileStore } from "@outrig/storage";
import { mimeTypeOf } from "./routes/files-api-routes.js";

export const SESSION_UPLOADS_DIR = "/mnt/session/uploads";
export const SESSION_OUTPUTS_DIR = "/mnt/session/outputs";
const WORKSPACE_DIR = "/workspace";
/** The largest output file collected (the sandbox agent's file-read bound is 32 MiB). */
export const DEFAULT_MAX_OUTPUT_FILE_BYTES = 30 * 1024 * 1024;
/** The most output files collected per call. */
export const DEFAULT_MAX_OUTPUT_FILES = 1000;
const MAX_MOUNT_PATH_LENGTH = 4096;

/** A file resource as the API's session create and `resources.add` take it. */
export interface SessionFileResource {
  readonly file_id: string;
  readonly mount_path?: string | null;
}

/** A file as it was put into the sandbox. */
export interface MountedSessionFile {
  readonly file_id: string;
  readonly mount_path: string;
}

/**
 * The sandbox path a file resource is mounted at: `mount_path`, or `/mnt/session/uploads/<file_id>`.
 * Throws InputError `invalid_mount_path` (400) for a path that is not absolute, holds `.`/`..`
 * segments or control characters, or lies outside /mnt/session/uploads/ and /workspace/.
 */
export function fileMountPath(resource: SessionFileResource): string {
  const raw = resource.mount_path ?? `${SESSION_UPLOADS_DIR}/${resource.file_id}`;
  const segments = raw.split("/");
  const isInside = (root: string) => raw.startsWith(`${root}/`) && raw.length > root.length + 1;
  if (
    raw.length > MAX_MOUNT_PATH_LENGTH ||
    !raw.startsWith("/") ||
    raw.endsWith("/") ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
    /[\u0000-\u001f\u007f\\]/.test(raw) ||
    segments.slice(1).some((segment) => segment === "" || segment === "." || segment === "..") ||
    !(isInside(SESSION_UPLOADS_DIR) || isInside(WORKSPACE_DIR))
  ) {
    throw new InputError(
      "invalid_mount_path",
      `mount_path must be a file path under ${SESSION_UPLOADS_DIR}/ or ${WORKSPACE_DIR}/ without "." or ".." segments`,
      400,
    );
  }
  return raw;
}

/**
 * Checks a session's file resources before the session is created: every mount path is valid and
 * distinct, and every file exists in the org (404 `not_found` otherwise, another org's included).
 */
export async function checkFileResources(
  files: PostgresApiFileStore,
  orgId: string,
  resources: readonly SessionFileResource[],
): Promise<void> {
  const seen = new Set<string>();
  for (const resource of resources) {
    const mountPath = fileMountPath(resource);
    if (seen.has(mountPath)) {
      throw new InputError("invalid_mount_path", `Two resources are mounted at ${mountPath}`, 400);
    }
    seen.add(mountPath);
    if ((await files.get(orgId, resource.file_id)) === undefined) {
      throw new InputError("not_found", `File ${resource.file_id.slice(0, 100)} not found`, 404);
    }
  }
}

export interface SessionFilesOptions {
  readonly files: PostgresApiFileStore;
  readonly orgId: string;
  readonly sessionId: string;
  /** The host directory of this session's uploads and outputs (e.g. `<home>/session-files/<id>`). */
  readonly directory: string;
  readonly maxOutputFileBytes?: number;
  readonly maxOutputFiles?: number;
  readonly log?: (message: string) => void;
}

/** One session's uploads and outputs. Holds no state beyond its host directory and the database. */
export class SessionFiles {
  readonly #options: SessionFilesOptions;

  constructor(options: SessionFilesOptions) {
    this.#options = options;
  }

  get #uploadsDir(): string {
    return path.join(this.#options.directory, "uploads");
  }

  get #outputsDir(): string {
    return path.join(this.#options.directory, "outputs");
  }

  /**
   * The mounts to merge into every sandbox start of the session (SandboxSetup): the uploads read-only
   * at /mnt/session/uploads, the outputs writable at /mnt/session/outputs. Creates the host directories.
   */
  async sandboxMounts(): Promise<{ readOnlyMounts: ReadOnlyMount[]; writableMounts: ReadOnlyMount[] }> {
    await fs.mkdir(this.#uploadsDir, { recursive: true, mode: 0o755 });
    await fs.mkdir(this.#outputsDir, { recursive: true, mode: 0o777 });
    // The sandbox user may map to another uid than the server's: outputs must be writable for it.
    await fs.chmod(this.#outputsDir, 0o777);
    return {
      readOnlyMounts: [{ hostPath: this.#uploadsDir, sandboxPath: SESSION_UPLOADS_DIR }],
      writableMounts: [{ hostPath: this.#outputsDir, sandboxPath: SESSION_OUTPUTS_DIR }],
    };
  }

  /**
   * Puts each file at its mount path: under /mnt/session/uploads/ into the read-only uploads
   * directory (visible at once in a running sandbox), under /workspace/ through `sandbox.writeFile`.
   * Idempotent (the same bytes again). Throws InputError 400/404 like `checkFileResources`, before
   * anything is written.
   */
  async mountFiles(
    resources: readonly SessionFileResource[],
    sandbox: Sandbox,
  ): Promise<MountedSessionFile[]> {
    await checkFileResources(this.#options.files, this.#options.orgId, resources);
    await this.sandboxMounts();
    const mounted: MountedSessionFile[] = [];
    for (const resource of resources) {
      const mountPath = fileMountPath(resource);
      const found = await this.#options.files.read(this.#options.orgId, resource.file_id);
      if (found === undefined) throw new InputError("not_found", "File not found", 404);
      if (mountPath.startsWith(`${SESSION_UPLOADS_DIR}/`)) {
        // Invariant: fileMountPath left no "." or ".." segment, so this stays inside the uploads dir.
        const hostPath = path.join(this.#uploadsDir, mountPath.slice(SESSION_UPLOADS_DIR.length + 1));
        await fs.mkdir(path.dirname(hostPath), { recursive: true, mode: 0o755 });
        const temporary = `${hostPath}.${process.pid}.tmp`;
        await fs.writeFile(temporary, found.content, { mode: 0o444 });
        await fs.rename(temporary, hostPath);
      } else {
        await sandbox.writeFile(mountPath, found.content);
      }
      mounted.push({ file_id: resource.file_id, mount_path: mountPath });
    }
    return mounted;
  }

  /**
   * Stores every regular file under /mnt/session/outputs/ that is new or changed since the last call
   * as a Files API file scoped to the session (its filename the output's base name). Call it while the
   * session's sandbox runs: after a tool call that may have written there, and at the end of a turn.
   * Files over the size bound are skipped (logged). Resolves the files stored by this call.
   */
  async collectOutputs(sandbox: Sandbox): Promise<ApiFileRecord[]> {
    const { files, orgId, sessionId } = this.#options;
    const maxBytes = this.#options.maxOutputFileBytes ?? DEFAULT_MAX_OUTPUT_FILE_BYTES;
    // Nothing written there (most steps): no sandbox call and no query, so the step does not wait for
    // the snapshot of the call before it. Only our own directory is listed; nothing in it is followed.
    if (isEmptyDirectory(this.#outputsDir)) return [];
    let entries: Awaited<ReturnType<Sandbox["list"]>>;
    try {
      entries = await sandbox.list(SESSION_OUTPUTS_DIR, {
        recursive: true,
        limit: this.#options.maxOutputFiles ?? DEFAULT_MAX_OUTPUT_FILES,
      });
    } catch (error) {
      if (error instanceof FileError && error.code === "not_found") return [];
      throw error;
    }
    const stored = await files.latestByScopePath(orgId, sessionId);
    const created: ApiFileRecord[] = [];
    for (const entry of entries) {
      if (entry.kind !== "file") continue;
      if (entry.size > maxBytes) {
        this.#options.log?.(
          `session ${sessionId}: output ${entry.path.slice(0, 200)} is ${entry.size} bytes, over ${maxBytes}: not stored`,
        );
        continue;
      }
      let content: Uint8Array;
      try {
        content = await sandbox.readFile(`${SESSION_OUTPUTS_DIR}/${entry.path}`);
      } catch (error) {
        // Removed or replaced since the listing: the next collection sees what is there then.
        if (error instanceof FileError) continue;
        throw error;
      }
      const sha256 = createHash("sha256").update(content).digest("hex");
      if (stored.get(entry.path) === sha256) continue;
      const filename = path.posix.basename(entry.path);
      created.push(
        await files.create({
          orgId,
          filename,
          mimeType: mimeTypeOf(filename, ""),
          content,
          scope: { type: "session", id: sessionId },
          scopePath: entry.path,
        }),
      );
      stored.set(entry.path, sha256);
    }
    return created;
  }

  /** Removes the session's host directory (when the session is deleted). The Files API files stay. */
  async destroy(): Promise<void> {
    await fs.rm(this.#options.directory, { recursive: true, force: true });
  }
}

/**
 * True when `directory` has no entries or does not exist (its entries are named, never opened). Reads
 * one entry synchronously: a few microseconds, where the async version queues behind the thread pool's
 * file work (snapshots) on a busy worker.
 */
function isEmptyDirectory(directory: string): boolean {
  let handle: Dir;
  try {
    handle = opendirSync(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return true;
    throw error;
  }
  try {
    return handle.readSync() === null;
  } finally {
    handle.closeSync();
  }
}
