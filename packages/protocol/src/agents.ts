/**
 * The Managed Agents API's Agent resource on the wire, as the pinned SDK (`@anthropic-ai/sdk@1.17.0`,
 * `resources/beta/agents`) sends and reads it: the create and update bodies (strict: an unknown field
 * is a 400) and the resolved Agent object every route answers with. Checks that span fields (unique
 * names, referenced MCP servers) happen where the definition is resolved, in @outrig/core.
 */
import { z } from "zod";

/** The tools of `agent_toolset_20260401`, by the toolset's own names. */
export const AGENT_TOOLSET_TOOL_NAMES = [
  "bash",
  "read",
  "write",
  "edit",
  "glob",
  "grep",
  "web_fetch",
  "web_search",
] as const;
export type AgentToolsetToolName = (typeof AGENT_TOOLSET_TOOL_NAMES)[number];

/** The API's metadata limits: 16 keys of up to 64 characters, values of up to 512. */
export const MAX_METADATA_KEYS = 16;
export const MAX_METADATA_KEY_LENGTH = 64;
export const MAX_METADATA_VALUE_LENGTH = 512;
/** The API's limit on tools across all toolsets of one agent. */
export const MAX_AGENT_TOOLS = 256;
export const MAX_MCP_SERVERS = 20;

const PERMISSION_TYPES = ["always_allow", "always_ask", "auto"] as const;

/**
 * `always_allow` or `always_ask`. `auto` is the API's third policy (the server judges each call);
 * Outrig has no sound judge for it yet, so it is refused with a message saying what to send instead.
 */
export const PermissionPolicyParam = z
  .strictObject({ type: z.enum(PERMISSION_TYPES) })
  .superRefine((policy, context) => {
    if (policy.type === "auto")
      context.addIssue({
        code: "custom",
        path: ["type"],
        message:
          '"auto" is not supported by this server (it has no judge of a call\'s risk); use "always_allow" or "always_ask"',
      });
  });
export type PermissionPolicyParam = z.infer<typeof PermissionPolicyParam>;

const EFFORT_LEVELS = ["low", "medium", "high", "xhigh", "max"] as const;

export const ModelConfigParam = z.strictObject({
  id: z.string(),
  speed: z.enum(["standard", "fast"]).nullish(),
  effort: z.union([z.enum(EFFORT_LEVELS), z.strictObject({ type: z.enum(EFFORT_LEVELS) })]).nullish(),
  inference_geo: z.string().min(1).max(64).nullish(),
});
/** A model name (`claude-sonnet-4-5`, `openai:gpt-5`) or a model config object. */
export const ModelParam = z.union([z.string(), ModelConfigParam]);
export type ModelParam = z.infer<typeof ModelParam>;

/** A plain host name as the web tools take it (no scheme or port; web_search accepts a path suffix). */
const Domain = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.-]+(\/[^\s]*)?$/, { message: "a plain host name like docs.example.com" });
const DomainList = z
  .array(Domain)
  .min(1, { message: "an empty list is refused; omit the field instead" })
  .max(64);

const ToolReference = z.strictObject({ name: z.string().min(1).max(128), type: z.literal("tool_reference") });
const UrlSourceAllOrNone = z.union([
  z.enum(["all", "none"]),
  z.strictObject({ type: z.enum(["all", "none"]) }),
]);
const UrlSourceFilter = z.union([
  UrlSourceAllOrNone,
  z.strictObject({ type: z.enum(["only", "except"]), tools: z.array(ToolReference).min(1).max(128) }),
]);
export const UrlSourcesParam = z.strictObject({
  client_tool_results: UrlSourceFilter.nullish(),
  server_tool_results: UrlSourceFilter.nullish(),
  user_input: UrlSourceAllOrNone.nullish(),
});
export type UrlSourcesParam = z.infer<typeof UrlSourcesParam>;

export const UserLocation = z.strictObject({
  type: z.literal("approximate"),
  city: z.string().max(255).nullish(),
  country: z
    .string()
    .regex(/^[A-Z]{2}$/, { message: "a two-letter ISO 3166-1 country code, uppercase" })
    .nullish(),
  region: z.string().max(255).nullish(),
  timezone: z.string().max(255).nullish(),
});
export type UserLocation = z.infer<typeof UserLocation>;

/** A per-tool override in `agent_toolset_20260401.configs`. */
export const ToolsetToolConfigParam = z
  .strictObject({
    name: z.enum(AGENT_TOOLSET_TOOL_NAMES),
    type: z.enum(AGENT_TOOLSET_TOOL_NAMES).optional(),
    enabled: z.boolean().nullish(),
    permission_policy: PermissionPolicyParam.nullish(),
    allowed_domains: DomainList.optional(),
    blocked_domains: DomainList.optional(),
    max_content_tokens: z.number().int().min(1).max(10_000_000).nullish(),
    url_sources: UrlSourcesParam.nullish(),
    user_location: UserLocation.nullish(),
  })
  .superRefine((config, context) => {
    const only = (field: keyof typeof config, tools: readonly string[]) => {
      if (config[field] !== undefined && config[field] !== null && !tools.includes(config.name))
        context.addIssue({
          code: "custom",
          path: [field],
          message: `only allowed on ${tools.join(" or ")}, not on ${config.name}`,
        });
    };
    if (config.type !== undefined && config.type !== config.name)
      context.addIssue({ code: "custom", path: ["type"], message: `must equal name (${config.name})` });
    only("allowed_domains", ["web_fetch", "web_search"]);
    only("blocked_domains", ["web_fetch", "web_search"]);
    only("max_content_tokens", ["web_fetch"]);
    only("url_sources", ["web_fetch"]);
    only("user_location", ["web_search"]);
    if (config.allowed_domains !== undefined && config.blocked_domains !== undefined)
      context.addIssue({
        code: "custom",
        path: ["blocked_domains"],
        message: "cannot be combined with allowed_domains",
      });
  });
export type ToolsetToolConfigParam = z.infer<typeof ToolsetToolConfigParam>;

const DefaultConfigParam = z.strictObject({
  enabled: z.boolean().nullish(),
  permission_policy: PermissionPolicyParam.nullish(),
});

export const AgentToolsetParam = z.strictObject({
  type: z.literal("agent_toolset_20260401"),
  configs: z
    .array(ToolsetToolConfigParam)
    .max(AGENT_TOOLSET_TOOL_NAMES.length * 2)
    .optional(),
  default_config: DefaultConfigParam.nullish(),
});
export type AgentToolsetParam = z.infer<typeof AgentToolsetParam>;

export const McpToolsetParam = z.strictObject({
  type: z.literal("mcp_toolset"),
  mcp_server_name: z.string().min(1).max(255),
  configs: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(128),
        enabled: z.boolean().nullish(),
        permission_policy: PermissionPolicyParam.nullish(),
      }),
    )
    .max(MAX_AGENT_TOOLS)
    .optional(),
  default_config: DefaultConfigParam.nullish(),
});
export type McpToolsetParam = z.infer<typeof McpToolsetParam>;

/** JSON Schema of a custom tool's input: an object schema; other keywords pass through as given. */
export const CustomToolInputSchema = z.looseObject({
  type: z.literal("object"),
  properties: z.record(z.string(), z.unknown()).nullish(),
  required: z.array(z.string()).nullish(),
});

export const CustomToolParam = z.strictObject({
  type: z.literal("custom"),
  name: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/, { message: "1-128 letters, digits, underscores and hyphens" }),
  description: z.string().max(10_000),
  input_schema: CustomToolInputSchema,
});
export type CustomToolParam = z.infer<typeof CustomToolParam>;

export const AgentToolParam = z.discriminatedUnion("type", [
  AgentToolsetParam,
  McpToolsetParam,
  CustomToolParam,
]);
export type AgentToolParam = z.infer<typeof AgentToolParam>;

export const SkillParam = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("custom"),
    skill_id: z.string().regex(/^skill_[A-Za-z0-9]{1,64}$/, { message: "a skill id (skill_…)" }),
    version: z.string().min(1).max(64).nullish(),
  }),
  z.strictObject({
    type: z.literal("anthropic"),
    skill_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { message: "an Anthropic skill name such as xlsx" }),
    version: z.string().min(1).max(64).nullish(),
  }),
]);
export type SkillParam = z.infer<typeof SkillParam>;

export const McpServerParam = z.strictObject({
  type: z.literal("url"),
  name: z.string().min(1).max(255),
  url: z.url({ protocol: /^https?$/, message: "an http(s) URL" }).max(2048),
});
export type McpServerParam = z.infer<typeof McpServerParam>;

const MetadataKey = z.string().min(1).max(MAX_METADATA_KEY_LENGTH);
/** A string map of at most 16 keys (up to 64 characters) with values of up to 512. */
export const MetadataParam = z
  .record(MetadataKey, z.string().max(MAX_METADATA_VALUE_LENGTH))
  .refine((metadata) => Object.keys(metadata).length <= MAX_METADATA_KEYS, {
    message: `at most ${MAX_METADATA_KEYS} keys`,
  });
/** An update's metadata patch: a string upserts a key, null deletes it. */
export const MetadataPatchParam = z.record(MetadataKey, z.string().max(MAX_METADATA_VALUE_LENGTH).nullable());

/** Only the default principal: Outrig runs tools as its own sandbox user and assumes no AWS role. */
const ExecutionIdentityParam = z
  .strictObject({ type: z.enum(["service_account", "aws_role"]), role_arn: z.string().max(2048).optional() })
  .superRefine((identity, context) => {
    if (identity.type === "aws_role")
      context.addIssue({
        code: "custom",
        path: ["type"],
        message:
          '"aws_role" is not supported by this server; omit execution_identity or send service_account',
      });
    else if (identity.role_arn !== undefined)
      context.addIssue({ code: "custom", path: ["role_arn"], message: "only allowed with aws_role" });
  });

/** Multi-agent orchestration is not served: only null (or omitting it) is accepted. */
const MultiagentParam = z.unknown().superRefine((value, context) => {
  if (value !== null)
    context.addIssue({
      code: "custom",
      message: "multiagent orchestration is not supported by this server; omit it or send null",
    });
});

const Name = z.string().min(1).max(256);
const Description = z.string().max(2048);
const System = z.string().max(200_000);

/** `POST /v1/agents`. */
export const AgentCreateBody = z.strictObject({
  model: ModelParam,
  name: Name,
  description: Description.nullish(),
  execution_identity: ExecutionIdentityParam.nullish(),
  mcp_servers: z.array(McpServerParam).max(MAX_MCP_SERVERS).optional(),
  metadata: MetadataParam.optional(),
  multiagent: MultiagentParam.optional(),
  skills: z.array(SkillParam).max(64).optional(),
  system: System.nullish(),
  tools: z.array(AgentToolParam).max(MAX_AGENT_TOOLS).optional(),
});
export type AgentCreateBody = z.infer<typeof AgentCreateBody>;

/** `POST /v1/agents/{id}`: omitted fields keep their value; `version`, when sent, must be the current one. */
export const AgentUpdateBody = z.strictObject({
  model: ModelParam.optional(),
  name: Name.optional(),
  description: Description.nullish(),
  execution_identity: ExecutionIdentityParam.nullish(),
  mcp_servers: z.array(McpServerParam).max(MAX_MCP_SERVERS).nullish(),
  metadata: MetadataPatchParam.nullish(),
  multiagent: MultiagentParam.optional(),
  skills: z.array(SkillParam).max(64).nullish(),
  system: System.nullish(),
  tools: z.array(AgentToolParam).max(MAX_AGENT_TOOLS).nullish(),
  version: z.number().int().min(1).optional(),
});
export type AgentUpdateBody = z.infer<typeof AgentUpdateBody>;

// ---- The resolved Agent object (every field present, defaults filled in), as the SDK's types show it.

export type PermissionPolicyObject = { type: "always_allow" } | { type: "always_ask" };

export interface UrlSourceToolFilter {
  type: "all" | "none" | "only" | "except";
  tools?: { name: string; type: "tool_reference" }[];
}

export interface UrlSources {
  client_tool_results: UrlSourceToolFilter | null;
  server_tool_results: UrlSourceToolFilter | null;
  user_input: { type: "all" | "none" } | null;
}

export interface ToolsetToolConfig {
  name: AgentToolsetToolName;
  type: AgentToolsetToolName;
  enabled: boolean;
  permission_policy: PermissionPolicyObject;
  /** web_fetch only (always present there). */
  url_sources?: UrlSources | null;
  allowed_domains?: string[];
  blocked_domains?: string[];
  max_content_tokens?: number | null;
  user_location?: UserLocation | null;
}

export interface AgentToolset {
  type: "agent_toolset_20260401";
  default_config: { enabled: boolean; permission_policy: PermissionPolicyObject };
  configs: ToolsetToolConfig[];
}

export interface McpToolset {
  type: "mcp_toolset";
  mcp_server_name: string;
  default_config: { enabled: boolean; permission_policy: PermissionPolicyObject };
  configs: { name: string; enabled: boolean; permission_policy: PermissionPolicyObject }[];
}

export interface CustomTool {
  type: "custom";
  name: string;
  description: string;
  input_schema: { type: "object"; [key: string]: unknown };
}

export type AgentTool = AgentToolset | McpToolset | CustomTool;

export interface ModelConfig {
  id: string;
  speed: "standard" | "fast";
  effort?: { type: (typeof EFFORT_LEVELS)[number] };
  inference_geo?: string;
}

export interface AgentSkill {
  type: "custom" | "anthropic";
  skill_id: string;
  /** The pinned version, or `latest`. */
  version: string;
}

/** What one immutable agent version holds: every field of the Agent object but its identity and times. */
export interface AgentDefinition {
  name: string;
  description: string | null;
  system: string | null;
  model: ModelConfig;
  tools: AgentTool[];
  skills: AgentSkill[];
  mcp_servers: { type: "url"; name: string; url: string }[];
  metadata: Record<string, string>;
  execution_identity: { type: "service_account" };
  multiagent: null;
}

/** The API's Agent object. */
export interface AgentResource extends AgentDefinition {
  type: "agent";
  id: string;
  version: number;
  created_at: string;
  updated_at: string;
  archived_at: string | null;
}
