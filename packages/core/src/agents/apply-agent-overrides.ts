/**
 * A session's `agent: {type: "agent_with_overrides", …}`: the agent version it names, with `model`,
 * `system`, `tools`, `skills` and `mcp_servers` replaced for this session only (the agent is unchanged).
 * An override is checked exactly as an agent update with the same fields would be, so a session can
 * never run a definition that no agent version could hold. Pure; throws InputError.
 */
import type { AgentDefinition, AgentResource, AgentUpdateBody } from "@outrig/protocol";
import { InputError } from "../errors/app-error.js";
import type { AgentConfig } from "./agent-config.js";
import type { AgentRecord } from "./agent-store.js";
import { agentConfigOf } from "./create-agent-directory.js";
import { applyAgentUpdate } from "./resolve-agent-definition.js";

/** The fields a session may override: each replaces the agent's whole value; omitted ones are kept. */
export type AgentOverrides = Pick<AgentUpdateBody, "model" | "system" | "tools" | "skills" | "mcp_servers">;

/**
 * The session's agent: `resource` (the pinned version's Agent object) with `overrides` applied, as the
 * session shows it and as the loop runs it. Errors name the field under `agent.` (400).
 */
export function applyAgentOverrides(
  resource: AgentResource,
  overrides: AgentOverrides,
): { readonly resource: AgentResource; readonly config: AgentConfig } {
  const { type: _type, id, version, created_at, updated_at, archived_at, ...current } = resource;
  let definition: AgentDefinition;
  try {
    definition = applyAgentUpdate(current, {
      ...(overrides.model !== undefined ? { model: overrides.model } : {}),
      ...(overrides.system !== undefined ? { system: overrides.system } : {}),
      // An empty array clears the field, as in an agent update; null is not an override's word for it.
      ...(overrides.tools !== undefined ? { tools: overrides.tools ?? [] } : {}),
      ...(overrides.skills !== undefined ? { skills: overrides.skills ?? [] } : {}),
      ...(overrides.mcp_servers !== undefined ? { mcp_servers: overrides.mcp_servers ?? [] } : {}),
    });
  } catch (error) {
    if (error instanceof InputError)
      throw new InputError(error.code, `agent.${error.message}`, error.status, { cause: error });
    throw error;
  }
  const record: AgentRecord = {
    id,
    orgId: "",
    version,
    definition,
    createdAt: new Date(created_at),
    updatedAt: new Date(updated_at),
    archivedAt: archived_at === null ? null : new Date(archived_at),
  };
  return {
    resource: { ...resource, ...definition },
    config: agentConfigOf(record),
  };
}
