/**
 * The runc orphan sweep against real runc: a server process is SIGKILLed while its container is
 * paused; the sweep of another server using the same state directory deletes that container and its
 * sandbox directory, and leaves the other server's own paused container alone. Needs root and runc
 * (CRIU is not needed: nothing hibernates).
 */
import type { ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRuncSandboxProvider, type RuncSandboxProvider } from "../src/index.js";
import {
  isRunning,
  killServer,
  startSuspendedSandboxServer,
} from "./fixtures/start-suspended-sandbox-server.js";

const STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const runcPath = STANDARD_PATH.split(":")
  .map((directory) => join(directory, "runc"))
  .find((path) => existsSync(path));
const canRun = process.getuid?.() === 0 && runcPath !== undefined;

interface RuncState {
  readonly id: string;
  readonly pid: number;
  readonly status: string;
  readonly annotations?: Record<string, string>;
}

async function runc(root: string, ...args: string[]): Promise<string> {
  return (await promisify(execFile)(runcPath ?? "runc", ["--root", root, ...args])).stdout;
}

async function listContainers(root: string): Promise<RuncState[]> {
  return (JSON.parse(await runc(root, "list", "--format", "json")) as RuncState[] | null) ?? [];
}

/** Every pid in the cgroup (freezer hierarchy on v1, the unified one on v2) of `pid`. */
async function groupPids(pid: number): Promise<number[]> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, "utf8")).split("\n");
  const freezer = lines.find((line) => line.split(":")[1]?.split(",").includes("freezer"));
  const path = freezer
    ? join("/sys/fs/cgroup/freezer", freezer.split(":")[2] ?? "")
    : join("/sys/fs/cgroup", lines.find((line) => line.startsWith("0::"))?.slice(3) ?? "");
  return (await readFile(join(path, "cgroup.procs"), "utf8")).split("\n").filter(Boolean).map(Number);
}

describe.skipIf(!canRun)("orphaned container sweep (runc)", () => {
  let root: string;
  let provider: RuncSandboxProvider;
  const logged: string[] = [];
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "outrig-runc-sweep-"));
    provider = createRuncSandboxProvider({ stateDir: join(root, "state"), log: (line) => logged.push(line) });
  });

  afterAll(async () => {
    if (child) await killServer(child);
    await provider?.close();
    // A failed run must not leave the orphan behind (paused, its state directory removed below).
    if (root)
      for (const container of await listContainers(join(root, "state", "runc")).catch(() => []))
        await runc(join(root, "state", "runc"), "delete", "--force", container.id).catch(() => undefined);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("deletes the paused container of a SIGKILLed server and leaves a live server's paused container", async () => {
    const runcRoot = join(root, "state", "runc");
    const live = await provider.create({ sessionId: "live", orgId: "o1", workspaceDir: join(root, "live") });
    await live.suspend();

    const server = startSuspendedSandboxServer("runc", join(root, "orphan"), join(root, "state"));
    child = server.child;
    const orphanId = (await server.sandbox).containerId ?? "";
    const orphan = (await listContainers(runcRoot)).find((container) => container.id === orphanId);
    expect(orphan?.status).toBe("paused");
    expect(orphan?.annotations?.["org.outrig.owner"]).toMatch(new RegExp(`^server-${child.pid}-\\d+$`));
    const orphanPids = await groupPids(orphan?.pid ?? -1);
    // The init, the agent and the background sleep (at least).
    expect(orphanPids.length).toBeGreaterThanOrEqual(2);

    await killServer(child);
    // Paused, the container stays after its server is gone; its agent would outlive it anyway.
    for (const pid of orphanPids) expect(await isRunning(pid)).toBe(true);

    const result = await provider.sweepOrphans();

    expect(result).toEqual({ deletedContainers: 1, runningOrphans: 0, failures: [] });
    for (const pid of orphanPids) await expect.poll(() => isRunning(pid), { timeout: 30_000 }).toBe(false);
    expect((await listContainers(runcRoot)).map((container) => container.id)).toEqual([live.containerId]);
    expect(existsSync(join(root, "state", orphanId))).toBe(false);
    expect(logged).toEqual(["outrig sandboxes: deleted 1 orphaned runc containers"]);

    // The live server's paused container is untouched, and it answers after resume.
    expect((await listContainers(runcRoot))[0]?.status).toBe("paused");
    expect((await live.resume()).wasSuspended).toBe(true);
    const answer = await live.sandbox.exec(
      { command: "echo alive", timeoutMs: 30_000 },
      new AbortController().signal,
    );
    expect(answer.stdout).toBe("alive\n");
    await live.destroy();
  });
});
