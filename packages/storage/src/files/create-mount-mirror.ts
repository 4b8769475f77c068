/**
 * Keeps a host directory tree equal to a user's database mounts so a sandbox can bind it read-only:
 * `<root>/memories/org`, `<root>/memories/me`, `<root>/skills`. Changes arrive by LISTEN/NOTIFY, with
 * polling as a fallback; every file is replaced atomically (temp file + rename), so readers never see a
 * torn file.
 */
import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, rename, rm, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { ensureError, isFileError } from "@outrig/core";
import { ORG_MEMORIES_NAMESPACE, SKILLS_NAMESPACE, userMemoriesNamespace } from "./create-database-mounts.js";
import type { FileChange, FileChangeSubscription, PostgresFileStore } from "./postgres-file-store.js";

export interface MountMirrorOptions {
  readonly store: PostgresFileStore;
  /** Host directory that will hold `memories/org`, `memories/me` and `skills`. Created when missing. */
  readonly rootDir: string;
  readonly orgId: string;
  readonly userId: string;
  /** Full resync interval, also the worst-case delay when notifications are lost (default 2000 ms). */
  readonly pollIntervalMs?: number;
  /** Called after each file is written or removed on disk. */
  readonly onApply?: (event: MirrorApplyEvent) => void;
  /** Hears failures of the listener or of a sync; the mirror keeps polling. */
  readonly onError?: (error: Error) => void;
}

export interface MirrorApplyEvent {
  readonly namespace: string;
  /** Path inside the namespace, e.g. `/AGENTS.md`. */
  readonly path: string;
  readonly localPath: string;
  readonly version: number;
  readonly isDeleted: boolean;
}

export interface MountMirror {
  /** Host directories to bind read-only: `/memories` → memoriesDir, `/skills` → skillsDir. */
  readonly memoriesDir: string;
  readonly skillsDir: string;
  /** Compares every head with the disk and applies what differs; resolves when done. */
  sync(): Promise<void>;
  /** Stops listening and polling. Idempotent; the files stay. */
  close(): Promise<void>;
}

/** Creates the tree, fills it from the database and starts following changes. The caller must close() it. */
export async function createMountMirror(options: MountMirrorOptions): Promise<MountMirror> {
  const { store, orgId } = options;
  const rootDir = path.resolve(options.rootDir);
  const memoriesDir = path.join(rootDir, "memories");
  const skillsDir = path.join(rootDir, "skills");
  const tempDir = path.join(rootDir, ".mirror-tmp");
  const directories = new Map<string, string>([
    [ORG_MEMORIES_NAMESPACE, path.join(memoriesDir, "org")],
    [userMemoriesNamespace(options.userId), path.join(memoriesDir, "me")],
    [SKILLS_NAMESPACE, skillsDir],
  ]);
  const namespaces = [...directories.keys()];
  const onError = options.onError ?? (() => {});
  // Start from empty directories so nothing stale survives a restart.
  for (const directory of [...directories.values(), tempDir]) {
    await rm(directory, { recursive: true, force: true });
    await mkdir(directory, { recursive: true });
  }
  const applied = new Map<string, number>();
  const keyOf = (namespace: string, filePath: string) => `${namespace}\u0000${filePath}`;
  let queue: Promise<void> = Promise.resolve();
  let isClosed = false;
  const enqueue = (work: () => Promise<void>): Promise<void> => {
    const next = queue.then(work).catch((error: unknown) => onError(ensureError(error)));
    queue = next;
    return next;
  };

  const localPathOf = (namespace: string, filePath: string): string => {
    // Invariant: namespace is one of ours, and store paths are normalized (no `..`); check anyway.
    const base = directories.get(namespace) as string;
    const local = path.join(base, ...filePath.split("/").filter((part) => part !== ""));
    if (local !== base && !local.startsWith(`${base}${path.sep}`))
      throw new Error(`path escapes mirror: ${filePath}`);
    return local;
  };

  const removeLocal = async (namespace: string, local: string) => {
    await rm(local, { recursive: true, force: true });
    // Prune directories left empty, up to the namespace root.
    const base = directories.get(namespace) as string;
    for (let directory = path.dirname(local); directory !== base && directory.startsWith(base); ) {
      try {
        await rmdir(directory);
      } catch {
        break;
      }
      directory = path.dirname(directory);
    }
  };

  const writeLocal = async (namespace: string, local: string, content: Uint8Array, isExecutable: boolean) => {
    const base = directories.get(namespace) as string;
    // A file may have become a directory (or the reverse) since the last sync.
    for (let directory = path.dirname(local); directory !== base; directory = path.dirname(directory)) {
      const found = await lstat(directory).catch(() => undefined);
      if (found !== undefined && !found.isDirectory()) await rm(directory, { force: true });
    }
    await mkdir(path.dirname(local), { recursive: true });
    const existing = await lstat(local).catch(() => undefined);
    if (existing?.isDirectory()) await rm(local, { recursive: true, force: true });
    const temp = path.join(tempDir, randomBytes(8).toString("hex"));
    // Read-only for the sandbox either way (the mount is); scripts keep their executable bit. chmod, since
    // writeFile's mode is subject to the umask.
    await writeFile(temp, content, { mode: 0o600 });
    await chmod(temp, isExecutable ? 0o755 : 0o644);
    await rename(temp, local);
  };

  const apply = async (namespace: string, filePath: string, version: number): Promise<void> => {
    const key = keyOf(namespace, filePath);
    if ((applied.get(key) ?? 0) >= version || isClosed) return;
    const local = localPathOf(namespace, filePath);
    const scope = { orgId, namespace };
    let current: { version: number; content: Uint8Array; isExecutable: boolean } | undefined;
    try {
      current = await store.read(scope, filePath);
    } catch (error) {
      if (!isFileError(error, "not_found") && !isFileError(error, "is_directory")) throw error;
    }
    if (current === undefined) {
      const head = await store.lookup(scope, filePath);
      const headVersion = head.kind === "absent" ? head.version : version;
      if ((applied.get(key) ?? 0) >= headVersion) return;
      await removeLocal(namespace, local);
      applied.set(key, headVersion);
      options.onApply?.({
        namespace,
        path: filePath,
        localPath: local,
        version: headVersion,
        isDeleted: true,
      });
      return;
    }
    if ((applied.get(key) ?? 0) >= current.version) return;
    await writeLocal(namespace, local, current.content, current.isExecutable);
    applied.set(key, current.version);
    options.onApply?.({
      namespace,
      path: filePath,
      localPath: local,
      version: current.version,
      isDeleted: false,
    });
  };

  const syncAll = async () => {
    for (const head of await store.listHeads(orgId, namespaces)) {
      if ((applied.get(keyOf(head.namespace, head.path)) ?? 0) < head.version) {
        await apply(head.namespace, head.path, head.version);
      }
    }
  };

  const handleChange = (change: FileChange) => {
    if (change.orgId !== orgId || !directories.has(change.namespace)) return;
    void enqueue(() => apply(change.namespace, change.path, change.version));
  };
  let subscription: FileChangeSubscription | undefined;
  try {
    subscription = await store.listen(handleChange, onError);
  } catch (error) {
    onError(ensureError(error));
  }
  await enqueue(syncAll);
  const timer = setInterval(() => void enqueue(syncAll), options.pollIntervalMs ?? 2000);
  timer.unref();

  let closing: Promise<void> | undefined;
  return {
    memoriesDir,
    skillsDir,
    sync: () => enqueue(syncAll),
    close() {
      closing ??= (async () => {
        isClosed = true;
        clearInterval(timer);
        await subscription?.close();
        await queue;
      })();
      return closing;
    },
  };
}
