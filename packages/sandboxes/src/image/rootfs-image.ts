/**
 * Where a prepared root filesystem ("image") lives and how to recognise a complete one. An image
 * directory holds `rootfs/` (a Debian tree made by `buildImage`) and `manifest.json`; the manifest is
 * written last, and the directory is renamed into place only when complete, so a directory with a
 * readable manifest is a finished image.
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export const IMAGE_MANIFEST_FILE = "manifest.json";
export const IMAGE_ROOTFS_DIR = "rootfs";

export interface ImageManifest {
  readonly format: 1;
  readonly suite: string;
  readonly variant: string;
  readonly mirror: string;
  /** The packages asked for with `--include` (their dependencies come along). */
  readonly requestedPackages: readonly string[];
  /** Every installed package as `name version`, sorted. */
  readonly packages: readonly string[];
  /** Sum of the regular files' sizes in rootfs/. */
  readonly sizeBytes: number;
  readonly fileCount: number;
  readonly buildMs: number;
  readonly builtAt: string;
  /** sha256 over every path, type, mode, link target and file content of rootfs/, in sorted order. */
  readonly contentHash: string;
}

export interface ImageInfo {
  readonly imageDir: string;
  /** Give this to BubblewrapSandboxProvider as `rootfsDir` (or to runc as `root.path`). */
  readonly rootfsDir: string;
  readonly manifest: ImageManifest;
}

/** `<outrigHome>/images/default`; outrigHome defaults to $OUTRIG_HOME or ~/.outrig. */
export function defaultImageDir(outrigHome?: string): string {
  const home = outrigHome ?? (process.env.OUTRIG_HOME?.trim() || join(homedir(), ".outrig"));
  return resolve(home, "images", "default");
}

/**
 * The image in `imageDir` when it is complete (manifest readable, rootfs has /usr/bin/sh); else
 * undefined. Paths are real paths (symlinks resolved), as runc's `root.path` requires.
 */
export function readImage(imageDir: string): ImageInfo | undefined {
  let dir: string;
  let manifest: ImageManifest;
  try {
    dir = realpathSync(resolve(imageDir));
    manifest = JSON.parse(readFileSync(join(dir, IMAGE_MANIFEST_FILE), "utf8")) as ImageManifest;
  } catch {
    return undefined;
  }
  const rootfsDir = join(dir, IMAGE_ROOTFS_DIR);
  if (manifest.format !== 1 || !existsSync(join(rootfsDir, "usr", "bin", "sh"))) return undefined;
  return { imageDir: dir, rootfsDir, manifest };
}

/** The default image (`<outrigHome>/images/default`) if one has been built; else undefined. */
export function findDefaultImage(outrigHome?: string): ImageInfo | undefined {
  return readImage(defaultImageDir(outrigHome));
}
