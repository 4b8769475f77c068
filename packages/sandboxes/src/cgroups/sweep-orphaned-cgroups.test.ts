import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CgroupSweepResult,
  describeCgroupSweep,
  isOwnerAlive,
  type SweptCgroupLayout,
  sweepOrphanedCgroups,
} from "./sweep-orphaned-cgroups.js";

const CONTROLLERS = ["memory", "pids", "cpu", "freezer"] as const;
const NOW = Date.parse("2026-12-04T12:00:00Z");
/** Pids above PID_MAX_LIMIT (2^22), so a slip to the real process.kill could never hit a process. */
const PID_A = 5_000_001;
const PID_B = 5_000_002;

let root: string;
let procRoot: string;
let killed: number[];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "outrig-fake-sweep-"));
  procRoot = join(root, "proc");
  killed = [];
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** /proc/<pid>/stat with `startTime` in field 22 and `state` in field 3. */
async function fakeProcess(pid: number, startTime: number, state = "S"): Promise<void> {
  await mkdir(join(procRoot, String(pid)), { recursive: true });
  const fields = [
    state,
    "1",
    "1",
    "1",
    "0",
    "-1",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "0",
    "20",
    "0",
    "1",
    "0",
  ];
  await writeFile(
    join(procRoot, String(pid), "stat"),
    `${pid} (node) ${fields.join(" ")} ${startTime} 1000 20\n`,
  );
}

/** The kernel's rules for rmdir on cgroupfs: EBUSY while it has processes, ENOTEMPTY with child groups. */
async function fakeCgroupRmdir(path: string): Promise<void> {
  const entries = await readdir(path, { withFileTypes: true });
  if (entries.some((entry) => entry.isDirectory()))
    throw Object.assign(new Error(`ENOTEMPTY: ${path}`), { code: "ENOTEMPTY" });
  const procs = await readFile(join(path, "cgroup.procs"), "utf8").catch(() => "");
  if (procs.trim() !== "") throw Object.assign(new Error(`EBUSY: ${path}`), { code: "EBUSY" });
  await rm(path, { recursive: true });
}

/** A SIGKILL that the fake kernel honours at once: the pid leaves every group. */
async function fakeKill(pid: number): Promise<void> {
  killed.push(pid);
  const visit = async (directory: string): Promise<void> => {
    for (const entry of await readdir(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name);
      if (entry.isDirectory()) await visit(path);
      else if (entry.name === "cgroup.procs") {
        const left = (await readFile(path, "utf8"))
          .split("\n")
          .filter((line) => line && Number(line) !== pid);
        await writeFile(path, left.map((line) => `${line}\n`).join(""));
      }
    }
  };
  await visit(join(root, "cgroup"));
}

function v1Layout(owner = "server-1-1"): SweptCgroupLayout {
  return {
    version: 1,
    owner,
    groupDirectories: Object.fromEntries(
      CONTROLLERS.map((controller) => [
        controller,
        join(root, "cgroup", controller, controller === "memory" ? "api/x" : "", "outrig"),
      ]),
    ),
  };
}

/** A sandbox group in every v1 hierarchy of `layout`, with `pids` and a freezer state. */
async function fakeSandbox(
  layout: SweptCgroupLayout,
  relativePath: string,
  pids: number[] = [],
  freezerState = "THAWED",
): Promise<void> {
  for (const [controller, group] of Object.entries(layout.groupDirectories)) {
    const path = join(group, relativePath);
    await mkdir(path, { recursive: true });
    await writeFile(join(path, "cgroup.procs"), pids.map((pid) => `${pid}\n`).join(""));
    if (controller === "freezer") await writeFile(join(path, "freezer.state"), `${freezerState}\n`);
    if (controller === "")
      await writeFile(join(path, "cgroup.freeze"), freezerState === "FROZEN" ? "1\n" : "0\n");
  }
}

async function exists(path: string): Promise<boolean> {
  return readdir(dirname(path)).then(
    (names) => names.includes(path.slice(dirname(path).length + 1)),
    () => false,
  );
}

function sweep(layout: SweptCgroupLayout, legacyMinAgeMs?: number): Promise<CgroupSweepResult> {
  let pending = Promise.resolve();
  return sweepOrphanedCgroups(layout, {
    procRoot,
    legacyMinAgeMs,
    now: () => NOW,
    removeTimeoutMs: 2_000,
    kill: (pid) => {
      pending = pending.then(() => fakeKill(pid));
    },
    removeDirectory: async (path) => {
      await pending;
      await fakeCgroupRmdir(path);
    },
  });
}

describe("isOwnerAlive", () => {
  it("needs the same pid with the same start time, not a zombie", async () => {
    await fakeProcess(10, 500);
    await fakeProcess(11, 500, "Z");
    expect(await isOwnerAlive("server-10-500", procRoot)).toBe(true);
    expect(await isOwnerAlive("server-10-499", procRoot)).toBe(false); // the pid was reused
    expect(await isOwnerAlive("server-11-500", procRoot)).toBe(false);
    expect(await isOwnerAlive("server-12-500", procRoot)).toBe(false);
    expect(await isOwnerAlive("server-10-0", procRoot)).toBe(true);
    expect(await isOwnerAlive(`server-${process.pid}-1`)).toBe(false);
  });
});

describe("sweepOrphanedCgroups on a fake cgroup v1 tree", () => {
  it("removes a gone server's empty groups, kills its frozen sandboxes and leaves its running ones", async () => {
    const layout = v1Layout();
    await fakeSandbox(layout, "server-20-7/bwrap-empty");
    await fakeSandbox(layout, "server-20-7/bwrap-frozen", [PID_A], "FROZEN");
    await fakeSandbox(layout, "server-20-7/bwrap-running", [PID_B], "THAWED");

    const result = await sweep(layout);

    expect(result).toEqual({ killedSandboxes: 1, removedDirectories: 8, runningOrphans: 1, failures: [] });
    expect(killed).toEqual([PID_A]);
    for (const group of Object.values(layout.groupDirectories)) {
      expect(await exists(join(group, "server-20-7", "bwrap-empty"))).toBe(false);
      expect(await exists(join(group, "server-20-7", "bwrap-frozen"))).toBe(false);
      expect(await exists(join(group, "server-20-7", "bwrap-running"))).toBe(true);
    }
    expect(describeCgroupSweep(result)).toBe(
      "outrig sandboxes: removed 1 orphaned sandboxes and 8 empty cgroups; left 1 running orphaned sandboxes to finish",
    );

    // Once the running orphan has exited by itself, the next sweep removes the rest, owner included.
    await fakeKill(PID_B);
    expect(await sweep(layout)).toEqual({
      killedSandboxes: 0,
      removedDirectories: 8,
      runningOrphans: 0,
      failures: [],
    });
    for (const group of Object.values(layout.groupDirectories)) expect(await readdir(group)).toEqual([]);
  });

  it("never touches a live server's groups, even an empty one its process has not joined yet", async () => {
    const layout = v1Layout("server-1-1");
    await fakeProcess(30, 900);
    await fakeSandbox(layout, "server-30-900/bwrap-just-created");
    await fakeSandbox(layout, "server-30-900/bwrap-standby", [PID_A], "FROZEN");
    // This process's own directory, even when /proc does not show it.
    await fakeSandbox(layout, "server-1-1/bwrap-mine");
    await fakeSandbox(layout, "server-1-1/bwrap-mine-frozen", [PID_B], "FROZEN");

    const result = await sweep(layout);

    expect(result).toEqual({ killedSandboxes: 0, removedDirectories: 0, runningOrphans: 0, failures: [] });
    expect(describeCgroupSweep(result)).toBeUndefined();
    expect(killed).toEqual([]);
    for (const group of Object.values(layout.groupDirectories)) {
      expect((await readdir(join(group, "server-30-900"))).sort()).toEqual([
        "bwrap-just-created",
        "bwrap-standby",
      ]);
      expect((await readdir(join(group, "server-1-1"))).sort()).toEqual(["bwrap-mine", "bwrap-mine-frozen"]);
    }
  });

  it("treats a server whose pid was reused by a newer process as gone", async () => {
    const layout = v1Layout();
    await fakeProcess(40, 2000); // pid 40 now belongs to a process started later
    await fakeSandbox(layout, "server-40-100/bwrap-left", [PID_A], "FROZEN");

    expect(await sweep(layout)).toMatchObject({ killedSandboxes: 1, removedDirectories: 8 });
    expect(killed).toEqual([PID_A]);
    for (const group of Object.values(layout.groupDirectories)) expect(await readdir(group)).toEqual([]);
  });

  it("removes legacy groups without an owner only when empty and older than the threshold", async () => {
    const layout = v1Layout();
    await fakeSandbox(layout, "bwrap-old-empty");
    await fakeSandbox(layout, "bwrap-young-empty");
    await fakeSandbox(layout, "bwrap-old-busy", [PID_A], "FROZEN");
    const old = new Date(NOW - 2 * 60 * 60_000);
    for (const group of Object.values(layout.groupDirectories)) {
      await utimes(join(group, "bwrap-old-empty"), old, old);
      await utimes(join(group, "bwrap-old-busy"), old, old);
      await utimes(join(group, "bwrap-young-empty"), new Date(NOW - 60_000), new Date(NOW - 60_000));
    }

    expect(await sweep(layout, 60 * 60_000)).toEqual({
      killedSandboxes: 0,
      removedDirectories: 4,
      runningOrphans: 0,
      failures: [],
    });
    expect(killed).toEqual([]);
    for (const group of Object.values(layout.groupDirectories))
      expect((await readdir(group)).sort()).toEqual(["bwrap-old-busy", "bwrap-young-empty"]);
  });
});

describe("sweepOrphanedCgroups on a fake cgroup v2 tree", () => {
  it("kills a gone server's frozen sandbox through cgroup.kill, thaws it and removes it", async () => {
    const layout: SweptCgroupLayout = {
      version: 2,
      owner: "server-1-1",
      groupDirectories: { "": join(root, "cgroup", "server", "outrig") },
    };
    await fakeSandbox(layout, "server-50-5/bwrap-frozen", [PID_A, PID_B], "FROZEN");
    const path = join(root, "cgroup", "server", "outrig", "server-50-5", "bwrap-frozen");
    const written: Record<string, string> = {};
    const result = await sweepOrphanedCgroups(layout, {
      procRoot,
      kill: (pid) => killed.push(pid),
      removeDirectory: async (directory) => {
        if (directory === path) {
          written.kill = await readFile(join(path, "cgroup.kill"), "utf8");
          written.freeze = await readFile(join(path, "cgroup.freeze"), "utf8");
        }
        await rm(directory, { recursive: true });
      },
    });

    expect(result).toEqual({ killedSandboxes: 1, removedDirectories: 2, runningOrphans: 0, failures: [] });
    expect(killed).toEqual([PID_A, PID_B]);
    expect(written).toEqual({ kill: "1", freeze: "0" });
    expect(await readdir(layout.groupDirectories[""] ?? "")).toEqual([]);
  });

  it("reports a group that stays busy as a failure instead of throwing", async () => {
    const layout: SweptCgroupLayout = {
      version: 2,
      owner: "server-1-1",
      groupDirectories: { "": join(root, "cgroup", "outrig") },
    };
    await fakeSandbox(layout, "server-60-6/bwrap-stuck", [PID_A], "FROZEN");
    const result = await sweepOrphanedCgroups(layout, {
      procRoot,
      removeTimeoutMs: 50,
      kill: (pid) => killed.push(pid),
      removeDirectory: fakeCgroupRmdir, // the pid never leaves: the kill is not honoured
    });
    expect(result.killedSandboxes).toBe(0);
    expect(result.failures).toEqual([expect.stringContaining("server-60-6/bwrap-stuck: EBUSY")]);
    expect(describeCgroupSweep(result)).toContain("1 failed (server-60-6/bwrap-stuck: EBUSY");
  });
});

describe("sweepOrphanedCgroups when a group fills up meanwhile", () => {
  it("leaves a group the kernel refuses to remove (EBUSY) for the next sweep, without a failure", async () => {
    const layout = v1Layout();
    await fakeSandbox(layout, "server-70-7/bwrap-joined");
    const busy = join(layout.groupDirectories.freezer ?? "", "server-70-7", "bwrap-joined");
    const result = await sweepOrphanedCgroups(layout, {
      procRoot,
      removeDirectory: async (path) => {
        if (path === busy) throw Object.assign(new Error(`EBUSY: ${path}`), { code: "EBUSY" });
        await fakeCgroupRmdir(path);
      },
    });
    // The three other sandbox groups and their owner directories; the freezer ones stay.
    expect(result).toEqual({ killedSandboxes: 0, removedDirectories: 6, runningOrphans: 0, failures: [] });
    expect(await readdir(dirname(busy))).toEqual(["bwrap-joined"]);
  });
});
