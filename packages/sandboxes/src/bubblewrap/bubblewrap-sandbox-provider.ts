/**
 * SandboxProvider on bubblewrap: one bwrap process tree per sandbox with a long-lived agent inside,
 * reached over its stdin/stdout. Linux only; needs the `bwrap` binary (apt package bubblewrap).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { type CreateSandboxOptions, SandboxError, type SandboxProvider } from "@outrig/core";
import { AgentConnection } from "./agent-connection.js";
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

export interface BubblewrapSandboxProviderOptions {
  /** Path of bwrap, or a name looked up on PATH. Default "bwrap". */
  readonly bwrapPath?: string;
  /** Host node binary bind-mounted read-only to run the agent. Default: this process's node. */
  readonly nodePath?: string;
  /** Uid and gid inside the sandbox. Default 1000. */
  readonly uid?: number;
  readonly gid?: number;
  /** Default "sandbox". */
  readonly hostname?: string;
  /** Size limit of /tmp inside the sandbox. Default: none (tmpfs default, half of RAM). */
  readonly tmpSizeBytes?: number;
  /** readFile rejects with `too_large` above this. Default 32 MiB. */
  readonly maxFileBytes?: number;
  /** How long create() waits for the agent to report ready. Default 15 s. */
  readonly startTimeoutMs?: number;
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

  constructor(options: BubblewrapSandboxProviderOptions = {}) {
    this.#options = options;
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
    const workspaceDir = resolve(options.workspaceDir);
    await mkdir(workspaceDir, { recursive: true, mode: 0o755 });
    this.#hostRoot ??= describeHostRoot();
    const layout: SandboxLayout = {
      uid: this.#options.uid ?? 1000,
      gid: this.#options.gid ?? 1000,
      userName: "sandbox",
      hostname: this.#options.hostname ?? "sandbox",
      nodePath: this.#options.nodePath ?? process.execPath,
      agentPath: AGENT_PATH,
      workspaceDir,
      nodeFlags: AGENT_NODE_FLAGS,
      tmpSizeBytes: this.#options.tmpSizeBytes,
      hostRoot: this.#hostRoot,
    };
    const child = startBubblewrap(bwrapPath, layout);
    const connection = new AgentConnection(pipe(child, 1), pipe(child, 0));
    const sandbox = new BubblewrapSandbox({
      id: `bwrap-${randomUUID()}`,
      process: child,
      connection,
      maxFileBytes: this.#options.maxFileBytes ?? 32 * 1024 * 1024,
      onExit: (exited) => this.#sandboxes.delete(exited),
    });
    this.#sandboxes.add(sandbox);
    try {
      await waitForReady(child, connection, this.#options.startTimeoutMs ?? 15_000);
    } catch (error) {
      await sandbox.destroy();
      throw error;
    }
    return sandbox;
  }

  /** Destroys every sandbox this provider started; later create() calls fail. */
  async close(): Promise<void> {
    this.#isClosed = true;
    await Promise.all([...this.#sandboxes].map((sandbox) => sandbox.destroy()));
  }
}

/** Creates a BubblewrapSandboxProvider. Cheap: bwrap is looked up at each create(). */
export function createBubblewrapSandboxProvider(
  options: BubblewrapSandboxProviderOptions = {},
): BubblewrapSandboxProvider {
  return new BubblewrapSandboxProvider(options);
}

function startBubblewrap(bwrapPath: string, layout: SandboxLayout): ChildProcess {
  const dataFiles = sandboxDataFiles(layout);
  const command = ["--args", String(ARGS_FD), "--", ...sandboxAgentCommand(layout)];
  const child = spawn(bwrapPath, command, {
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
  dataFiles.forEach((file, index) => {
    pipe(child, FIRST_DATA_FD + index).end(file.content);
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
