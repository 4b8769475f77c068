/** One running bubblewrap sandbox: the bwrap process tree and the agent connection inside it. */
import type { ChildProcess } from "node:child_process";
import {
  type DirEntry,
  type ExecRequest,
  type ExecResult,
  type FileStat,
  type ListOptions,
  type Sandbox,
  SandboxError,
  type SandboxHandle,
} from "@outrig/core";
import { type AgentConnection, AgentRequestError } from "./agent-connection.js";
import { fileErrorCodeOf, toFileError } from "./to-file-error.js";

/** Memory figures of the agent process, read from its /proc/self/status. */
export interface SandboxAgentInfo {
  /** Pid inside the sandbox's pid namespace. */
  readonly pid: number;
  readonly rssBytes: number;
  /** Anonymous (private) resident memory; the node binary's file pages are shared between sandboxes. */
  readonly rssAnonBytes: number;
  readonly heapUsedBytes: number;
}

interface AgentExecResult extends ExecResult {
  readonly isCancelled: boolean;
}

export interface BubblewrapSandboxOptions {
  readonly id: string;
  readonly process: ChildProcess;
  readonly connection: AgentConnection;
  readonly maxFileBytes: number;
  /** Called once, after the bwrap process has exited (destroyed or died). */
  readonly onExit: (sandbox: BubblewrapSandbox) => void;
}

export class BubblewrapSandbox implements SandboxHandle {
  readonly id: string;
  /** The narrowed view for tools: file and process calls only, no lifecycle. */
  readonly sandbox: Sandbox;
  readonly #process: ChildProcess;
  readonly #connection: AgentConnection;
  readonly #maxFileBytes: number;
  readonly #exited: Promise<void>;
  #hasExited = false;
  #isDestroyed = false;

  constructor(options: BubblewrapSandboxOptions) {
    this.id = options.id;
    this.#process = options.process;
    this.#connection = options.connection;
    this.#maxFileBytes = options.maxFileBytes;
    this.#exited = new Promise((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.#hasExited) return;
        this.#hasExited = true;
        this.#connection.close(
          new SandboxError(
            "sandbox_unavailable",
            this.#isDestroyed
              ? `sandbox ${this.id} was destroyed`
              : `sandbox ${this.id} stopped (bwrap exited with ${signal ?? `code ${code}`})`,
          ),
        );
        options.onExit(this);
        resolve();
      };
      if (this.#process.exitCode !== null || this.#process.signalCode !== null) {
        onExit(this.#process.exitCode, this.#process.signalCode);
        return;
      }
      this.#process.once("exit", onExit);
      // A failed spawn (no pid) emits "error" and never "exit".
      this.#process.once("error", () => {
        if (this.#process.pid === undefined && !this.#hasExited) onExit(null, null);
      });
    });
    this.sandbox = Object.freeze({
      exec: (request: ExecRequest, signal: AbortSignal) => this.exec(request, signal),
      readFile: (path: string) => this.readFile(path),
      writeFile: (path: string, data: Uint8Array) => this.writeFile(path, data),
      stat: (path: string) => this.stat(path),
      list: (path: string, options?: ListOptions) => this.list(path, options),
      remove: (path: string) => this.remove(path),
    });
  }

  isAlive(): boolean {
    return !this.#hasExited && !this.#isDestroyed && !this.#connection.isClosed;
  }

  /** The host pid of the outer bwrap process (for diagnostics and tests). */
  get hostPid(): number | undefined {
    return this.#process.pid;
  }

  /**
   * Runs `bash -c command` in a new process group. Resolves with the result, also for non-zero exits
   * and timeouts. When `signal` aborts, the process group is killed and the call rejects with
   * `signal.reason` once the agent confirms. A missing cwd rejects with a FileError.
   */
  async exec(request: ExecRequest, signal: AbortSignal): Promise<ExecResult> {
    signal.throwIfAborted();
    const id = this.#connection.nextId();
    const onAbort = () => {
      this.#connection.request("cancel", { target: id }).catch(() => {
        // the agent is gone; the exec call itself rejects with sandbox_unavailable
      });
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      const result = await this.#connection.request<AgentExecResult>(
        "exec",
        {
          command: request.command,
          cwd: request.cwd,
          env: request.env,
          timeoutMs: request.timeoutMs,
          maxOutputBytes: request.maxOutputBytes,
        },
        id,
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
      maxBytes: this.#maxFileBytes,
    });
    const buffer = Buffer.from(result.data, "base64");
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  async writeFile(path: string, data: Uint8Array): Promise<void> {
    const encoded = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
    await this.#fileRequest("writeFile", path, { data: encoded });
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

  async remove(path: string): Promise<void> {
    await this.#fileRequest("remove", path, {});
  }

  /** Memory figures of the agent process. */
  getAgentInfo(): Promise<SandboxAgentInfo> {
    return this.#connection.request<SandboxAgentInfo>("info", {});
  }

  /** Kills the bwrap process tree (every process in the sandbox) and waits for it. Idempotent. */
  async destroy(): Promise<void> {
    if (!this.#isDestroyed) {
      this.#isDestroyed = true;
      this.#connection.close(new SandboxError("sandbox_unavailable", `sandbox ${this.id} was destroyed`));
      // --die-with-parent: killing the outer bwrap kills the sandbox's pid 1, and with it the namespace.
      if (!this.#hasExited) this.#process.kill("SIGKILL");
    }
    await this.#exited;
  }

  async #fileRequest<Result>(op: string, path: string, payload: Record<string, unknown>): Promise<Result> {
    try {
      return await this.#connection.request<Result>(op, { ...payload, path });
    } catch (error) {
      if (error instanceof AgentRequestError) throw toFileError(error, path);
      throw error;
    }
  }
}
