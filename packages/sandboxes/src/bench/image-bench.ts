/**
 * Fresh sandbox → first exec result on a prepared root filesystem versus the host's /usr, with
 * cycles interleaved (host, image, host, …) so load on a shared machine hits both alike.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createBubblewrapSandboxProvider } from "../bubblewrap/bubblewrap-sandbox-provider.js";
import { type ImageManifest, readImage } from "../image/rootfs-image.js";

export interface ImageBenchOptions {
  /** An image directory (`outrig image build --out DIR`). */
  readonly imageDir: string;
  /** Cycles per root. Default 50. */
  readonly cycles?: number;
  readonly log?: (line: string) => void;
}

export interface RootFigures {
  /** create() (agent ready) + `exec("true")` until its result. */
  readonly createToFirstExecMs: { readonly p50: number; readonly p99: number; readonly samples: number };
  /** The exec alone, on the fresh sandbox. */
  readonly firstExecMs: { readonly p50: number; readonly p99: number; readonly samples: number };
}

export interface ImageBenchResult {
  readonly image: Pick<ImageManifest, "sizeBytes" | "fileCount" | "buildMs" | "contentHash"> & {
    readonly packages: number;
  };
  readonly hostUsr: RootFigures;
  readonly imageRoot: RootFigures;
}

function percentiles(samples: readonly number[]) {
  const sorted = [...samples].sort((left, right) => left - right);
  const at = (quantile: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(quantile * sorted.length) - 1))] ?? Number.NaN;
  const round = (value: number) => Math.round(value * 100) / 100;
  return { p50: round(at(0.5)), p99: round(at(0.99)), samples: sorted.length };
}

export async function runImageBench(options: ImageBenchOptions): Promise<ImageBenchResult> {
  const image = readImage(options.imageDir);
  if (!image) throw new Error(`${options.imageDir} is not a built image (no manifest.json or rootfs)`);
  const cycles = options.cycles ?? 50;
  const log = options.log ?? (() => {});
  const root = await mkdtemp(join(tmpdir(), "outrig-image-bench-"));
  const roots = {
    hostUsr: createBubblewrapSandboxProvider({ cgroups: "off" }),
    imageRoot: createBubblewrapSandboxProvider({ cgroups: "off", rootfsDir: image.rootfsDir }),
  };
  const samples = {
    hostUsr: { total: [] as number[], exec: [] as number[] },
    imageRoot: { total: [] as number[], exec: [] as number[] },
  };
  const signal = new AbortController().signal;
  let count = 0;
  try {
    // One warm-up each (page cache, node's compile cache), then the timed cycles.
    for (let cycle = -1; cycle < cycles; cycle += 1) {
      for (const name of ["hostUsr", "imageRoot"] as const) {
        count += 1;
        const startedAt = performance.now();
        const sandbox = await roots[name].create({
          sessionId: `bench-${count}`,
          orgId: "bench",
          workspaceDir: join(root, `w-${count}`),
        });
        const execAt = performance.now();
        const result = await sandbox.exec({ command: "true", timeoutMs: 30_000 }, signal);
        const endedAt = performance.now();
        if (result.exitCode !== 0) throw new Error(`exec failed on ${name}: ${result.stderr}`);
        await sandbox.destroy();
        if (cycle >= 0) {
          samples[name].total.push(endedAt - startedAt);
          samples[name].exec.push(endedAt - execAt);
        }
      }
      if ((cycle + 1) % 10 === 0) log(`${cycle + 1}/${cycles} cycles`);
    }
  } finally {
    await Promise.all([roots.hostUsr.close(), roots.imageRoot.close()]);
    await rm(root, { recursive: true, force: true });
  }
  const figures = (name: keyof typeof samples): RootFigures => ({
    createToFirstExecMs: percentiles(samples[name].total),
    firstExecMs: percentiles(samples[name].exec),
  });
  const { manifest } = image;
  return {
    image: {
      sizeBytes: manifest.sizeBytes,
      fileCount: manifest.fileCount,
      buildMs: manifest.buildMs,
      contentHash: manifest.contentHash,
      packages: manifest.packages.length,
    },
    hostUsr: figures("hostUsr"),
    imageRoot: figures("imageRoot"),
  };
}
