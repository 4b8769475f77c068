/** The tool contract. Tools never throw for model mistakes: they return `isError: true` results. */
import type { z } from "zod";
import type { ExecRequest, ExecResult } from "../sandbox/sandbox.js";
import type { FileSystem } from "../vfs/file-system.js";

export interface ToolResult {
  readonly output: string;
  readonly isError: boolean;
}

/**
 * Per-session record of which files the model has read (path → mtime at read time), for
 * Claude Code's read-before-edit rule. Owned by the session runtime; tools update it.
 */
export interface FileStateTracker {
  get(path: string): FileReadRecord | undefined;
  set(path: string, record: FileReadRecord): void;
}

export interface FileReadRecord {
  readonly mtimeMs: number;
  /** True when only a slice (offset/limit) was read. */
  readonly isPartial: boolean;
}

export interface ToolContext {
  /** The session's file namespace (a MountTable): /workspace and friends. */
  readonly fs: FileSystem;
  /** Runs a shell command in the session's sandbox (acquired lazily). */
  exec(request: ExecRequest, signal: AbortSignal): Promise<ExecResult>;
  readonly fileState: FileStateTracker;
  readonly signal: AbortSignal;
  readonly toolCallId: string;
  /** Working directory shown to the model: /workspace. */
  readonly cwd: string;
}

export interface Tool<Input = unknown> {
  readonly name: string;
  readonly description: string;
  /** Validates the model's input; a parse failure becomes an InputValidationError tool result. */
  readonly inputSchema: z.ZodType<Input>;
  /**
   * Vendor-defined tool types this tool implements, by provider (e.g. `{ anthropic: "memory_20250818" }`).
   * Such a tool is offered only to models of those providers, as the vendor's own tool type.
   */
  readonly providerTools?: Readonly<Record<string, string>>;
  execute(input: Input, context: ToolContext): Promise<ToolResult>;
}
