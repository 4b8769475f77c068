import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { acquireHomeLock, HOME_LOCK_FILE } from "./home-lock.js";

const homes: string[] = [];

afterEach(async () => {
  await Promise.all(homes.splice(0).map((home) => fs.rm(home, { recursive: true, force: true })));
});

async function newHome(): Promise<string> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-home-lock-"));
  homes.push(home);
  return home;
}

/** A pid that belonged to a process which has exited (and was reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid ?? 0;
}

function record(pid: number, processStart: string | null, host = os.hostname()): string {
  return JSON.stringify({ pid, processStart, host, startedAt: "2026-01-01T00:00:00.000Z" });
}

describe("acquireHomeLock", () => {
  it("holds the home until released, refusing a second holder with its pid and url", async () => {
    const home = await newHome();
    const lock = await acquireHomeLock(home);
    await lock.setUrl("http://127.0.0.1:1234");
    const error = await acquireHomeLock(home).catch((caught: Error & { code?: string }) => caught);
    expect(error).toMatchObject({ code: "home_in_use" });
    expect((error as Error).message).toContain(`pid ${process.pid}`);
    expect((error as Error).message).toContain("http://127.0.0.1:1234");
    await lock.release();
    await expect(fs.stat(path.join(home, HOME_LOCK_FILE))).rejects.toThrow();
    const again = await acquireHomeLock(home);
    await again.release();
  });

  it("takes over a file left by a process that is gone", async () => {
    const home = await newHome();
    await fs.writeFile(path.join(home, HOME_LOCK_FILE), record(await deadPid(), null));
    const lock = await acquireHomeLock(home);
    const held = JSON.parse(await fs.readFile(path.join(home, HOME_LOCK_FILE), "utf8")) as { pid: number };
    expect(held.pid).toBe(process.pid);
    await lock.release();
  });

  it("takes over a file whose pid now belongs to another process (a different start time)", async () => {
    const home = await newHome();
    const other = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      await fs.writeFile(path.join(home, HOME_LOCK_FILE), record(other.pid ?? 0, "1"));
      const lock = await acquireHomeLock(home);
      await lock.release();
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("refuses while another live process holds it", async () => {
    const home = await newHome();
    const other = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const stat = await fs.readFile(`/proc/${other.pid}/stat`, "utf8");
      const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
      await fs.writeFile(path.join(home, HOME_LOCK_FILE), record(other.pid ?? 0, start));
      await expect(acquireHomeLock(home)).rejects.toThrow(`pid ${other.pid}`);
    } finally {
      other.kill("SIGKILL");
    }
  });

  it("takes over an unreadable leftover once it is older than a start in progress", async () => {
    const home = await newHome();
    const file = path.join(home, HOME_LOCK_FILE);
    await fs.writeFile(file, "not json");
    const old = new Date(Date.now() - 60_000);
    await fs.utimes(file, old, old);
    const lock = await acquireHomeLock(home);
    await lock.release();
  });
});
