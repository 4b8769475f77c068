export {
  type AgentConfig,
  type AgentDirectory,
  type AgentSkillRef,
  type CustomToolDefinition,
  type EnvironmentConfig,
  type EnvironmentDirectory,
  type EnvironmentNetworking,
  type PermissionPolicy,
  TOOLSET_TOOL_NAMES,
  type ToolsetToolName,
  type ToolsetToolSettings,
} from "./agents/agent-config.js";
export type { AgentListOptions, AgentRecord, AgentStore } from "./agents/agent-store.js";
export { enabledTools, toolPermissionsOf, toolsetNameOf } from "./agents/agent-tool-permissions.js";
export { type AgentOverrides, applyAgentOverrides } from "./agents/apply-agent-overrides.js";
export { agentConfigOf, agentResourceOf, createAgentDirectory } from "./agents/create-agent-directory.js";
export type {
  EnvironmentListOptions,
  EnvironmentRecord,
  EnvironmentStore,
} from "./agents/environment-store.js";
export {
  applyAgentUpdate,
  modelIdProblem,
  providerModelSpec,
  resolveAgentDefinition,
} from "./agents/resolve-agent-definition.js";
export {
  applyEnvironmentUpdate,
  assertEnvironmentRunnable,
  createEnvironmentDirectory,
  DEFAULT_NETWORKING,
  environmentConfigOf,
  environmentResourceOf,
  resolveEnvironmentDefinition,
} from "./agents/resolve-environment.js";
export {
  amountNanos,
  type BudgetLimit,
  listCostNanos,
  type ModelListPrice,
  type MonetaryAmount,
  modelListPrice,
  NANOS_PER_CENT,
  toMonetaryAmount,
} from "./budget/model-list-price.js";
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
export {
  type LoopLimits,
  type NextAction,
  nextAction,
  retryDelayMs,
  type ToolPermissions,
} from "./loop/next-action.js";
export {
  type CustomToolResult,
  isPermanentStepError,
  isTurnClosed,
  loadRunState,
  runSession,
  type SessionRunContext,
  SessionRunner,
  type SessionRunnerDeps,
  type StepOptions,
  type StepOutcome,
  type ToolRunOptions,
} from "./loop/run-loop.js";
export {
  type ApprovalState,
  applyEvent,
  type CustomToolRequestState,
  customToolOutput,
  duplicateToolCallId,
  foldEvents,
  INTERRUPTED_TOOL_OUTPUT,
  initialRunState,
  type PendingAction,
  type PendingToolCall,
  pendingActions,
  type RunState,
  type TurnStatus,
} from "./loop/run-state.js";
export {
  executeModelCall,
  executeToolCall,
  type ModelCallOutcome,
  unknownToolResult,
} from "./loop/step-executors.js";
export { type PhaseTotal, StepTimings, stepTimings } from "./loop/step-timings.js";
export { buildSystemPrompt, type NetworkAccess, type SystemPromptOptions } from "./loop/system-prompt.js";
export { toolInputDigest } from "./loop/tool-input-digest.js";
export {
  INSTRUCTION_FILE_NAMES,
  type InstructionSource,
  loadMemoryInstructions,
  MAX_INSTRUCTIONS_BYTES,
  type MemoryInstructions,
} from "./memory/load-memory-instructions.js";
export {
  createMemoryTool,
  formatMemorySize,
  MEMORY_ROOT,
  MEMORY_TOOL_TYPE,
  type MemoryInput,
  resolveMemoryPath,
} from "./memory/memory-tool.js";
export type {
  LanguageModel,
  ModelEvent,
  ModelFactory,
  ModelRequest,
  ToolDefinition,
} from "./model/language-model.js";
export {
  DEFAULT_TOOL_POLICY,
  describeRule,
  evaluateToolPolicy,
  type PolicyDecision,
  policySubject,
  wildcardMatch,
} from "./policy/evaluate-tool-policy.js";
export { type BlobBody, type BlobStore, isValidBlobKey } from "./sandbox/blob-store.js";
export type {
  CreateSandboxOptions,
  DirEntry,
  ExecRequest,
  ExecResult,
  FileCallOptions,
  FileKind,
  FileStat,
  ListOptions,
  ReadOnlyMount,
  Sandbox,
  SandboxHandle,
  SandboxLimitKind,
  SandboxLimits,
  SandboxProvider,
  SandboxResumeResult,
  SandboxState,
  SnapshotRef,
} from "./sandbox/sandbox.js";
export { FileError, type FileErrorCode, fileErrorCodeOf, isFileError } from "./sandbox/sandbox-errors.js";
export { buildSkillsPrompt, type SkillSummary } from "./skills/build-skills-prompt.js";
export { type LoadedSkills, loadSkills } from "./skills/load-skills.js";
export {
  MAX_SKILL_COMPATIBILITY_LENGTH,
  MAX_SKILL_DESCRIPTION_LENGTH,
  MAX_SKILL_NAME_LENGTH,
  type ParseSkillResult,
  parseFrontmatter,
  parseSkill,
  SKILL_FILE_NAME,
  type Skill,
  type SkillFile,
  splitFrontmatter,
  validateSkillName,
} from "./skills/parse-skill.js";
export {
  type AppendOptions,
  type CreateSessionInput,
  type ListSessionsOptions,
  MAX_SESSION_RESOURCES,
  type ManagedSessionFields,
  type ManagedSessionPatch,
  type MessageOptions,
  SESSION_EVENTS_CHANNEL,
  type SessionRecord,
  type SessionStore,
  type SubmittedMessage,
  terminalSessionStatus,
} from "./store/session-store.js";
export {
  BASH_DEFAULT_TIMEOUT_MS,
  BASH_MAX_OUTPUT_CHARS,
  BASH_MAX_TIMEOUT_MS,
  type BashInput,
  createBashTool,
} from "./tools/bash-tool.js";
export { createDefaultTools, toolDefinitions } from "./tools/create-default-tools.js";
export { createEditTool, type EditInput } from "./tools/edit-tool.js";
export { createFileStateTracker } from "./tools/file-state-tracker.js";
export { globToRegExp, matchesGlob } from "./tools/glob-pattern.js";
export { createGlobTool, GLOB_MAX_RESULTS, type GlobInput } from "./tools/glob-tool.js";
export { createGrepTool, GREP_FILE_TYPES, type GrepInput } from "./tools/grep-tool.js";
export { createReadTool, READ_DEFAULT_LIMIT, READ_MAX_BYTES, type ReadInput } from "./tools/read-tool.js";
export type { FileReadRecord, FileStateTracker, Tool, ToolContext, ToolResult } from "./tools/tool.js";
export { defineTool, formatInputValidationError, type ToolSpec } from "./tools/tool-support.js";
export {
  createToolsetTools,
  type ToolsetDeps,
  type ToolsetSettings,
  type ToolsetTools,
  WEB_FETCH_UNAVAILABLE,
  WEB_SEARCH_UNAVAILABLE,
} from "./tools/toolset/create-toolset-tools.js";
export {
  createMemoryShellState,
  createToolsetBashTool,
  type ShellStateStore,
} from "./tools/toolset/toolset-bash-tool.js";
export {
  createToolsetEditTool,
  createToolsetGlobTool,
  createToolsetGrepTool,
  createToolsetReadTool,
  createToolsetWriteTool,
} from "./tools/toolset/toolset-file-tools.js";
export {
  createWebFetchTool,
  createWebSearchTool,
  htmlToText,
  type WebDomainSettings,
  type WebFetcher,
  type WebFetchOutcome,
  type WebSearcher,
  type WebSearchResult,
} from "./tools/toolset/web-tools.js";
export { createWriteTool, type WriteInput } from "./tools/write-tool.js";
export {
  createMountTable,
  MAX_PATH_LENGTH,
  type Mount,
  MountTable,
  normalizePath,
  type ResolvedPath,
} from "./vfs/create-mount-table.js";
export type { FileSystem } from "./vfs/file-system.js";
export { MountParentFileSystem } from "./vfs/mount-parent-file-system.js";
export { type FileTreeEntry, ReadOnlyFileTree } from "./vfs/read-only-file-tree.js";
export { SandboxFileSystem } from "./vfs/sandbox-file-system.js";
