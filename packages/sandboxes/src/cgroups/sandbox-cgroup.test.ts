import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  cgroupOwnerName,
  detectCgroups,
  isCgroupDriver,
  parseProcCgroup,
  parseProcessStartTime,
} from "./sandbox-cgroup.js";

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "outrig-fake-cgroupfs-"));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("parseProcCgroup", () => {
  it("maps v1 controllers and the v2 entry to paths", () => {
    expect(parseProcCgroup("4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/user.slice\n")).toEqual({
      memory: "/process_api/abc",
      cpu: "/",
      cpuacct: "/",
      "": "/user.slice",
    });
  });
});

describe("cgroupOwnerName", () => {
  it("names the server by pid and its start time, field 22 of /proc/<pid>/stat", async () => {
    // A command with spaces and a ")" must not shift the fields.
    const stat = "4242 (node (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 11 0 987654 1000 200";
    expect(parseProcessStartTime(stat)).toBe("987654");
    await mkdir(join(root, "4242"));
    await writeFile(join(root, "4242", "stat"), stat);
    expect(cgroupOwnerName(4242, root)).toBe("server-4242-987654");
    expect(cgroupOwnerName(4243, root)).toBe("server-4243-0");
    expect(cgroupOwnerName()).toMatch(new RegExp(`^server-${process.pid}-[1-9][0-9]*$`));
  });
});

describe("cgroup v2 on a fake cgroupfs", () => {
  it("writes limits, freezes through cgroup.freeze and reads OOM kills from memory.events", async () => {
    await writeFile(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids\n");
    await mkdir(join(root, "server"), { recursive: true });
    const driver = detectCgroups({ root, ownPaths: { "": "/server" }, owner: "server-7-99" });
    if (!isCgroupDriver(driver)) throw new Error(driver.reason);
    expect(driver.version).toBe(2);
    const cgroup = await driver.create("sandbox-1", { memoryBytes: 1 << 27, pids: 64, cpus: 1.5 });
    const path = join(root, "server", "outrig", "server-7-99", "sandbox-1");
    expect(cgroup.procsFiles).toEqual([join(path, "cgroup.procs")]);
    for (const parent of ["outrig", "outrig/server-7-99"])
      expect(await readFile(join(root, "server", parent, "cgroup.subtree_control"), "utf8")).toBe(
        "+memory +pids +cpu",
      );
    expect(await readFile(join(path, "memory.max"), "utf8")).toBe(String(1 << 27));
    expect(await readFile(join(path, "memory.swap.max"), "utf8")).toBe("0");
    expect(await readFile(join(path, "pids.max"), "utf8")).toBe("64");
    expect(await readFile(join(path, "cpu.max"), "utf8")).toBe("150000 100000");

    // The kernel sets "frozen 1" in cgroup.events; the fake tree has it already.
    await writeFile(join(path, "cgroup.events"), "populated 1\nfrozen 1\n");
    await cgroup.freeze();
    expect(await readFile(join(path, "cgroup.freeze"), "utf8")).toBe("1");
    await cgroup.thaw();
    expect(await readFile(join(path, "cgroup.freeze"), "utf8")).toBe("0");

    await writeFile(join(path, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n");
    await writeFile(join(path, "pids.events"), "max 5\n");
    await writeFile(join(path, "pids.current"), "17\n");
    await writeFile(join(path, "memory.current"), "123456\n");
    await writeFile(join(path, "cgroup.procs"), "10\n11\n");
    expect(await cgroup.readOomKillCount()).toBe(2);
    expect(await cgroup.readPidsMaxCount()).toBe(5);
    expect(await cgroup.readPidsCurrent()).toBe(17);
    expect(await cgroup.readMemoryBytes()).toBe(123456);
    expect(await cgroup.listPids()).toEqual([10, 11]);
  });

  it("refuses a unified hierarchy without the memory controller", async () => {
    await writeFile(join(root, "cgroup.controllers"), "hugetlb\n");
    const detected = detectCgroups({ root, ownPaths: {} });
    expect(isCgroupDriver(detected)).toBe(false);
    expect((detected as { reason: string }).reason).toContain("memory, pids, cpu");
  });
});

describe("cgroup v1 on a fake cgroupfs", () => {
  it("creates one group per controller below the server's own and writes v1 files", async () => {
    for (const controller of ["memory", "pids", "cpu", "freezer"]) {
      await mkdir(join(root, controller), { recursive: true });
      await writeFile(join(root, controller, "cgroup.procs"), "");
    }
    const driver = detectCgroups({
      root,
      ownPaths: { memory: "/api/x", pids: "/", cpu: "/", freezer: "/" },
      owner: "o",
    });
    if (!isCgroupDriver(driver)) throw new Error(driver.reason);
    expect(driver.version).toBe(1);
    const cgroup = await driver.create("s", { memoryBytes: 1000000, pids: 10, cpus: 0.5 });
    expect(cgroup.procsFiles).toEqual([
      join(root, "memory/api/x/outrig/o/s/cgroup.procs"),
      join(root, "pids/outrig/o/s/cgroup.procs"),
      join(root, "cpu/outrig/o/s/cgroup.procs"),
      join(root, "freezer/outrig/o/s/cgroup.procs"),
    ]);
    expect(await readFile(join(root, "memory/api/x/outrig/o/s/memory.limit_in_bytes"), "utf8")).toBe(
      "1000000",
    );
    expect(await readFile(join(root, "pids/outrig/o/s/pids.max"), "utf8")).toBe("10");
    expect(await readFile(join(root, "cpu/outrig/o/s/cpu.cfs_quota_us"), "utf8")).toBe("50000");
    await writeFile(join(root, "freezer/outrig/o/s/freezer.state"), "FROZEN\n");
    await cgroup.freeze();
    await cgroup.thaw();
    expect(await readFile(join(root, "freezer/outrig/o/s/freezer.state"), "utf8")).toBe("THAWED");
    await writeFile(
      join(root, "memory/api/x/outrig/o/s/memory.oom_control"),
      "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
    );
    expect(await cgroup.readOomKillCount()).toBe(4);
    await writeFile(join(root, "pids/outrig/o/s/pids.current"), "9\n");
    expect(await cgroup.readPidsCurrent()).toBe(9);
  });
});
