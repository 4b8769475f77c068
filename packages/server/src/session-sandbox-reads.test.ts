/**
 * A read (stat, readFile, list) through a SessionSandbox does not wait for the snapshot of the call
 * before it, while a call that may change the workspace still does: the snapshot always reads the
 * workspace as the mutating call left it, and a tool's closing stat is not held by tar and zstd.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createLocalDirectoryBlobStore } from "@outrig/sandboxes";
import { FakeSandboxProvider } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SessionSandbox } from "./session-sandbox.js";
import { SessionSnapshots } from "./session-snapshots.js";

/** Snapshots that start only when the test opens the gate. */
class GatedSnapshots extends SessionSnapshots {
  #open: () => void = () => undefined;
  readonly #gate = new Promise<void>((resolve) => {
    this.#open = resolve;
  });
  started = 0;

  open(): void {
    this.#open();
  }

  override async snapshot(
    options?: Parameters<SessionSnapshots["snapshot"]>[0],
  ): ReturnType<SessionSnapshots["snapshot"]> {
    this.started += 1;
    await this.#gate;
    return super.snapshot(options);
  }
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "outrig-session-sandbox-reads-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("SessionSandbox reads beside a snapshot", () => {
  it("answers stat, readFile and list while the last write's snapshot has not read the workspace, and holds the next write until it has", async () => {
    const workspaceDir = path.join(root, "workspace");
    const stateDir = path.join(root, "state");
    const snapshots = new GatedSnapshots({
      store: createLocalDirectoryBlobStore(path.join(root, "blobs")),
      sessionId: "ses_reads",
      workspaceDir,
      stateDir,
    });
    const emitted: string[] = [];
    const sandbox = new SessionSandbox({
      provider: new FakeSandboxProvider(),
      sessionId: "ses_reads",
      orgId: "org_1",
      workspaceDir,
      stateDir,
      policy: async () => ({ coldAfterMs: 600_000, destroyAfterMs: 600_000 }),
      snapshots,
      emit: async (event) => {
        emitted.push(event.type);
      },
    });
    try {
      const { proxy } = sandbox;
      await proxy.writeFile("/workspace/a.txt", new TextEncoder().encode("one\n"));
      expect(snapshots.started).toBe(1);

      // The snapshot of that write is held at its gate: reads still answer.
      expect((await proxy.stat("/workspace/a.txt"))?.size).toBe(4);
      expect(new TextDecoder().decode(await proxy.readFile("/workspace/a.txt"))).toBe("one\n");
      expect((await proxy.list("/workspace")).map((entry) => entry.path)).toContain("a.txt");

      // A second write waits for the first snapshot to read the workspace.
      let isWritten = false;
      const writing = proxy.writeFile("/workspace/b.txt", new TextEncoder().encode("two\n")).then(() => {
        isWritten = true;
      });
      await proxy.stat("/workspace/a.txt"); // a read issued after it overtakes it
      expect(isWritten).toBe(false);
      expect(snapshots.started).toBe(1);
      snapshots.open();
      await writing;
      expect(snapshots.started).toBe(2);
    } finally {
      snapshots.open();
      await sandbox.destroy();
    }
    expect(emitted.filter((type) => type === "sandbox.snapshot")).toHaveLength(2);
  });
});
