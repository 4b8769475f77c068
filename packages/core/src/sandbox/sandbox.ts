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
}

export interface ExecResult {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly isTimedOut: boolean;
  readonly isTruncated: boolean;
  readonly durationMs: number;
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
  writeFile(path: string, data: Uint8Array): Promise<void>;
  /** Resolves null when the path does not exist. */
  stat(path: string): Promise<FileStat | null>;
  list(path: string, options?: ListOptions): Promise<DirEntry[]>;
  remove(path: string): Promise<void>;
}

/** What the run owner gets. `sandbox` is the narrowed view to pass to tools. */
export interface SandboxHandle {
  readonly id: string;
  readonly sandbox: Sandbox;
  /** True while the sandbox process is alive. */
  isAlive(): boolean;
  /** Kills every process and removes the sandbox's own state. Idempotent. */
  destroy(): Promise<void>;
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
  /** Extra environment for every command (never secrets: placeholders only). */
  readonly env?: Readonly<Record<string, string>>;
  readonly limits?: SandboxLimits;
  /**
   * Host unix socket of the egress proxy. When set, the sandbox reaches it at 127.0.0.1:3128 (and
   * only it); without it the sandbox has no network at all.
   */
  readonly egressSocketPath?: string;
}

export interface SandboxProvider {
  readonly id: string;
  create(options: CreateSandboxOptions): Promise<SandboxHandle>;
  /** Destroys every sandbox this provider started. */
  close(): Promise<void>;
}
