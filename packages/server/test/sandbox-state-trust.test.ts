/**
 * The server's own files of a session's sandbox (the snapshot marker, the pid file it reads, the
 * journal it rolls back) are out of the sandbox's reach, and the server never follows a link or
 * trusts a size there: a real sandbox plants links where the server writes, and a host file outside
 * stays as it was. On bubblewrap always, on runc where it can run.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecResult, SandboxHandle } from "@outrig/core";
import {
  createBubblewrapSandboxProvider,
  createLocalDirectoryBlobStore,
  createRuncSandboxProvider,
} from "@outrig/sandboxes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forgetJournalKey, readSandboxPid, SessionSnapshots } from "../src/session-snapshots.js";

interface Provider {
  create(options: {
    sessionId: string;
    orgId: string;
    workspaceDir: string;
    stateDir: string;
  }): Promise<SandboxHandle>;
  close(): Promise<void>;
}

const hasRunc =
  process.getuid?.() === 0 && ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"].some(existsSync);

const providers: { name: string; isAvailable: boolean; make: (root: string) => Provider }[] = [
  { name: "bubblewrap", isAvailable: true, make: () => createBubblewrapSandboxProvider() },
  {
    name: "runc",
    isAvailable: hasRunc,
    make: (root) => createRuncSandboxProvider({ stateDir: join(root, "runc") }),
  },
];

const run = (handle: SandboxHandle, command: string): Promise<ExecResult> =>
  handle.sandbox.exec({ command, timeoutMs: 30_000 }, new AbortController().signal);

for (const { name, isAvailable, make } of providers) {
  describe.skipIf(!isAvailable)(`${name}: the server's sandbox state files`, () => {
    const SECRET = `host-secret-${randomBytes(12).toString("hex")}`;
    let root: string;
    let provider: Provider;
    let canary: string;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), `outrig-state-trust-${name}-`));
      await mkdir(join(root, "victim"));
      canary = join(root, "victim", "f");
      await writeFile(canary, SECRET);
      provider = make(root);
    });

    afterAll(async () => {
      await provider?.close();
      if (root) await rm(root, { recursive: true, force: true });
    });

    it("writes the marker and rolls back the journal without following links, and reads the pid file bounded", async () => {
      const workspaceDir = join(root, "workspace");
      const stateDir = join(root, "state");
      const handle = await provider.create({ sessionId: "s", orgId: "o", workspaceDir, stateDir });
      const planted = await run(
        handle,
        [
          "cd /run/outrig/state",
          `ln -sf ${canary} workspace-snapshot.json`,
          `ln -sf ${canary} journal.ndjson.tmp`,
          'echo \'{"key":"exec:s:call-1","result":{}}\' > journal.ndjson',
          "ln -sf /dev/zero sandbox.pid",
          "echo changed > /workspace/file.txt",
        ].join(" && "),
      );
      expect(planted.stderr).toBe("");
      expect(planted.exitCode).toBe(0);

      const snapshots = new SessionSnapshots({
        store: createLocalDirectoryBlobStore(join(root, "blobs")),
        sessionId: "s",
        workspaceDir,
        stateDir,
      });
      const ref = await snapshots.snapshot();
      await snapshots.writeMarker(ref.key);
      expect(await snapshots.readMarker()).toBe(ref.key);

      await forgetJournalKey(stateDir, "s:call-1").catch(() => undefined);

      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 5);
      try {
        await readSandboxPid(stateDir);
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(peak - before).toBeLessThan(64 * 1024 * 1024);

      await handle.destroy();
      expect(await readFile(canary, "utf8")).toBe(SECRET);
      expect(await readdir(join(root, "victim"))).toEqual(["f"]);
    }, 120_000);

    it("forgets a rolled-back call without reading the journal: the next sandbox runs it again", async () => {
      const options = {
        sessionId: "forget",
        orgId: "o",
        workspaceDir: join(root, "forget-workspace"),
        stateDir: join(root, "forget-state"),
      };
      const signal = new AbortController().signal;
      const request = { command: "echo ran >> /workspace/log; wc -l < /workspace/log", timeoutMs: 10_000 };
      const first = await provider.create(options);
      expect(await first.sandbox.exec({ ...request, idempotencyKey: "forget:call-1" }, signal)).toMatchObject(
        {
          stdout: "1\n",
          isReplayed: false,
        },
      );
      expect(await first.sandbox.exec({ ...request, idempotencyKey: "forget:call-2" }, signal)).toMatchObject(
        {
          stdout: "2\n",
          isReplayed: false,
        },
      );
      await first.destroy();
      await forgetJournalKey(options.stateDir, "forget:call-2");
      const second = await provider.create(options);
      expect(
        await second.sandbox.exec({ ...request, idempotencyKey: "forget:call-1" }, signal),
      ).toMatchObject({
        stdout: "1\n",
        isReplayed: true,
      });
      expect(
        await second.sandbox.exec({ ...request, idempotencyKey: "forget:call-2" }, signal),
      ).toMatchObject({
        stdout: "3\n",
        isReplayed: false,
      });
      await second.destroy();
    }, 120_000);
  });
}
