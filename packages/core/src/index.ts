export {
  AppError,
  type AppErrorOptions,
  assertNever,
  ConfigError,
  ensureError,
  InputError,
  InvariantError,
  isRetryableStatus,
  ProviderError,
  SandboxError,
  StorageError,
} from "./errors/app-error.js";
export type {
  LanguageModel,
  ModelEvent,
  ModelFactory,
  ModelRequest,
  ToolDefinition,
} from "./model/language-model.js";
export type {
  CreateSandboxOptions,
  DirEntry,
  ExecRequest,
  ExecResult,
  FileKind,
  FileStat,
  ListOptions,
  Sandbox,
  SandboxHandle,
  SandboxProvider,
} from "./sandbox/sandbox.js";
export { FileError, type FileErrorCode, isFileError } from "./sandbox/sandbox-errors.js";
export type { CreateSessionInput, SessionRecord, SessionStore } from "./store/session-store.js";
export type { FileReadRecord, FileStateTracker, Tool, ToolContext, ToolResult } from "./tools/tool.js";
export {
  createMountTable,
  MAX_PATH_LENGTH,
  type Mount,
  MountTable,
  normalizePath,
  type ResolvedPath,
} from "./vfs/create-mount-table.js";
export type { FileSystem } from "./vfs/file-system.js";
export { SandboxFileSystem } from "./vfs/sandbox-file-system.js";
export { type LoopLimits, type NextAction, nextAction, retryDelayMs } from "./loop/next-action.js";
export {
  applyEvent,
  foldEvents,
  INTERRUPTED_TOOL_OUTPUT,
  initialRunState,
  type PendingToolCall,
  type RunState,
  type TurnStatus,
} from "./loop/run-state.js";
export { loadRunState, runSession, type SessionRunContext, type SessionRunnerDeps } from "./loop/run-loop.js";
export {
  executeModelCall,
  executeToolCall,
  inputValidationResult,
  type ModelCallOutcome,
  unknownToolResult,
} from "./loop/step-executors.js";
export { buildSystemPrompt, type SystemPromptOptions } from "./loop/system-prompt.js";
