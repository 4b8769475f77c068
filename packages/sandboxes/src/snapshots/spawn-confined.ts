/**
 * Runs tar on a workspace (or a copy of one) inside a small bubblewrap mount namespace whose only
 * files are the host's /usr (read-only) and that directory at /workspace. A workspace is written by
 * sandboxed code: a symlink in it, or one a snapshot layer carries, then resolves inside this view
 * instead of the host's (GNU tar follows a link met as a parent directory, both when it reads a
 * listed path and when it extracts a member), so no snapshot can read or write a host file. Without
 * bwrap the command runs unconfined.
 */
import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import { describeHostRoot, type HostRootEntry } from "../bubblewrap/bubblewrap-arguments.js";
import { resolveExecutable } from "../bubblewrap/check-bubblewrap.js";

/** Where the directory appears inside the namespace; links to /workspace/… then stay inside it. */
export const CONFINED_DIRECTORY = "/workspace";

/** What root keeps inside: enough to restore owners, modes and times, nothing that reaches the host. */
const ROOT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_FOWNER",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FSETID",
];

let hostRoot: HostRootEntry[] | undefined;

export interface ConfinedSpawnOptions {
  /** Host directory shown at CONFINED_DIRECTORY. */
  readonly directory: string;
  /** Bound writable (extraction); read-only otherwise. */
  readonly isWritable: boolean;
  readonly env: Readonly<Record<string, string>>;
  readonly stdio: StdioOptions;
}

/**
 * Spawns `command` (an absolute path under /usr or a root link into it) with its working directory
 * at CONFINED_DIRECTORY, which shows `options.directory`. Paths in `args` must be namespace paths.
 */
export function spawnConfined(
  command: string,
  args: readonly string[],
  options: ConfinedSpawnOptions,
): ChildProcess {
  const bwrapPath = resolveExecutable("bwrap", options.env.PATH ?? "/usr/bin:/bin");
  if (bwrapPath === undefined)
    return spawn(
      command,
      args.map((arg) => (arg === CONFINED_DIRECTORY ? options.directory : arg)),
      {
        cwd: options.directory,
        env: options.env,
        stdio: options.stdio,
      },
    );
  hostRoot ??= describeHostRoot();
  const bwrapArguments = ["--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"];
  for (const entry of hostRoot) {
    if (entry.kind === "symlink") bwrapArguments.push("--symlink", entry.target, `/${entry.name}`);
    else bwrapArguments.push("--ro-bind", `/${entry.name}`, `/${entry.name}`);
  }
  bwrapArguments.push(
    "--ro-bind-try",
    "/etc/ld.so.cache",
    "/etc/ld.so.cache",
    "--dev",
    "/dev",
    options.isWritable ? "--bind" : "--ro-bind",
    options.directory,
    CONFINED_DIRECTORY,
    "--remount-ro",
    "/",
    "--chdir",
    CONFINED_DIRECTORY,
  );
  if (process.getuid?.() === 0) {
    bwrapArguments.push("--cap-drop", "ALL");
    for (const capability of ROOT_CAPABILITIES) bwrapArguments.push("--cap-add", capability);
  }
  bwrapArguments.push("--clearenv");
  for (const [name, value] of Object.entries(options.env)) bwrapArguments.push("--setenv", name, value);
  return spawn(bwrapPath, [...bwrapArguments, "--", command, ...args], {
    env: {},
    stdio: options.stdio,
  });
}
