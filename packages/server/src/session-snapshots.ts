/**
 * One session's workspace snapshots in the server's BlobStore (`sessions/<sessionId>/…`): incremental
 * tar+zstd layers taken from the host workspace directory, restore into a fresh directory, pruning of
 * older chains and deletion of everything. Also the host-side helpers the lifecycle needs: which
 * snapshot the local workspace reflects (a marker in the session's state directory) and how many
 * processes a sandbox runs beyond its own.
 */
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { type BlobStore, SandboxError, type SnapshotRef } from "@outrig/core";
import {
  appendUntrustedFile,
  readFileHead,
  readSandboxPidFile,
  readUntrustedFile,
  replaceUntrustedFile,
  restoreWorkspace,
  type SnapshotCallOptions,
  sandboxJournalPath,
  WorkspaceSnapshotter,
  workspaceQuotaImagePath,
} from "@outrig/sandboxes";

/** Newest snapshots (and the layers they need) kept when an older chain is pruned. */
const KEEP_SNAPSHOTS = 2;
const MARKER_FILE = "workspace-snapshot.json";
/** A marker holds one blob key; anything longer is not one of ours. */
const MAX_MARKER_BYTES = 4096;
/** /proc reads are bounded: a process can make its command line as long as its stack allows. */
const PROC_READ_BYTES = 4096;

export function sessionSnapshotPrefix(sessionId: string): string {
  return `sessions/${sessionId.replace(/[^A-Za-z0-9._-]/g, "_")}`;
}

export class SessionSnapshots {
  readonly #store: BlobStore;
  readonly #workspaceDir: string;
  readonly #stateDir: string;
  readonly #prefix: string;
  #snapshotter: WorkspaceSnapshotter;

  constructor(options: { store: BlobStore; sessionId: string; workspaceDir: string; stateDir: string }) {
    this.#store = options.store;
    this.#workspaceDir = options.workspaceDir;
    this.#stateDir = options.stateDir;
    this.#prefix = sessionSnapshotPrefix(options.sessionId);
    this.#snapshotter = this.#newSnapshotter(undefined);
  }

  /**
   * Snapshots the host workspace, incrementally on the last snapshot or restore; `onCaptured` runs
   * once the workspace has been read (the store may still be under way).
   */
  async snapshot(options: SnapshotCallOptions = {}): Promise<SnapshotRef> {
    const ref = await this.#snapshotter.snapshot(options);
    if (!ref.isIncremental) await this.#prune(ref.key).catch(() => undefined);
    return ref;
  }

  /** Forgets the snapshot chain (e.g. a snapshot taken from a half-gone workspace was discarded). */
  reset(parentKey?: string): void {
    this.#snapshotter = this.#newSnapshotter(parentKey);
  }

  /**
   * Replaces the local workspace with snapshot `key`: the directory and its disk-quota image are
   * removed first, so a quota'd sandbox then starts from the restored files.
   */
  async restore(key: string): Promise<void> {
    // Never drop the local copy for a snapshot this store does not have (another host's store).
    if (!(await this.#store.has(key)))
      throw new SandboxError("sandbox_snapshot_missing", `snapshot ${key} is not in this worker's store`);
    await this.dropLocalWorkspace();
    await restoreWorkspace(this.#store, key, this.#workspaceDir);
    this.reset(key);
    await this.writeMarker(key);
  }

  /** Deletes the local workspace directory, its quota image and the marker. */
  async dropLocalWorkspace(): Promise<void> {
    await rm(this.#workspaceDir, { recursive: true, force: true });
    await rm(workspaceQuotaImagePath(this.#workspaceDir), { force: true });
    await rm(path.join(this.#stateDir, MARKER_FILE), { force: true });
  }

  /** Deletes every snapshot blob of the session. */
  async deleteAll(): Promise<void> {
    await this.#store.deletePrefix(this.#prefix);
  }

  /** The snapshot the local workspace is known to reflect, if any. */
  async readMarker(): Promise<string | undefined> {
    try {
      const text = await readUntrustedFile(path.join(this.#stateDir, MARKER_FILE), MAX_MARKER_BYTES);
      if (text === undefined) return undefined;
      const parsed = JSON.parse(text.toString("utf8")) as { key?: unknown };
      return typeof parsed.key === "string" ? parsed.key : undefined;
    } catch {
      return undefined;
    }
  }

  async writeMarker(key: string): Promise<void> {
    await replaceUntrustedFile(path.join(this.#stateDir, MARKER_FILE), JSON.stringify({ key })).catch(
      () => undefined,
    );
  }

  /** True when the workspace directory or its quota image exists on this host. */
  async hasLocalWorkspace(): Promise<boolean> {
    const exists = async (file: string) =>
      readdir(path.dirname(file)).then(
        (names) => names.includes(path.basename(file)),
        () => false,
      );
    return (await exists(this.#workspaceDir)) || (await exists(workspaceQuotaImagePath(this.#workspaceDir)));
  }

  #newSnapshotter(parentKey: string | undefined): WorkspaceSnapshotter {
    return new WorkspaceSnapshotter({
      store: this.#store,
      workspaceDir: this.#workspaceDir,
      keyPrefix: this.#prefix,
      ...(parentKey
        ? {
            parent: {
              key: parentKey,
              createdAt: new Date(0).toISOString(),
              sizeBytes: 0,
              entryCount: 0,
              isIncremental: false,
            },
          }
        : {}),
    });
  }

  /**
   * After a new full layer: keeps the newest snapshots (and the layers they reference) and deletes
   * every other blob of the session, so storage holds about one chain.
   */
  async #prune(newestKey: string): Promise<void> {
    const keys = await this.#store.list(this.#prefix);
    const manifests = keys.filter((key) => key.endsWith("/manifest.json")).sort();
    const kept = new Set<string>([newestKey]);
    for (const manifest of manifests.slice(-KEEP_SNAPSHOTS)) {
      kept.add(manifest);
      const body = await this.#store.get(manifest);
      if (!body) continue;
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(Buffer.from(chunk));
      const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { layers?: { blobKey: string }[] };
      for (const layer of parsed.layers ?? []) kept.add(layer.blobKey);
    }
    // Only blobs older than the newest snapshot: nothing written after it is touched.
    const newestId = newestKey.split("/").at(-2) ?? "";
    for (const key of keys) {
      const id = key.split("/").at(-2) ?? "";
      if (!kept.has(key) && id < newestId) await this.#store.delete(key);
    }
  }
}

/**
 * Processes under the sandbox whose outer bwrap has pid `rootPid`, beyond bwrap itself and the
 * sandbox agent: the background processes a cold transition kills. Reads /proc of the host.
 */
export async function countSandboxProcesses(rootPid: number): Promise<number> {
  const children = new Map<number, number[]>();
  const names = await readdir("/proc").catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => /^\d+$/.test(name))
      .map(async (name) => {
        const stat = (await readFileHead(`/proc/${name}/stat`, PROC_READ_BYTES))?.toString("utf8") ?? "";
        const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        if (!Number.isInteger(parent)) return;
        const list = children.get(parent) ?? [];
        list.push(Number(name));
        children.set(parent, list);
      }),
  );
  let count = 0;
  const queue = [...(children.get(rootPid) ?? [])];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    queue.push(...(children.get(pid) ?? []));
    const commandLine = (await readFileHead(`/proc/${pid}/cmdline`, PROC_READ_BYTES))?.toString("utf8") ?? "";
    if (commandLine === "" || commandLine.includes("bwrap") || commandLine.includes("sandbox-agent"))
      continue;
    count += 1;
  }
  return count;
}

/** The outer bwrap pid the provider recorded in the session's state directory, if any. */
export async function readSandboxPid(stateDir: string): Promise<number | undefined> {
  return readSandboxPidFile(stateDir);
}

/**
 * Drops the exactly-once journal entries of `idempotencyKey`: its effects were rolled back. The
 * journal is the sandbox's to write, so the host never reads it: it appends a line the next agent
 * applies when it loads the journal (never through a link or into a FIFO planted there).
 */
export async function forgetJournalKey(stateDir: string, idempotencyKey: string): Promise<void> {
  await appendUntrustedFile(
    sandboxJournalPath(stateDir),
    `\n${JSON.stringify({ forget: idempotencyKey })}\n`,
  );
}
