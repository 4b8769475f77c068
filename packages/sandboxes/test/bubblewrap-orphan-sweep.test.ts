/**
 * The orphan sweep against the real kernel: a server process is SIGKILLed while its sandbox is
 * suspended; the sweep of another server kills that frozen sandbox and removes its cgroups, and leaves
 * the other server's own suspended sandbox alone. Needs root (cgroups), as in CI.
 */
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BubblewrapSandboxProvider,
  createBubblewrapSandboxProvider,
  detectCgroups,
  isCgroupDriver,
} from "../src/index.js";
import {
  isRunning,
  killServer,
  startSuspendedSandboxServer,
  VITE_NODE,
} from "./fixtures/start-suspended-sandbox-server.js";

const isRoot = process.getuid?.() === 0;
const canUseCgroups = isRoot && isCgroupDriver(detectCgroups());
const CONTROLLERS = ["memory", "pids", "cpu", "freezer"];

/** controller → the cgroup directory holding `pid` (v1 hierarchies under /sys/fs/cgroup). */
async function cgroupDirectoriesOf(pid: number): Promise<Record<string, string>> {
  const directories: Record<string, string> = {};
  for (const line of (await readFile(`/proc/${pid}/cgroup`, "utf8")).split("\n")) {
    const [, controllers = "", path = ""] = line.split(":");
    for (const controller of controllers.split(","))
      if (CONTROLLERS.includes(controller))
        directories[controller] = join("/sys/fs/cgroup", controller, path);
  }
  return directories;
}

async function readPids(directory: string): Promise<number[]> {
  return (await readFile(join(directory, "cgroup.procs"), "utf8")).split("\n").filter(Boolean).map(Number);
}

describe.skipIf(!canUseCgroups)("orphaned sandbox sweep (bubblewrap, cgroup v1)", () => {
  let root: string;
  let provider: BubblewrapSandboxProvider;
  const logged: string[] = [];
  let child: ChildProcess | undefined;
  // A group of its own, so that the first sweep of another test file's server (in the same parent
  // cgroup) cannot sweep this test's orphan first and leave this test's sweep nothing to do.
  const groupName = `outrig-sweep-test-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "outrig-orphan-sweep-"));
    provider = createBubblewrapSandboxProvider({
      cgroupGroupName: groupName,
      log: (line) => logged.push(line),
    });
  });

  afterAll(async () => {
    if (child) await killServer(child);
    await provider?.close();
    // A failed run must not leave the frozen orphan behind: sweep the test's group once more.
    await provider?.sweepOrphans();
    if (root) await rm(root, { recursive: true, force: true });
    // This process's own (now empty) owner directory, then the test's group.
    const driver = detectCgroups({ groupName });
    if (isCgroupDriver(driver))
      for (const group of Object.values(driver.groupDirectories)) {
        for (const name of await readdir(group, { withFileTypes: true }).catch(() => []))
          if (name.isDirectory()) await rmdir(join(group, name.name)).catch(() => undefined);
        await rmdir(group).catch(() => undefined);
      }
  });

  it("kills and removes the frozen sandbox of a SIGKILLed server and leaves a live server's suspended sandbox", async () => {
    expect(existsSync(VITE_NODE)).toBe(true);
    // This process's own sandbox, suspended like the orphan, created before the sweep.
    const live = await provider.create({ sessionId: "live", orgId: "o1", workspaceDir: join(root, "live") });
    await live.suspend();
    const liveDirectories = await cgroupDirectoriesOf(live.hostPid ?? -1);

    const server = startSuspendedSandboxServer("bubblewrap", join(root, "orphan"), groupName);
    child = server.child;
    const orphanPid = (await server.sandbox).hostPid ?? -1;
    const orphanDirectories = await cgroupDirectoriesOf(orphanPid);
    expect(Object.keys(orphanDirectories).sort()).toEqual([...CONTROLLERS].sort());
    // The orphan's groups sit in its server's owner directory, which names the server's pid.
    const ownerDirectory = dirname(orphanDirectories.freezer ?? "");
    expect(ownerDirectory).toMatch(new RegExp(`/${groupName}/server-${child.pid}-\\d+$`));
    const orphanPids = await readPids(orphanDirectories.freezer ?? "");
    // bwrap, its pid 1, the agent and the background sleep (at least).
    expect(orphanPids.length).toBeGreaterThanOrEqual(3);
    expect((await readFile(join(orphanDirectories.freezer ?? "", "freezer.state"), "utf8")).trim()).toBe(
      "FROZEN",
    );

    await killServer(child);
    // Frozen, the orphan cannot notice that its server is gone: it stays until the sweep.
    for (const pid of orphanPids) expect(await isRunning(pid)).toBe(true);

    const result = await provider.sweepOrphans();

    // Exactly what the dead server left: its frozen sandbox's four groups and its owner directories.
    expect(result).toEqual({ killedSandboxes: 1, removedDirectories: 8, runningOrphans: 0, failures: [] });
    for (const pid of orphanPids) await expect.poll(() => isRunning(pid), { timeout: 30_000 }).toBe(false);
    for (const directory of Object.values(orphanDirectories)) {
      expect(existsSync(directory)).toBe(false);
      expect(existsSync(dirname(directory))).toBe(false); // the owner directory too
    }
    expect(logged).toEqual(["outrig sandboxes: removed 1 orphaned sandboxes and 8 empty cgroups"]);

    // The live server's suspended sandbox is untouched: still frozen, and it answers after resume.
    for (const directory of Object.values(liveDirectories)) expect(existsSync(directory)).toBe(true);
    expect((await readFile(join(liveDirectories.freezer ?? "", "freezer.state"), "utf8")).trim()).toBe(
      "FROZEN",
    );
    expect((await live.resume()).wasSuspended).toBe(true);
    const answer = await live.sandbox.exec(
      { command: "echo alive", timeoutMs: 30_000 },
      new AbortController().signal,
    );
    expect(answer.stdout).toBe("alive\n");
    await live.destroy();
    for (const directory of Object.values(liveDirectories)) expect(existsSync(directory)).toBe(false);
  });
});
