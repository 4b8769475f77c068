import { AgentCreateBody, type AgentDefinition } from "@outrig/protocol";
import { describe, expect, it } from "vitest";
import type { AgentRecord, AgentStore } from "./agent-store.js";
import { applyAgentOverrides } from "./apply-agent-overrides.js";
import { agentConfigOf, agentResourceOf, createAgentDirectory } from "./create-agent-directory.js";
import { applyAgentUpdate, providerModelSpec, resolveAgentDefinition } from "./resolve-agent-definition.js";

function record(definition: AgentDefinition, version = 1, archivedAt: Date | null = null): AgentRecord {
  return {
    id: "agent_test",
    orgId: "org_a",
    version,
    definition,
    createdAt: new Date("2026-12-06T07:00:00.000Z"),
    updatedAt: new Date("2026-12-06T07:05:00.000Z"),
    archivedAt,
  };
}

const definition = resolveAgentDefinition(
  AgentCreateBody.parse({
    name: "Coder",
    model: "claude-sonnet-4-5",
    system: "be brief",
    tools: [
      {
        type: "agent_toolset_20260401",
        default_config: { permission_policy: { type: "always_ask" } },
        configs: [
          { name: "read", permission_policy: { type: "always_allow" } },
          { name: "web_search", enabled: false },
        ],
      },
      { type: "custom", name: "deploy", description: "Deploys", input_schema: { type: "object" } },
    ],
    skills: [
      { type: "custom", skill_id: "skill_abc", version: "12" },
      { type: "custom", skill_id: "skill_latest" },
      { type: "anthropic", skill_id: "xlsx" },
    ],
  }),
);

describe("agentConfigOf", () => {
  it("maps a version into the config a session pins", () => {
    const config = agentConfigOf(record(definition, 3));
    expect(config).toEqual({
      agentId: "agent_test",
      version: 3,
      model: "anthropic:claude-sonnet-4-5",
      system: "be brief",
      toolset: {
        bash: { enabled: true, permission: "always_ask" },
        read: { enabled: true, permission: "always_allow" },
        write: { enabled: true, permission: "always_ask" },
        edit: { enabled: true, permission: "always_ask" },
        glob: { enabled: true, permission: "always_ask" },
        grep: { enabled: true, permission: "always_ask" },
        web_fetch: { enabled: true, permission: "always_ask" },
        web_search: { enabled: false, permission: "always_ask" },
      },
      customTools: [{ name: "deploy", description: "Deploys", inputSchema: { type: "object" } }],
      skills: [
        { skillId: "skill_abc", version: 12 },
        { skillId: "skill_latest", version: null },
      ],
    });
  });

  it("leaves the toolset empty for an agent without one, and keeps provider-qualified models as they are", () => {
    const bare = resolveAgentDefinition(
      AgentCreateBody.parse({ name: "bare", model: "openai-compatible:llama" }),
    );
    expect(agentConfigOf(record(bare)).toolset).toEqual({});
    expect(agentConfigOf(record(bare)).model).toBe("openai-compatible:llama");
    expect(providerModelSpec("anthropic:claude-opus-4-5")).toBe("anthropic:claude-opus-4-5");
  });
});

describe("createAgentDirectory", () => {
  it("resolves a version through the store, says whether it is archived, and answers null for none", async () => {
    const requested: unknown[] = [];
    const store = {
      get: async (orgId: string, id: string, version?: number) => {
        requested.push([orgId, id, version]);
        return id === "agent_test"
          ? record(definition, version ?? 2, new Date("2026-12-06T08:00:00.000Z"))
          : null;
      },
    } as unknown as AgentStore;
    const directory = createAgentDirectory(store);
    const resolved = await directory.resolve("org_a", { id: "agent_test", version: 1 });
    expect(resolved?.archived).toBe(true);
    expect(resolved?.config.version).toBe(1);
    expect(resolved?.resource).toMatchObject({
      type: "agent",
      id: "agent_test",
      version: 1,
      model: { id: "claude-sonnet-4-5", speed: "standard" },
      archived_at: "2026-12-06T08:00:00.000Z",
    });
    expect(await directory.resolve("org_a", { id: "agent_missing" })).toBeNull();
    expect(requested).toEqual([
      ["org_a", "agent_test", 1],
      ["org_a", "agent_missing", undefined],
    ]);
  });
});

describe("applyAgentUpdate", () => {
  it("carries omitted fields over, clears with null, and checks the result as a whole", () => {
    const next = applyAgentUpdate(definition, { system: null, metadata: { a: "1" } });
    expect(next).toEqual({ ...definition, system: null, metadata: { a: "1" } });
    expect(() =>
      applyAgentUpdate(definition, {
        tools: [{ type: "custom", name: "bash", description: "", input_schema: { type: "object" } }],
      }),
    ).not.toThrow();
    expect(() =>
      applyAgentUpdate(definition, {
        mcp_servers: [{ type: "url", name: "gh", url: "https://mcp.example.com" }],
      }),
    ).toThrow(/not used by any mcp_toolset/);
  });
});

describe("applyAgentOverrides", () => {
  it("replaces the given fields for a session, keeps the rest, and derives the config from the result", () => {
    const resource = agentResourceOf(record(definition));
    const { resource: overridden, config } = applyAgentOverrides(resource, {
      model: "claude-haiku-4-5",
      system: null,
      tools: [{ type: "custom", name: "lookup", description: "d", input_schema: { type: "object" } }],
      skills: [{ type: "custom", skill_id: "skill_abc", version: "1733480000000000" }],
    });
    expect(overridden).toMatchObject({ id: "agent_test", version: 1, name: "Coder", system: null });
    expect(overridden.model).toEqual({ id: "claude-haiku-4-5", speed: "standard" });
    expect(config).toMatchObject({ model: "anthropic:claude-haiku-4-5", system: null, toolset: {} });
    expect(config.customTools.map((tool) => tool.name)).toEqual(["lookup"]);
    // A 16-digit skill version (epoch microseconds) stays pinned.
    expect(config.skills).toEqual([{ skillId: "skill_abc", version: 1733480000000000 }]);
    expect(applyAgentOverrides(resource, {}).config).toEqual(agentConfigOf(record(definition)));
  });

  it("refuses what an agent update would refuse, naming the field under agent.", () => {
    const resource = agentResourceOf(record(definition));
    expect(() =>
      applyAgentOverrides(resource, { tools: [{ type: "mcp_toolset", mcp_server_name: "missing" }] }),
    ).toThrow(/^agent\.tools\.0\.mcp_server_name/);
    expect(() => applyAgentOverrides(resource, { model: "gpt-5" })).toThrow(
      /^agent\.model: names no provider/,
    );
  });
});
