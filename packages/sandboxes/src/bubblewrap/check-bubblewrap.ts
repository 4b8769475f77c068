/** Finds the bwrap binary and fails with the exact install command when it is missing. */
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { SandboxError } from "@outrig/core";

export const BUBBLEWRAP_MISSING_MESSAGE = 'bubblewrap is not installed: run "apt-get install -y bubblewrap"';

export interface BubblewrapInfo {
  /** Absolute path of the bwrap binary. */
  readonly path: string;
  /** As printed by `bwrap --version`, e.g. "0.8.0". */
  readonly version: string;
}

/**
 * Resolves `bwrapPath` (a path, or a name looked up on PATH; default "bwrap") and runs
 * `bwrap --version`. Rejects with `SandboxError("sandbox_unavailable")` whose message is one line
 * telling the operator what to install. Safe to call at server startup.
 */
export async function checkBubblewrap(bwrapPath = "bwrap"): Promise<BubblewrapInfo> {
  const path = resolveExecutable(bwrapPath);
  if (path === undefined) throw new SandboxError("sandbox_unavailable", BUBBLEWRAP_MISSING_MESSAGE);
  const version = await new Promise<string>((resolve, reject) => {
    execFile(path, ["--version"], { env: {}, timeout: 10_000 }, (error, stdout) => {
      if (error) {
        reject(
          new SandboxError("sandbox_unavailable", `${BUBBLEWRAP_MISSING_MESSAGE} (${path} did not run)`, {
            cause: error,
          }),
        );
        return;
      }
      resolve(stdout.trim().replace(/^bubblewrap\s+/, ""));
    });
  });
  return { path, version };
}

/** Returns the absolute path of an executable, or undefined. Names without "/" are searched on PATH. */
export function resolveExecutable(name: string, searchPath = process.env.PATH ?? ""): string | undefined {
  const candidates = name.includes("/")
    ? [name]
    : [...searchPath.split(delimiter).filter(Boolean), "/usr/bin", "/bin"].map((directory) =>
        join(directory, name),
      );
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next directory
    }
  }
  return undefined;
}
