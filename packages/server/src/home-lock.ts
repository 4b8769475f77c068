/**
 * One server per OUTRIG_HOME. The home holds the embedded Postgres, the sandbox state and the worker
 * id (derived from the home), so a second server on it would adopt and stop the first one's database
 * and run its workflows twice. `server.pid` is created exclusively (link(), like O_EXCL) and names the
 * holder (pid, process start time, host); a file whose process is gone (a crash) is taken over.
 */
import { readFileSync, unlinkSync } from "node:fs";
import { link, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ConfigError } from "@outrig/core";
import { z } from "zod";

export const HOME_LOCK_FILE = "server.pid";
/** Past this age an unreadable lock file is a leftover; younger, it may be another start's (wait). */
const UNREADABLE_GRACE_MS = 2_000;

const LockRecord = z.object({
  pid: z.number().int().positive(),
  /** Start time of the process (clock ticks since boot, /proc/<pid>/stat field 22): guards against pid reuse. */
  processStart: z.string().nullable(),
  host: z.string(),
  startedAt: z.string(),
  url: z.string().optional(),
});
type LockRecord = z.infer<typeof LockRecord>;

export interface HomeLock {
  readonly file: string;
  /** Records where the server listens, for the message a second start prints. */
  setUrl(url: string): Promise<void>;
  /** Removes the file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

/**
 * Takes `<home>/server.pid`. Throws ConfigError `home_in_use` naming the live holder; a file left by a
 * process that is gone is replaced. Also removed at process exit (not after SIGKILL: the next start
 * sees the dead pid).
 */
export async function acquireHomeLock(home: string): Promise<HomeLock> {
  const file = path.join(home, HOME_LOCK_FILE);
  let record: LockRecord = {
    pid: process.pid,
    processStart: await processStartOf(process.pid),
    host: os.hostname(),
    startedAt: new Date().toISOString(),
  };
  const text = () => `${JSON.stringify(record)}\n`;
  // Written whole under a private name, then linked into place: link() fails if the file exists
  // (like O_EXCL), and the file never exists half-written.
  const staging = `${file}.${process.pid}.tmp`;
  await writeFile(staging, text(), { mode: 0o600 });
  for (let attempt = 1; ; attempt++) {
    try {
      await link(staging, file);
      await unlink(staging);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 20) {
        await unlink(staging).catch(() => undefined);
        throw error;
      }
    }
    const seen = await readFile(file, "utf8").catch(() => null);
    if (seen === null) continue; // removed meanwhile: try again
    const holder = parseRecord(seen);
    if (!holder) {
      // Garbage (an older or hand-edited file): if it is fresh, wait a little; then it is a leftover.
      if (Date.now() - (await modifiedAt(file)) < UNREADABLE_GRACE_MS) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
    } else if (await isHolderAlive(holder)) {
      throw new ConfigError("home_in_use", describeHolder(home, file, holder));
    }
    // Gone: take over, unless someone else replaced the file since we read it.
    const again = await readFile(file, "utf8").catch(() => null);
    if (again === seen) await unlink(file).catch(() => undefined);
  }
  let isReleased = false;
  const releaseAtExit = () => {
    try {
      if (readFileSync(file, "utf8") === text()) unlinkSync(file);
    } catch {
      // already gone
    }
  };
  process.once("exit", releaseAtExit);
  return {
    file,
    async setUrl(url) {
      const previous = text();
      if ((await readFile(file, "utf8").catch(() => null)) !== previous) return;
      record = { ...record, url };
      await writeFile(`${file}.${process.pid}.tmp`, text(), { mode: 0o600 });
      await rename(`${file}.${process.pid}.tmp`, file);
    },
    async release() {
      if (isReleased) return;
      isReleased = true;
      process.off("exit", releaseAtExit);
      releaseAtExit();
    },
  };
}

function parseRecord(text: string): LockRecord | null {
  try {
    const parsed = LockRecord.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

async function modifiedAt(file: string): Promise<number> {
  return stat(file).then(
    (info) => info.mtimeMs,
    () => 0,
  );
}

/** A holder on another host cannot be checked from here: it counts as alive. */
async function isHolderAlive(holder: LockRecord): Promise<boolean> {
  if (holder.host !== os.hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const start = await processStartOf(holder.pid);
  if (start === "zombie") return false;
  // The pid is alive; with /proc, it must also be the same process (pids are reused).
  return start === null || holder.processStart === null || start === holder.processStart;
}

function describeHolder(home: string, file: string, holder: LockRecord): string {
  // Not "listening on": that is the line that says a server started.
  const where = holder.url ? `, serving ${holder.url}` : "";
  const host = holder.host === os.hostname() ? "" : ` on host ${holder.host}`;
  return `OUTRIG_HOME ${home} is in use by another outrig server (pid ${holder.pid}${host}, started ${holder.startedAt}${where}); stop it first, or give this server its own OUTRIG_HOME. If that process is gone, delete ${file}.`;
}

/** Field 22 of /proc/<pid>/stat; null without /proc; `zombie` for a process that exited unreaped. */
async function processStartOf(pid: number): Promise<string | null> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); field 22 is fields[19].
  if (fields[0] === "Z" || fields[0] === "X") return "zombie";
  return fields[19] ?? null;
}
