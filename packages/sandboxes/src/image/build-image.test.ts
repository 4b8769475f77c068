import { realpathSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
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

/** Writes an executable stand-in for debootstrap; its target directory is its 4th argument. */
async function fakeDebootstrap(name: string, script: string): Promise<string> {
  const path = join(root, name);
  await writeFile(path, `#!/bin/sh\nset -e\ntarget="$4"\n${script}\n`);
  await chmod(path, 0o755);
  return path;
}

describe("buildImage with a stand-in debootstrap", () => {
  const isRoot = process.getuid?.() === 0;

  it.runIf(isRoot)("writes the manifest, prunes caches and replaces an older image", async () => {
    const debootstrapPath = await fakeDebootstrap(
      "debootstrap-ok",
      [
        // The build must have asked dpkg for unsafe I/O before debootstrap ran.
        'test -f "$target/etc/dpkg/dpkg.cfg.d/outrig-build-unsafe-io"',
        'mkdir -p "$target/usr/bin" "$target/var/lib/dpkg" "$target/var/cache/apt/archives" "$target/usr/share/man/man1"',
        'printf "#!/bin/sh\\n" > "$target/usr/bin/sh"; ln -s usr/bin "$target/bin"',
        'touch "$target/var/cache/apt/archives/big.deb" "$target/usr/share/man/man1/x.1"',
        'printf "Package: fake\\nStatus: install ok installed\\nVersion: 1.0-1\\nArchitecture: all\\n\\n" > "$target/var/lib/dpkg/status"',
        'echo "$1 $2 $3 $5" > "$target/args"',
      ].join("\n"),
    );
    const outDir = join(root, "built", "default");
    await mkdir(join(outDir, "rootfs"), { recursive: true });
    await writeFile(join(outDir, "rootfs", "old-image"), "");
    const lines: string[] = [];
    const image = await buildImage({
      outDir,
      debootstrapPath,
      mirror: "http://mirror.invalid/debian",
      log: (line) => lines.push(line),
    });
    expect(image).toMatchObject({ imageDir: outDir, rootfsDir: join(outDir, "rootfs") });
    expect(readImage(outDir)?.manifest).toEqual(image.manifest);
    expect(image.manifest).toMatchObject({
      format: 1,
      suite: "bookworm",
      packages: ["fake 1.0-1"],
      mirror: "http://mirror.invalid/debian",
      contentHash: `sha256:${(await hashTree(image.rootfsDir)).hash}`,
    });
    const rootfs = await readdir(image.rootfsDir);
    expect(rootfs).not.toContain("old-image");
    expect(await readdir(join(image.rootfsDir, "var/cache/apt/archives"))).toEqual([]);
    expect(await readdir(join(image.rootfsDir, "usr/share/man"))).toEqual([]);
    expect(await readdir(join(image.rootfsDir, "etc/dpkg/dpkg.cfg.d"))).toEqual([]);
    // Nothing but the image is left beside it (no temporary or old directory).
    expect(await readdir(join(root, "built"))).toEqual(["default"]);
  });

  it.runIf(isRoot)(
    "unmounts what a failed debootstrap left mounted before deleting the partial build",
    async () => {
      const precious = join(root, "precious");
      await mkdir(precious);
      await writeFile(join(precious, "keep.txt"), "host data");
      const debootstrapPath = await fakeDebootstrap(
        "debootstrap-fails",
        `mkdir -p "$target/proc"; mount --bind ${precious} "$target/proc"; echo "E: Couldn't download packages: gcc-12" >&2; exit 1`,
      );
      const outDir = join(root, "failed", "default");
      const error = await buildImage({ outDir, debootstrapPath }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ImageBuildError);
      expect((error as Error).message).toBe(
        "debootstrap exited with 1: E: Couldn't download packages: gcc-12",
      );
      expect(await readdir(precious)).toEqual(["keep.txt"]);
      expect(await readdir(join(root, "failed"))).toEqual([]);
    },
  );
});

describe("buildImage cancelled", () => {
  it.runIf(process.getuid?.() === 0)(
    "kills debootstrap's whole process group and removes the partial build safely",
    async () => {
      const precious = join(root, "precious-cancel");
      await mkdir(precious);
      await writeFile(join(precious, "keep.txt"), "host data");
      const started = join(root, "cancel-started");
      const debootstrapPath = await fakeDebootstrap(
        "debootstrap-slow",
        `mkdir -p "$target/proc"; mount --bind ${precious} "$target/proc"; sleep 300 & echo $! > ${started}.pid; touch ${started}; wait`,
      );
      const controller = new AbortController();
      const outDir = join(root, "cancelled", "default");
      const build = buildImage({ outDir, debootstrapPath, signal: controller.signal }).catch(
        (caught: unknown) => caught,
      );
      await expect.poll(() => readdir(root), { timeout: 30_000 }).toContain("cancel-started");
      controller.abort();
      const error = await build;
      expect(error).toBeInstanceOf(ImageBuildError);
      expect((error as Error).message).toBe("the image build was cancelled");
      expect(await readdir(precious)).toEqual(["keep.txt"]);
      expect(await readdir(join(root, "cancelled"))).toEqual([]);
      const sleepPid = Number((await readFile(`${started}.pid`, "utf8")).trim());
      await expect.poll(() => isRunning(sleepPid), { timeout: 10_000 }).toBe(false);
    },
  );
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

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
    const real = realpathSync(imageDir);
    expect(findDefaultImage(home)).toMatchObject({ imageDir: real, rootfsDir: join(real, "rootfs") });
    // Through a symlink, the real paths come back (runc refuses a symlinked root).
    await symlink(imageDir, join(root, "image-link"));
    expect(readImage(join(root, "image-link"))).toMatchObject({ imageDir: real });
    await rm(join(imageDir, "rootfs/usr/bin/sh"));
    expect(readImage(imageDir)).toBeUndefined();
  });
});
