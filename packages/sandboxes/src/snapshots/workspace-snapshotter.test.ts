import { execFileSync } from "node:child_process";
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BlobBody } from "@outrig/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalDirectoryBlobStore } from "./local-directory-blob-store.js";
import {
  restoreWorkspace,
  scanWorkspace,
  scanWorkspaceInProcess,
  WorkspaceSnapshotter,
} from "./workspace-snapshotter.js";

let root: string;
let workspace: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "outrig-snapshotter-"));
  workspace = join(root, "workspace");
  await mkdir(workspace);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A local store whose puts wait for `gate` (to hold a snapshot in its store phase) or fail once. */
class GatedStore extends LocalDirectoryBlobStore {
  gate: Promise<void> = Promise.resolve();
  failNextPut = false;
  readonly putKeys: string[] = [];

  override async put(key: string, body: BlobBody): Promise<void> {
    await this.gate;
    if (this.failNextPut) {
      this.failNextPut = false;
      throw new Error("store unavailable");
    }
    this.putKeys.push(key);
    return super.put(key, body);
  }
}

describe("scanWorkspaceInProcess", () => {
  it("gives exactly the fingerprints find gives, for every kind of entry", async () => {
    await mkdir(join(workspace, "src/deep/er"), { recursive: true });
    await writeFile(join(workspace, "src/deep/er/a.ts"), "export const a = 1;\n");
    await writeFile(join(workspace, "empty"), "");
    await writeFile(join(workspace, "naïve name with spaces.txt"), "x");
    await writeFile(join(workspace, "run.sh"), "#!/bin/sh\n");
    await chmod(join(workspace, "run.sh"), 0o4755);
    await mkdir(join(workspace, "shared"));
    await chmod(join(workspace, "shared"), 0o1777);
    await writeFile(join(workspace, "secret"), "s");
    await chmod(join(workspace, "secret"), 0o600);
    await symlink("src/deep", join(workspace, "link-to-dir"));
    await symlink("does/not/exist", join(workspace, "dangling"));
    execFileSync("mkfifo", [join(workspace, "pipe")]);

    const fromFind = await scanWorkspace(workspace);
    const fromNode = await scanWorkspaceInProcess(workspace);
    expect(Object.keys(fromFind).length).toBe(12);
    expect(fromNode).toEqual(fromFind);
  });

  it("returns nothing for a workspace that does not exist", async () => {
    expect(await scanWorkspaceInProcess(join(root, "missing"))).toEqual({});
  });
});

describe("WorkspaceSnapshotter", () => {
  it("lets the workspace change once it is captured, and the change lands in the next snapshot", async () => {
    const store = new GatedStore(join(root, "store"));
    const snapshotter = new WorkspaceSnapshotter({ store, workspaceDir: workspace, keyPrefix: "s/one" });
    await writeFile(join(workspace, "a.txt"), "first\n");
    await snapshotter.snapshot();

    // Hold the store phase: the capture must still finish, and the next snapshot capture meanwhile.
    let openGate = () => {};
    store.gate = new Promise((resolve) => {
      openGate = resolve;
    });
    await writeFile(join(workspace, "a.txt"), "second\n");
    let secondStored = false;
    let markCaptured = () => {};
    const captured = new Promise<void>((resolve) => {
      markCaptured = resolve;
    });
    const second = snapshotter.snapshot({ onCaptured: markCaptured });
    void second.then(() => {
      secondStored = true;
    });
    await captured;
    expect(secondStored).toBe(false);
    await writeFile(join(workspace, "a.txt"), "third\n");
    await writeFile(join(workspace, "b.txt"), "new\n");
    let thirdCaptured = false;
    const third = snapshotter.snapshot({
      onCaptured: () => {
        thirdCaptured = true;
      },
    });
    await expect.poll(() => thirdCaptured).toBe(true);
    expect(secondStored).toBe(false);
    openGate();

    const secondSnapshot = await second;
    const thirdSnapshot = await third;
    expect(secondSnapshot.isIncremental).toBe(true);
    expect(thirdSnapshot.isIncremental).toBe(true);
    // Stores ran in order: the second manifest is written before the third layer.
    const order = store.putKeys.map((key) => key.split("/").at(-2));
    expect(order.indexOf(secondSnapshot.key.split("/").at(-2))).toBeLessThan(
      order.indexOf(thirdSnapshot.key.split("/").at(-2)),
    );

    const restoredSecond = join(root, "restored-2");
    await restoreWorkspace(store, secondSnapshot, restoredSecond);
    expect(await readFile(join(restoredSecond, "a.txt"), "utf8")).toBe("second\n");
    await expect(readFile(join(restoredSecond, "b.txt"), "utf8")).rejects.toThrow();
    const restoredThird = join(root, "restored-3");
    await restoreWorkspace(store, thirdSnapshot, restoredThird);
    expect(await readFile(join(restoredThird, "a.txt"), "utf8")).toBe("third\n");
    expect(await readFile(join(restoredThird, "b.txt"), "utf8")).toBe("new\n");
  });

  it("fails every snapshot queued behind one whose store failed (its layer would be missing)", async () => {
    const store = new GatedStore(join(root, "store"));
    const snapshotter = new WorkspaceSnapshotter({ store, workspaceDir: workspace, keyPrefix: "s/two" });
    await writeFile(join(workspace, "a.txt"), "first\n");
    const first = await snapshotter.snapshot();

    store.failNextPut = true;
    await writeFile(join(workspace, "a.txt"), "second\n");
    const failed = snapshotter.snapshot();
    await writeFile(join(workspace, "c.txt"), "third\n");
    const behind = snapshotter.snapshot();
    await expect(failed).rejects.toThrow("store unavailable");
    await expect(behind).rejects.toThrow("store unavailable");

    // A snapshotter started again from the last stored snapshot picks every change up.
    const again = new WorkspaceSnapshotter({
      store,
      workspaceDir: workspace,
      keyPrefix: "s/two",
      parent: first,
    });
    const recovered = await again.snapshot();
    const restored = join(root, "restored");
    await restoreWorkspace(store, recovered, restored);
    expect(await readFile(join(restored, "a.txt"), "utf8")).toBe("second\n");
    expect(await readFile(join(restored, "c.txt"), "utf8")).toBe("third\n");
  });

  it("keeps modes, owners, symlinks and times of an increment (copied aside before it is packed)", async () => {
    const store = new GatedStore(join(root, "store"));
    const snapshotter = new WorkspaceSnapshotter({ store, workspaceDir: workspace, keyPrefix: "s/four" });
    await writeFile(join(workspace, "base.txt"), "base\n");
    await snapshotter.snapshot();

    await mkdir(join(workspace, "bin/deep"), { recursive: true });
    await writeFile(join(workspace, "bin/deep/tool"), "#!/bin/sh\necho tool\n");
    await chown(join(workspace, "bin/deep/tool"), 1234, 2345);
    await chmod(join(workspace, "bin/deep/tool"), 0o4750);
    await chmod(join(workspace, "bin"), 0o700);
    await symlink("deep/tool", join(workspace, "bin/link"));
    const mtime = new Date("2024-02-03T04:05:06.789Z");
    await utimes(join(workspace, "bin/deep/tool"), mtime, mtime);
    await utimes(join(workspace, "bin"), mtime, mtime);
    const increment = await snapshotter.snapshot();
    expect(increment.isIncremental).toBe(true);

    const restored = join(root, "restored");
    await restoreWorkspace(store, increment, restored);
    const tool = await lstat(join(restored, "bin/deep/tool"));
    expect(tool.mode & 0o7777).toBe(0o4750);
    expect([tool.uid, tool.gid]).toEqual([1234, 2345]);
    expect(tool.mtime.toISOString()).toBe(mtime.toISOString());
    expect(await readFile(join(restored, "bin/deep/tool"), "utf8")).toBe("#!/bin/sh\necho tool\n");
    expect(await readlink(join(restored, "bin/link"))).toBe("deep/tool");
    const bin = await lstat(join(restored, "bin"));
    expect(bin.mode & 0o7777).toBe(0o700);
    expect(bin.mtime.toISOString()).toBe(mtime.toISOString());
    expect(await readFile(join(restored, "base.txt"), "utf8")).toBe("base\n");
  });

  it("with changedPaths checks only those paths and their parents; the next full scan catches the rest", async () => {
    const store = new GatedStore(join(root, "store"));
    const snapshotter = new WorkspaceSnapshotter({ store, workspaceDir: workspace, keyPrefix: "s/hint" });
    await mkdir(join(workspace, "old/inner"), { recursive: true });
    await writeFile(join(workspace, "old/inner/a.txt"), "a\n");
    await writeFile(join(workspace, "keep.txt"), "keep\n");
    await snapshotter.snapshot();

    // The call wrote new/deep/file.txt (creating its parents); a background process meanwhile
    // changed keep.txt, which the hint does not name.
    await mkdir(join(workspace, "new/deep"), { recursive: true });
    await writeFile(join(workspace, "new/deep/file.txt"), "written\n");
    await writeFile(join(workspace, "keep.txt"), "changed in the background\n");
    const hinted = await snapshotter.snapshot({ changedPaths: ["new/deep/file.txt"] });
    const afterHint = join(root, "after-hint");
    await restoreWorkspace(store, hinted, afterHint);
    expect(await readFile(join(afterHint, "new/deep/file.txt"), "utf8")).toBe("written\n");
    expect(await readFile(join(afterHint, "keep.txt"), "utf8")).toBe("keep\n");

    // A removal of a directory drops everything below it.
    await rm(join(workspace, "old"), { recursive: true });
    const removed = await snapshotter.snapshot({ changedPaths: ["old"] });
    const afterRemove = join(root, "after-remove");
    await restoreWorkspace(store, removed, afterRemove);
    await expect(lstat(join(afterRemove, "old"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readFile(join(afterRemove, "new/deep/file.txt"), "utf8")).toBe("written\n");

    // The next snapshot without hints scans and picks up the background change.
    const full = await snapshotter.snapshot();
    const afterScan = join(root, "after-scan");
    await restoreWorkspace(store, full, afterScan);
    expect(await readFile(join(afterScan, "keep.txt"), "utf8")).toBe("changed in the background\n");
    await expect(lstat(join(afterScan, "old"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("scans instead when a hint runs through a symlink or names a directory", async () => {
    const store = new GatedStore(join(root, "store"));
    const snapshotter = new WorkspaceSnapshotter({ store, workspaceDir: workspace, keyPrefix: "s/hint2" });
    await mkdir(join(workspace, "real"));
    await symlink("real", join(workspace, "link"));
    await snapshotter.snapshot();

    await writeFile(join(workspace, "real/through-link.txt"), "via the link\n");
    await writeFile(join(workspace, "other.txt"), "other\n");
    const viaLink = await snapshotter.snapshot({ changedPaths: ["link/through-link.txt"] });
    const restored = join(root, "restored-link");
    await restoreWorkspace(store, viaLink, restored);
    expect(await readFile(join(restored, "real/through-link.txt"), "utf8")).toBe("via the link\n");
    expect(await readFile(join(restored, "other.txt"), "utf8")).toBe("other\n");

    await mkdir(join(workspace, "made/inside"), { recursive: true });
    await writeFile(join(workspace, "made/inside/x.txt"), "x\n");
    const directory = await snapshotter.snapshot({ changedPaths: ["made"] });
    const restoredDirectory = join(root, "restored-dir");
    await restoreWorkspace(store, directory, restoredDirectory);
    expect(await readFile(join(restoredDirectory, "made/inside/x.txt"), "utf8")).toBe("x\n");
  });

  it("writes nothing for a snapshot without changes and calls onCaptured", async () => {
    const store = new GatedStore(join(root, "store"));
    const snapshotter = new WorkspaceSnapshotter({ store, workspaceDir: workspace, keyPrefix: "s/three" });
    await writeFile(join(workspace, "a.txt"), "same\n");
    const first = await snapshotter.snapshot();
    const puts = store.putKeys.length;
    let captured = false;
    const second = await snapshotter.snapshot({
      onCaptured: () => {
        captured = true;
      },
    });
    expect(second.key).toBe(first.key);
    expect(second.sizeBytes).toBe(0);
    expect(captured).toBe(true);
    expect(store.putKeys.length).toBe(puts);
  });
});
