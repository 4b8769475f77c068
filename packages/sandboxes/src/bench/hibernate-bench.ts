/**
 * Hibernate figures of the runc provider: hibernate → first exec result (the exec restores the
 * sandbox), the hibernate itself, and the memory a hibernated sandbox gives back. Needs root, runc
 * and CRIU >= 4 (scripts/install-criu.sh).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkRuncHibernate, createRuncSandboxProvider } from "../runc/runc-sandbox-provider.js";

export interface HibernateBenchOptions {
  /** Hibernate → exec cycles. Default 50. */
  readonly cycles?: number;
  /** Extra memory a background process in the sandbox holds (MiB). Default 0. */
  readonly ballastMiB?: number;
  readonly log?: (line: string) => void;
}

export interface HibernatePercentiles {
  readonly p50: number;
  readonly p99: number;
  readonly samples: number;
}

export interface HibernateBenchResult {
  readonly criuPath: string;
  readonly criuVersion: string;
  readonly cycles: number;
  /** exec("cat sleeper.pid") on a hibernated sandbox: restore + reconnect + the command. */
  readonly hibernateToFirstExecMs: HibernatePercentiles;
  /** hibernate() alone: detach, `runc checkpoint`, delete. */
  readonly hibernateMs: HibernatePercentiles;
  /** Cycles after which the background process was gone (must be 0). */
  readonly lostProcesses: number;
  /** The container's memory cgroup while running, before each hibernate (median). */
  readonly cgroupBytesBeforeHibernate: number;
  /** Memory charged to the sandbox while hibernated: no container, no cgroup. */
  readonly cgroupBytesWhileHibernated: number;
  /** Host MemAvailable gained by hibernating (median; noisy on a shared machine). */
  readonly memAvailableGainBytes: number;
  /** Size of the CRIU image on disk (median). */
  readonly checkpointBytes: number;
}

function percentiles(samples: readonly number[]): HibernatePercentiles {
  const sorted = [...samples].sort((left, right) => left - right);
  const at = (quantile: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(quantile * sorted.length) - 1))] ?? Number.NaN;
  return { p50: round(at(0.5)), p99: round(at(0.99)), samples: sorted.length };
}

function median(samples: readonly number[]): number {
  return percentiles(samples).p50;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

async function memAvailableBytes(): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const match = /MemAvailable:\s+(\d+) kB/.exec(await readFile("/proc/meminfo", "utf8"));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

export async function runHibernateBench(options: HibernateBenchOptions = {}): Promise<HibernateBenchResult> {
  const log = options.log ?? (() => undefined);
  const support = await checkRuncHibernate();
  if (!support.isSupported) throw new Error(`hibernate bench needs runc and CRIU >= 4: ${support.reason}`);
  const cycles = options.cycles ?? 50;
  const root = await mkdtemp(join(tmpdir(), "outrig-hibernate-bench-"));
  const provider = createRuncSandboxProvider({ criuPath: support.criuPath, stateDir: join(root, "state") });
  const signal = new AbortController().signal;
  try {
    const handle = await provider.create({
      sessionId: "bench",
      orgId: "bench",
      workspaceDir: join(root, "workspace"),
    });
    const run = (command: string) => handle.sandbox.exec({ command, timeoutMs: 60_000 }, signal);
    await run("sleep 100000 > /dev/null 2>&1 & echo $! > sleeper.pid");
    if (options.ballastMiB)
      await run(
        `python3 -c "import time; b = bytearray(${options.ballastMiB} << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(1e6)" > /dev/null 2>&1 &`,
      );
    const firstExec: number[] = [];
    const hibernate: number[] = [];
    const before: number[] = [];
    const gains: number[] = [];
    const images: number[] = [];
    let lost = 0;
    for (let cycle = 0; cycle < cycles; cycle += 1) {
      before.push((await handle.getMemoryBytes()) ?? Number.NaN);
      const availableBefore = await memAvailableBytes();
      let startedAt = performance.now();
      await handle.hibernate();
      hibernate.push(performance.now() - startedAt);
      gains.push((await memAvailableBytes()) - availableBefore);
      images.push(handle.checkpointBytes);
      startedAt = performance.now();
      const result = await run("p=$(cat sleeper.pid); [ -d /proc/$p ] && echo alive || echo gone");
      firstExec.push(performance.now() - startedAt);
      if (result.stdout.trim() !== "alive") lost += 1;
      if ((cycle + 1) % 10 === 0)
        log(
          `hibernate bench: ${cycle + 1}/${cycles} cycles, last first exec ${round(firstExec.at(-1) ?? 0)} ms`,
        );
    }
    await handle.hibernate();
    const whileHibernated = (await handle.getMemoryBytes()) ?? 0;
    await handle.destroy();
    return {
      criuPath: support.criuPath,
      criuVersion: support.criuVersion,
      cycles,
      hibernateToFirstExecMs: percentiles(firstExec),
      hibernateMs: percentiles(hibernate),
      lostProcesses: lost,
      cgroupBytesBeforeHibernate: median(before),
      cgroupBytesWhileHibernated: whileHibernated,
      memAvailableGainBytes: median(gains),
      checkpointBytes: median(images),
    };
  } finally {
    await provider.close();
    await rm(root, { recursive: true, force: true });
  }
}
