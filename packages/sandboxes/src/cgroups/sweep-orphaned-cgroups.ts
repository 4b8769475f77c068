/**
 * Cleans up the sandbox cgroups of servers that are gone (see
 * docs/decisions/2026-12-04-orphan-sandbox-sweep.md): empty groups are removed, frozen ones are
 * killed and removed, running ones are left to finish their calls. Only plain file reads, writes and
 * rmdir, so it is unit-tested against a fake cgroupfs. Never touches the groups of a live server.
 */
import { readdir, readFile, rmdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseProcessStartTime } from "./sandbox-cgroup.js";

export interface SweepOrphanedCgroupsOptions {
  /** Where procfs is mounted. Default /proc. */
  readonly procRoot?: string;
  /**
   * Sandbox groups directly in the `outrig` group (the layout before owner directories) name no
   * owner: they are removed only when empty and at least this old, since a server of that version
   * creates the group up to `orphanWaitMs` (15 min) before it moves bwrap into it. Default 1 hour.
   */
  readonly legacyMinAgeMs?: number;
  /** How long to wait for killed processes to leave a group before giving up on it. Default 10 s. */
  readonly removeTimeoutMs?: number;
  /** Test seams for a fake cgroupfs: the clock, SIGKILL and rmdir. */
  readonly now?: () => number;
  readonly kill?: (pid: number) => void;
  readonly removeDirectory?: (path: string) => Promise<void>;
}

/** What a sweep did. */
export interface CgroupSweepResult {
  /** Frozen sandboxes of gone servers that were killed (their groups are removed too). */
  killedSandboxes: number;
  /** Cgroup directories removed: one per controller per sandbox, plus emptied owner directories. */
  removedDirectories: number;
  /** Running sandboxes of gone servers, left to finish their keyed calls and exit by themselves. */
  runningOrphans: number;
  /** One line per group that could not be cleaned; the next sweep tries again. */
  failures: string[];
}

/** The groups a driver creates sandboxes in (a CgroupDriver satisfies it). */
export interface SweptCgroupLayout {
  readonly version: 1 | 2;
  /** This process's owner directory name: never swept. */
  readonly owner: string;
  /** controller → its `outrig` group directory (v2: one entry under ""). */
  readonly groupDirectories: Readonly<Record<string, string>>;
}

const OWNER_PATTERN = /^server-(\d+)-(\d+)$/;
const LEGACY_MIN_AGE_MS = 60 * 60_000;
const REMOVE_TIMEOUT_MS = 10_000;
const REMOVE_POLL_MS = 10;

/** One sandbox's directories across controllers. `owner` is undefined for the legacy layout. */
interface SweptSandbox {
  readonly owner: string | undefined;
  readonly directories: Map<string, string>;
}

/**
 * Sweeps the `outrig` groups of `layout`: for each owner directory whose server is gone, removes
 * its empty sandbox groups, kills and removes its frozen ones, leaves its running ones, and removes
 * the owner directory once empty; legacy sandbox groups are removed only when empty and old. Never
 * throws: what fails is listed in `failures`.
 */
export async function sweepOrphanedCgroups(
  layout: SweptCgroupLayout,
  options: SweepOrphanedCgroupsOptions = {},
): Promise<CgroupSweepResult> {
  const result: CgroupSweepResult = {
    killedSandboxes: 0,
    removedDirectories: 0,
    runningOrphans: 0,
    failures: [],
  };
  const procRoot = options.procRoot ?? "/proc";
  const liveness = new Map<string, boolean>();
  const sandboxes = new Map<string, SweptSandbox>();
  const ownerDirectories: string[] = [];
  const add = (key: string, owner: string | undefined, controller: string, path: string) => {
    const sandbox = sandboxes.get(key) ?? { owner, directories: new Map<string, string>() };
    sandbox.directories.set(controller, path);
    sandboxes.set(key, sandbox);
  };
  for (const [controller, group] of Object.entries(layout.groupDirectories)) {
    for (const entry of await listDirectories(group)) {
      if (!OWNER_PATTERN.test(entry)) {
        add(entry, undefined, controller, join(group, entry));
        continue;
      }
      // Invariant: our own directory is never swept, even if /proc says something odd about us.
      if (entry === layout.owner) continue;
      let isAlive = liveness.get(entry);
      if (isAlive === undefined) {
        isAlive = await isOwnerAlive(entry, procRoot);
        liveness.set(entry, isAlive);
      }
      if (isAlive) continue;
      ownerDirectories.push(join(group, entry));
      for (const name of await listDirectories(join(group, entry)))
        add(`${entry}/${name}`, entry, controller, join(group, entry, name));
    }
  }
  const io = {
    kill: options.kill ?? killProcess,
    removeDirectory: options.removeDirectory ?? ((path: string) => rmdir(path)),
    now: options.now ?? Date.now,
    removeTimeoutMs: options.removeTimeoutMs ?? REMOVE_TIMEOUT_MS,
  };
  for (const [key, sandbox] of sandboxes) {
    try {
      if (sandbox.owner === undefined) {
        result.removedDirectories += await sweepLegacy(
          sandbox,
          options.legacyMinAgeMs ?? LEGACY_MIN_AGE_MS,
          io,
        );
        continue;
      }
      const pids = await listAllPids(sandbox);
      if (pids.length === 0) {
        result.removedDirectories += await removeEmpty(sandbox, io);
      } else if (await isFrozen(layout.version, sandbox)) {
        await killAndRemove(layout.version, sandbox, io);
        result.killedSandboxes += 1;
        result.removedDirectories += sandbox.directories.size;
      } else {
        // Its agent saw the server's pipe close: it finishes its keyed calls and exits by itself.
        result.runningOrphans += 1;
      }
    } catch (error) {
      result.failures.push(`${key}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  for (const directory of ownerDirectories) {
    try {
      await io.removeDirectory(directory);
      result.removedDirectories += 1;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Still holds a running orphan (or another sweep removed it first): fine.
      if (code !== "ENOTEMPTY" && code !== "EBUSY" && code !== "ENOENT")
        result.failures.push(`${directory}: ${(error as Error).message}`);
    }
  }
  return result;
}

/**
 * True unless /proc shows that the server `owner` (`server-<pid>-<start time>`) is gone: no such
 * pid, a zombie, or a pid reused by a process with another start time. Unreadable → alive.
 */
export async function isOwnerAlive(owner: string, procRoot = "/proc"): Promise<boolean> {
  const match = OWNER_PATTERN.exec(owner);
  if (!match) return true;
  const [, pid = "", startTime = ""] = match;
  let text: string;
  try {
    text = await readFile(join(procRoot, pid, "stat"), "utf8");
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ENOENT";
  }
  const state = text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3);
  if (state === "Z" || state === "X") return false;
  // "0": the owner could not read its own start time; the pid alone has to do.
  return startTime === "0" || parseProcessStartTime(text) === startTime;
}

/** One line for the log, or undefined when the sweep found nothing to do. */
export function describeCgroupSweep(result: CgroupSweepResult): string | undefined {
  const { killedSandboxes, removedDirectories, runningOrphans, failures } = result;
  if (killedSandboxes + removedDirectories + runningOrphans + failures.length === 0) return undefined;
  let line = `outrig sandboxes: removed ${killedSandboxes} orphaned sandboxes and ${removedDirectories} empty cgroups`;
  if (runningOrphans > 0) line += `; left ${runningOrphans} running orphaned sandboxes to finish`;
  if (failures.length > 0) line += `; ${failures.length} failed (${failures[0]})`;
  return line;
}

interface SweepIo {
  readonly kill: (pid: number) => void;
  readonly removeDirectory: (path: string) => Promise<void>;
  readonly now: () => number;
  readonly removeTimeoutMs: number;
}

async function listDirectories(path: string): Promise<string[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  } catch {
    return [];
  }
}

async function readPids(directory: string): Promise<number[]> {
  try {
    return (await readFile(join(directory, "cgroup.procs"), "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((line) => Number(line));
  } catch {
    return [];
  }
}

async function listAllPids(sandbox: SweptSandbox): Promise<number[]> {
  const pids = new Set<number>();
  for (const directory of sandbox.directories.values())
    for (const pid of await readPids(directory)) pids.add(pid);
  return [...pids];
}

async function isFrozen(version: 1 | 2, sandbox: SweptSandbox): Promise<boolean> {
  const directory = sandbox.directories.get(version === 1 ? "freezer" : "");
  if (directory === undefined) return false;
  const file = version === 1 ? "freezer.state" : "cgroup.freeze";
  const state = (await readFile(join(directory, file), "utf8").catch(() => "")).trim();
  return version === 1 ? state === "FROZEN" || state === "FREEZING" : state === "1";
}

/** Legacy groups: removed when empty and older than `minAgeMs`; never signalled. */
async function sweepLegacy(sandbox: SweptSandbox, minAgeMs: number, io: SweepIo): Promise<number> {
  if ((await listAllPids(sandbox)).length > 0) return 0;
  for (const directory of sandbox.directories.values()) {
    const info = await stat(directory).catch(() => undefined);
    if (info === undefined || io.now() - info.mtimeMs < minAgeMs) return 0;
  }
  return removeEmpty(sandbox, io);
}

/**
 * rmdir of each directory. The kernel refuses (EBUSY) one that a process joined meanwhile or whose
 * killed processes are still exiting (another sweep's kill): that one is left for the next sweep.
 */
async function removeEmpty(sandbox: SweptSandbox, io: SweepIo): Promise<number> {
  let removed = 0;
  for (const directory of sandbox.directories.values()) {
    try {
      await io.removeDirectory(directory);
      removed += 1;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "EBUSY") throw error;
    }
  }
  return removed;
}

/** Frozen tasks cannot die: SIGKILL every process, thaw so the kills land, then rmdir as they drain. */
async function killAndRemove(version: 1 | 2, sandbox: SweptSandbox, io: SweepIo): Promise<void> {
  const freezer = sandbox.directories.get(version === 1 ? "freezer" : "");
  if (version === 2 && freezer !== undefined)
    await writeFile(join(freezer, "cgroup.kill"), "1").catch(() => undefined);
  for (const pid of await listAllPids(sandbox)) io.kill(pid);
  if (freezer !== undefined) {
    if (version === 1) await writeFile(join(freezer, "freezer.state"), "THAWED");
    else await writeFile(join(freezer, "cgroup.freeze"), "0");
  }
  const deadline = io.now() + io.removeTimeoutMs;
  for (const directory of sandbox.directories.values()) {
    for (;;) {
      try {
        await io.removeDirectory(directory);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") break;
        if (code !== "EBUSY" || io.now() > deadline) throw error;
        for (const pid of await readPids(directory)) io.kill(pid);
        await delay(REMOVE_POLL_MS);
      }
    }
  }
}

function killProcess(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}
