/**
 * The memory stores a session has as resources, mounted at `/mnt/memory/<slug>/`: for the file tools a
 * DatabaseFileSystem on the store's namespace (compare-and-swap against what the session read), for bash
 * a host copy bound into the sandbox (writable for `read_write`, read-only for `read_only`) that is
 * brought up to date before each command and whose changes are committed, attributed to the session,
 * when the command ends. A change based on a version another session replaced meanwhile is kept as a
 * conflict copy and the model is told in the command's result.
 */
import path from "node:path";
import { type ExecResult, InputError, type Mount, type ReadOnlyMount } from "@outrig/core";
import {
  DatabaseFileSystem,
  MemoryDirectorySync,
  type MemoryStoreRecord,
  type PostgresMemoryStores,
} from "@outrig/storage";
import { z } from "zod";
import { notFound } from "./http-error.js";
import { MAX_MEMORY_BYTES } from "./routes/memory-stores-routes.js";

export const MEMORY_MOUNT_ROOT = "/mnt/memory";

/** A `memory_store` entry of a session's `resources`, as the API takes it. */
export interface MemoryStoreResource {
  readonly type: "memory_store";
  readonly memory_store_id: string;
  /** Default `read_write`. */
  readonly access?: "read_write" | "read_only" | null;
  readonly instructions?: string | null;
}

/** The `memory_store` entry of a create-session body's `resources`, for the sessions route's strict schema. */
export const MemoryStoreResourceParam = z.strictObject({
  type: z.literal("memory_store"),
  memory_store_id: z.string().min(1).max(128),
  access: z.enum(["read_write", "read_only"]).nullable().optional(),
  instructions: z.string().max(4096).nullable().optional(),
});

export interface MountedMemoryStore {
  readonly store: MemoryStoreRecord;
  readonly access: "read_write" | "read_only";
  readonly instructions: string | null;
  /** `/mnt/memory/<slug>`: the resource's `mount_path`. */
  readonly mountPath: string;
}

export interface SessionMemoryMounts {
  readonly stores: readonly MountedMemoryStore[];
  /** For the session's MountTable (file tools). */
  readonly mounts: readonly Mount[];
  /** For the sandbox: read_only stores. */
  readonly readOnlyMounts: readonly ReadOnlyMount[];
  /** For the sandbox: read_write stores. */
  readonly writableMounts: readonly ReadOnlyMount[];
  /** A system-prompt section naming each store, its access, description and instructions; "" if none. */
  readonly prompt: string;
  /**
   * Runs one bash command: every copy is brought up to date first; afterwards every change is committed
   * and what the model must know (conflicts, refused files) is appended to the result's stderr.
   */
  aroundExec(run: () => Promise<ExecResult>): Promise<ExecResult>;
}

export interface SessionMemoryMountsOptions {
  readonly memoryStores: PostgresMemoryStores;
  readonly orgId: string;
  /** The session's owner: versions record them with the session. */
  readonly userId: string;
  readonly sessionId: string;
  readonly resources: readonly MemoryStoreResource[];
  /** A host directory for this session's copies (e.g. under its state directory). */
  readonly hostDir: string;
  /** The session's current turn, recorded on each version. */
  readonly turn?: () => number;
}

/** The API's mount slug: lowercased, each run of characters other than ASCII letters and digits one hyphen. */
export function memoryStoreSlug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

/**
 * Checks a session's memory store resources and resolves each to its store and mount path. Call it when
 * a session is created (`isNewSession`): a store the org does not have is a 404 (another org's too,
 * without saying so), an archived one a 409, a store attached twice a 400. Later (`skipMissing`), a store
 * deleted since is left out instead.
 */
export async function resolveMemoryStoreResources(options: {
  readonly memoryStores: PostgresMemoryStores;
  readonly orgId: string;
  readonly resources: readonly MemoryStoreResource[];
  readonly isNewSession?: boolean;
  readonly skipMissing?: boolean;
}): Promise<MountedMemoryStore[]> {
  const mounted: MountedMemoryStore[] = [];
  const slugs = new Set<string>();
  for (const resource of options.resources) {
    const store = /^[A-Za-z0-9_]{1,128}$/.test(resource.memory_store_id)
      ? await options.memoryStores.getStore(options.orgId, resource.memory_store_id)
      : null;
    if (!store) {
      if (options.skipMissing) continue;
      throw notFound(`Memory store ${resource.memory_store_id.slice(0, 128)}`);
    }
    if (options.isNewSession && store.archivedAt !== null) {
      throw new InputError(
        "memory_store_archived",
        `Memory store ${store.id} is archived and cannot be attached to a new session.`,
        409,
      );
    }
    if (mounted.some((each) => each.store.id === store.id)) {
      throw new InputError("invalid_request", `resources: memory store ${store.id} is attached twice`, 400);
    }
    let slug = memoryStoreSlug(store.name) || store.id;
    if (slugs.has(slug)) slug = `${slug}-${store.id}`;
    slugs.add(slug);
    mounted.push({
      store,
      access: resource.access ?? "read_write",
      instructions: resource.instructions ?? null,
      mountPath: `${MEMORY_MOUNT_ROOT}/${slug}`,
    });
  }
  return mounted;
}

/**
 * Sets up the mounts of a session's memory store resources (a store deleted since the session was
 * created is left out). Call once per session on the worker that runs it, before its sandbox starts.
 */
export async function createSessionMemoryMounts(
  options: SessionMemoryMountsOptions,
): Promise<SessionMemoryMounts> {
  const { memoryStores, orgId, sessionId } = options;
  const mounted = await resolveMemoryStoreResources({
    memoryStores,
    orgId,
    resources: options.resources,
    skipMissing: true,
  });
  const author = () => ({
    userId: options.userId,
    sessionId,
    ...(options.turn === undefined ? {} : { turn: options.turn() }),
  });
  const mounts: Mount[] = [];
  const readOnlyMounts: ReadOnlyMount[] = [];
  const writableMounts: ReadOnlyMount[] = [];
  const copies: {
    sync: MemoryDirectorySync;
    fileSystem: DatabaseFileSystem;
    isWritable: boolean;
    mounted: MountedMemoryStore;
  }[] = [];
  for (const each of mounted) {
    const scope = memoryStores.scopeOf(orgId, each.store.id);
    const isWritable = each.access === "read_write" && each.store.archivedAt === null;
    const fileSystem = new DatabaseFileSystem({
      store: memoryStores.files,
      scope,
      author: {
        userId: options.userId,
        sessionId,
        ...(options.turn === undefined ? {} : { turn: options.turn }),
      },
      ...(isWritable
        ? {}
        : {
            writeDeniedMessage: `${each.mountPath} is attached read-only to this session: it can be read, not changed.`,
          }),
    });
    mounts.push({ prefix: each.mountPath, fileSystem });
    const sync = await MemoryDirectorySync.create({
      store: memoryStores.files,
      scope,
      directory: path.join(options.hostDir, path.basename(each.mountPath)),
      displayPrefix: each.mountPath,
      sessionId,
      author,
      maxFileBytes: MAX_MEMORY_BYTES,
    });
    copies.push({ sync, fileSystem, isWritable, mounted: each });
    (isWritable ? writableMounts : readOnlyMounts).push({
      hostPath: sync.directory,
      sandboxPath: each.mountPath,
    });
  }

  return {
    stores: mounted,
    mounts,
    readOnlyMounts,
    writableMounts,
    prompt: memoryPrompt(mounted),
    async aroundExec(run) {
      for (const copy of copies) await copy.sync.pull();
      const result = await run();
      const notices: string[] = [];
      for (const each of mounted) {
        const isReadOnly = each.access === "read_only" || each.store.archivedAt !== null;
        const output = `${result.stdout}\n${result.stderr}`;
        if (isReadOnly && output.includes(each.mountPath) && output.includes("Read-only file system")) {
          notices.push(
            `outrig: ${each.mountPath} is attached read-only to this session: it can be read, not changed.`,
          );
        }
      }
      for (const copy of copies) {
        if (!copy.isWritable) continue;
        // A store deleted or archived since the session started takes no more writes.
        const current = await memoryStores.getStore(orgId, copy.mounted.store.id);
        if (current === null || current.archivedAt !== null) {
          if (!(await copy.sync.hasChanges())) continue;
          notices.push(
            `outrig: ${copy.mounted.mountPath} was ${current === null ? "deleted" : "archived"} while this session ran; changes made there are not saved.`,
          );
          continue;
        }
        const pushed = await copy.sync.push();
        for (const change of pushed.committed) copy.fileSystem.noteVersion(change.path, change.version);
        notices.push(...pushed.notices);
      }
      if (notices.length === 0) return result;
      const separator = result.stderr === "" || result.stderr.endsWith("\n") ? "" : "\n";
      return { ...result, stderr: `${result.stderr}${separator}${notices.join("\n")}\n` };
    },
  };
}

/** The session resource object the API returns for an attached store (`mount_path` included). */
export function renderMemoryStoreResource(mounted: MountedMemoryStore) {
  return {
    type: "memory_store" as const,
    memory_store_id: mounted.store.id,
    name: mounted.store.name,
    description: mounted.store.description,
    access: mounted.access,
    instructions: mounted.instructions,
    mount_path: mounted.mountPath,
  };
}

function memoryPrompt(stores: readonly MountedMemoryStore[]): string {
  if (stores.length === 0) return "";
  const lines = [
    "# Memory stores",
    `Memory stores are mounted under ${MEMORY_MOUNT_ROOT}/. Their files persist across sessions; every change is kept as a version. Read them at the start of a task; write what later sessions should know.`,
  ];
  for (const each of stores) {
    lines.push(
      `- ${each.mountPath}/ (${each.access === "read_write" && each.store.archivedAt === null ? "read-write" : "read-only"}): ${each.store.name}${each.store.description ? ` - ${each.store.description}` : ""}`,
    );
    if (each.instructions) lines.push(`  Instructions: ${each.instructions}`);
  }
  return lines.join("\n");
}
