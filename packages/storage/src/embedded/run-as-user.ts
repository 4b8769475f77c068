/**
 * Postgres refuses to run as root. As root we run it as the unprivileged OS user `postgres`, creating it
 * (system account, no login, no home) when missing. As any other user we run it as that user.
 */
import { execFile } from "node:child_process";
import { stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { ConfigError } from "@outrig/core";

const execFileAsync = promisify(execFile);

export interface RunAsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export const POSTGRES_OS_USER = "postgres";

/** Null when not root (run as ourselves). May throw ConfigError when the user is missing and cannot be created. */
export async function resolveRunAsUser(): Promise<RunAsUser | null> {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return null;
  const existing = await lookupUser(POSTGRES_OS_USER);
  if (existing) return existing;
  try {
    await execFileAsync("useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      POSTGRES_OS_USER,
    ]);
  } catch (error) {
    // Another process may have created it at the same moment: look again before failing.
    const raced = await lookupUser(POSTGRES_OS_USER);
    if (raced) return raced;
    const reason = firstLine((error as { stderr?: string }).stderr) ?? (error as Error).message;
    throw new ConfigError(
      "postgres_user_missing",
      `embedded Postgres cannot run as root and creating the OS user "${POSTGRES_OS_USER}" failed (${reason}); create that user or run as a non-root user`,
      { cause: error },
    );
  }
  const created = await lookupUser(POSTGRES_OS_USER);
  if (!created) {
    throw new ConfigError(
      "postgres_user_missing",
      `useradd succeeded but user "${POSTGRES_OS_USER}" is not visible`,
    );
  }
  return created;
}

async function lookupUser(name: string): Promise<RunAsUser | null> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync("id", ["-u", name]).then((result) => Number.parseInt(result.stdout, 10)),
      execFileAsync("id", ["-g", name]).then((result) => Number.parseInt(result.stdout, 10)),
    ]);
    return Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : null;
  } catch {
    return null;
  }
}

/**
 * True when `user` can traverse every directory from `/` down to `target` (execute bit as owner, group or
 * other). Supplementary groups and ACLs are ignored, so the answer errs on "no", which only costs a relocation.
 */
export async function canUserTraverse(target: string, user: RunAsUser): Promise<boolean> {
  let current = path.resolve(target);
  for (;;) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(current);
    } catch {
      return false;
    }
    const mode = info.mode;
    const isAllowed =
      info.uid === user.uid
        ? (mode & 0o100) !== 0
        : info.gid === user.gid
          ? (mode & 0o010) !== 0
          : (mode & 0o001) !== 0;
    if (!isAllowed) return false;
    const parent = path.dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

export function firstLine(text: string | undefined): string | undefined {
  const line = text
    ?.split("\n")
    .map((part) => part.trim())
    .find((part) => part.length > 0);
  return line;
}
