/**
 * Lifecycle figures of the bubblewrap provider: standby → first exec, cold restore of a large
 * workspace → first exec, warm-pool sandbox → first exec, memory a standby sandbox holds, and many
 * sandboxes in standby at once. Needs root (cgroup freezer). Creates and removes everything it
 * uses under the OS temp dir.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { BubblewrapSandbox } from "../bubblewrap/bubblewrap-sandbox.js";
import { createBubblewrapSandboxProvider } from "../bubblewrap/bubblewrap-sandbox-provider.js";
import { createWarmPool } from "../pool/warm-pool.js";
import { createLocalDirectoryBlobStore } from "../snapshots/local-directory-blob-store.js";

export interface LifecycleBenchOptions {
  /** Cycles for the standby and warm-pool figures. Default 50. */
  readonly cycles?: number;
  /** Cold restores timed. Default 5. */
  readonly restoreCycles?: number;
  /** Files and total bytes of the cold-restore workspace. Default 8,000 files, 60 MB. */
  readonly workspaceFiles?: number;
  readonly workspaceBytes?: number;
  /** Sandboxes held in standby at once. Default 200. */
  readonly standbyCount?: number;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
  readonly samples: number;
}

export interface LifecycleBenchResult {
  /** suspend, then time `exec("true")` (transparent resume included) until its result. */
  readonly standbyToFirstExecMs: Percentiles;
  /** The thaw alone (cgroup freezer THAWED write). */
  readonly resumeLatencyMs: Percentiles;
  readonly coldRestore: {
    readonly files: number;
    readonly bytes: number;
    /** Full snapshot (tar + zstd into a local BlobStore). */
    readonly fullSnapshotMs: number;
    readonly fullSnapshotBytes: number;
    /** Incremental snapshot after changing 10 files. */
    readonly incrementalSnapshotMs: number;
    readonly incrementalSnapshotBytes: number;
    /** Snapshot with no change (scan only). */
    readonly unchangedSnapshotMs: number;
    /** restore into a fresh dir + create + `exec("true")` until its result. */
    readonly restoreToFirstExecMs: Percentiles;
    /** The unpack alone (zstd -d | tar -x of every layer). */
    readonly unpackMs: Percentiles;
  };
  /** acquire() from a full pool + `exec("true")` until its result. */
  readonly warmPoolToFirstExecMs: Percentiles;
  /** Fresh create() + `exec("true")`, for comparison. */
  readonly createToFirstExecMs: Percentiles;
  readonly standbyMemory: {
    /** Memory charged to one idle standby sandbox's cgroup (agent, bash-free). */
    readonly cgroupBytes: number;
    /** The agent's private resident memory. */
    readonly agentRssAnonBytes: number;
    readonly agentRssBytes: number;
  };
  readonly manyInStandby: {
    readonly count: number;
    /** Host MemAvailable drop with all of them started and suspended. */
    readonly hostMemoryBytes: number;
    readonly perSandboxBytes: number;
    /** Sum of their cgroups' memory. */
    readonly cgroupBytes: number;
    /** exec("true") on a random standby sandbox while the others stay frozen. */
    readonly standbyToFirstExecMs: Percentiles;
    readonly startAllMs: number;
  };
}

function percentiles(samples: readonly number[]): Percentiles {
  const sorted = [...samples].sort((left, right) => left - right);
  const at = (quantile: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(quantile * sorted.length) - 1))] ?? Number.NaN;
  return { p50: round(at(0.5)), p99: round(at(0.99)), samples: sorted.length };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function memAvailableBytes(): number {
  const match = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return Number(match?.[1] ?? 0) * 1024;
}

const signal = new AbortController().signal;

async function timeFirstExec(sandbox: BubblewrapSandbox): Promise<number> {
  const startedAt = performance.now();
  const result = await sandbox.exec({ command: "true", timeoutMs: 30_000 }, signal);
  if (result.exitCode !== 0) throw new Error(`exec failed: ${result.stderr}`);
  return performance.now() - startedAt;
}

/** Writes `files` files totalling about `bytes` in nested directories: half random, half text. */
async function fillWorkspace(directory: string, files: number, bytes: number): Promise<void> {
  const perFile = Math.max(1, Math.floor(bytes / files));
  const text = Buffer.from(
    "const value = 42; // some source text that compresses well\n".repeat(Math.ceil(perFile / 58)),
  );
  for (let index = 0; index < files; index += 1) {
    const folder = join(directory, `module-${index % 40}`, `part-${index % 7}`);
    if (index < 280) await mkdir(folder, { recursive: true });
    const content = index % 2 === 0 ? randomBytes(perFile) : text.subarray(0, perFile);
    await writeFile(join(folder, `file-${index}.dat`), content);
  }
}

export async function runLifecycleBench(options: LifecycleBenchOptions = {}): Promise<LifecycleBenchResult> {
  const cycles = options.cycles ?? 50;
  const log = options.log ?? (() => {});
  const root = await mkdtemp(join(tmpdir(), "outrig-lifecycle-bench-"));
  const store = createLocalDirectoryBlobStore(join(root, "blobs"));
  const provider = createBubblewrapSandboxProvider({ blobStore: store });
  let sessionCount = 0;
  const create = () => {
    sessionCount += 1;
    return provider.create({
      sessionId: `bench-${sessionCount}`,
      orgId: "bench",
      workspaceDir: join(root, "workspaces", `w-${sessionCount}`),
    });
  };
  try {
    // Standby → first exec.
    log("standby → first exec");
    const sandbox = await create();
    await timeFirstExec(sandbox);
    const standbySamples: number[] = [];
    const resumeSamples: number[] = [];
    for (let cycle = 0; cycle < cycles; cycle += 1) {
      await sandbox.suspend();
      standbySamples.push(await timeFirstExec(sandbox));
      await sandbox.suspend();
      resumeSamples.push((await sandbox.resume()).latencyMs);
    }

    // Memory of an idle sandbox in standby.
    await sandbox.suspend();
    const cgroupBytes = (await sandbox.getMemoryBytes()) ?? 0;
    const info = await sandbox.getAgentInfo(); // resumes it
    await sandbox.destroy();

    // Fresh create → first exec.
    log("create → first exec");
    const createSamples: number[] = [];
    for (let cycle = 0; cycle < Math.min(cycles, 20); cycle += 1) {
      const startedAt = performance.now();
      const fresh = await create();
      await timeFirstExec(fresh);
      createSamples.push(performance.now() - startedAt);
      await fresh.destroy();
    }

    // Warm pool → first exec.
    log("warm pool → first exec");
    const pool = createWarmPool(provider, { size: 2, directory: join(root, "pool") });
    const poolSamples: number[] = [];
    for (let cycle = 0; cycle < cycles; cycle += 1) {
      await pool.whenFull();
      const startedAt = performance.now();
      const pooled = await pool.acquire({
        sessionId: `pooled-${cycle}`,
        orgId: "bench",
        workspaceDir: join(root, "workspaces", `pooled-${cycle}`),
      });
      await timeFirstExec(pooled);
      poolSamples.push(performance.now() - startedAt);
      await pooled.destroy();
    }
    await pool.close();

    // Cold restore of a large workspace.
    const files = options.workspaceFiles ?? 8000;
    const bytes = options.workspaceBytes ?? 60 * 1024 * 1024;
    log(`cold restore: filling ${files} files, ${bytes} bytes`);
    const source = await create();
    await fillWorkspace(source.workspaceDir, files, bytes);
    let startedAt = performance.now();
    const full = await source.snapshot();
    const fullSnapshotMs = performance.now() - startedAt;
    for (let index = 0; index < 10; index += 1) {
      const path = join(source.workspaceDir, `module-${index}`, `part-${index % 7}`, `file-${index}.dat`);
      await writeFile(path, randomBytes(1024));
      await utimes(path, new Date(), new Date(Date.now() + 1000));
    }
    startedAt = performance.now();
    const increment = await source.snapshot();
    const incrementalSnapshotMs = performance.now() - startedAt;
    startedAt = performance.now();
    await source.snapshot();
    const unchangedSnapshotMs = performance.now() - startedAt;
    await source.destroy();
    const restoreSamples: number[] = [];
    const unpackSamples: number[] = [];
    for (let cycle = 0; cycle < (options.restoreCycles ?? 5); cycle += 1) {
      const directory = join(root, "workspaces", `restored-${cycle}`);
      startedAt = performance.now();
      await provider.restoreWorkspace(increment, directory);
      unpackSamples.push(performance.now() - startedAt);
      const restored = await provider.create({
        sessionId: `restored-${cycle}`,
        orgId: "bench",
        workspaceDir: directory,
      });
      await timeFirstExec(restored);
      restoreSamples.push(performance.now() - startedAt);
      await restored.destroy();
      await rm(directory, { recursive: true, force: true });
    }

    // Many sandboxes in standby.
    const count = options.standbyCount ?? 200;
    log(`${count} sandboxes in standby`);
    const before = memAvailableBytes();
    const many: BubblewrapSandbox[] = [];
    startedAt = performance.now();
    for (let batch = 0; batch < count; batch += 8) {
      const started = await Promise.all(
        Array.from({ length: Math.min(8, count - batch) }, async () => {
          const started = await create();
          await started.suspend();
          return started;
        }),
      );
      many.push(...started);
    }
    const startAllMs = performance.now() - startedAt;
    const hostMemoryBytes = before - memAvailableBytes();
    let manyCgroupBytes = 0;
    for (const item of many) manyCgroupBytes += (await item.getMemoryBytes()) ?? 0;
    const manySamples: number[] = [];
    for (let cycle = 0; cycle < cycles; cycle += 1) {
      const target = many[Math.floor(Math.random() * many.length)] as BubblewrapSandbox;
      manySamples.push(await timeFirstExec(target));
      await target.suspend();
    }
    await Promise.all(many.map((item) => item.destroy()));

    return {
      standbyToFirstExecMs: percentiles(standbySamples),
      resumeLatencyMs: percentiles(resumeSamples),
      coldRestore: {
        files,
        bytes,
        fullSnapshotMs: round(fullSnapshotMs),
        fullSnapshotBytes: full.sizeBytes,
        incrementalSnapshotMs: round(incrementalSnapshotMs),
        incrementalSnapshotBytes: increment.sizeBytes,
        unchangedSnapshotMs: round(unchangedSnapshotMs),
        restoreToFirstExecMs: percentiles(restoreSamples),
        unpackMs: percentiles(unpackSamples),
      },
      warmPoolToFirstExecMs: percentiles(poolSamples),
      createToFirstExecMs: percentiles(createSamples),
      standbyMemory: {
        cgroupBytes,
        agentRssAnonBytes: info.rssAnonBytes,
        agentRssBytes: info.rssBytes,
      },
      manyInStandby: {
        count,
        hostMemoryBytes,
        perSandboxBytes: Math.round(hostMemoryBytes / count),
        cgroupBytes: manyCgroupBytes,
        standbyToFirstExecMs: percentiles(manySamples),
        startAllMs: round(startAllMs),
      },
    };
  } finally {
    await provider.close();
    await rm(root, { recursive: true, force: true });
  }
}
