/**
 * Builds a prepared root filesystem for sandboxes with debootstrap: Debian bookworm, variant minbase,
 * plus the tools a coding agent expects. Node is not installed: sandboxes bind the host's node
 * read-only (see docs/decisions/2026-12-04-rootfs-image-with-host-node.md).
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { lstat, mkdir, readdir, readlink, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { resolveExecutable } from "../bubblewrap/check-bubblewrap.js";
import {
  defaultImageDir,
  IMAGE_MANIFEST_FILE,
  IMAGE_ROOTFS_DIR,
  type ImageInfo,
  type ImageManifest,
} from "./rootfs-image.js";

export const DEBOOTSTRAP_MISSING_MESSAGE =
  'debootstrap is not installed: run "apt-get install -y debootstrap"';
export const DEFAULT_IMAGE_MIRROR = "http://deb.debian.org/debian";
export const IMAGE_SUITE = "bookworm";
export const IMAGE_VARIANT = "minbase";

/**
 * Installed on top of minbase (with their Depends, not Recommends). iproute2 and procps are there
 * because agents (and the isolation tests) run `ip` and `ps`; python-is-python3 gives `python`.
 */
export const IMAGE_PACKAGES: readonly string[] = [
  "build-essential",
  "ca-certificates",
  "curl",
  "file",
  "git",
  "iproute2",
  "jq",
  "less",
  "patch",
  "procps",
  "python-is-python3",
  "python3",
  "python3-pip",
  "python3-venv",
  "ripgrep",
  "tree",
  "unzip",
  "xz-utils",
  "zip",
];

/** Removed after debootstrap: package caches and documentation nobody reads in a sandbox. */
const PRUNED_PATHS = [
  "var/cache/apt/archives",
  "var/lib/apt/lists",
  "usr/share/man",
  "usr/share/info",
  "usr/share/locale",
];

/**
 * Put in the target before debootstrap runs so its dpkg skips fsync for every file (as mmdebstrap
 * does); removed afterwards. On this project's ext4-with-discard disks that halves the build.
 */
const UNSAFE_IO_CONFIG = "etc/dpkg/dpkg.cfg.d/outrig-build-unsafe-io";

export interface BuildImageOptions {
  /** Image directory. Default `<outrigHome>/images/default`. */
  readonly outDir?: string;
  /** Used for the default outDir. Default $OUTRIG_HOME or ~/.outrig. */
  readonly outrigHome?: string;
  /** Debian mirror. Default http://deb.debian.org/debian. */
  readonly mirror?: string;
  /** Path of debootstrap, or a name looked up on PATH, /usr/sbin and /sbin. Default "debootstrap". */
  readonly debootstrapPath?: string;
  /** Kills debootstrap after this long. Default 20 minutes. */
  readonly timeoutMs?: number;
  /** Progress lines (one per phase, not per package). Default: none. */
  readonly log?: (line: string) => void;
  /** Aborting kills debootstrap and removes the partial build. */
  readonly signal?: AbortSignal;
}

export class ImageBuildError extends Error {
  override readonly name = "ImageBuildError";
}

/**
 * Runs debootstrap into a temporary directory beside `outDir`, prunes caches, writes the manifest,
 * then renames the directory into place (replacing an older image). Rejects with a one-line
 * ImageBuildError when not root, when debootstrap is missing, or when debootstrap fails (with the
 * tail of its output); the temporary directory is removed then.
 */
export async function buildImage(options: BuildImageOptions = {}): Promise<ImageInfo> {
  if (process.getuid?.() !== 0)
    throw new ImageBuildError(
      "building an image needs root (debootstrap mounts and chroots): run it as root",
    );
  const searchPath = [process.env.PATH ?? "", "/usr/sbin", "/sbin"].join(":");
  const debootstrap = resolveExecutable(options.debootstrapPath ?? "debootstrap", searchPath);
  if (debootstrap === undefined) throw new ImageBuildError(DEBOOTSTRAP_MISSING_MESSAGE);
  const log = options.log ?? (() => {});
  const outDir = resolve(options.outDir ?? defaultImageDir(options.outrigHome));
  const mirror = options.mirror ?? DEFAULT_IMAGE_MIRROR;
  await mkdir(dirname(outDir), { recursive: true });
  const tempDir = join(dirname(outDir), `.${basename(outDir)}.building-${randomBytes(4).toString("hex")}`);
  const rootfsDir = join(tempDir, IMAGE_ROOTFS_DIR);
  const started = Date.now();
  try {
    await mkdir(join(rootfsDir, dirname(UNSAFE_IO_CONFIG)), { recursive: true, mode: 0o755 });
    await writeFile(join(rootfsDir, UNSAFE_IO_CONFIG), "force-unsafe-io\n", { mode: 0o644 });
    log(`debootstrap ${IMAGE_SUITE} (${IMAGE_VARIANT} + ${IMAGE_PACKAGES.length} packages) from ${mirror}`);
    await runDebootstrap(
      debootstrap,
      [`--variant=${IMAGE_VARIANT}`, `--include=${IMAGE_PACKAGES.join(",")}`, IMAGE_SUITE, rootfsDir, mirror],
      options.timeoutMs ?? 20 * 60_000,
      log,
      options.signal,
    );
    await rm(join(rootfsDir, UNSAFE_IO_CONFIG));
    for (const path of PRUNED_PATHS) {
      await rm(join(rootfsDir, path), { recursive: true, force: true });
      await mkdir(join(rootfsDir, path), { recursive: true, mode: 0o755 });
    }
    log("hashing the root filesystem");
    const packages = await listPackages(rootfsDir);
    const { hash, sizeBytes, fileCount } = await hashTree(rootfsDir);
    const manifest: ImageManifest = {
      format: 1,
      suite: IMAGE_SUITE,
      variant: IMAGE_VARIANT,
      mirror,
      requestedPackages: IMAGE_PACKAGES,
      packages,
      sizeBytes,
      fileCount,
      buildMs: Date.now() - started,
      builtAt: new Date().toISOString(),
      contentHash: `sha256:${hash}`,
    };
    if (options.signal?.aborted) throw new ImageBuildError("the image build was cancelled");
    await writeFile(join(tempDir, IMAGE_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    await replaceDirectory(tempDir, outDir);
    return { imageDir: outDir, rootfsDir: join(outDir, IMAGE_ROOTFS_DIR), manifest };
  } catch (error) {
    await removeBuildDirectory(tempDir, log);
    throw error;
  }
}

/**
 * Removes a partial build. debootstrap mounts /proc, /sys and sometimes binds host /dev nodes inside
 * its target and may die before unmounting them; deleting through such a mount would delete host
 * files, so everything mounted below is lazily unmounted first, and the tree is kept (with a log
 * line) if anything stays mounted.
 */
async function removeBuildDirectory(directory: string, log: (line: string) => void): Promise<void> {
  const below = () =>
    readFileSync("/proc/self/mounts", "utf8")
      .split("\n")
      .map((line) =>
        (line.split(" ")[1] ?? "").replace(/\\([0-7]{3})/g, (_, octal: string) =>
          String.fromCharCode(Number.parseInt(octal, 8)),
        ),
      )
      .filter((mountPoint) => mountPoint.startsWith(`${directory}/`))
      .sort((a, b) => b.length - a.length);
  for (const mountPoint of below()) spawnSync("umount", ["-l", mountPoint], { stdio: "ignore" });
  const left = below();
  if (left.length > 0) {
    log(`left ${directory} in place: ${left.join(", ")} could not be unmounted`);
    return;
  }
  await rm(directory, { recursive: true, force: true }).catch(() => undefined);
}

function runDebootstrap(
  executable: string,
  args: readonly string[],
  timeoutMs: number,
  log: (line: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted) return reject(new ImageBuildError("the image build was cancelled"));
    const child = spawn(executable, [...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", DEBIAN_FRONTEND: "noninteractive" },
      // Its own process group, so a timeout or cancel also stops the dpkg and wget it started.
      detached: true,
    });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      killGroup();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const tail: string[] = [];
    let timedOut = false;
    const onLine = (line: string) => {
      if (!line.trim()) return;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      // One line per phase: debootstrap prints one per package otherwise.
      if (
        /^(I: (Retrieving Release|Checking component|Installing core|Unpacking the base|Configuring the base|Base system installed)|E: |W: )/.test(
          line,
        )
      )
        log(line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        lines.forEach(onLine);
      });
      stream.on("end", () => onLine(buffered));
    }
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      reject(new ImageBuildError(`debootstrap did not start: ${error.message}`));
    });
    child.on("close", (code, exitSignal) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (cancelled) return reject(new ImageBuildError("the image build was cancelled"));
      if (code === 0) return resolvePromise();
      const errorLine = [...tail].reverse().find((line) => line.startsWith("E:")) ?? tail.at(-1) ?? "";
      const why = timedOut
        ? `timed out after ${Math.round(timeoutMs / 1000)} s`
        : `exited with ${exitSignal ?? code}`;
      reject(new ImageBuildError(`debootstrap ${why}${errorLine ? `: ${errorLine.trim()}` : ""}`));
    });
  });
}

/** `name version` of every installed package, read from the image's dpkg status with the host's dpkg-query. */
async function listPackages(rootfsDir: string): Promise<string[]> {
  const output = await new Promise<string>((resolvePromise, reject) => {
    const child = spawn(
      "dpkg-query",
      [
        `--admindir=${join(rootfsDir, "var/lib/dpkg")}`,
        "-W",
        "-f",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own field syntax
        "${Package} ${Version}\\n",
      ],
      { stdio: ["ignore", "pipe", "ignore"], env: { PATH: "/usr/bin:/bin" } },
    );
    let text = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolvePromise(text) : reject(new ImageBuildError(`dpkg-query exited with ${code}`)),
    );
  });
  return output
    .split("\n")
    .filter(Boolean)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * sha256 over a tree: for each entry in sorted path order, its relative path, type, permission bits
 * and either its content's sha256 (files) or its link target (symlinks). Ownership and times are left
 * out, so two builds of the same packages differ only where the files themselves differ.
 */
export async function hashTree(
  root: string,
): Promise<{ readonly hash: string; readonly sizeBytes: number; readonly fileCount: number }> {
  const tree = createHash("sha256");
  let sizeBytes = 0;
  let fileCount = 0;
  const visit = async (relative: string): Promise<void> => {
    const full = relative ? join(root, relative) : root;
    const names = (await readdir(full)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const path = relative ? `${relative}/${name}` : name;
      const stats = await lstat(join(root, path));
      const mode = (stats.mode & 0o7777).toString(8);
      if (stats.isSymbolicLink()) {
        tree.update(`l ${path} ${mode} ${await readlink(join(root, path))}\0`);
      } else if (stats.isDirectory()) {
        tree.update(`d ${path} ${mode}\0`);
        await visit(path);
      } else if (stats.isFile()) {
        fileCount += 1;
        sizeBytes += stats.size;
        tree.update(`f ${path} ${mode} ${await hashFile(join(root, path))}\0`);
      } else {
        tree.update(`o ${path} ${mode} ${stats.rdev}\0`);
      }
    }
  };
  await visit("");
  return { hash: tree.digest("hex"), sizeBytes, fileCount };
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolvePromise(hash.digest("hex")));
  });
}

/**
 * Puts `source` at `target`. Without an old image this is one rename (atomic). With one, the old
 * image is first renamed aside, so `target` is missing only between two renames, then deleted.
 */
async function replaceDirectory(source: string, target: string): Promise<void> {
  const aside = `${target}.old-${randomBytes(4).toString("hex")}`;
  let hadOld = true;
  await rename(target, aside).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
    hadOld = false;
  });
  try {
    await rename(source, target);
  } catch (error) {
    if (hadOld) await rename(aside, target).catch(() => undefined);
    throw error;
  }
  if (hadOld) await rm(aside, { recursive: true, force: true });
}
