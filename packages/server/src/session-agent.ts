/**
 * The pinned agent config of a session, between the core type (`AgentConfig`, what the loop runs with)
 * and the log (`session.start`'s `agent`, which keeps it for sessions whose store does not).
 */
import type { AgentConfig, SessionRecord, SessionStore } from "@outrig/core";
import type { PinnedAgentConfig } from "@outrig/protocol";

/** The config as `session.start` stores it. */
export function toPinnedAgentConfig(config: AgentConfig): PinnedAgentConfig {
  return {
    agentId: config.agentId,
    version: config.version,
    model: config.model,
    system: config.system,
    toolset: Object.fromEntries(
      Object.entries(config.toolset).map(([name, settings]) => [
        name,
        { enabled: settings.enabled, permission: settings.permission },
      ]),
    ),
    customTools: config.customTools.map((tool) => ({
      name: tool.name,
      description: tool.description,
      inputSchema: { ...tool.inputSchema },
    })),
    skills: config.skills.map((skill) => ({ skillId: skill.skillId, version: skill.version })),
  };
}

/**
 * The session's pinned config: the record's (a store that keeps it), else the one its `session.start`
 * pinned; undefined for a session created without an agent (it runs as sessions always did).
 */
export async function loadAgentConfig(
  store: SessionStore,
  session: SessionRecord,
): Promise<AgentConfig | undefined> {
  const pinned = session.agent ?? session.managed?.agentConfig;
  if (pinned) return pinned;
  const [first] = await store.readEvents(session.id, { afterSeq: 0, limit: 1 });
  return first?.type === "session.start" ? first.agent : undefined;
}
