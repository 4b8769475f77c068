/**
 * The host (root) never acts through a file the sandbox can write: code in a real sandbox plants
 * symlinks where the host keeps state or snapshots from, and host files outside stay untouched and
 * unread. On bubblewrap always, and on runc where it can run (root and runc installed).
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecResult, SandboxHandle, SnapshotRef } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveExecutable } from "../src/bubblewrap/check-bubblewrap.js";
import {
  createBubblewrapSandboxProvider,
  createLocalDirectoryBlobStore,
  createRuncSandboxProvider,
} from "../src/index.js";

interface TrustProvider {
  create(options: {
    sessionId: string;
    orgId: string;
    workspaceDir: string;
    stateDir?: string;
  }): Promise<SandboxHandle>;
  restoreWorkspace(ref: SnapshotRef, directory: string): Promise<void>;
  close(): Promise<void>;
}

const hasRunc =
  process.getuid?.() === 0 && resolveExecutable("runc", "/usr/sbin:/usr/bin:/sbin:/bin") !== undefined;
if (!hasRunc) console.log("runc host-trust tests skipped: they need root and runc");

const providers: { name: string; isAvailable: boolean; make: (root: string) => TrustProvider }[] = [
  {
    name: "bubblewrap",
    isAvailable: true,
    make: (root) =>
      createBubblewrapSandboxProvider({ blobStore: createLocalDirectoryBlobStore(join(root, "blobs")) }),
  },
  {
    name: "runc",
    isAvailable: hasRunc,
    make: (root) =>
      createRuncSandboxProvider({
        stateDir: join(root, "runc"),
        blobStore: createLocalDirectoryBlobStore(join(root, "blobs")),
      }),
  },
];

const run = (handle: SandboxHandle, command: string): Promise<ExecResult> =>
  handle.sandbox.exec({ command, timeoutMs: 30_000 }, new AbortController().signal);

for (const { name, isAvailable, make } of providers) {
  describe.skipIf(!isAvailable)(`${name}: the host trusts nothing the sandbox can write`, () => {
    const SECRET = `host-secret-${randomBytes(12).toString("hex")}`;
    let root: string;
    let provider: TrustProvider;
    /** A host directory outside every sandbox, with a file the host must neither write nor copy. */
    let victimDir: string;
    let canary: string;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), `outrig-host-trust-${name}-`));
      victimDir = join(root, "victim");
      canary = join(victimDir, "f");
      await mkdir(victimDir);
      await writeFile(canary, SECRET);
      provider = make(root);
    });

    afterAll(async () => {
      await provider?.close();
      if (root) await rm(root, { recursive: true, force: true });
    });

    it.skipIf(name !== "bubblewrap")(
      "writes the pid file of a replacement sandbox without following a link planted there",
      async () => {
        const stateDir = join(root, "state-pid");
        const options = { sessionId: "pid", orgId: "org", workspaceDir: join(root, "ws-pid"), stateDir };
        const first = await provider.create(options);
        const planted = await run(
          first,
          `for name in sandbox.pid workspace-snapshot.json journal.ndjson.tmp; do ln -sf ${canary} /run/outrig/state/$name; done; ls -la /run/outrig/state`,
        );
        expect(planted.exitCode).toBe(0);
        await first.destroy();
        const second = await provider.create(options);
        expect((await run(second, "echo alive")).stdout).toBe("alive\n");
        await second.destroy();
        expect(await readFile(canary, "utf8")).toBe(SECRET);
        expect(await readdir(victimDir)).toEqual(["f"]);
      },
    );

    it.skipIf(name !== "bubblewrap")(
      "does not read a pid file linked to /dev/zero into memory",
      async () => {
        const stateDir = join(root, "state-zero");
        const options = { sessionId: "zero", orgId: "org", workspaceDir: join(root, "ws-zero"), stateDir };
        const first = await provider.create(options);
        expect((await run(first, "ln -sf /dev/zero /run/outrig/state/sandbox.pid")).exitCode).toBe(0);
        await first.destroy();
        const before = process.memoryUsage().rss;
        let peak = before;
        const sampler = setInterval(() => {
          peak = Math.max(peak, process.memoryUsage().rss);
        }, 5);
        try {
          const second = await provider.create(options);
          await second.destroy();
        } finally {
          clearInterval(sampler);
        }
        peak = Math.max(peak, process.memoryUsage().rss);
        expect(peak - before).toBeLessThan(64 * 1024 * 1024);
      },
      60_000,
    );

    it("snapshots and restores without reading or writing through links the sandbox swaps in", async () => {
      victimDir = join(root, "victim-race");
      canary = join(victimDir, "f");
      await mkdir(victimDir);
      await writeFile(canary, SECRET);
      const workspaceDir = join(root, "ws-race");
      const handle = await provider.create({ sessionId: "race", orgId: "org", workspaceDir });
      expect(
        (await run(handle, "mkdir -p d && echo from-sandbox > d/f && echo base > base.txt")).exitCode,
      ).toBe(0);
      const refs: SnapshotRef[] = [await (handle.snapshot as () => Promise<SnapshotRef>)()];
      // Flips d between a directory (with a fresh d/f) and a link to the host's victim directory,
      // so each snapshot's scan sees a directory and its copy or tar may meet the link.
      const flipper = [
        "import os, time",
        "deadline = time.time() + 120",
        "count = 0",
        "while time.time() < deadline and not os.path.exists('stop'):",
        "    count += 1",
        "    with open('d/f', 'w') as out: out.write('from-sandbox %d' % count)",
        "    open('d/g', 'w').close(); os.unlink('d/g')",
        "    os.rename('d', 'd2')",
        `    os.symlink(${JSON.stringify(victimDir)}, 'd')`,
        "    time.sleep(0.0005)",
        "    os.unlink('d')",
        "    os.rename('d2', 'd')",
      ].join("\n");
      await writeFile(join(workspaceDir, "flip.py"), flipper);
      expect((await run(handle, "nohup python3 flip.py > /dev/null 2>&1 & echo started")).stdout).toBe(
        "started\n",
      );
      for (let attempt = 0; attempt < 30; attempt += 1) {
        refs.push(await (handle.snapshot as () => Promise<SnapshotRef>)());
      }
      await run(handle, "touch stop; sleep 0.3");
      await handle.destroy();
      expect(await readFile(canary, "utf8")).toBe(SECRET);
      expect(await readdir(victimDir)).toEqual(["f"]);
      // Every snapshot restores to files of the sandbox only: nothing read from the host, nothing written outside.
      for (const [index, ref] of refs.entries()) {
        const restored = join(root, `restored-${index}`);
        await provider.restoreWorkspace(ref, restored).catch(() => undefined);
        const texts = await readAll(restored);
        expect(texts.join("\n")).not.toContain(SECRET);
      }
      expect(await readFile(canary, "utf8")).toBe(SECRET);
      expect(await readdir(victimDir)).toEqual(["f"]);
    }, 180_000);
  });
}

/** The contents of every regular file below `directory`, never following links. */
async function readAll(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => []);
  const texts: string[] = [];
  for (const entry of entries)
    if (entry.isFile())
      texts.push(await readFile(join(entry.parentPath, entry.name), "utf8").catch(() => ""));
  return texts;
}
