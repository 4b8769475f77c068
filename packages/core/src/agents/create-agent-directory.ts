/**
 * The AgentDirectory sessions use: resolves an agent reference through the AgentStore into the
 * config a session pins (provider-qualified model, toolset settings per tool, custom tools, skills)
 * and the API's Agent object. Pure mapping over the store; no I/O of its own.
 */
import type { AgentResource } from "@outrig/protocol";
import type {
  AgentConfig,
  AgentDirectory,
  AgentSkillRef,
  ToolsetToolName,
  ToolsetToolSettings,
} from "./agent-config.js";
import type { AgentRecord, AgentStore } from "./agent-store.js";
import { providerModelSpec } from "./resolve-agent-definition.js";

/** The directory over `store`. `resolve` never throws for a missing agent: it answers null. */
export function createAgentDirectory(store: AgentStore): AgentDirectory {
  return {
    async resolve(orgId, ref) {
      const record = await store.get(orgId, ref.id, ref.version);
      if (!record) return null;
      return {
        config: agentConfigOf(record),
        resource: agentResourceOf(record) as unknown as Record<string, unknown>,
        archived: record.archivedAt !== null,
      };
    },
  };
}

/** The API's Agent object of one version. */
export function agentResourceOf(record: AgentRecord): AgentResource {
  return {
    type: "agent",
    id: record.id,
    version: record.version,
    ...record.definition,
    created_at: record.createdAt.toISOString(),
    updated_at: record.updatedAt.toISOString(),
    archived_at: record.archivedAt?.toISOString() ?? null,
  };
}

/**
 * What a session pins from one agent version. Toolset tools the agent has no toolset for are absent;
 * a disabled one is present with `enabled: false`. Only custom skills are pinned: Anthropic's own
 * skills (`xlsx`, …) are stored on the agent but this server has none to load.
 */
export function agentConfigOf(record: AgentRecord): AgentConfig {
  const { definition } = record;
  const toolset: Partial<Record<ToolsetToolName, ToolsetToolSettings>> = {};
  const customTools: AgentConfig["customTools"][number][] = [];
  for (const tool of definition.tools) {
    if (tool.type === "agent_toolset_20260401") {
      for (const config of tool.configs)
        toolset[config.name] = { enabled: config.enabled, permission: config.permission_policy.type };
    } else if (tool.type === "custom") {
      customTools.push({ name: tool.name, description: tool.description, inputSchema: tool.input_schema });
    }
  }
  const skills: AgentSkillRef[] = definition.skills
    .filter((skill) => skill.type === "custom")
    .map((skill) => ({
      skillId: skill.skill_id,
      // Skill versions are epoch-microsecond ids (16 digits today): safe integers until the year 2255.
      version:
        /^\d{1,16}$/.test(skill.version) && Number.isSafeInteger(Number(skill.version))
          ? Number(skill.version)
          : null,
    }));
  return {
    agentId: record.id,
    version: record.version,
    model: providerModelSpec(definition.model.id),
    system: definition.system,
    toolset,
    customTools,
    skills,
  };
}
