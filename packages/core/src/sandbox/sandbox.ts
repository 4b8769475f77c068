/** The sandbox boundary: the backend reaches a sandbox only through these calls. */

export interface ExecRequest {
  readonly command: string;
  /** Absolute path inside the sandbox; defaults to /workspace. */
  readonly cwd?: string;
  /** Wall-clock limit; on expiry the whole process group is killed. */
  readonly timeoutMs: number;
  readonly env?: Readonly<Record<string, string>>;
  /** Output beyond this many bytes per stream is dropped and `isTruncated` is set. */
  readonly maxOutputBytes?: number;
  /**
   * Exactly-once key: a provider that supports it runs a given key at most once while the sandbox
   * lives and answers a repeated call with the recorded result (`isReplayed: true`).
   */
  readonly idempotencyKey?: string;
}

export interface ExecResult {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly isTimedOut: boolean;
  readonly isTruncated: boolean;
  readonly durationMs: number;
  /** True when this is the recorded result of an earlier call with the same idempotency key. */
  readonly isReplayed?: boolean;
  /** Set when a sandbox limit stopped the command (e.g. "memory": the OOM killer killed a process). */
  readonly limitExceeded?: SandboxLimitKind;
  /**
   * Set when a time limit lower than the request's applied (an org's command time limit): the limit
   * the command ran under, so a timeout names the limit that killed it.
   */
  readonly timeLimit?: { readonly ms: number; readonly source: string };
}

export type SandboxLimitKind = "memory" | "pids" | "disk";

/** Options of a file call that changes the workspace. */
export interface FileCallOptions {
  /** Exactly-once key, as for `ExecRequest.idempotencyKey`. */
  readonly idempotencyKey?: string;
}

export type FileKind = "file" | "directory" | "symlink" | "other";

export interface FileStat {
  readonly kind: FileKind;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface DirEntry {
  /** Path relative to the listed directory, `/`-separated. */
  readonly path: string;
  readonly kind: FileKind;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface ListOptions {
  readonly recursive?: boolean;
  /** Stop after this many entries (the result is then marked truncated by the caller). */
  readonly limit?: number;
}

/** What tools get: files and processes, no lifecycle. Paths are absolute paths inside the sandbox. */
export interface Sandbox {
  exec(request: ExecRequest, signal: AbortSignal): Promise<ExecResult>;
  readFile(path: string): Promise<Uint8Array>;
  /** Creates parent directories. */
  writeFile(path: string, data: Uint8Array, options?: FileCallOptions): Promise<void>;
  /** Resolves null when the path does not exist. */
  stat(path: string): Promise<FileStat | null>;
  list(path: string, options?: ListOptions): Promise<DirEntry[]>;
  remove(path: string, options?: FileCallOptions): Promise<void>;
}

/** What the run owner gets. `sandbox` is the narrowed view to pass to tools. */
export interface SandboxHandle {
  readonly id: string;
  readonly sandbox: Sandbox;
  /** True while the sandbox process is alive. */
  isAlive(): boolean;
  /** Kills every process and removes the sandbox's own state. Idempotent. */
  destroy(): Promise<void>;
  /**
   * Optional lifecycle (providers may omit these). `suspend` freezes every process (memory kept,
   * no CPU); any later call on `sandbox` resumes it first. Rejects with
   * `SandboxError("sandbox_unsupported")` where freezing is not available.
   */
  suspend?(): Promise<void>;
  /**
   * Checkpoints every process to disk (CRIU) and frees their memory; `resume` (or any later call on
   * `sandbox`) restores them, background processes included. Rejects with
   * `SandboxError("sandbox_unsupported")` where checkpointing is not available.
   */
  hibernate?(): Promise<void>;
  /** Thaws a suspended sandbox or restores a hibernated one; a no-op (latency 0) when it is running. */
  resume?(): Promise<SandboxResumeResult>;
  /** Packs the workspace into the provider's BlobStore (incrementally where it can). */
  snapshot?(): Promise<SnapshotRef>;
  /** "running", "standby" (suspended), "hibernated" (checkpointed to disk) or "dead". */
  readonly state?: SandboxState;
}

export type SandboxState = "running" | "standby" | "hibernated" | "dead";

export interface SandboxResumeResult {
  /** Time from the resume request until every process was running again. */
  readonly latencyMs: number;
  /** False when the sandbox was already running. */
  readonly wasSuspended: boolean;
  /** The state it was resumed from, when it was not running. */
  readonly from?: "standby" | "hibernated";
}

/** A stored workspace snapshot. Pass it to the provider's restore helper to unpack it. */
export interface SnapshotRef {
  /** BlobStore key of the snapshot's manifest. */
  readonly key: string;
  readonly createdAt: string;
  /** Compressed bytes written by this snapshot (the increment only, when incremental). */
  readonly sizeBytes: number;
  /** Entries (files, directories, symlinks) in the workspace at snapshot time. */
  readonly entryCount: number;
  readonly isIncremental: boolean;
}

export interface ReadOnlyMount {
  /** Host directory or file. */
  readonly hostPath: string;
  /** Absolute path inside the sandbox. */
  readonly sandboxPath: string;
}

export interface SandboxLimits {
  readonly memoryBytes?: number;
  readonly pids?: number;
  /** CPU share in cores (e.g. 1.5). */
  readonly cpus?: number;
  /** Workspace disk quota. */
  readonly diskBytes?: number;
}

export interface CreateSandboxOptions {
  readonly sessionId: string;
  readonly orgId: string;
  /** Host directory bound writable at /workspace. Created when missing. */
  readonly workspaceDir: string;
  /** Extra read-only views (e.g. database-backed /memories and /skills, a CA bundle). */
  readonly readOnlyMounts?: readonly ReadOnlyMount[];
  /**
   * Host directories bound writable, after the read-only ones: a session's /mnt/session/outputs and its
   * read_write memory stores. What the sandbox writes there is read back through the sandbox or
   * committed by the server after each command, never by following the sandbox's links on the host.
   */
  readonly writableMounts?: readonly ReadOnlyMount[];
  /** Extra environment for every command (never secrets: placeholders only). */
  readonly env?: Readonly<Record<string, string>>;
  readonly limits?: SandboxLimits;
  /**
   * Host unix socket of the egress proxy. When set, the sandbox reaches it at 127.0.0.1:3128 (and
   * only it); without it the sandbox has no network at all.
   */
  readonly egressSocketPath?: string;
  /**
   * Host directory that outlives this sandbox (one per session). The sandbox keeps its exactly-once
   * journal there, so a replacement sandbox still knows which calls already completed.
   */
  readonly stateDir?: string;
}

export interface SandboxProvider {
  readonly id: string;
  create(options: CreateSandboxOptions): Promise<SandboxHandle>;
  /** Destroys every sandbox this provider started. */
  close(): Promise<void>;
}
