/**
 * One runc sandbox: a container whose agent serves the NDJSON protocol on a unix socket, with
 * standby (`runc pause`) and hibernate (`runc checkpoint` with CRIU, restored into a new container).
 */

import { lstat, readdir, readFile, rm, stat } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";
import {
  type DirEntry,
  type ExecRequest,
  type ExecResult,
  type FileCallOptions,
  type FileStat,
  fileErrorCodeOf,
  type ListOptions,
  type Sandbox,
  SandboxError,
  type SandboxHandle,
  type SandboxResumeResult,
  type SandboxState,
  type SnapshotRef,
} from "@outrig/core";
import { AgentConnection, AgentRequestError, agentMessageBytesFor } from "../bubblewrap/agent-connection.js";
import type { SandboxAgentInfo } from "../bubblewrap/bubblewrap-sandbox.js";
import { resolveExecutable } from "../bubblewrap/check-bubblewrap.js";
import { toFileError } from "../bubblewrap/to-file-error.js";
import type { WorkspaceSnapshotter } from "../snapshots/workspace-snapshotter.js";
import { type RuncCommandOptions, runBinary, runRunc, runRuncDetached } from "./runc-cli.js";

interface AgentExecResult extends ExecResult {
  readonly isCancelled: boolean;
}

export interface RuncSandboxOptions {
  readonly id: string;
  /** Host directory of this sandbox: bundle/, agent/ (socket), checkpoint images. */
  readonly directory: string;
  readonly bundleDir: string;
  readonly socketPath: string;
  /** The agent's channel key (its `--key-file`): every message on the socket is authenticated. */
  readonly channelKey: Uint8Array;
  readonly workspaceDir: string;
  readonly runc: RuncCommandOptions;
  readonly maxFileBytes: number;
  readonly connectTimeoutMs: number;
  /** Present when the provider has a BlobStore. */
  readonly snapshotter?: WorkspaceSnapshotter;
  /** Called once the sandbox is destroyed (or found dead and cleaned up). */
  readonly onDestroyed: (sandbox: RuncSandbox) => void;
}

/** How a call finds the sandbox: running and connected. */
type Phase = "running" | "standby" | "hibernated" | "dead";

export class RuncSandbox implements SandboxHandle {
  readonly id: string;
  readonly sandbox: Sandbox;
  readonly #options: RuncSandboxOptions;
  /** Container id of the current incarnation (a restore starts a new one). */
  #containerId: string;
  #incarnation = 0;
  #connection: AgentConnection | undefined;
  #socket: Socket | undefined;
  #phase: Phase = "running";
  /** True while suspend/hibernate/resume is changing the phase. */
  #isTransitioning = false;
  #transition: Promise<unknown> = Promise.resolve();
  /** Agent calls in flight; hibernate refuses to drop them. */
  #inFlight = 0;
  #isDestroyed = false;
  #destroyed: Promise<void> | undefined;
  /** Size of the last checkpoint image on disk. */
  #checkpointBytes = 0;

  constructor(options: RuncSandboxOptions) {
    this.id = options.id;
    this.#options = options;
    this.#containerId = options.id;
    this.sandbox = Object.freeze({
      exec: (request: ExecRequest, signal: AbortSignal) => this.exec(request, signal),
      readFile: (path: string) => this.readFile(path),
      writeFile: (path: string, data: Uint8Array, options?: FileCallOptions) =>
        this.writeFile(path, data, options),
      stat: (path: string) => this.stat(path),
      list: (path: string, options?: ListOptions) => this.list(path, options),
      remove: (path: string, options?: FileCallOptions) => this.remove(path, options),
    });
  }

  /** The runc container id of the current incarnation (changes on every restore). */
  get containerId(): string {
    return this.#containerId;
  }

  get workspaceDir(): string {
    return this.#options.workspaceDir;
  }

  get state(): SandboxState {
    return this.#isDestroyed ? "dead" : this.#phase;
  }

  isAlive(): boolean {
    return !this.#isDestroyed && this.#phase !== "dead";
  }

  /** Bytes of the last CRIU image (0 before the first hibernate). */
  get checkpointBytes(): number {
    return this.#checkpointBytes;
  }

  /** Connects to the agent's socket, retrying until it listens; resolves on its "ready" line. */
  async connect(): Promise<void> {
    const deadline = Date.now() + this.#options.connectTimeoutMs;
    for (;;) {
      try {
        await this.#connectOnce();
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new SandboxError(
            "sandbox_unavailable",
            `the sandbox agent did not answer within ${this.#options.connectTimeoutMs} ms`,
            { cause: error },
          );
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  }

  async #connectOnce(): Promise<void> {
    // The socket's directory is the sandbox's to write: never connect through a link planted there.
    const entry = await lstat(this.#options.socketPath);
    if (!entry.isSocket())
      throw new SandboxError("sandbox_unavailable", `the agent socket of sandbox ${this.id} is not a socket`);
    return new Promise((resolve, reject) => {
      const socket = createConnection(this.#options.socketPath);
      socket.once("error", reject);
      socket.once("connect", () => {
        // Connected: from here on the connection reports failures (readline forwards socket errors).
        socket.off("error", reject);
        socket.on("error", () => undefined);
        const connection = new AgentConnection(socket, socket, {
          maxMessageBytes: agentMessageBytesFor(this.#options.maxFileBytes),
          channelKey: this.#options.channelKey,
          // A malformed or oversized message: this sandbox is destroyed, its calls fail, nothing else.
          onProtocolError: () => void this.destroy().catch(() => undefined),
        });
        socket.once("close", () => {
          connection.close(
            new SandboxError(
              "sandbox_unavailable",
              this.#isDestroyed ? `sandbox ${this.id} was destroyed` : `sandbox ${this.id} lost its agent`,
            ),
          );
          // Closed by us (hibernate, destroy) or the agent died: only the latter makes the sandbox dead.
          if (this.#socket === socket && !this.#isTransitioning && !this.#isDestroyed) {
            this.#socket = undefined;
            this.#phase = "dead";
          }
          reject(new Error("the agent closed the connection before it was ready"));
        });
        connection.ready.then(() => {
          this.#socket = socket;
          this.#connection = connection;
          resolve();
        });
      });
    });
  }

  /** Freezes the container (`runc pause`); memory stays. Any later call resumes it. */
  suspend(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#phase === "standby" || this.#phase === "hibernated") return;
      this.#assertUsable();
      await runRunc(this.#options.runc, ["pause", this.#containerId]);
      this.#phase = "standby";
    });
  }

  /**
   * Checkpoints the container to disk with CRIU and frees its memory: the agent connection is
   * closed first (CRIU cannot dump a socket to the host), then `runc checkpoint` stops the container.
   * Rejects with `sandbox_busy` while calls are in flight. Any later call restores it.
   */
  hibernate(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.#phase === "hibernated") return;
      this.#assertUsable();
      if (this.#options.runc.criuPath === undefined)
        throw new SandboxError("sandbox_unsupported", "hibernate needs CRIU >= 4 (scripts/install-criu.sh)");
      if (this.#inFlight > 0)
        throw new SandboxError("sandbox_busy", `sandbox ${this.id} has ${this.#inFlight} calls in flight`);
      if (this.#phase === "standby") {
        await runRunc(this.#options.runc, ["resume", this.#containerId]);
        this.#phase = "running";
      }
      await this.#detach();
      const images = this.#imagesDir();
      await rm(images, { recursive: true, force: true });
      try {
        await runRunc(this.#options.runc, [
          "checkpoint",
          "--image-path",
          images,
          "--work-path",
          join(this.#options.directory, "checkpoint-work"),
          this.#containerId,
        ]);
      } catch (error) {
        // The container still runs (CRIU leaves it on failure): reconnect and report the failure,
        // with CRIU's own error lines (its log is removed with the sandbox).
        await this.connect().catch(() => {
          this.#phase = "dead";
        });
        const criuErrors = await criuLogErrors(join(this.#options.directory, "checkpoint-work", "dump.log"));
        if (criuErrors === "") throw error;
        throw new SandboxError("sandbox_unavailable", `${(error as Error).message}; CRIU: ${criuErrors}`, {
          cause: error,
        });
      }
      await runRunc(this.#options.runc, ["delete", "--force", this.#containerId]).catch(() => undefined);
      this.#checkpointBytes = await directoryBytes(images);
      this.#phase = "hibernated";
    });
  }

  /** Thaws a suspended sandbox or restores a hibernated one into a new container. */
  resume(): Promise<SandboxResumeResult> {
    return this.#enqueue(async () => {
      const startedAt = performance.now();
      if (this.#phase === "standby") {
        await runRunc(this.#options.runc, ["resume", this.#containerId]);
        this.#phase = "running";
        return { latencyMs: performance.now() - startedAt, wasSuspended: true, from: "standby" as const };
      }
      if (this.#phase === "hibernated") {
        await this.#restore();
        return { latencyMs: performance.now() - startedAt, wasSuspended: true, from: "hibernated" as const };
      }
      this.#assertUsable();
      return { latencyMs: 0, wasSuspended: false };
    });
  }

  async #restore(): Promise<void> {
    this.#incarnation += 1;
    const containerId = `${this.id}-${this.#incarnation}`;
    const pidFile = join(this.#options.directory, "restore.pid");
    let agentPid: number;
    try {
      await runRuncDetached(this.#options.runc, [
        "restore",
        "--detach",
        "--image-path",
        this.#imagesDir(),
        "--work-path",
        join(this.#options.directory, "restore-work"),
        "--bundle",
        this.#options.bundleDir,
        "--pid-file",
        pidFile,
        containerId,
      ]);
      const initPid = Number.parseInt(await readFile(pidFile, "utf8"), 10);
      await bringLoopbackUp(initPid);
      agentPid = await findAgentPid(initPid);
    } catch (error) {
      await runRunc(this.#options.runc, ["delete", "--force", containerId]).catch(() => undefined);
      // The images stay: a later resume may try again.
      throw error;
    }
    this.#containerId = containerId;
    try {
      // The agent closed its listening socket before the checkpoint; this makes it listen again.
      process.kill(agentPid, "SIGUSR2");
      await this.connect();
    } catch (error) {
      this.#phase = "dead";
      throw error;
    }
    this.#phase = "running";
    await rm(this.#imagesDir(), { recursive: true, force: true });
  }

  /** Asks the agent to close its end (so no half-closed socket is dumped), then closes ours. */
  async #detach(): Promise<void> {
    const socket = this.#socket;
    const connection = this.#connection;
    if (!socket || !connection) return;
    const closed = new Promise<void>((resolve) => {
      if (socket.destroyed) resolve();
      else socket.once("close", () => resolve());
    });
    await connection.request("detach", {}).catch(() => undefined);
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    socket.destroy();
    await closed;
    this.#socket = undefined;
  }

  #imagesDir(): string {
    return join(this.#options.directory, "checkpoint");
  }

  #assertUsable(): void {
    if (this.#isDestroyed) throw new SandboxError("sandbox_unavailable", `sandbox ${this.id} was destroyed`);
    if (this.#phase === "dead") throw new SandboxError("sandbox_unavailable", `sandbox ${this.id} is dead`);
  }

  /** Serializes lifecycle transitions; calls wait for them (see #ready). */
  #enqueue<Result>(step: () => Promise<Result>): Promise<Result> {
    const next = this.#transition.then(async () => {
      this.#isTransitioning = true;
      try {
        return await step();
      } finally {
        this.#isTransitioning = false;
      }
    });
    this.#transition = next.catch(() => undefined);
    return next;
  }

  /** Waits for transitions, resumes a suspended or hibernated sandbox, and returns the connection. */
  async #ready(): Promise<AgentConnection> {
    for (;;) {
      await this.#transition;
      this.#assertUsable();
      if (this.#isTransitioning) continue;
      if (this.#phase === "running" && this.#connection) return this.#connection;
      await this.resume();
    }
  }

  /** Runs one agent request with the in-flight count held (hibernate waits for none). */
  async #request<Result>(op: string, payload: Record<string, unknown>, onId?: (id: number) => void) {
    const connection = await this.#ready();
    this.#inFlight += 1;
    try {
      const id = connection.nextId();
      onId?.(id);
      return await connection.request<Result>(op, payload, id);
    } finally {
      this.#inFlight -= 1;
    }
  }

  async exec(request: ExecRequest, signal: AbortSignal): Promise<ExecResult> {
    signal.throwIfAborted();
    let requestId: number | undefined;
    const onAbort = () => {
      const connection = this.#connection;
      if (requestId !== undefined && connection)
        connection.request("cancel", { target: requestId }).catch(() => undefined);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const result = await this.#request<AgentExecResult>(
        "exec",
        {
          command: request.command,
          cwd: request.cwd,
          env: request.env,
          timeoutMs: request.timeoutMs,
          maxOutputBytes: request.maxOutputBytes,
          idempotencyKey: request.idempotencyKey,
        },
        (id) => {
          requestId = id;
          if (signal.aborted) onAbort();
        },
      );
      signal.throwIfAborted();
      const { isCancelled: _isCancelled, ...execResult } = result;
      return execResult;
    } catch (error) {
      if (error instanceof AgentRequestError) {
        if (fileErrorCodeOf(error.body.code) !== "io_error") throw toFileError(error, request.cwd ?? "");
        throw new SandboxError("sandbox_exec_failed", `exec failed: ${error.message}`, { cause: error });
      }
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  async readFile(path: string): Promise<Uint8Array> {
    const result = await this.#fileRequest<{ data: string }>("readFile", path, {
      maxBytes: this.#options.maxFileBytes,
    });
    const buffer = Buffer.from(result.data, "base64");
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  async writeFile(path: string, data: Uint8Array, options: FileCallOptions = {}): Promise<void> {
    const encoded = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
    await this.#fileRequest("writeFile", path, { data: encoded, idempotencyKey: options.idempotencyKey });
  }

  async stat(path: string): Promise<FileStat | null> {
    return (await this.#fileRequest<{ stat: FileStat | null }>("stat", path, {})).stat;
  }

  async list(path: string, options: ListOptions = {}): Promise<DirEntry[]> {
    const result = await this.#fileRequest<{ entries: DirEntry[] }>("list", path, {
      recursive: options.recursive ?? false,
      limit: options.limit,
    });
    return result.entries;
  }

  async remove(path: string, options: FileCallOptions = {}): Promise<void> {
    await this.#fileRequest("remove", path, { idempotencyKey: options.idempotencyKey });
  }

  /** Packs the workspace into the provider's BlobStore (works in every state but dead). */
  snapshot(): Promise<SnapshotRef> {
    if (!this.#options.snapshotter)
      return Promise.reject(
        new SandboxError("sandbox_unsupported", "snapshots need a blobStore in the provider options"),
      );
    return this.#options.snapshotter.snapshot();
  }

  /** Memory figures of the agent process (resumes the sandbox first). */
  getAgentInfo(): Promise<SandboxAgentInfo> {
    return this.#request<SandboxAgentInfo>("info", {});
  }

  /**
   * Memory charged to the container's memory cgroup (`runc events --stats`), or undefined when no
   * container is running (hibernated: the memory is freed).
   */
  async getMemoryBytes(): Promise<number | undefined> {
    if (this.#phase !== "running" && this.#phase !== "standby") return undefined;
    const output = await runRunc(this.#options.runc, ["events", "--stats", this.#containerId]).catch(
      () => undefined,
    );
    if (output === undefined) return undefined;
    try {
      const usage = (JSON.parse(output) as { data?: { memory?: { usage?: { usage?: number } } } }).data
        ?.memory?.usage?.usage;
      return typeof usage === "number" ? usage : undefined;
    } catch {
      return undefined;
    }
  }

  async #fileRequest<Result>(op: string, path: string, payload: Record<string, unknown>): Promise<Result> {
    try {
      return await this.#request<Result>(op, { ...payload, path });
    } catch (error) {
      if (error instanceof AgentRequestError) throw toFileError(error, path);
      throw error;
    }
  }

  /** Kills the container, deletes it and removes the bundle and any checkpoint. Idempotent. */
  destroy(): Promise<void> {
    if (!this.#isDestroyed) {
      this.#isDestroyed = true;
      this.#socket?.destroy();
      this.#connection?.close(new SandboxError("sandbox_unavailable", `sandbox ${this.id} was destroyed`));
      this.#destroyed = (async () => {
        // A transition in progress (checkpoint, restore) finishes first, so no container is left behind.
        await this.#transition;
        await runRunc(this.#options.runc, ["delete", "--force", this.#containerId]).catch(() => undefined);
        await rm(this.#options.directory, { recursive: true, force: true }).catch(() => undefined);
        this.#phase = "dead";
        this.#options.onDestroyed(this);
      })();
    }
    return this.#destroyed ?? Promise.resolve();
  }
}

/** The host pid of the agent: the child of the container's init (bash) that runs sandbox-agent.mjs. */
async function findAgentPid(initPid: number): Promise<number> {
  const children = await readFile(`/proc/${initPid}/task/${initPid}/children`, "utf8").catch(() => "");
  for (const child of children.trim().split(/\s+/).filter(Boolean)) {
    const commandLine = await readFile(`/proc/${child}/cmdline`, "utf8").catch(() => "");
    if (commandLine.includes("sandbox-agent.mjs")) return Number.parseInt(child, 10);
  }
  throw new SandboxError(
    "sandbox_unavailable",
    `no sandbox agent under the restored container's init ${initPid}`,
  );
}

/** Total bytes of the regular files directly inside `directory` (CRIU images are flat). */
async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(directory).catch(() => [] as string[])) {
    const stats = await stat(join(directory, name)).catch(() => undefined);
    if (stats?.isFile()) total += stats.size;
  }
  return total;
}

/** The last few error lines of a CRIU log, joined; "" when the log is missing or has none. */
async function criuLogErrors(logPath: string): Promise<string> {
  const text = await readFile(logPath, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => /Error|error/.test(line))
    .slice(-5)
    .map((line) => line.trim())
    .join(" | ");
}

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * A restored container's network namespace comes back with `lo` down (runc brings it up only when it
 * starts a container), and the sandbox has no capability to raise it; without it the egress bridge
 * on 127.0.0.1:3128 is unreachable. Raised from the host, inside that namespace only.
 */
async function bringLoopbackUp(initPid: number): Promise<void> {
  const nsenter = resolveExecutable("nsenter", SYSTEM_PATH);
  const ip = resolveExecutable("ip", SYSTEM_PATH);
  if (nsenter === undefined || ip === undefined) {
    throw new SandboxError(
      "sandbox_unavailable",
      'restoring a runc sandbox needs nsenter and ip: run "apt-get install -y util-linux iproute2"',
    );
  }
  await runBinary(nsenter, ["--target", String(initPid), "--net", ip, "link", "set", "lo", "up"], 10_000);
}
