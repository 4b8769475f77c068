/**
 * Per-sandbox cgroups behind one small interface, for cgroup v1 (one hierarchy per controller, as
 * on this host's hybrid layout) and v2 (one unified hierarchy). Only plain file reads and writes,
 * so both are unit-tested against fake cgroupfs trees in a temp dir.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { SandboxError, type SandboxLimits } from "@outrig/core";

/** The cgroups of one sandbox. */
export interface SandboxCgroup {
  readonly version: 1 | 2;
  /** Every `cgroup.procs` file a process must be written to (one per v1 hierarchy, one for v2). */
  readonly procsFiles: readonly string[];
  readonly canFreeze: boolean;
  /** Freezes every process; resolves once the kernel reports the group frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** How many processes the OOM killer has killed in this group so far. */
  readOomKillCount(): Promise<number>;
  /** Times `fork()` failed because of the pids limit (v1 `pids.events` max / v2 the same). */
  readPidsMaxCount(): Promise<number>;
  /**
   * Tasks (threads) charged to the pids limit now. Killed processes stay charged until they are
   * reaped, so this can exceed what `listPids` shows.
   */
  readPidsCurrent(): Promise<number>;
  /** Memory charged to the group now, in bytes (page cache included). */
  readMemoryBytes(): Promise<number>;
  /** Host pids of every process in the group. */
  listPids(): Promise<number[]>;
  /** SIGKILLs every process and removes the group's directories; retries while they drain. */
  remove(): Promise<void>;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** This server's directory name below each `outrig` group (see `cgroupOwnerName`). */
  readonly owner: string;
  /**
   * The `outrig` group directories this driver creates sandboxes in: one per v1 hierarchy, keyed by
   * controller, or one under "" for v2.
   */
  readonly groupDirectories: Readonly<Record<string, string>>;
  /** Creates the cgroup(s) `<owner>/<name>` under the driver's `outrig` groups and writes `limits`. */
  create(name: string, limits: SandboxLimits): Promise<SandboxCgroup>;
}

const CPU_PERIOD_MICROSECONDS = 100_000;
const V1_CONTROLLERS = ["memory", "pids", "cpu", "freezer"] as const;
type V1Controller = (typeof V1_CONTROLLERS)[number];
const FREEZE_POLL_MS = 1;
const FREEZE_TIMEOUT_MS = 10_000;
const REMOVE_ATTEMPTS = 200;

export interface DetectCgroupsOptions {
  /** Where cgroupfs is mounted. Default /sys/fs/cgroup. */
  readonly root?: string;
  /** Directory name created under the parent cgroup. Default "outrig". */
  readonly groupName?: string;
  /**
   * The server's own cgroup path per v1 controller (or under "" for v2), as in /proc/self/cgroup.
   * Sandbox cgroups are created below it, so they stay inside the server's own limits.
   * Default: read /proc/self/cgroup.
   */
  readonly ownPaths?: Readonly<Record<string, string>>;
  /**
   * The directory between the group and each sandbox, naming the server that owns the sandboxes so a
   * sweep can tell orphans (see sweep-orphaned-cgroups.ts). Default: `cgroupOwnerName()`.
   */
  readonly owner?: string;
}

/** Parses /proc/self/cgroup into controller → path ("" for the v2 entry "0::/path"). */
export function parseProcCgroup(text: string): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, controllers = "", path = "/"] = match;
    if (controllers === "") paths[""] = path;
    for (const controller of controllers.split(",")) if (controller) paths[controller] = path;
  }
  return paths;
}

/**
 * Picks the cgroup version this host can use for sandbox limits, or undefined (with the reason)
 * when none is writable: v1 when memory, pids, cpu and freezer hierarchies exist; else v2 when the
 * unified hierarchy has the memory, pids and cpu controllers.
 */
export function detectCgroups(options: DetectCgroupsOptions = {}): CgroupDriver | { reason: string } {
  const root = options.root ?? "/sys/fs/cgroup";
  const groupName = options.groupName ?? "outrig";
  const owner = options.owner ?? cgroupOwnerName();
  let ownPaths = options.ownPaths;
  if (!ownPaths) {
    try {
      ownPaths = parseProcCgroup(readFileSync("/proc/self/cgroup", "utf8"));
    } catch {
      ownPaths = {};
    }
  }
  if (V1_CONTROLLERS.every((controller) => existsSync(join(root, controller, "cgroup.procs")))) {
    const parents = Object.fromEntries(
      V1_CONTROLLERS.map((controller) => [
        controller,
        join(root, controller, ownPaths[controller] ?? "/", groupName),
      ]),
    ) as Record<V1Controller, string>;
    return new CgroupV1Driver(parents, owner);
  }
  const controllersFile = join(root, "cgroup.controllers");
  if (existsSync(controllersFile)) {
    const controllers = readFileSync(controllersFile, "utf8").trim().split(/\s+/);
    const missing = ["memory", "pids", "cpu"].filter((name) => !controllers.includes(name));
    if (missing.length > 0)
      return { reason: `cgroup v2 at ${root} lacks the ${missing.join(", ")} controller(s)` };
    return new CgroupV2Driver(join(root, ownPaths[""] ?? "/", groupName), owner);
  }
  return { reason: `no usable cgroup hierarchy under ${root}` };
}

/**
 * The owner directory name of the server process `pid`: `server-<pid>-<start time>`, the start time
 * being field 22 of /proc/<pid>/stat (clock ticks since boot), so a reused pid never matches. Falls
 * back to `server-<pid>-0` when /proc cannot be read (a sweep then treats the owner as gone once
 * the pid is).
 */
export function cgroupOwnerName(pid: number = process.pid, procRoot = "/proc"): string {
  let startTime = "0";
  try {
    startTime = parseProcessStartTime(readFileSync(join(procRoot, String(pid), "stat"), "utf8")) ?? "0";
  } catch {
    // no /proc: keep 0
  }
  return `server-${pid}-${startTime}`;
}

/** Field 22 (starttime) of a /proc/<pid>/stat line; the command (field 2) may hold spaces and ")". */
export function parseProcessStartTime(stat: string): string | undefined {
  const afterCommand = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // afterCommand[0] is field 3 (state), so field 22 is at index 19.
  const value = afterCommand[19];
  return value !== undefined && /^\d+$/.test(value) ? value : undefined;
}

export function isCgroupDriver(value: CgroupDriver | { reason: string }): value is CgroupDriver {
  return "create" in value;
}

async function readNumber(path: string, field?: string): Promise<number> {
  try {
    const text = await readFile(path, "utf8");
    if (field === undefined) return Number(text.trim()) || 0;
    const match = new RegExp(`^${field}\\s+(\\d+)`, "m").exec(text);
    return Number(match?.[1] ?? 0);
  } catch {
    return 0;
  }
}

async function readPids(path: string): Promise<number[]> {
  try {
    return (await readFile(path, "utf8"))
      .split("\n")
      .filter(Boolean)
      .map((line) => Number(line));
  } catch {
    return [];
  }
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** rmdir, retried while the kernel still reports the group busy (processes exiting). */
async function removeDirectory(path: string, listPids: () => Promise<number[]>): Promise<void> {
  for (let attempt = 0; attempt < REMOVE_ATTEMPTS; attempt += 1) {
    try {
      await rmdir(path);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY") throw error;
      killAll(await listPids());
      await delay(5);
    }
  }
  throw new SandboxError("sandbox_cleanup_failed", `cgroup ${path} is still busy`);
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = performance.now() + FREEZE_TIMEOUT_MS;
  while (!(await check())) {
    if (performance.now() > deadline) throw new SandboxError("sandbox_freeze_failed", `${what} timed out`);
    await delay(FREEZE_POLL_MS);
  }
}

class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;
  readonly owner: string;
  readonly groupDirectories: Readonly<Record<V1Controller, string>>;

  constructor(parents: Record<V1Controller, string>, owner: string) {
    this.groupDirectories = parents;
    this.owner = owner;
  }

  async create(name: string, limits: SandboxLimits): Promise<SandboxCgroup> {
    const paths = Object.fromEntries(
      V1_CONTROLLERS.map((controller) => [
        controller,
        join(this.groupDirectories[controller], this.owner, name),
      ]),
    ) as Record<V1Controller, string>;
    for (const path of Object.values(paths)) await mkdir(path, { recursive: true });
    const cgroup = new CgroupV1(paths);
    try {
      if (limits.memoryBytes !== undefined)
        await writeFile(join(paths.memory, "memory.limit_in_bytes"), String(limits.memoryBytes));
      if (limits.pids !== undefined) await writeFile(join(paths.pids, "pids.max"), String(limits.pids));
      if (limits.cpus !== undefined) {
        await writeFile(join(paths.cpu, "cpu.cfs_period_us"), String(CPU_PERIOD_MICROSECONDS));
        await writeFile(
          join(paths.cpu, "cpu.cfs_quota_us"),
          String(Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_MICROSECONDS))),
        );
      }
    } catch (error) {
      await cgroup.remove();
      throw error;
    }
    return cgroup;
  }
}

class CgroupV1 implements SandboxCgroup {
  readonly version = 1 as const;
  readonly canFreeze = true;
  readonly procsFiles: readonly string[];
  readonly #paths: Record<V1Controller, string>;

  constructor(paths: Record<V1Controller, string>) {
    this.#paths = paths;
    this.procsFiles = V1_CONTROLLERS.map((controller) => join(paths[controller], "cgroup.procs"));
  }

  async freeze(): Promise<void> {
    const state = join(this.#paths.freezer, "freezer.state");
    await writeFile(state, "FROZEN");
    await waitFor(async () => (await readFile(state, "utf8")).trim() === "FROZEN", "freezing the sandbox");
  }

  async thaw(): Promise<void> {
    await writeFile(join(this.#paths.freezer, "freezer.state"), "THAWED");
  }

  readOomKillCount(): Promise<number> {
    return readNumber(join(this.#paths.memory, "memory.oom_control"), "oom_kill");
  }

  readPidsMaxCount(): Promise<number> {
    return readNumber(join(this.#paths.pids, "pids.events"), "max");
  }

  readPidsCurrent(): Promise<number> {
    return readNumber(join(this.#paths.pids, "pids.current"));
  }

  readMemoryBytes(): Promise<number> {
    return readNumber(join(this.#paths.memory, "memory.usage_in_bytes"));
  }

  listPids(): Promise<number[]> {
    return readPids(join(this.#paths.freezer, "cgroup.procs"));
  }

  async remove(): Promise<void> {
    // Frozen tasks cannot die: kill, then thaw so the SIGKILLs are delivered.
    killAll(await this.listPids());
    await writeFile(join(this.#paths.freezer, "freezer.state"), "THAWED").catch(() => {});
    for (const controller of V1_CONTROLLERS) {
      const path = this.#paths[controller];
      await removeDirectory(path, () => readPids(join(path, "cgroup.procs")));
    }
  }
}

class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;
  readonly owner: string;
  readonly groupDirectories: Readonly<Record<string, string>>;
  readonly #parent: string;

  constructor(parent: string, owner: string) {
    this.#parent = parent;
    this.owner = owner;
    this.groupDirectories = { "": parent };
  }

  async create(name: string, limits: SandboxLimits): Promise<SandboxCgroup> {
    const ownerPath = join(this.#parent, this.owner);
    await mkdir(ownerPath, { recursive: true });
    // Controllers must be enabled in each ancestor for its children to get the limit files.
    for (const parent of [this.#parent, ownerPath])
      await writeFile(join(parent, "cgroup.subtree_control"), "+memory +pids +cpu").catch(() => {});
    const path = join(ownerPath, name);
    await mkdir(path, { recursive: true });
    const cgroup = new CgroupV2(path);
    try {
      if (limits.memoryBytes !== undefined) {
        await writeFile(join(path, "memory.max"), String(limits.memoryBytes));
        await writeFile(join(path, "memory.swap.max"), "0").catch(() => {});
      }
      if (limits.pids !== undefined) await writeFile(join(path, "pids.max"), String(limits.pids));
      if (limits.cpus !== undefined) {
        const quota = Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_MICROSECONDS));
        await writeFile(join(path, "cpu.max"), `${quota} ${CPU_PERIOD_MICROSECONDS}`);
      }
    } catch (error) {
      await cgroup.remove();
      throw error;
    }
    return cgroup;
  }
}

class CgroupV2 implements SandboxCgroup {
  readonly version = 2 as const;
  readonly canFreeze = true;
  readonly procsFiles: readonly string[];
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
    this.procsFiles = [join(path, "cgroup.procs")];
  }

  async freeze(): Promise<void> {
    await writeFile(join(this.#path, "cgroup.freeze"), "1");
    await waitFor(
      async () => (await readNumber(join(this.#path, "cgroup.events"), "frozen")) === 1,
      "freezing the sandbox",
    );
  }

  async thaw(): Promise<void> {
    await writeFile(join(this.#path, "cgroup.freeze"), "0");
  }

  readOomKillCount(): Promise<number> {
    return readNumber(join(this.#path, "memory.events"), "oom_kill");
  }

  readPidsMaxCount(): Promise<number> {
    return readNumber(join(this.#path, "pids.events"), "max");
  }

  readPidsCurrent(): Promise<number> {
    return readNumber(join(this.#path, "pids.current"));
  }

  readMemoryBytes(): Promise<number> {
    return readNumber(join(this.#path, "memory.current"));
  }

  listPids(): Promise<number[]> {
    return readPids(join(this.#path, "cgroup.procs"));
  }

  async remove(): Promise<void> {
    // cgroup.kill (5.14+) kills frozen tasks too; fall back to signalling each pid.
    await writeFile(join(this.#path, "cgroup.kill"), "1").catch(() => {});
    killAll(await this.listPids());
    await writeFile(join(this.#path, "cgroup.freeze"), "0").catch(() => {});
    await removeDirectory(this.#path, () => this.listPids());
  }
}
