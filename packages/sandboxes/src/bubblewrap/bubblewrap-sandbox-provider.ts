/**
 * SandboxProvider on bubblewrap: one bwrap process tree per sandbox with a long-lived agent inside,
 * reached over its stdin/stdout. Linux only; needs the `bwrap` binary (apt package bubblewrap).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, readdir, rename, rmdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, posix, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import {
  type BlobStore,
  type CreateSandboxOptions,
  SandboxError,
  type SandboxProvider,
  type SnapshotRef,
} from "@outrig/core";
import {
  type CgroupDriver,
  detectCgroups,
  isCgroupDriver,
  type SandboxCgroup,
} from "../cgroups/sandbox-cgroup.js";
import {
  type CgroupSweepResult,
  describeCgroupSweep,
  sweepOrphanedCgroups,
} from "../cgroups/sweep-orphaned-cgroups.js";
import {
  prepareSandboxStateDirectory,
  readSandboxPidFile,
  writeSandboxPidFile,
} from "../host-files/sandbox-state-directory.js";
import { readFileHead } from "../host-files/untrusted-files.js";
import { ProviderSnapshots } from "../snapshots/provider-snapshots.js";
import { validateCreateOptions } from "../validate-create-options.js";
import { AgentConnection, agentMessageBytesFor } from "./agent-connection.js";
import {
  buildBubblewrapArguments,
  describeHostRoot,
  type HostRootEntry,
  type SandboxLayout,
  sandboxAgentCommand,
  sandboxDataFiles,
} from "./bubblewrap-arguments.js";
import { BubblewrapSandbox } from "./bubblewrap-sandbox.js";
import { BUBBLEWRAP_MISSING_MESSAGE, resolveExecutable } from "./check-bubblewrap.js";
import { executeOnlyNode } from "./execute-only-node.js";
import { buildSeccompFilter } from "./seccomp-filter.js";
import { ensureWorkspaceQuota, type WorkspaceQuota } from "./workspace-quota.js";

/** The /tmp tmpfs size when none is configured: /tmp is memory, so it must be bounded. */
export const DEFAULT_SANDBOX_TMP_BYTES = 512 * 1024 * 1024;
/** The process (pids cgroup) limit of a sandbox when the caller sets none. */
export const DEFAULT_SANDBOX_PIDS = 1024;

export interface BubblewrapSandboxProviderOptions {
  /** Path of bwrap, or a name looked up on PATH. Default "bwrap". */
  readonly bwrapPath?: string;
  /** Host node binary bind-mounted read-only to run the agent. Default: this process's node. */
  readonly nodePath?: string;
  /** Where the execute-only copy of that binary is kept (the server's home). Default: a per-uid temp dir. */
  readonly agentNodeDirectory?: string;
  /** Uid and gid inside the sandbox. Default 1000. */
  readonly uid?: number;
  readonly gid?: number;
  /** Default "sandbox". */
  readonly hostname?: string;
  /** Size limit of the /tmp tmpfs inside the sandbox. Default DEFAULT_SANDBOX_TMP_BYTES (512 MiB). */
  readonly tmpSizeBytes?: number;
  /**
   * Refuse keyctl, ptrace, bpf and other host-reaching system calls with a seccomp filter (see
   * seccomp-filter.ts). Default true; ignored on architectures without a syscall table.
   */
  readonly seccomp?: boolean;
  /** readFile rejects with `too_large` above this. Default 32 MiB. */
  readonly maxFileBytes?: number;
  /** How long create() waits for the agent to report ready. Default 15 s. */
  readonly startTimeoutMs?: number;
  /** How long create() waits for an orphaned sandbox of the same session to finish. Default 15 min. */
  readonly orphanWaitMs?: number;
  /**
   * "auto" (default): put each sandbox in its own cgroups (limits, freezer) when the host allows it
   * (root and a v1 or v2 hierarchy); otherwise limits and suspend are skipped with one log line.
   * "off": never use cgroups.
   */
  readonly cgroups?: "auto" | "off";
  /** Where cgroupfs is mounted. Default /sys/fs/cgroup. */
  readonly cgroupRoot?: string;
  /**
   * The group below the server's own cgroup that holds sandbox cgroups; servers sweep orphans only in
   * their own group. Default "outrig".
   */
  readonly cgroupGroupName?: string;
  /** Where `snapshot()` stores workspace snapshots. Without it, snapshot() rejects. */
  readonly blobStore?: BlobStore;
  /** Blob keys are `<prefix>/<orgId>/<sessionId>/…`. Default "snapshots". */
  readonly snapshotKeyPrefix?: string;
  /** Receives one-line operational notices (e.g. limits skipped). Default: console.warn. */
  readonly log?: (line: string) => void;
  /**
   * A prepared root filesystem (the `rootfs/` of an `outrig image build` image): the sandbox's /usr,
   * /bin, /lib… and loader cache come from it instead of the host's. Default: the host's, read-only.
   */
  readonly rootfsDir?: string;
}

const AGENT_PATH = fileURLToPath(new URL("../../agent/sandbox-agent.mjs", import.meta.url));
/** Keeps the agent small: a small young generation, no V8 worker threads, a heap cap. */
const AGENT_NODE_FLAGS = ["--max-old-space-size=256", "--max-semi-space-size=1", "--v8-pool-size=0"];
const MAX_STDERR_BYTES = 4096;
/** The data files use fds 4…; fd 3 carries the NUL-separated arguments (keeps host paths out of ps). */
const ARGS_FD = 3;
const FIRST_DATA_FD = 4;

export class BubblewrapSandboxProvider implements SandboxProvider {
  readonly id = "bubblewrap";
  readonly #options: BubblewrapSandboxProviderOptions;
  readonly #sandboxes = new Set<BubblewrapSandbox>();
  #hostRoot: HostRootEntry[] | undefined;
  #isClosed = false;
  #cgroupDriver: CgroupDriver | undefined | null;
  #hasLoggedLimits = false;
  /** The sweep started at the first use of cgroups (see sweepOrphans). */
  #firstSweep: Promise<CgroupSweepResult | undefined> | undefined;
  /** Workspace dir → the snapshot it was restored from, so its next snapshot is incremental. */
  readonly #snapshots: ProviderSnapshots;

  constructor(options: BubblewrapSandboxProviderOptions = {}) {
    this.#options = options;
    this.#snapshots = new ProviderSnapshots(options.blobStore, options.snapshotKeyPrefix);
  }

  /**
   * Starts a sandbox with `workspaceDir` (created when missing) bound at /workspace and waits until
   * its agent is ready. Rejects with `SandboxError("sandbox_unavailable")` when bwrap is missing or
   * the sandbox fails to start; nothing is left running then.
   */
  async create(options: CreateSandboxOptions): Promise<BubblewrapSandbox> {
    if (this.#isClosed) throw new SandboxError("sandbox_unavailable", "the sandbox provider is closed");
    const bwrapPath = resolveExecutable(this.#options.bwrapPath ?? "bwrap");
    if (bwrapPath === undefined) throw new SandboxError("sandbox_unavailable", BUBBLEWRAP_MISSING_MESSAGE);
    validateCreateOptions(options);
    const workspaceDir = resolve(options.workspaceDir);
    await mkdir(workspaceDir, { recursive: true, mode: 0o755 });
    for (const mount of [...(options.readOnlyMounts ?? []), ...(options.writableMounts ?? [])]) {
      await stat(mount.hostPath).catch((error: unknown) => {
        throw new SandboxError("sandbox_invalid_options", `mount source is missing: ${mount.hostPath}`, {
          cause: error,
        });
      });
    }
    if (options.egressSocketPath !== undefined) {
      const socket = await stat(options.egressSocketPath).catch(() => undefined);
      if (!socket?.isSocket())
        throw new SandboxError(
          "sandbox_invalid_options",
          `egress socket not found: ${options.egressSocketPath}`,
        );
    }
    this.#hostRoot ??= await this.#describeRoot();
    const maxFileBytes = this.#options.maxFileBytes ?? 32 * 1024 * 1024;
    const maxMessageBytes = agentMessageBytesFor(maxFileBytes);
    // Execute-only: the agent is then non-dumpable, out of reach of the commands it runs.
    const nodePath = await executeOnlyNode(this.#options.nodePath ?? process.execPath, {
      log: this.#options.log,
      ...(this.#options.agentNodeDirectory ? { directory: this.#options.agentNodeDirectory } : {}),
    });
    // A default process limit, so a fork bomb stays inside its sandbox (enforced when cgroups are usable).
    const limits = { pids: DEFAULT_SANDBOX_PIDS, ...options.limits };
    const id = `bwrap-${randomUUID()}`;
    let cgroup: SandboxCgroup | undefined;
    let quota: WorkspaceQuota | undefined;
    const releaseState = async () => {
      await cgroup?.remove();
      await quota?.release();
    };
    try {
      const driver = this.#cgroups();
      if (driver) cgroup = await driver.create(id, limits);
      if (limits.diskBytes !== undefined) {
        if (process.getuid?.() === 0) quota = await ensureWorkspaceQuota(workspaceDir, limits.diskBytes);
        else this.#logLimitsSkipped("the workspace disk quota needs root (mount)");
      }
    } catch (error) {
      await releaseState().catch(() => {});
      throw error;
    }
    const stateDir = options.stateDir === undefined ? undefined : resolve(options.stateDir);
    const layout: SandboxLayout = {
      uid: this.#options.uid ?? 1000,
      gid: this.#options.gid ?? 1000,
      userName: "sandbox",
      hostname: this.#options.hostname ?? "sandbox",
      nodePath,
      agentPath: AGENT_PATH,
      workspaceDir,
      nodeFlags: AGENT_NODE_FLAGS,
      maxMessageBytes,
      tmpSizeBytes: this.#options.tmpSizeBytes ?? DEFAULT_SANDBOX_TMP_BYTES,
      seccompFilter: this.#options.seccomp === false ? undefined : buildSeccompFilter(),
      hostRoot: this.#hostRoot,
      rootfsDir: this.#options.rootfsDir === undefined ? undefined : resolve(this.#options.rootfsDir),
      readOnlyMounts: options.readOnlyMounts?.map((mount) => ({
        hostPath: resolve(mount.hostPath),
        sandboxPath: posix.normalize(mount.sandboxPath),
      })),
      writableMounts: options.writableMounts?.map((mount) => ({
        hostPath: resolve(mount.hostPath),
        sandboxPath: posix.normalize(mount.sandboxPath),
      })),
      extraEnv: options.env,
      egressDir:
        options.egressSocketPath === undefined ? undefined : dirname(resolve(options.egressSocketPath)),
      egressSocketName:
        options.egressSocketPath === undefined ? undefined : basename(options.egressSocketPath),
      // Only the journal subdirectory: the state directory (pid file, markers) stays the host's.
      stateDir: stateDir === undefined ? undefined : await prepareSandboxStateDirectory(stateDir),
    };
    if (stateDir !== undefined) {
      // A sandbox of this session orphaned by a server crash may still be finishing a call: wait for it.
      await waitForPreviousSandbox(stateDir, this.#options.orphanWaitMs ?? 15 * 60_000);
    }
    const child = startBubblewrap(bwrapPath, layout, cgroup);
    if (stateDir !== undefined && child.pid !== undefined) {
      await writeSandboxPidFile(stateDir, child.pid).catch(() => undefined);
    }
    let sandbox: BubblewrapSandbox | undefined;
    const connection = new AgentConnection(pipe(child, 1), pipe(child, 0), {
      maxMessageBytes,
      // A malformed or oversized message: this sandbox is destroyed, its calls fail, nothing else.
      onProtocolError: () => void sandbox?.destroy().catch(() => undefined),
    });
    sandbox = new BubblewrapSandbox({
      id,
      process: child,
      connection,
      maxFileBytes,
      onExit: (exited) => this.#sandboxes.delete(exited),
      cgroup,
      limits,
      workspaceDir,
      snapshotter: this.#snapshots.snapshotterFor(options, workspaceDir),
      cleanup: async () => {
        await quota?.release();
      },
    });
    this.#sandboxes.add(sandbox);
    try {
      await waitForReady(child, connection, this.#options.startTimeoutMs ?? 15_000);
      await sandbox.protectCoreProcesses();
    } catch (error) {
      await sandbox.destroy();
      throw error;
    }
    return sandbox;
  }

  /**
   * Unpacks snapshot `ref` from the provider's BlobStore into `directory` (a fresh workspace dir for
   * a replacement sandbox). A sandbox then created on that directory snapshots incrementally on top
   * of `ref`.
   */
  async restoreWorkspace(ref: SnapshotRef, directory: string): Promise<void> {
    await this.#snapshots.restore(ref, directory);
  }

  /**
   * Hands a running sandbox (a warm-pool slot) to a session: moves the entries of
   * `options.workspaceDir`, when it exists, into the sandbox's bound directory, then renames that
   * directory to `options.workspaceDir`. The bind mount follows the directory, so /workspace inside
   * now shows the session's files, with no restart. Both paths must be on one file system.
   */
  async assignWorkspace(
    sandbox: BubblewrapSandbox,
    options: Pick<CreateSandboxOptions, "sessionId" | "orgId" | "workspaceDir">,
  ): Promise<void> {
    const target = resolve(options.workspaceDir);
    const source = sandbox.workspaceDir;
    if (target !== source) {
      const existing = await readdir(target).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return undefined;
        throw error;
      });
      if (existing) {
        for (const name of existing) await rename(join(target, name), join(source, name));
        await rmdir(target);
      } else {
        await mkdir(dirname(target), { recursive: true });
      }
      await rename(source, target);
    }
    sandbox.relocateWorkspace(target, this.#snapshots.snapshotterFor(options, target));
  }

  /** How the sandbox's /bin, /lib… relate to /usr: on the host, or in the image (which must hold a shell). */
  async #describeRoot(): Promise<HostRootEntry[]> {
    const rootfsDir = this.#options.rootfsDir;
    if (rootfsDir === undefined) return describeHostRoot();
    const shell = await stat(join(rootfsDir, "usr", "bin", "bash")).catch(() => undefined);
    if (!shell?.isFile())
      throw new SandboxError(
        "sandbox_unavailable",
        `the sandbox root filesystem ${rootfsDir} has no /usr/bin/bash; rebuild it with "outrig image build"`,
      );
    return describeHostRoot(`${resolve(rootfsDir)}/`);
  }

  /** The cgroup driver, detected once; null (with one log line) when cgroups cannot be used. */
  #cgroups(): CgroupDriver | undefined {
    if (this.#cgroupDriver !== undefined) return this.#cgroupDriver ?? undefined;
    if (this.#options.cgroups === "off") {
      this.#cgroupDriver = null;
      return undefined;
    }
    if (process.getuid?.() !== 0) {
      this.#cgroupDriver = null;
      this.#logLimitsSkipped("cgroups need root");
      return undefined;
    }
    const detected = detectCgroups({
      root: this.#options.cgroupRoot,
      groupName: this.#options.cgroupGroupName,
    });
    if (isCgroupDriver(detected)) {
      this.#cgroupDriver = detected;
      // Not awaited: the sweep never touches this server's own groups, so create() need not wait.
      this.#firstSweep = this.#sweep(detected);
      return detected;
    }
    this.#cgroupDriver = null;
    this.#logLimitsSkipped(detected.reason);
    return undefined;
  }

  /**
   * Cleans up the sandbox cgroups that servers which are gone left behind (see
   * sweep-orphaned-cgroups.ts): empty ones are removed, frozen ones killed and removed, running ones
   * left to finish. Runs by itself once, when the provider first uses cgroups; call it to sweep again.
   * Logs one line when it did anything; never throws. Resolves undefined when cgroups are unusable.
   */
  sweepOrphans(): Promise<CgroupSweepResult | undefined> {
    const isFirstUse = this.#firstSweep === undefined;
    const driver = this.#cgroups();
    if (!driver) return Promise.resolve(undefined);
    // The first use of cgroups has just started the sweep: that one is this call's.
    if (isFirstUse && this.#firstSweep) return this.#firstSweep;
    return this.#sweep(driver);
  }

  async #sweep(driver: CgroupDriver): Promise<CgroupSweepResult | undefined> {
    const log = this.#options.log ?? console.warn;
    try {
      const result = await sweepOrphanedCgroups(driver);
      const line = describeCgroupSweep(result);
      if (line !== undefined) log(line);
      return result;
    } catch (error) {
      log(`outrig sandboxes: the orphaned sandbox sweep failed: ${String(error)}`);
      return undefined;
    }
  }

  #logLimitsSkipped(reason: string): void {
    if (this.#hasLoggedLimits) return;
    this.#hasLoggedLimits = true;
    (this.#options.log ?? console.warn)(
      `outrig sandboxes: sandbox limits and suspend are unavailable (${reason}); sandboxes run without them`,
    );
  }

  /** Destroys every sandbox this provider started; later create() calls fail. */
  async close(): Promise<void> {
    this.#isClosed = true;
    await Promise.all([...this.#sandboxes].map((sandbox) => sandbox.destroy()));
    await this.#firstSweep;
  }
}

/** Creates a BubblewrapSandboxProvider. Cheap: bwrap is looked up at each create(). */
export function createBubblewrapSandboxProvider(
  options: BubblewrapSandboxProviderOptions = {},
): BubblewrapSandboxProvider {
  return new BubblewrapSandboxProvider(options);
}

/** Blob key segments allow [A-Za-z0-9._-] only. */

/**
 * Spawns bwrap; with a cgroup, through `/bin/sh` that first writes its own pid into every
 * cgroup.procs and then execs bwrap, so bwrap and everything it starts is in the sandbox's cgroups
 * from its first instruction (no window where a process escapes the limits or the freezer).
 */
function startBubblewrap(bwrapPath: string, layout: SandboxLayout, cgroup?: SandboxCgroup): ChildProcess {
  const dataFiles: (string | Uint8Array)[] = sandboxDataFiles(layout).map((file) => file.content);
  if (layout.seccompFilter !== undefined) dataFiles.push(layout.seccompFilter);
  const bwrapArguments = ["--args", String(ARGS_FD), "--", ...sandboxAgentCommand(layout)];
  let executable = bwrapPath;
  let command = bwrapArguments;
  if (cgroup) {
    for (const file of [...cgroup.procsFiles, bwrapPath])
      if (file.includes("'")) throw new SandboxError("sandbox_invalid_options", `unsupported path: ${file}`);
    const joins = cgroup.procsFiles.map((file) => `echo $$ > '${file}' || exit 111`).join("; ");
    executable = "/bin/sh";
    command = ["-c", `${joins}; exec "$0" "$@"`, bwrapPath, ...bwrapArguments];
  }
  const child = spawn(executable, command, {
    // An empty environment: bwrap's own pid 1 inside the sandbox would otherwise carry ours.
    env: {},
    stdio: ["pipe", "pipe", "pipe", "pipe", ...dataFiles.map(() => "pipe" as const)],
    // Its own process group: a terminal's Ctrl-C goes to the server, which then destroys sandboxes.
    detached: true,
  });
  child.on("error", () => {
    // spawn failures surface as an exit (and through waitForReady)
  });
  const args = buildBubblewrapArguments(layout, FIRST_DATA_FD);
  pipe(child, ARGS_FD).end(`${args.join("\0")}\0`);
  dataFiles.forEach((content, index) => {
    pipe(child, FIRST_DATA_FD + index).end(content);
  });
  for (let fd = ARGS_FD; fd < FIRST_DATA_FD + dataFiles.length; fd += 1) {
    pipe(child, fd).on("error", () => {
      // bwrap exited before reading its setup pipes; reported by waitForReady
    });
  }
  return child;
}

/** The child's pipe at `fd`; they all exist because spawn() was given "pipe" for each. */
function pipe(child: ChildProcess, fd: number): Readable & Writable {
  const stream = child.stdio[fd];
  if (!stream) throw new SandboxError("sandbox_unavailable", `bwrap pipe ${fd} is missing`);
  return stream as Readable & Writable;
}

/** Resolves when the agent says ready; rejects with bwrap's stderr when it exits first or times out. */
function waitForReady(child: ChildProcess, connection: AgentConnection, timeoutMs: number): Promise<void> {
  let stderr = "";
  const onStderr = (chunk: Buffer) => {
    if (stderr.length < MAX_STDERR_BYTES) stderr += chunk.toString("utf8");
  };
  child.stderr?.on("data", onStderr);
  return new Promise<void>((resolvePromise, reject) => {
    const fail = (reason: string, cause?: unknown) => {
      cleanup();
      const detail = stderr.trim().split("\n")[0];
      reject(
        new SandboxError("sandbox_unavailable", `sandbox failed to start: ${detail || reason}`, { cause }),
      );
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(`bwrap exited with ${signal ?? `code ${code}`}`);
    const onError = (error: Error) =>
      fail(
        (error as NodeJS.ErrnoException).code === "ENOENT" ? BUBBLEWRAP_MISSING_MESSAGE : error.message,
        error,
      );
    const timer = setTimeout(() => fail(`the agent was not ready after ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.off("exit", onExit);
      child.off("error", onError);
      child.stderr?.off("data", onStderr);
      // Keep draining stderr so a chatty process can never block on a full pipe.
      child.stderr?.resume();
    };
    child.once("exit", onExit);
    child.once("error", onError);
    connection.ready.then(() => {
      cleanup();
      resolvePromise();
    });
  });
}

/** Resolves once the sandbox recorded in `stateDir` (if any) has exited, or after `maxWaitMs`. */
async function waitForPreviousSandbox(stateDir: string, maxWaitMs: number): Promise<void> {
  const pid = await readSandboxPidFile(stateDir);
  if (pid === undefined) return;
  // A sandbox the crashed server had frozen (standby) can neither notice nor finish: thaw it first.
  if (await isLiveBubblewrap(pid)) await thawFreezerOf(pid);
  const deadline = Date.now() + maxWaitMs;
  while (Date.now() < deadline && (await isLiveBubblewrap(pid))) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** /proc reads are bounded: a process can make its command line as long as its stack allows. */
const PROC_READ_BYTES = 4096;

async function isLiveBubblewrap(pid: number): Promise<boolean> {
  const stat = (await readFileHead(`/proc/${pid}/stat`, PROC_READ_BYTES))?.toString("utf8");
  if (stat === undefined || /\) [ZX] /.test(stat)) return false;
  const commandLine = await readFileHead(`/proc/${pid}/cmdline`, PROC_READ_BYTES);
  return commandLine?.toString("utf8").includes("bwrap") ?? false;
}

/** Thaws the cgroup v1 freezer (or v2 cgroup.freeze) that holds `pid`, if any. Best effort. */
async function thawFreezerOf(pid: number): Promise<void> {
  const membership = (await readFileHead(`/proc/${pid}/cgroup`, PROC_READ_BYTES))?.toString("utf8");
  if (membership === undefined) return;
  for (const line of membership.split("\n")) {
    const [, controllers = "", cgroupPath = ""] = line.split(":");
    if (controllers.split(",").includes("freezer")) {
      await writeFile(join("/sys/fs/cgroup/freezer", cgroupPath, "freezer.state"), "THAWED").catch(
        () => undefined,
      );
    } else if (controllers === "" && cgroupPath) {
      await writeFile(join("/sys/fs/cgroup", cgroupPath, "cgroup.freeze"), "0").catch(() => undefined);
    }
  }
}
