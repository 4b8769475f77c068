/** Small helpers for the benchmarks: statistics, /proc readings, a server process. */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";

export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

export const median = (values) => percentile(values, 50);

export function round(value, digits = 2) {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export async function time(work) {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** Resident set size of a process in MiB, from /proc. */
export async function rssMiB(pid) {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** Processes whose command line contains `needle` (and not `unless`), with their RSS in MiB. */
export async function processesMatching(needle, unless = "\0") {
  const { readdir, readFile } = await import("node:fs/promises");
  const found = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8")).replaceAll("\0", " ");
      if (cmdline.includes(needle) && !cmdline.includes(unless))
        found.push({ pid: Number(entry), rss: await rssMiB(Number(entry)) });
    } catch {}
  }
  return found;
}

const OUTRIG_BIN = new URL("../packages/cli/bin/outrig.js", import.meta.url).pathname;

/** Spawns `outrig serve` on a temp home and an ephemeral port; `ready()` resolves with its URL and key. */
// The benches measure the engine, not the per-key limiter: they poll and fan out far faster than a
// client should, so the request and stream limits are lifted out of their way.
const UNLIMITED = {
  OUTRIG_RATE_KEY_RPS: "1000000",
  OUTRIG_RATE_KEY_BURST: "1000000",
  OUTRIG_RATE_ORG_RPS: "1000000",
  OUTRIG_RATE_ORG_BURST: "1000000",
  OUTRIG_RATE_KEY_STREAMS: "100000",
  OUTRIG_RATE_ORG_STREAMS: "100000",
};

export function spawnServer(home, env) {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [OUTRIG_BIN, "serve"], {
    env: { ...process.env, OUTRIG_HOME: home, OUTRIG_PORT: "0", ...UNLIMITED, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const ready = new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`server exited ${code}: ${output}`)));
  });
  return {
    child,
    startedAt,
    async ready() {
      const url = await ready;
      const { apiKey } = JSON.parse(await fs.readFile(path.join(home, "credentials.json"), "utf8"));
      return { url, apiKey };
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await exited;
    },
  };
}

/**
 * The step timings a server (started with OUTRIG_STEP_TIMINGS_FILE=`file`) gathered since the last
 * call: SIGUSR2 makes it write them to `file` and start over. `{ phase: { totalMs, count } }`.
 */
export async function takeStepTimings(child, file) {
  await fs.rm(file, { force: true });
  child.kill("SIGUSR2");
  const deadline = performance.now() + 10_000;
  for (;;) {
    try {
      return JSON.parse(await fs.readFile(file, "utf8"));
    } catch (error) {
      if (error.code !== "ENOENT" || performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
