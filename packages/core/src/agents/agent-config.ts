/**
 * What a session runs with: the agent version it pinned when it started, resolved into the settings
 * the loop needs. The API's Agent object (model name, `tools` array, skills) is mapped onto this once,
 * when the session is created, and stored with the session, so an agent update never changes a
 * running session.
 */

import { AGENT_TOOLSET_TOOL_NAMES, type AgentToolsetToolName } from "@outrig/protocol";

/** The tools of the API's `agent_toolset_20260401`, by the toolset's own names (the protocol's list). */
export const TOOLSET_TOOL_NAMES = AGENT_TOOLSET_TOOL_NAMES;
export type ToolsetToolName = AgentToolsetToolName;

/** `always_allow`: run without asking. `always_ask`: wait for a `user.tool_confirmation` first. */
export type PermissionPolicy = "always_allow" | "always_ask";

export interface ToolsetToolSettings {
  readonly enabled: boolean;
  readonly permission: PermissionPolicy;
}

/** A tool the client runs: the session goes idle (`requires_action`) until `user.custom_tool_result`. */
export interface CustomToolDefinition {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the input, handed to the model as is. */
  readonly inputSchema: Record<string, unknown>;
}

export interface AgentSkillRef {
  readonly skillId: string;
  /** A pinned skill version; `null` follows the latest. */
  readonly version: number | null;
}

export interface AgentConfig {
  /** The agent and version the session pinned; `null` for a session created before agents existed. */
  readonly agentId: string | null;
  readonly version: number;
  /** Provider-qualified model spec (`anthropic:claude-sonnet-4-5`, `openai:gpt-5`). */
  readonly model: string;
  readonly system: string | null;
  /** Settings of every toolset tool; a tool the agent's toolset does not enable is absent or disabled. */
  readonly toolset: Readonly<Partial<Record<ToolsetToolName, ToolsetToolSettings>>>;
  readonly customTools: readonly CustomToolDefinition[];
  readonly skills: readonly AgentSkillRef[];
}

/** The agent store as sessions see it: resolve a reference into the config a new session pins. */
export interface AgentDirectory {
  /**
   * The agent `id` of `orgId` at `version` (the latest when omitted), as a pinned config and as the
   * API's Agent object (what `session.agent` shows). `null` when there is no such agent or version;
   * an archived agent resolves too (the caller decides whether new sessions may use it).
   */
  resolve(
    orgId: string,
    ref: { readonly id: string; readonly version?: number },
  ): Promise<{
    readonly config: AgentConfig;
    readonly resource: Record<string, unknown>;
    readonly archived: boolean;
  } | null>;
}

/** How an environment's sandboxes reach the network. */
export type EnvironmentNetworking =
  | { readonly type: "unrestricted" }
  | {
      readonly type: "limited";
      readonly allowedHosts: readonly string[];
      readonly allowPackageManagers: boolean;
      readonly allowMcpServers: boolean;
    };

export interface EnvironmentConfig {
  readonly id: string;
  readonly kind: "cloud" | "self_hosted";
  readonly networking: EnvironmentNetworking;
  /** Packages installed once into a cached layer that sessions start from, by manager (`apt`, `npm`, `pip`, …). */
  readonly packages: Readonly<Record<string, readonly string[]>>;
  readonly archived: boolean;
}

/** The environment store as sessions see it. */
export interface EnvironmentDirectory {
  /** `null` when `orgId` has no environment `id`. */
  get(orgId: string, id: string): Promise<EnvironmentConfig | null>;
}
