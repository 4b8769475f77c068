/** Reads a cluster's `postmaster.pid` and decides whether the process it names is a live postmaster. */
import { readFile, readlink, rm } from "node:fs/promises";
import path from "node:path";

/** The `-D` of a postmaster started in its cluster directory (see start-embedded-postgres.ts). */
export const OWN_WORKING_DIRECTORY = "/proc/self/cwd";

export interface PostmasterPidFile {
  readonly pid: number;
  readonly port: number;
  /** Line 8 of the file: `starting`, `ready`, `stopping`, or empty on old versions. */
  readonly status: string;
}

/** Null when the file is missing or unreadable; see src/include/utils/pidfile.h for the line layout. */
export async function readPostmasterPid(clusterDir: string): Promise<PostmasterPidFile | null> {
  let text: string;
  try {
    text = await readFile(path.join(clusterDir, "postmaster.pid"), "utf8");
  } catch {
    return null;
  }
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, port: Number.isInteger(port) ? port : 0, status: (lines[7] ?? "").trim() };
}

export async function removePostmasterPid(clusterDir: string): Promise<void> {
  await rm(path.join(clusterDir, "postmaster.pid"), { force: true });
}

/**
 * True when `pid` is a running (not zombie/dead) process called `postgres` whose `-D` is `clusterDir`.
 * A SIGKILLed postmaster can linger as a zombie if nobody reaps it, and pids get reused, hence the checks.
 */
export async function isLivePostmaster(pid: number, clusterDir: string): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      // No such process, or no /proc at all (macOS): fall back to a signal-0 probe.
      return process.platform !== "linux" && isSignalable(pid);
    }
    return false;
  }
  const open = stat.indexOf("(");
  const close = stat.lastIndexOf(")");
  const name = stat.slice(open + 1, close);
  const state = stat.slice(close + 2, close + 3);
  if (name !== "postgres" || state === "Z" || state === "X") return false;
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    const dataIndex = argv.indexOf("-D");
    const dataDir = dataIndex >= 0 ? argv[dataIndex + 1] : undefined;
    if (dataDir === OWN_WORKING_DIRECTORY)
      return (await readlink(`/proc/${pid}/cwd`)) === path.resolve(clusterDir);
    if (dataDir !== undefined) return path.resolve(dataDir) === path.resolve(clusterDir);
  } catch {
    // cmdline unreadable (hidepid): the name check above is the best we have.
  }
  return true;
}

function isSignalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
