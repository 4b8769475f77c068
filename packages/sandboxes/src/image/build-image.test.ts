import { chmod, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImage, DEBOOTSTRAP_MISSING_MESSAGE, hashTree, ImageBuildError } from "./build-image.js";
import { defaultImageDir, findDefaultImage, readImage } from "./rootfs-image.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "outrig-image-unit-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("hashTree", () => {
  it("changes with content, mode and link targets, not with times", async () => {
    const tree = join(root, "tree");
    await mkdir(join(tree, "usr/bin"), { recursive: true });
    await writeFile(join(tree, "usr/bin/tool"), "#!/bin/sh\necho one\n");
    await chmod(join(tree, "usr/bin/tool"), 0o755); // explicit: the umask may differ
    await symlink("usr/bin", join(tree, "bin"));
    const first = await hashTree(tree);
    expect(first).toMatchObject({ sizeBytes: 19, fileCount: 1 });
    expect(first.hash).toMatch(/^[0-9a-f]{64}$/);

    await utimes(join(tree, "usr/bin/tool"), new Date(0), new Date(0));
    expect((await hashTree(tree)).hash).toBe(first.hash);

    await chmod(join(tree, "usr/bin/tool"), 0o700);
    const moded = await hashTree(tree);
    expect(moded.hash).not.toBe(first.hash);
    await chmod(join(tree, "usr/bin/tool"), 0o755);
    expect((await hashTree(tree)).hash).toBe(first.hash);

    await writeFile(join(tree, "usr/bin/tool"), "#!/bin/sh\necho two\n");
    expect((await hashTree(tree)).hash).not.toBe(first.hash);
    await writeFile(join(tree, "usr/bin/tool"), "#!/bin/sh\necho one\n");

    await rm(join(tree, "bin"));
    await symlink("usr/sbin", join(tree, "bin"));
    expect((await hashTree(tree)).hash).not.toBe(first.hash);
  });
});

describe("buildImage", () => {
  it("fails in one line, leaving nothing behind, when debootstrap is missing or not root", async () => {
    const parent = join(root, "images");
    const error = await buildImage({
      outDir: join(parent, "default"),
      debootstrapPath: join(root, "no-such-debootstrap"),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ImageBuildError);
    const message = (error as Error).message;
    if (process.getuid?.() === 0) expect(message).toBe(DEBOOTSTRAP_MISSING_MESSAGE);
    else expect(message).toMatch(/needs root/);
    expect(message).not.toContain("\n");
    expect(await readdir(parent).catch(() => [])).toEqual([]);
  });
});

describe("readImage", () => {
  it("accepts only a complete image: a manifest and a rootfs with a shell", async () => {
    const home = join(root, "home");
    const imageDir = defaultImageDir(home);
    expect(imageDir).toBe(join(home, "images", "default"));
    expect(findDefaultImage(home)).toBeUndefined();
    await mkdir(join(imageDir, "rootfs/usr/bin"), { recursive: true });
    await writeFile(join(imageDir, "rootfs/usr/bin/sh"), "");
    expect(readImage(imageDir)).toBeUndefined(); // no manifest yet (a build in progress never has one)
    await writeFile(join(imageDir, "manifest.json"), JSON.stringify({ format: 1, contentHash: "sha256:x" }));
    expect(findDefaultImage(home)).toMatchObject({ imageDir, rootfsDir: join(imageDir, "rootfs") });
    await rm(join(imageDir, "rootfs/usr/bin/sh"));
    expect(readImage(imageDir)).toBeUndefined();
  });
});
