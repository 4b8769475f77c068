/**
 * How a pinned AgentConfig shapes a session's tools: which of the server's tools the model is offered
 * (only the toolset tools the agent enables), their permission policies, and its custom tools.
 */
import type { ToolPermissions } from "../loop/next-action.js";
import type { Tool } from "../tools/tool.js";
import { type AgentConfig, TOOLSET_TOOL_NAMES, type ToolsetToolName } from "./agent-config.js";

/**
 * The toolset name of a server tool (`Bash` → `bash`, `WebFetch` → `web_fetch`), compared without case
 * or separators so both Outrig's tool names and the toolset's own ones match; undefined for a tool the
 * toolset does not have.
 */
export function toolsetNameOf(toolName: string): ToolsetToolName | undefined {
  const key = normalize(toolName);
  return TOOLSET_TOOL_NAMES.find((name) => normalize(name) === key);
}

/** The server tools the agent enables, by their toolset names; every tool when there is no agent. */
export function enabledTools<T extends Pick<Tool, "name">>(
  config: AgentConfig | undefined,
  tools: readonly T[],
): T[] {
  if (!config) return [...tools];
  return tools.filter((tool) => {
    const name = toolsetNameOf(tool.name);
    return name !== undefined && config.toolset[name]?.enabled === true;
  });
}

/**
 * The agent's permission policies and custom tools as the loop asks for them; `offered` are the names of
 * the server tools the model is given (see enabledTools).
 */
export function toolPermissionsOf(config: AgentConfig, offered: readonly string[]): ToolPermissions {
  const custom = new Set(config.customTools.map((tool) => tool.name));
  const names = new Set(offered);
  return {
    isOffered: (name) => custom.has(name) || names.has(name),
    policyOf(name) {
      if (custom.has(name)) return undefined;
      const toolsetName = toolsetNameOf(name);
      return toolsetName ? config.toolset[toolsetName]?.permission : undefined;
    },
    isCustom: (name) => custom.has(name),
  };
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, "");
}
