import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BubblewrapSandboxProvider,
  createBubblewrapSandboxProvider,
  createWarmPool,
} from "../src/index.js";

describe("warm pool", () => {
  let root: string;
  let provider: BubblewrapSandboxProvider;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "outrig-pool-"));
    provider = createBubblewrapSandboxProvider();
  });

  afterAll(async () => {
    await provider?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("hands out ready sandboxes bound to the session's workspace and refills", async () => {
    const pool = createWarmPool(provider, {
      size: 2,
      directory: join(root, "pool"),
      template: { env: { OUTRIG_POOLED: "yes" } },
    });
    try {
      await pool.whenFull();
      expect(pool.readyCount).toBe(2);

      // A session with existing files (e.g. just restored from a snapshot).
      const existing = join(root, "sessions", "s1");
      await mkdir(join(existing, "src"), { recursive: true });
      await writeFile(join(existing, "src", "main.py"), "print('hi')\n");
      const first = await pool.acquire({ sessionId: "s1", orgId: "o1", workspaceDir: existing });
      expect(first.workspaceDir).toBe(existing);
      const listing = await first.sandbox.exec(
        { command: 'cat src/main.py; printf %s "$OUTRIG_POOLED"; touch made-inside', timeoutMs: 10_000 },
        new AbortController().signal,
      );
      expect(listing.stdout).toBe("print('hi')\nyes");
      expect((await readdir(existing)).sort()).toEqual(["made-inside", "src"]);

      // A brand-new session directory.
      const second = await pool.acquire({
        sessionId: "s2",
        orgId: "o1",
        workspaceDir: join(root, "sessions", "s2"),
      });
      await second.sandbox.writeFile("/workspace/x.txt", new TextEncoder().encode("x"));
      expect(await readdir(join(root, "sessions", "s2"))).toEqual(["x.txt"]);

      await pool.whenFull();
      expect(pool.readyCount).toBe(2);
      // The two handed-out sandboxes and the two refilled ones are distinct.
      await first.destroy();
      await second.destroy();
    } finally {
      await pool.close();
    }
    expect(pool.readyCount).toBe(0);
  });

  it("starts a sandbox on demand when the pool is empty", async () => {
    const pool = createWarmPool(provider, { size: 0, directory: join(root, "empty-pool") });
    const handle = await pool.acquire({
      sessionId: "s3",
      orgId: "o1",
      workspaceDir: join(root, "sessions", "s3"),
    });
    expect(handle.isAlive()).toBe(true);
    await handle.destroy();
    await pool.close();
  });
});
