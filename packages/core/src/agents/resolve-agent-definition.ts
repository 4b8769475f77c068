/**
 * Turns the API's agent create and update bodies into the resolved definition one immutable agent
 * version stores: every default filled in as the API's responses show it, and the checks that span
 * fields (unique tool names, MCP servers and toolsets that name each other). Pure; throws InputError.
 */
import {
  AGENT_TOOLSET_TOOL_NAMES,
  type AgentCreateBody,
  type AgentDefinition,
  type AgentSkill,
  type AgentTool,
  type AgentToolParam,
  type AgentToolset,
  type AgentToolsetParam,
  type AgentUpdateBody,
  MAX_AGENT_TOOLS,
  MAX_METADATA_KEYS,
  type McpToolset,
  type McpToolsetParam,
  type ModelConfig,
  type ModelParam,
  type PermissionPolicyObject,
  type SkillParam,
  type ToolsetToolConfig,
  type UrlSources,
  type UrlSourcesParam,
} from "@outrig/protocol";
import { InputError } from "../errors/app-error.js";

const CLAUDE_MODEL = /^claude-[A-Za-z0-9._-]+$/;
const QUALIFIED_MODEL = /^([a-z][a-z0-9-]{0,63}):([^\s:][^\s]*)$/;

/**
 * Why `id` is not a model this API can name, or null. Claude names (`claude-…`) and Outrig's
 * provider-qualified specs (`openai:gpt-5`) are well formed; whether this server can serve the
 * provider is decided when a session starts, not here.
 */
export function modelIdProblem(id: string): string | null {
  if (id.length === 0 || id.length > 256) return "must be 1-256 characters";
  if (CLAUDE_MODEL.test(id) || QUALIFIED_MODEL.test(id)) return null;
  return "names no provider: use a Claude model name (claude-…) or a provider-qualified spec such as openai:gpt-5 or openai-compatible:<model>";
}

/** The provider-qualified spec the model factory takes: `claude-x` is `anthropic:claude-x`. */
export function providerModelSpec(id: string): string {
  return CLAUDE_MODEL.test(id) ? `anthropic:${id}` : id;
}

/** Resolves a create body. Throws InputError 400 naming every field that is wrong together. */
export function resolveAgentDefinition(body: AgentCreateBody): AgentDefinition {
  const definition: AgentDefinition = {
    name: body.name,
    // An empty string means "none", as an update's empty string clears the field.
    description: body.description || null,
    system: body.system || null,
    model: resolveModel(body.model),
    tools: (body.tools ?? []).map(resolveTool),
    skills: (body.skills ?? []).map(resolveSkill),
    mcp_servers: body.mcp_servers ?? [],
    metadata: body.metadata ?? {},
    execution_identity: { type: "service_account" },
    multiagent: null,
  };
  checkAgentDefinition(definition, body.tools ?? []);
  return definition;
}

/**
 * Applies an update body to the current definition: omitted fields carry over, `null` or `[]`
 * clears a clearable field, `metadata` is a patch. The result is checked as a whole.
 */
export function applyAgentUpdate(current: AgentDefinition, body: AgentUpdateBody): AgentDefinition {
  const metadata = { ...current.metadata };
  if (body.metadata === null) for (const key of Object.keys(metadata)) delete metadata[key];
  for (const [key, value] of Object.entries(body.metadata ?? {})) {
    if (value === null) delete metadata[key];
    else metadata[key] = value;
  }
  const definition: AgentDefinition = {
    name: body.name ?? current.name,
    description: body.description === undefined ? current.description : body.description || null,
    system: body.system === undefined ? current.system : body.system || null,
    model: body.model === undefined ? current.model : resolveModel(body.model),
    tools: body.tools === undefined ? current.tools : (body.tools ?? []).map(resolveTool),
    skills: body.skills === undefined ? current.skills : (body.skills ?? []).map(resolveSkill),
    mcp_servers: body.mcp_servers === undefined ? current.mcp_servers : (body.mcp_servers ?? []),
    metadata,
    execution_identity: { type: "service_account" },
    multiagent: null,
  };
  if (Object.keys(metadata).length > MAX_METADATA_KEYS)
    throw new InputError(
      "invalid_request",
      `metadata: at most ${MAX_METADATA_KEYS} keys after the patch`,
      400,
    );
  checkAgentDefinition(definition, body.tools ?? []);
  return definition;
}

function resolveModel(model: ModelParam): ModelConfig {
  const config = typeof model === "string" ? { id: model } : model;
  const problem = modelIdProblem(config.id);
  if (problem) throw new InputError("invalid_request", `model: ${problem}`, 400);
  const resolved: ModelConfig = { id: config.id, speed: ("speed" in config && config.speed) || "standard" };
  if ("effort" in config && config.effort)
    resolved.effort = typeof config.effort === "string" ? { type: config.effort } : config.effort;
  if ("inference_geo" in config && config.inference_geo) resolved.inference_geo = config.inference_geo;
  return resolved;
}

function resolveTool(tool: AgentToolParam): AgentTool {
  switch (tool.type) {
    case "agent_toolset_20260401":
      return resolveToolset(tool);
    case "mcp_toolset":
      return resolveMcpToolset(tool);
    case "custom":
      return {
        type: "custom",
        name: tool.name,
        description: tool.description,
        input_schema: tool.input_schema as { type: "object"; [key: string]: unknown },
      };
  }
}

function policyOf(param: { type: string } | null | undefined): PermissionPolicyObject | undefined {
  if (!param) return undefined;
  // Invariant: the wire schema refuses "auto", so only the two served policies reach here.
  return { type: param.type === "always_ask" ? "always_ask" : "always_allow" };
}

/** Every toolset tool gets a config: its own override, else the toolset's default (enabled, always_allow). */
function resolveToolset(param: AgentToolsetParam): AgentToolset {
  const defaultConfig = {
    enabled: param.default_config?.enabled ?? true,
    permission_policy: policyOf(param.default_config?.permission_policy) ?? { type: "always_allow" as const },
  };
  const overrides = param.configs ?? [];
  const configs = AGENT_TOOLSET_TOOL_NAMES.map((name): ToolsetToolConfig => {
    const override = overrides.find((config) => config.name === name);
    const config: ToolsetToolConfig = {
      name,
      type: name,
      enabled: override?.enabled ?? defaultConfig.enabled,
      permission_policy: policyOf(override?.permission_policy) ?? defaultConfig.permission_policy,
    };
    if (name === "web_fetch") {
      config.url_sources = resolveUrlSources(override?.url_sources);
      if (override?.max_content_tokens != null) config.max_content_tokens = override.max_content_tokens;
    }
    if (override?.allowed_domains) config.allowed_domains = override.allowed_domains;
    if (override?.blocked_domains) config.blocked_domains = override.blocked_domains;
    if (name === "web_search" && override?.user_location) config.user_location = override.user_location;
    return config;
  });
  return { type: "agent_toolset_20260401", default_config: defaultConfig, configs };
}

function resolveUrlSources(param: UrlSourcesParam | null | undefined): UrlSources | null {
  if (!param) return null;
  const filter = (value: UrlSourcesParam["client_tool_results"]) => {
    if (value === undefined || value === null) return null;
    return typeof value === "string" ? { type: value } : value;
  };
  const sources: UrlSources = {
    client_tool_results: filter(param.client_tool_results),
    server_tool_results: filter(param.server_tool_results),
    user_input: param.user_input
      ? typeof param.user_input === "string"
        ? { type: param.user_input }
        : param.user_input
      : null,
  };
  if (
    sources.client_tool_results?.type === "none" &&
    sources.server_tool_results?.type === "none" &&
    sources.user_input?.type === "none"
  )
    throw new InputError(
      "invalid_request",
      "url_sources: every source is none, so web_fetch could fetch nothing; disable the tool instead",
      400,
    );
  return sources;
}

/** MCP toolsets default to always_ask, so a tool the server adds later never runs unasked. */
function resolveMcpToolset(param: McpToolsetParam): McpToolset {
  const defaultConfig = {
    enabled: param.default_config?.enabled ?? true,
    permission_policy: policyOf(param.default_config?.permission_policy) ?? { type: "always_ask" as const },
  };
  return {
    type: "mcp_toolset",
    mcp_server_name: param.mcp_server_name,
    default_config: defaultConfig,
    configs: (param.configs ?? []).map((config) => ({
      name: config.name,
      enabled: config.enabled ?? defaultConfig.enabled,
      permission_policy: policyOf(config.permission_policy) ?? defaultConfig.permission_policy,
    })),
  };
}

function resolveSkill(skill: SkillParam): AgentSkill {
  return { type: skill.type, skill_id: skill.skill_id, version: skill.version ?? "latest" };
}

/** The checks that span fields; throws one InputError naming up to five problems. */
function checkAgentDefinition(definition: AgentDefinition, toolParams: readonly AgentToolParam[]): void {
  const problems: string[] = [];
  const toolsets = definition.tools.filter((tool) => tool.type === "agent_toolset_20260401");
  if (toolsets.length > 1) problems.push("tools: at most one agent_toolset_20260401");
  toolParams.forEach((tool, index) => {
    if (tool.type === "custom") return;
    const names = (tool.configs ?? []).map((config) => config.name);
    const duplicate = names.find((name, at) => names.indexOf(name) !== at);
    if (duplicate !== undefined) problems.push(`tools.${index}.configs: ${duplicate} is configured twice`);
  });
  const customNames = new Set<string>();
  const toolsetNames = toolsets.length > 0 ? new Set<string>(AGENT_TOOLSET_TOOL_NAMES) : new Set<string>();
  definition.tools.forEach((tool, index) => {
    if (tool.type !== "custom") return;
    if (customNames.has(tool.name))
      problems.push(`tools.${index}.name: another custom tool is already named ${tool.name}`);
    if (toolsetNames.has(tool.name))
      problems.push(`tools.${index}.name: ${tool.name} is a tool of agent_toolset_20260401`);
    customNames.add(tool.name);
  });
  const serverNames = definition.mcp_servers.map((server) => server.name);
  serverNames.forEach((name, index) => {
    if (serverNames.indexOf(name) !== index)
      problems.push(`mcp_servers.${index}.name: another server is already named ${name}`);
  });
  const referenced = new Set<string>();
  definition.tools.forEach((tool, index) => {
    if (tool.type !== "mcp_toolset") return;
    if (referenced.has(tool.mcp_server_name))
      problems.push(`tools.${index}.mcp_server_name: ${tool.mcp_server_name} has another mcp_toolset`);
    referenced.add(tool.mcp_server_name);
    if (!serverNames.includes(tool.mcp_server_name))
      problems.push(
        `tools.${index}.mcp_server_name: no server in mcp_servers is named ${tool.mcp_server_name}`,
      );
  });
  definition.mcp_servers.forEach((server, index) => {
    if (!referenced.has(server.name))
      problems.push(`mcp_servers.${index}: ${server.name} is not used by any mcp_toolset in tools`);
  });
  const toolCount = definition.tools.reduce(
    (count, tool) =>
      count +
      (tool.type === "custom" ? 1 : tool.type === "mcp_toolset" ? Math.max(1, tool.configs.length) : 8),
    0,
  );
  if (toolCount > MAX_AGENT_TOOLS)
    problems.push(`tools: at most ${MAX_AGENT_TOOLS} tools across all toolsets`);
  const skillIds = definition.skills.map((skill) => `${skill.type}/${skill.skill_id}`);
  skillIds.forEach((id, index) => {
    if (skillIds.indexOf(id) !== index) problems.push(`skills.${index}: ${id} is listed twice`);
  });
  if (problems.length > 0) throw new InputError("invalid_request", problems.slice(0, 5).join("; "), 400);
}
