/**
 * The database-backed part of a session's file namespace: `/memories/org` (shared by the org),
 * `/memories/me` (private to the user), `/skills` (org skills, writable by admins) and a read-only
 * `/memories` parent that lists both memory trees.
 */
import { type FileSystem, type Mount, MountParentFileSystem } from "@outrig/core";
import { DatabaseFileSystem } from "./database-file-system.js";
import type { FileScope, PostgresFileStore } from "./postgres-file-store.js";

export const ORG_MEMORIES_PREFIX = "/memories/org";
export const USER_MEMORIES_PREFIX = "/memories/me";
export const SKILLS_PREFIX = "/skills";
export const MEMORIES_PREFIX = "/memories";

export const ORG_MEMORIES_NAMESPACE = "memories/org";
export const SKILLS_NAMESPACE = "skills";
/** The namespace of one user's private memories. */
export function userMemoriesNamespace(userId: string): string {
  return `memories/user/${userId}`;
}

export const SKILLS_WRITE_DENIED =
  "Only org admins can change /skills. Skills are read-only for members; ask an admin to import the skill, or keep notes under /memories/me/ instead.";
export const MEMORIES_ROOT_READ_ONLY =
  "/memories itself holds no files: write under /memories/me/ (private to you) or /memories/org/ (shared with your org).";

/** "admin" may change org skills; any other role only reads them. */
export type FilesRole = "admin" | "member" | (string & {});

export interface DatabaseMountsOptions {
  readonly store: PostgresFileStore;
  readonly orgId: string;
  readonly userId: string;
  readonly role: FilesRole;
  readonly sessionId?: string;
  /** The session's current turn, stored on each version; a function is read at every write. */
  readonly turn?: number | (() => number);
}

/** A database mount: its absolute prefix and the store scope it maps to. */
export interface DatabaseMountInfo {
  readonly prefix: string;
  readonly scope: FileScope;
  readonly isWritable: boolean;
}

/** Prefix → scope for a caller, longest prefix first. The same table routes the HTTP API. */
export function databaseMountInfo(options: {
  orgId: string;
  userId: string;
  role: FilesRole;
}): DatabaseMountInfo[] {
  return [
    {
      prefix: ORG_MEMORIES_PREFIX,
      scope: { orgId: options.orgId, namespace: ORG_MEMORIES_NAMESPACE },
      isWritable: true,
    },
    {
      prefix: USER_MEMORIES_PREFIX,
      scope: { orgId: options.orgId, namespace: userMemoriesNamespace(options.userId) },
      isWritable: true,
    },
    {
      prefix: SKILLS_PREFIX,
      scope: { orgId: options.orgId, namespace: SKILLS_NAMESPACE },
      isWritable: options.role === "admin",
    },
  ];
}

/**
 * Mounts for one session. Each file system remembers what this session read, so writes are
 * compare-and-swap against it: create one set per session, never share it between sessions.
 */
export function createDatabaseMounts(options: DatabaseMountsOptions): Mount[] {
  const author = {
    userId: options.userId,
    ...(options.sessionId === undefined ? {} : { sessionId: options.sessionId }),
    ...(options.turn === undefined ? {} : { turn: options.turn }),
  };
  const mounts: Mount[] = databaseMountInfo(options).map((info) => ({
    prefix: info.prefix,
    fileSystem: new DatabaseFileSystem({
      store: options.store,
      scope: info.scope,
      author,
      ...(info.isWritable ? {} : { writeDeniedMessage: SKILLS_WRITE_DENIED }),
    }),
  }));
  const byPrefix = new Map(mounts.map((mount) => [mount.prefix, mount.fileSystem] as const));
  const children: Record<string, FileSystem> = {};
  for (const [prefix, name] of [
    [ORG_MEMORIES_PREFIX, "org"],
    [USER_MEMORIES_PREFIX, "me"],
  ] as const) {
    const fileSystem = byPrefix.get(prefix);
    if (fileSystem !== undefined) children[name] = fileSystem;
  }
  mounts.push({
    prefix: MEMORIES_PREFIX,
    fileSystem: new MountParentFileSystem(children, MEMORIES_ROOT_READ_ONLY),
  });
  return mounts;
}
