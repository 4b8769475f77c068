/**
 * Workspace snapshots as tar layers compressed with the host's zstd (gzip when zstd is missing),
 * stored in a BlobStore. The first snapshot is a full layer; later ones hold only the entries whose
 * kind, size, mtime, mode or link target changed since the previous snapshot, plus the list of
 * deleted paths. A snapshot with no change writes nothing. A manifest blob per snapshot lists its
 * layers; restoring applies them in order.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { BigIntStats, Stats } from "node:fs";
import {
  chmod,
  chown,
  lchown,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readlink,
  realpath,
  rm,
  symlink,
  utimes,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { type BlobStore, SandboxError, type SnapshotRef } from "@outrig/core";
import { resolveExecutable } from "../bubblewrap/check-bubblewrap.js";
import { openFileBeneath } from "../host-files/untrusted-files.js";
import { CONFINED_DIRECTORY, spawnConfined } from "./spawn-confined.js";

/** kind (find's %y: "f", "d", "l", …), size, mtime (find's %T@, exact), permission bits, link target. */
type Fingerprint = [string, number, string, string, string];

type Compression = "zstd" | "gzip";

interface SnapshotLayer {
  readonly blobKey: string;
  readonly compression: Compression;
  /** Workspace-relative paths to delete before this layer is extracted. */
  readonly deletedPaths: readonly string[];
}

interface SnapshotManifest {
  readonly schemaVersion: 1;
  readonly createdAt: string;
  readonly layers: readonly SnapshotLayer[];
  readonly entries: Readonly<Record<string, Fingerprint>>;
}

export interface WorkspaceSnapshotterOptions {
  readonly store: BlobStore;
  /** Host directory to snapshot. */
  readonly workspaceDir: string;
  /** Blob keys start with this, e.g. "snapshots/<sessionId>". */
  readonly keyPrefix: string;
  /** Start a full layer again after this many incremental ones. Default 16. */
  readonly maxLayers?: number;
  /** The snapshot the workspace was restored from: the next one is incremental on top of it. */
  readonly parent?: SnapshotRef;
}

const SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin";
/** Tar in POSIX format keeps sub-second mtimes, so a restored workspace matches its manifest. */
const TAR_FORMAT = ["--format=posix", "--pax-option=delete=atime,delete=ctime", "--numeric-owner"];

function compressor(): { compression: Compression; path: string } {
  const zstd = resolveExecutable("zstd", SYSTEM_PATH);
  if (zstd) return { compression: "zstd", path: zstd };
  const gzip = resolveExecutable("gzip", SYSTEM_PATH);
  if (gzip) return { compression: "gzip", path: gzip };
  throw new SandboxError(
    "sandbox_unavailable",
    'neither zstd nor gzip is installed: run "apt-get install -y zstd"',
  );
}

function tarPath(): string {
  const path = resolveExecutable("tar", SYSTEM_PATH);
  if (!path)
    throw new SandboxError("sandbox_unavailable", 'tar is not installed: run "apt-get install -y tar"');
  return path;
}

/**
 * Fingerprints of every entry under `root` (not following symlinks), keyed by relative path. One
 * `find` process prints them NUL-separated: about 10× faster than lstat from Node for 8,000 files,
 * and it keeps the event loop free.
 */
export function scanWorkspace(root: string): Promise<Record<string, Fingerprint>> {
  const findPath = resolveExecutable("find", SYSTEM_PATH);
  if (!findPath)
    throw new SandboxError(
      "sandbox_unavailable",
      'find is not installed: run "apt-get install -y findutils"',
    );
  const child = spawn(findPath, [".", "-mindepth", "1", "-printf", "%y\\0%s\\0%T@\\0%m\\0%l\\0%P\\0"], {
    cwd: root,
    env: { PATH: SYSTEM_PATH, LC_ALL: "C" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  child.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  // find exits 1 when an entry vanished while it walked: the rest is still a valid scan.
  return waitForExit(child, "find", [0, 1]).then(() => {
    const fields = Buffer.concat(chunks).toString("utf8").split("\0");
    const entries: Record<string, Fingerprint> = {};
    for (let index = 0; index + 5 < fields.length; index += 6) {
      const [kind = "", size = "0", mtime = "", mode = "", target = "", path = ""] = fields.slice(
        index,
        index + 6,
      );
      entries[path] = [kind, Number(size), mtime, mode, target];
    }
    return entries;
  });
}

/** Up to this many entries (in the previous snapshot) the scan runs in Node: no process to start. */
const IN_PROCESS_SCAN_MAX_ENTRIES = 1000;

function kindOf(stats: BigIntStats): string {
  if (stats.isFile()) return "f";
  if (stats.isDirectory()) return "d";
  if (stats.isSymbolicLink()) return "l";
  if (stats.isFIFO()) return "p";
  if (stats.isSocket()) return "s";
  if (stats.isCharacterDevice()) return "c";
  if (stats.isBlockDevice()) return "b";
  return "U";
}

/**
 * The same fingerprints as `scanWorkspace`, read with lstat from Node: faster for a small workspace,
 * where starting `find` costs more than the walk. mtime is printed as find's %T@ prints it (seconds,
 * then nanoseconds and a trailing 0), so fingerprints from either scan compare equal.
 */
export async function scanWorkspaceInProcess(root: string): Promise<Record<string, Fingerprint>> {
  const entries: Record<string, Fingerprint> = {};
  const walk = async (relative: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(relative === "" ? root : join(root, relative));
    } catch {
      return; // vanished or unreadable while walking, as find skips it
    }
    await Promise.all(
      names.map(async (name) => {
        const path = relative === "" ? name : `${relative}/${name}`;
        let stats: BigIntStats;
        try {
          stats = await lstat(join(root, path), { bigint: true });
        } catch {
          return;
        }
        const fingerprint = await fingerprintOf(root, path, stats);
        entries[path] = fingerprint;
        if (fingerprint[0] === "d") await walk(path);
      }),
    );
  };
  await walk("");
  return entries;
}

async function fingerprintOf(root: string, path: string, stats: BigIntStats): Promise<Fingerprint> {
  const kind = kindOf(stats);
  const target = kind === "l" ? await readlink(join(root, path)).catch(() => "") : "";
  const nanoseconds = String(stats.mtimeNs % 1_000_000_000n).padStart(9, "0");
  const mtime = `${stats.mtimeNs / 1_000_000_000n}.${nanoseconds}0`;
  const mode = (Number(stats.mode) & 0o7777).toString(8);
  return [kind, Number(stats.size), mtime, mode, target];
}

/**
 * The previous entries updated for `paths` only (workspace-relative, each a file the call wrote or
 * a path it removed) and their parent directories, without walking the workspace. Undefined when a
 * hint cannot be trusted: a path is unsafe, is or runs through a symlink, or is now a directory
 * (whose contents would need a walk); the caller scans then.
 */
async function rescanPaths(
  root: string,
  previous: Readonly<Record<string, Fingerprint>>,
  paths: readonly string[],
): Promise<Record<string, Fingerprint> | undefined> {
  const entries: Record<string, Fingerprint> = { ...previous };
  for (const path of paths) {
    if (!isSafeRelativePath(path)) return undefined;
    const parts = path.split("/");
    for (let depth = 1; depth <= parts.length; depth += 1) {
      const current = parts.slice(0, depth).join("/");
      let stats: BigIntStats;
      try {
        stats = await lstat(join(root, current), { bigint: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") return undefined;
        // Gone (removed): it and everything the previous snapshot had below it.
        for (const key of Object.keys(entries))
          if (key === current || key.startsWith(`${current}/`)) delete entries[key];
        break;
      }
      const isLast = depth === parts.length;
      if (stats.isSymbolicLink()) return undefined;
      if (!isLast && !stats.isDirectory()) return undefined;
      if (isLast && stats.isDirectory()) return undefined;
      entries[current] = await fingerprintOf(root, current, stats);
    }
  }
  return entries;
}

function isSameFingerprint(left: Fingerprint | undefined, right: Fingerprint): boolean {
  return (
    left !== undefined &&
    left[0] === right[0] &&
    left[1] === right[1] &&
    left[2] === right[2] &&
    left[3] === right[3] &&
    left[4] === right[4]
  );
}

function waitForExit(child: ChildProcess, name: string, okCodes: readonly number[]): Promise<void> {
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    if (stderr.length < 2000) stderr += chunk.toString("utf8");
  });
  return new Promise((resolvePromise, reject) => {
    child.once("error", (error) =>
      reject(
        new SandboxError("sandbox_snapshot_failed", `${name} failed: ${error.message}`, { cause: error }),
      ),
    );
    child.once("close", (code) => {
      if (code !== null && okCodes.includes(code)) resolvePromise();
      else
        reject(
          new SandboxError(
            "sandbox_snapshot_failed",
            `${name} exited with ${code}: ${stderr.trim().split("\n")[0]}`,
          ),
        );
    });
  });
}

async function readJson<T>(store: BlobStore, key: string): Promise<T> {
  const body = await store.get(key);
  if (!body) throw new SandboxError("sandbox_snapshot_missing", `snapshot ${key} does not exist`);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk));
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as T;
}

export interface SnapshotCallOptions {
  /**
   * The only workspace-relative paths the call changed (a file written, a path removed): the capture
   * then checks these and their parent directories instead of scanning the workspace. Changes made
   * meanwhile by background processes are picked up by the next snapshot without hints.
   */
  readonly changedPaths?: readonly string[];
  /**
   * Called once the workspace has been read (scanned and packed): from then on it may change again
   * while the layer is compressed and stored. Called on failure too.
   */
  readonly onCaptured?: () => void;
}

/** A capture whose layer is still being compressed and stored. */
interface CapturedSnapshot {
  readonly ref: SnapshotRef;
  readonly manifest: SnapshotManifest;
  /** The compressed layer; undefined when nothing changed. */
  readonly layer: Promise<{ key: string; body: Buffer }> | undefined;
}

export class WorkspaceSnapshotter {
  readonly #store: BlobStore;
  readonly #workspaceDir: string;
  readonly #keyPrefix: string;
  readonly #maxLayers: number;
  #parentRef: SnapshotRef | undefined;
  #parent: SnapshotManifest | undefined;
  /** Captures run one at a time, in call order: each diffs against the one before. */
  #captureQueue: Promise<unknown> = Promise.resolve();
  /** Stores run one at a time, in call order; one that failed fails every later one. */
  #storeQueue: Promise<unknown> = Promise.resolve();

  constructor(options: WorkspaceSnapshotterOptions) {
    this.#store = options.store;
    this.#workspaceDir = resolve(options.workspaceDir);
    this.#keyPrefix = options.keyPrefix.replace(/\/+$/, "");
    this.#maxLayers = options.maxLayers ?? 16;
    this.#parentRef = options.parent;
  }

  /**
   * Snapshots the workspace. Two phases: the capture (scan, then tar reads the changed files) and
   * the store (compressed layer and manifest written to the BlobStore). The next snapshot's capture
   * starts as soon as this one's ends, so a caller that only needs the workspace read
   * (`onCaptured`) does not wait for the store.
   */
  snapshot(options: SnapshotCallOptions = {}): Promise<SnapshotRef> {
    const captured = this.#captureQueue.then(() => this.#capture(options.changedPaths));
    this.#captureQueue = captured.catch(() => {});
    const { onCaptured } = options;
    if (onCaptured) void captured.then(onCaptured, onCaptured);
    const stored = Promise.all([captured, this.#storeQueue]).then(([capture]) => this.#storeCapture(capture));
    this.#storeQueue = stored;
    return stored;
  }

  async #capture(changedPaths: readonly string[] | undefined): Promise<CapturedSnapshot> {
    if (this.#parentRef && !this.#parent)
      this.#parent = await readJson<SnapshotManifest>(this.#store, this.#parentRef.key);
    const parent = this.#parent;
    const isIncremental = parent !== undefined && parent.layers.length < this.#maxLayers;
    const hinted =
      isIncremental && changedPaths
        ? await rescanPaths(this.#workspaceDir, parent.entries, changedPaths)
        : undefined;
    const previousCount = parent ? Object.keys(parent.entries).length : undefined;
    const entries =
      hinted ??
      (previousCount !== undefined && previousCount <= IN_PROCESS_SCAN_MAX_ENTRIES
        ? await scanWorkspaceInProcess(this.#workspaceDir)
        : await scanWorkspace(this.#workspaceDir));
    let changed: string[];
    let deletedPaths: string[] = [];
    if (isIncremental) {
      changed = Object.keys(entries).filter(
        (path) => !isSameFingerprint(parent.entries[path], entries[path] as Fingerprint),
      );
      // A path whose kind changed is deleted first, so tar never extracts a directory over a file.
      deletedPaths = Object.keys(parent.entries).filter(
        (path) => entries[path] === undefined || entries[path]?.[0] !== parent.entries[path]?.[0],
      );
      if (changed.length === 0 && deletedPaths.length === 0 && this.#parentRef)
        return {
          ref: { ...this.#parentRef, sizeBytes: 0, isIncremental: true },
          manifest: parent,
          layer: undefined,
        };
    } else {
      changed = [];
    }
    const id = `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomUUID().slice(0, 8)}`;
    const { compression, path: compressorPath } = compressor();
    const layerKey = `${this.#keyPrefix}/${id}/layer.tar.${compression === "zstd" ? "zst" : "gz"}`;
    // A small increment is copied aside (about a millisecond), which ends the capture; tar and the
    // compressor then run on the copy. Anything else is read by tar from the workspace itself.
    const staging = isIncremental ? await stageChanges(this.#workspaceDir, changed, entries) : undefined;
    let compressed: Promise<Buffer>;
    if (staging) {
      compressed = new Promise<void>((resolveLater) => setImmediate(resolveLater))
        .then(() => {
          const layer = packLayer(staging, changed, compression, compressorPath);
          return layer.tarExited.then(() => layer.compressed);
        })
        .finally(() => rm(staging, { recursive: true, force: true }));
    } else {
      const layer = packLayer(
        this.#workspaceDir,
        isIncremental ? changed : undefined,
        compression,
        compressorPath,
      );
      // Once tar has exited, the workspace has been read: the layer is finished off the capture's path.
      await layer.tarExited;
      compressed = layer.compressed;
    }
    const manifest: SnapshotManifest = {
      schemaVersion: 1,
      createdAt: new Date().toISOString(),
      layers: [
        ...(isIncremental && parent ? parent.layers : []),
        { blobKey: layerKey, compression, deletedPaths },
      ],
      entries,
    };
    const ref: SnapshotRef = {
      key: `${this.#keyPrefix}/${id}/manifest.json`,
      createdAt: manifest.createdAt,
      sizeBytes: 0,
      entryCount: Object.keys(entries).length,
      isIncremental,
    };
    // The next capture diffs against this one, even before it is stored.
    this.#parent = manifest;
    this.#parentRef = ref;
    const layer = compressed.then((body) => ({ key: layerKey, body }));
    layer.catch(() => {}); // awaited by the store phase, maybe only after the previous store
    return { ref, manifest, layer };
  }

  async #storeCapture(capture: CapturedSnapshot): Promise<SnapshotRef> {
    if (!capture.layer) return capture.ref;
    const layer = await capture.layer;
    await this.#store.put(layer.key, layer.body);
    await this.#store.put(capture.ref.key, Buffer.from(JSON.stringify(capture.manifest)));
    return { ...capture.ref, sizeBytes: layer.body.length };
  }
}

/** Up to this many changed entries, and this many bytes of changed files, are copied aside. */
const STAGE_MAX_ENTRIES = 256;
const STAGE_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Copies the changed entries (regular files, directories, symlinks) into a temporary directory with
 * their modes, owners and times, or returns undefined when the change is too large or holds another
 * kind of entry (then tar reads the workspace itself). mtimes are set to the microsecond here, so an
 * entry restored from such a layer may be packed once more by the snapshot after a restore.
 */
async function stageChanges(
  root: string,
  paths: readonly string[],
  entries: Readonly<Record<string, Fingerprint>>,
): Promise<string | undefined> {
  if (paths.length > STAGE_MAX_ENTRIES) return undefined;
  let bytes = 0;
  for (const path of paths) {
    const [kind = "", size = 0] = entries[path] ?? [];
    if (kind !== "f" && kind !== "d" && kind !== "l") return undefined;
    if (kind === "f") bytes += size;
  }
  if (bytes > STAGE_MAX_BYTES) return undefined;
  // The workspace is the sandbox's: a parent it swaps for a link meanwhile must not lead the copy out.
  const realRoot = await realpath(root).catch(() => undefined);
  if (realRoot === undefined) return undefined;
  const staging = await mkdtemp(join(tmpdir(), "outrig-snapshot-")).catch(() => undefined);
  if (staging === undefined) return undefined; // no usable temp directory: tar reads the workspace
  const giveUp = async () => {
    await rm(staging, { recursive: true, force: true });
    return undefined; // tar, confined, reads the workspace instead
  };
  try {
    const directories: { target: string; stats: Stats }[] = [];
    /** Links and files made in the staging directory: nothing may be created below one. */
    const leaves = new Set<string>();
    let copiedBytes = 0;
    for (const path of [...paths].sort()) {
      const parts = path.split("/");
      if (!isSafeRelativePath(path)) return await giveUp();
      for (let depth = 1; depth < parts.length; depth += 1) {
        const parent = parts.slice(0, depth).join("/");
        if (leaves.has(parent)) return await giveUp();
        const parentStats = await lstat(join(realRoot, parent)).catch(() => undefined);
        if (parentStats !== undefined && !parentStats.isDirectory()) return await giveUp();
      }
      const source = join(realRoot, path);
      const target = join(staging, path);
      let stats: Stats;
      try {
        stats = await lstat(source);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue; // gone since the scan, as tar skips it
        throw error;
      }
      await mkdir(dirname(target), { recursive: true });
      if (stats.isDirectory()) {
        await mkdir(target, { recursive: true });
        directories.push({ target, stats });
      } else if (stats.isFile()) {
        leaves.add(path);
        const opened = await openFileBeneath(realRoot, path);
        if (!opened) return await giveUp();
        let content: Buffer;
        try {
          // The size is the sandbox's to change: read at most what is left of the budget, plus one byte,
          // into a buffer sized by the scan's size and grown only if the file grew since.
          const limit = STAGE_MAX_BYTES - copiedBytes + 1;
          const expected = entries[path]?.[1] ?? 0;
          content = Buffer.allocUnsafe(Math.min(limit, expected + 1));
          let length = 0;
          for (;;) {
            if (length === content.length) {
              if (content.length >= limit) break;
              const grown = Buffer.allocUnsafe(Math.min(limit, content.length * 2 + 4096));
              content.copy(grown, 0, 0, length);
              content = grown;
            }
            const { bytesRead } = await opened.handle.read(content, length, content.length - length, null);
            if (bytesRead === 0) break;
            length += bytesRead;
          }
          content = content.subarray(0, length);
        } finally {
          await opened.handle.close();
        }
        copiedBytes += content.length;
        if (copiedBytes > STAGE_MAX_BYTES) return await giveUp();
        const copy = await open(target, "wx", 0o600);
        try {
          await copy.writeFile(content);
          await copy.chown(opened.stats.uid, opened.stats.gid);
          await copy.chmod(opened.stats.mode & 0o7777); // after chown, which clears setuid bits
          await copy.utimes(opened.stats.atime, opened.stats.mtime);
        } finally {
          await copy.close();
        }
      } else if (stats.isSymbolicLink()) {
        leaves.add(path);
        await symlink(await readlink(source), target);
        await lchown(target, stats.uid, stats.gid);
        await lutimes(target, stats.atime, stats.mtime);
      } else {
        return await giveUp(); // turned into another kind since the scan
      }
    }
    // Directory times last, deepest first: creating their children changed them.
    for (const { target, stats } of directories.reverse()) {
      await chown(target, stats.uid, stats.gid);
      await chmod(target, stats.mode & 0o7777);
      await utimes(target, stats.atime, stats.mtime);
    }
    return staging;
  } catch {
    return await giveUp();
  }
}

/**
 * Starts tar (every entry under `directory`, or only `paths`) piped into the compressor. `tarExited`
 * resolves once tar has read everything; `compressed` with the compressed layer.
 */
function packLayer(
  directory: string,
  paths: readonly string[] | undefined,
  compression: Compression,
  compressorPath: string,
): { tarExited: Promise<void>; compressed: Promise<Buffer> } {
  // Confined: a listed path whose parent the sandbox swapped for a link must not reach a host file.
  const tar = spawnConfined(
    tarPath(),
    [
      "-C",
      CONFINED_DIRECTORY,
      ...TAR_FORMAT,
      "--ignore-failed-read",
      "-cf",
      "-",
      ...(paths ? ["--no-recursion", "--null", "-T", "-"] : ["."]),
    ],
    {
      directory,
      isWritable: false,
      env: { PATH: SYSTEM_PATH, LC_ALL: "C" },
      stdio: [paths ? "pipe" : "ignore", "pipe", "pipe"],
    },
  );
  if (paths) tar.stdin?.end(paths.map((path) => `./${path}\0`).join(""));
  const compress = spawn(compressorPath, compression === "zstd" ? ["-1", "-T0", "-q", "-c"] : ["-1", "-c"], {
    env: { PATH: SYSTEM_PATH },
    stdio: ["pipe", "pipe", "pipe"],
  });
  tar.stdout?.pipe(compress.stdin as NodeJS.WritableStream);
  // Collect the compressed layer, then store it: streaming it straight into the store resolved
  // before the last bytes were written now and then (the conformance test caught truncated layers).
  const chunks: Buffer[] = [];
  compress.stdout?.on("data", (chunk: Buffer) => chunks.push(chunk));
  const compressed = waitForExit(compress, compression, [0]).then(() => Buffer.concat(chunks));
  // tar exits 1 when a file changed while it was read: the snapshot is still usable.
  const tarExited = waitForExit(tar, "tar", [0, 1]).catch(async (error: unknown) => {
    compress.kill("SIGKILL");
    await compressed.catch(() => undefined);
    throw error;
  });
  compressed.catch(() => {}); // awaited by the caller after tarExited
  return { tarExited, compressed };
}

/**
 * Removes `path` below `root` unless one of its parents is not a real directory (a link restored
 * from a layer): rm would follow that link out of the workspace, and nothing beneath a link is ours.
 */
async function removeBeneath(root: string, path: string): Promise<void> {
  const parts = path.split("/");
  for (let depth = 1; depth < parts.length; depth += 1) {
    const parent = await lstat(join(root, ...parts.slice(0, depth))).catch(() => undefined);
    if (!parent?.isDirectory()) return;
  }
  await rm(join(root, path), { recursive: true, force: true });
}

function isSafeRelativePath(path: string): boolean {
  return (
    path.length > 0 && !path.startsWith("/") && path.split("/").every((part) => part !== ".." && part !== "")
  );
}

/**
 * Unpacks snapshot `ref` (every layer in order) into `directory`, created when missing; meant for a
 * fresh directory that a replacement sandbox then binds as its /workspace.
 */
export async function restoreWorkspace(
  store: BlobStore,
  ref: SnapshotRef | string,
  directory: string,
): Promise<void> {
  const key = typeof ref === "string" ? ref : ref.key;
  const manifest = await readJson<SnapshotManifest>(store, key);
  const target = resolve(directory);
  await mkdir(target, { recursive: true });
  for (const layer of manifest.layers) {
    for (const path of layer.deletedPaths) {
      if (!isSafeRelativePath(path))
        throw new SandboxError("sandbox_snapshot_invalid", `bad path in snapshot: ${path}`);
      await removeBeneath(target, path);
    }
    const body = await store.get(layer.blobKey);
    if (!body)
      throw new SandboxError("sandbox_snapshot_missing", `snapshot layer ${layer.blobKey} does not exist`);
    const decompressPath =
      layer.compression === "zstd"
        ? resolveExecutable("zstd", SYSTEM_PATH)
        : resolveExecutable("gzip", SYSTEM_PATH);
    if (!decompressPath) {
      throw new SandboxError(
        "sandbox_unavailable",
        `${layer.compression} is not installed: run "apt-get install -y ${layer.compression}"`,
      );
    }
    // tar runs the decompressor itself: relaying 60 MB between two children through Node cost ~0.3 s.
    // Confined: a layer may carry a link and then a member below it, which tar would write through.
    const tar = spawnConfined(
      tarPath(),
      ["-C", CONFINED_DIRECTORY, ...TAR_FORMAT, "-I", decompressPath, "-xf", "-"],
      {
        directory: target,
        isWritable: true,
        env: { PATH: SYSTEM_PATH, LC_ALL: "C" },
        stdio: ["pipe", "ignore", "pipe"],
      },
    );
    const feed = (async () => {
      const input = tar.stdin as NodeJS.WritableStream;
      input.on("error", () => {});
      for await (const chunk of body) {
        if (!input.write(chunk)) await new Promise((resolveDrain) => input.once("drain", resolveDrain));
      }
      input.end();
    })();
    await Promise.all([feed, waitForExit(tar, "tar", [0])]);
  }
}
