/**
 * Workspace disk quota: the workspace directory becomes the mount point of a loop-mounted ext4
 * image of the quota's size, kept beside it as `.<name>.quota.ext4`. The kernel then answers a
 * write past the quota with ENOSPC, for tools and for every process in the sandbox alike, and the
 * backend still sees the files at the same host path. Needs root (mount) and mkfs.ext4.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SandboxError } from "@outrig/core";
import { resolveExecutable } from "./check-bubblewrap.js";

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface WorkspaceQuota {
  readonly imagePath: string;
  /** Unmounts the image; the files stay in it and come back at the next ensureWorkspaceQuota. */
  release(): Promise<void>;
}

function run(command: string, args: readonly string[]): Promise<void> {
  const path = resolveExecutable(command, SYSTEM_PATH);
  if (path === undefined)
    return Promise.reject(new SandboxError("sandbox_unavailable", `${command} is not installed`));
  return new Promise((resolve, reject) => {
    execFile(path, args, { env: { PATH: SYSTEM_PATH }, timeout: 60_000 }, (error, _stdout, stderr) => {
      if (error)
        reject(
          new SandboxError("sandbox_unavailable", `${command} failed: ${stderr.trim() || error.message}`, {
            cause: error,
          }),
        );
      else resolve();
    });
  });
}

/** The image file that holds the quota'd workspace `workspaceDir`. */
export function workspaceQuotaImagePath(workspaceDir: string): string {
  return join(dirname(workspaceDir), `.${basename(workspaceDir)}.quota.ext4`);
}

export function isMountPoint(path: string): boolean {
  const mountInfo = readFileSync("/proc/self/mountinfo", "utf8");
  return mountInfo.split("\n").some((line) => line.split(" ")[4] === path);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Mounts the workspace's quota image at `workspaceDir` (an existing absolute directory), creating
 * the image on first use from the directory's current contents (`mkfs.ext4 -d`), which are then
 * moved out of the way (deleted: they live in the image). An image created for another size is
 * reused as it is.
 */
export async function ensureWorkspaceQuota(workspaceDir: string, bytes: number): Promise<WorkspaceQuota> {
  const imagePath = workspaceQuotaImagePath(workspaceDir);
  const release = async () => {
    if (!isMountPoint(workspaceDir)) return;
    await run("umount", [workspaceDir]).catch(() => run("umount", ["-l", workspaceDir]));
  };
  if (isMountPoint(workspaceDir)) return { imagePath, release };
  if (!(await exists(imagePath))) {
    if (bytes < 1024 * 1024)
      throw new SandboxError("sandbox_invalid_options", "limits.diskBytes must be at least 1 MiB");
    await writeFile(imagePath, "");
    await truncate(imagePath, bytes);
    const entries = await readdir(workspaceDir);
    try {
      // -m 0: no blocks reserved for root; the sandbox user is root on the host side of the mapping.
      await run("mkfs.ext4", [
        "-q",
        "-F",
        "-m",
        "0",
        ...(entries.length > 0 ? ["-d", workspaceDir] : []),
        imagePath,
      ]);
    } catch (error) {
      await rm(imagePath, { force: true });
      throw error;
    }
    for (const entry of entries) await rm(join(workspaceDir, entry), { recursive: true, force: true });
  }
  await run("mount", ["-o", "loop,nosuid,nodev", imagePath, workspaceDir]);
  await rm(join(workspaceDir, "lost+found"), { recursive: true, force: true });
  return { imagePath, release };
}
