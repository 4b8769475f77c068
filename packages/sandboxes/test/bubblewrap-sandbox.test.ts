import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxError } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BUBBLEWRAP_MISSING_MESSAGE,
  type BubblewrapSandboxProvider,
  checkBubblewrap,
  createBubblewrapSandboxProvider,
} from "../src/index.js";

/** Host pids whose command line (arguments joined by spaces) starts with `prefix`. */
async function hostProcessesWith(prefix: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const commandLine = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (commandLine.replaceAll("\0", " ").startsWith(prefix)) found.push(Number(name));
  }
  return found;
}

describe("BubblewrapSandboxProvider", () => {
  let root: string;
  let provider: BubblewrapSandboxProvider;
  let count = 0;
  const workspace = () => {
    count += 1;
    return join(root, `workspace-${count}`);
  };
  const create = () => provider.create({ sessionId: `s${count}`, orgId: "org", workspaceDir: workspace() });
  const never = new AbortController().signal;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "outrig-bubblewrap-"));
    provider = createBubblewrapSandboxProvider();
  });
  afterAll(async () => {
    await provider?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("reports the installed bubblewrap", async () => {
    const info = await checkBubblewrap();
    expect(info.path).toMatch(/\/bwrap$/);
    expect(info.version).toMatch(/^\d+\.\d+/);
  });

  it("says exactly what to install when bwrap is missing", async () => {
    await expect(checkBubblewrap("/nonexistent/bwrap")).rejects.toThrow(BUBBLEWRAP_MISSING_MESSAGE);
    const missing = createBubblewrapSandboxProvider({ bwrapPath: "/nonexistent/bwrap" });
    const error = await missing
      .create({ sessionId: "s", orgId: "o", workspaceDir: workspace() })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SandboxError);
    expect(error).toMatchObject({ code: "sandbox_unavailable", message: BUBBLEWRAP_MISSING_MESSAGE });
    expect(BUBBLEWRAP_MISSING_MESSAGE).toBe(
      'bubblewrap is not installed: run "apt-get install -y bubblewrap"',
    );
  });

  it("says why when the sandbox cannot start (a missing node binary)", async () => {
    const broken = createBubblewrapSandboxProvider({ nodePath: "/nonexistent/node" });
    const error = await broken
      .create({ sessionId: "s", orgId: "o", workspaceDir: workspace() })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "sandbox_unavailable" });
    // The agent's execute-only copy of node is made before bwrap starts, so that step says it.
    expect((error as Error).message).toMatch(/^sandbox failed to start: .*nonexistent\/node/);
  });

  it("rejects instead of hanging when bwrap cannot be executed at all", async () => {
    // A directory passes the X_OK check but spawn() fails with EACCES: "error", never "exit".
    const fakeBwrap = join(root, "a-directory");
    await mkdir(fakeBwrap);
    const broken = createBubblewrapSandboxProvider({ bwrapPath: fakeBwrap });
    await expect(
      broken.create({ sessionId: "s", orgId: "o", workspaceDir: workspace() }),
    ).rejects.toMatchObject({ code: "sandbox_unavailable" });
  });

  it("fails pending calls with sandbox_unavailable when the agent is killed", async () => {
    const handle = await create();
    const pending = handle.sandbox.exec({ command: "sleep 60", timeoutMs: 60_000 }, never).catch((e) => e);
    // The exec's parent is the agent: kill it from inside.
    const killer = handle.sandbox
      .exec({ command: "kill -KILL $PPID", timeoutMs: 10_000 }, never)
      .catch((e) => e);
    for (const error of [await pending, await killer]) {
      expect(error).toBeInstanceOf(SandboxError);
      expect(error).toMatchObject({ code: "sandbox_unavailable" });
    }
    expect(handle.isAlive()).toBe(false);
    await expect(handle.sandbox.stat("/workspace")).rejects.toMatchObject({ code: "sandbox_unavailable" });
    await handle.destroy();
  });

  it("kills every process of the sandbox on destroy", async () => {
    const handle = await create();
    const marker = `${4000 + Math.floor(Math.random() * 1000)}.25`;
    const running = handle.sandbox.exec(
      { command: `sleep ${marker} & sleep ${marker}`, timeoutMs: 60_000 },
      never,
    );
    const outcome = running.catch((error: unknown) => error);
    await handle.sandbox.exec({ command: "true", timeoutMs: 10_000 }, never);
    expect(await hostProcessesWith(`sleep ${marker}`)).toHaveLength(2);
    await handle.destroy();
    await handle.destroy();
    expect(await outcome).toBeInstanceOf(SandboxError);
    // The kernel tears the pid namespace down when its init dies, which happens just after bwrap
    // (whose exit destroy() awaits) is gone; nothing signals that moment to us, so poll briefly.
    const deadline = Date.now() + 5_000;
    while ((await hostProcessesWith(`sleep ${marker}`)).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await hostProcessesWith(`sleep ${marker}`)).toEqual([]);
  });

  it("destroys every sandbox on close and refuses new ones", async () => {
    const own = createBubblewrapSandboxProvider();
    const handles = [
      await own.create({ sessionId: "a", orgId: "o", workspaceDir: workspace() }),
      await own.create({ sessionId: "b", orgId: "o", workspaceDir: workspace() }),
    ];
    await own.close();
    for (const handle of handles) expect(handle.isAlive()).toBe(false);
    await expect(own.create({ sessionId: "c", orgId: "o", workspaceDir: workspace() })).rejects.toMatchObject(
      {
        code: "sandbox_unavailable",
      },
    );
  });

  it("shares the workspace with the host: files made inside are the backend's to read and write", async () => {
    const workspaceDir = workspace();
    const handle = await provider.create({ sessionId: "w", orgId: "o", workspaceDir });
    const result = await handle.sandbox.exec(
      {
        command: "mkdir -p made/inside && echo from-sandbox > made/inside/file.txt && id -u",
        timeoutMs: 10_000,
      },
      never,
    );
    expect(result.stdout).toBe("1000\n");
    const hostFile = join(workspaceDir, "made", "inside", "file.txt");
    expect(await readFile(hostFile, "utf8")).toBe("from-sandbox\n");
    expect((await stat(hostFile)).uid).toBe(process.getuid?.());
    await writeFile(join(workspaceDir, "made", "inside", "from-host.txt"), "from-host");
    await writeFile(hostFile, "changed on the host");
    expect(
      new TextDecoder().decode(await handle.sandbox.readFile("/workspace/made/inside/from-host.txt")),
    ).toBe("from-host");
    expect(
      (await handle.sandbox.exec({ command: "cat made/inside/file.txt", timeoutMs: 10_000 }, never)).stdout,
    ).toBe("changed on the host");
    await handle.destroy();
  });

  it("keeps the agent small", async () => {
    const handle = await create();
    const info = await handle.getAgentInfo();
    expect(info.pid).toBeGreaterThan(1);
    expect(info.rssBytes).toBeGreaterThan(0);
    // Private memory; the node binary's pages are shared with every other sandbox.
    expect(info.rssAnonBytes).toBeLessThan(64 * 1024 * 1024);
    await handle.destroy();
  });

  it("rejects an exec whose cwd does not exist with a FileError", async () => {
    const handle = await create();
    await expect(
      handle.sandbox.exec({ command: "pwd", cwd: "/workspace/missing", timeoutMs: 10_000 }, never),
    ).rejects.toMatchObject({ code: "not_found", path: "/workspace/missing" });
    await handle.destroy();
  });
});
