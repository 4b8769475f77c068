/** Small statistics helpers for the benchmarks. */

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
