/**
 * Measures the bubblewrap provider: fresh sandbox → first exec result, exec round trip of `true`
 * against a plain local spawn, and the agent's memory. Run through `npm run bench`.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createBubblewrapSandboxProvider } from "../src/index.js";

export interface SandboxBenchOptions {
  /** Sandboxes created and execs timed. Default 20. */
  readonly iterations?: number;
}

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

export interface SandboxBenchResult {
  readonly iterations: number;
  /** create() until the first `true` exec has answered, per fresh sandbox, in ms. */
  readonly createToFirstExecMs: Percentiles;
  /** Round trip of `exec("true")` in a warm sandbox, in ms. */
  readonly execTrueMs: Percentiles;
  /** `child_process.spawn("true")` on the host until exit, in ms. */
  readonly localSpawnTrueMs: Percentiles;
  /** execTrueMs.p50 / localSpawnTrueMs.p50. */
  readonly execOverLocalSpawnRatio: number;
  /** Resident memory of the agent process (whole and private/anonymous). */
  readonly agentRssBytes: number;
  readonly agentRssAnonBytes: number;
}

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((left, right) => left - right);
  const at = (quantile: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(quantile * sorted.length) - 1)] ?? Number.NaN;
  return { p50: round(at(0.5)), p99: round(at(0.99)) };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("true", { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", () => resolve());
  });
}

/** Runs the bench; creates and destroys its own sandboxes under the OS temp dir. */
export async function runSandboxBench(options: SandboxBenchOptions = {}): Promise<SandboxBenchResult> {
  const iterations = options.iterations ?? 20;
  const root = await mkdtemp(join(tmpdir(), "outrig-sandbox-bench-"));
  const provider = createBubblewrapSandboxProvider();
  const signal = new AbortController().signal;
  const execTrue = { command: "true", timeoutMs: 30_000 };
  try {
    const createSamples: number[] = [];
    for (let index = 0; index < iterations; index += 1) {
      const startedAt = performance.now();
      const handle = await provider.create({
        sessionId: `bench-${index}`,
        orgId: "bench",
        workspaceDir: join(root, `workspace-${index}`),
      });
      await handle.sandbox.exec(execTrue, signal);
      createSamples.push(performance.now() - startedAt);
      await handle.destroy();
    }

    const handle = await provider.create({
      sessionId: "bench",
      orgId: "bench",
      workspaceDir: join(root, "warm"),
    });
    const execSamples: number[] = [];
    const spawnSamples: number[] = [];
    for (let index = 0; index < 3; index += 1) {
      await handle.sandbox.exec(execTrue, signal);
      await spawnTrue();
    }
    for (let index = 0; index < iterations; index += 1) {
      let startedAt = performance.now();
      await handle.sandbox.exec(execTrue, signal);
      execSamples.push(performance.now() - startedAt);
      startedAt = performance.now();
      await spawnTrue();
      spawnSamples.push(performance.now() - startedAt);
    }
    const agent = await handle.getAgentInfo();
    const execTrueMs = percentiles(execSamples);
    const localSpawnTrueMs = percentiles(spawnSamples);
    return {
      iterations,
      createToFirstExecMs: percentiles(createSamples),
      execTrueMs,
      localSpawnTrueMs,
      execOverLocalSpawnRatio: round(execTrueMs.p50 / localSpawnTrueMs.p50),
      agentRssBytes: agent.rssBytes,
      agentRssAnonBytes: agent.rssAnonBytes,
    };
  } finally {
    await provider.close();
    await rm(root, { recursive: true, force: true });
  }
}
