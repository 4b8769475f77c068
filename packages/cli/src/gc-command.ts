/**
 * `outrig gc`: removes what Outrig left outside OUTRIG_HOME. A home keeps everything of its own inside
 * it; what older versions and killed processes left elsewhere is this command's to clear:
 * - temp directories of an `initdb` or a workspace snapshot a killed process never removed (older than
 *   an hour, so a running one's are left alone);
 * - copies of Postgres binaries of versions no longer installed (`/var/lib/outrig/postgres-*`, made when
 *   the postgres user could not reach node_modules);
 * - with `--legacy-clusters`: clusters older versions kept in `/var/lib/outrig/cluster-*` for a home
 *   under /root. A home moves its own back at its next start; what is left belongs to a home that is
 *   gone, or has not started since. Data: never removed by default, never while a postmaster runs on it.
 */
import { lstat, readdir, rm, rmdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  isLivePostmaster,
  ROOT_SHARED_DIR,
  readPostmasterPid,
  resolvePostgresBinaries,
} from "@outrig/storage";

export const GC_USAGE = `usage: outrig gc [--dry-run] [--legacy-clusters]

Removes what Outrig left outside OUTRIG_HOME: stale temp directories of killed processes (outrig-initdb-*,
outrig-snapshot-* older than an hour) and copies of Postgres binaries of other versions in /var/lib/outrig.
  --dry-run          list what would go, remove nothing
  --legacy-clusters  also remove Postgres clusters older versions kept in /var/lib/outrig/cluster-* that
                     no running postmaster uses (a home still in use moves its own into the home at its
                     next start: start it first)`;

/** Temp directories of these prefixes older than this are a killed process's. */
const STALE_AFTER_MS = 60 * 60 * 1000;
const TEMP_PREFIXES = ["outrig-initdb-", "outrig-snapshot-"];

export interface GcOptions {
  readonly home: string;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  /** Where temp directories are (default the OS's). */
  readonly tmpDir?: string;
  /** Where root kept shared files (default /var/lib/outrig). */
  readonly sharedDir?: string;
  readonly now?: () => number;
}

export async function gcCommand(argv: readonly string[], options: GcOptions): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      "dry-run": { type: "boolean" },
      "legacy-clusters": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    options.out(GC_USAGE);
    return 0;
  }
  const isDryRun = values["dry-run"] === true;
  const tmpDir = options.tmpDir ?? os.tmpdir();
  const sharedDir = options.sharedDir ?? ROOT_SHARED_DIR;
  const now = options.now?.() ?? Date.now();
  const doomed: string[] = [];
  const kept: string[] = [];

  for (const name of await names(tmpDir)) {
    if (!TEMP_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    const entry = path.join(tmpDir, name);
    const info = await lstat(entry).catch(() => undefined);
    if (info?.isDirectory() && now - info.mtimeMs > STALE_AFTER_MS) doomed.push(entry);
  }

  const currentBinaries = await resolvePostgresBinaries(null).then(
    (binaries) => `postgres-${binaries.version}-`,
    () => undefined,
  );
  for (const name of await names(sharedDir)) {
    const entry = path.join(sharedDir, name);
    if (name.startsWith("postgres-")) {
      if (currentBinaries && !name.startsWith(currentBinaries)) doomed.push(entry);
    } else if (name.startsWith("cluster-")) {
      const pidFile = await readPostmasterPid(entry);
      const isRunning = pidFile !== null && (await isLivePostmaster(pidFile.pid, entry));
      if (values["legacy-clusters"] && !isRunning) doomed.push(entry);
      else kept.push(`${entry}${isRunning ? " (a postmaster runs on it)" : ""}`);
    }
  }

  for (const entry of doomed) {
    options.out(`${isDryRun ? "would remove" : "removed"} ${entry}`);
    if (!isDryRun) await rm(entry, { recursive: true, force: true });
  }
  if (!isDryRun) await rmdir(sharedDir).catch(() => undefined); // only when it is empty now
  if (kept.length > 0)
    options.err(
      `kept ${kept.length} Postgres cluster(s) an older version left in ${sharedDir}; start each home still ` +
        "in use once (it moves its cluster home), then `outrig gc --legacy-clusters` removes the rest:\n  " +
        kept.join("\n  "),
    );
  if (doomed.length === 0 && kept.length === 0) options.out(`nothing of Outrig outside ${options.home}`);
  return 0;
}

async function names(directory: string): Promise<string[]> {
  return readdir(directory).catch(() => []);
}
