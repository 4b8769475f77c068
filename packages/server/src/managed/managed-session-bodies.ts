/**
 * Request bodies and queries of the Managed Agents API's sessions and events routes, as the pinned SDK
 * sends them (`resources/beta/sessions/*.d.ts`). Strict: an unknown field is a 400.
 */
import {
  ModelParam as AgentModelParam,
  AgentToolParam,
  MAX_AGENT_TOOLS,
  MAX_MCP_SERVERS,
  McpServerParam,
  SkillParam,
} from "@outrig/protocol";
import { z } from "zod";
import { DocumentBlockParams, ImageBlockParams } from "./message-content.js";

export const MAX_MESSAGE_TEXT = 200_000;
const MAX_EVENTS_PER_SEND = 50;
const MAX_RESOURCES = 100;

const Id = z.string().min(1).max(128);
const IdWithPrefix = (prefix: string) =>
  z
    .string()
    .max(128)
    .regex(new RegExp(`^${prefix}_[A-Za-z0-9_-]{1,120}$`), { message: `must be a ${prefix}_… id` });

/** Metadata as the API limits it: up to 16 string pairs, keys up to 64 characters, values up to 512. */
export const Metadata = z
  .record(z.string().min(1).max(64), z.string().max(512))
  .refine((value) => Object.keys(value).length <= 16, { message: "at most 16 metadata keys" });

const MountPath = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^\/[^\0]*$/, { message: "must be an absolute path" })
  .refine((value) => !value.split("/").includes(".."), { message: "must not contain '..'" });

export const TextBlock = z.strictObject({ type: z.literal("text"), text: z.string().max(MAX_MESSAGE_TEXT) });

/** Images, documents and redacted blocks are parsed loosely so the refusal can name them. */
const OtherBlock = z.looseObject({ type: z.enum(["image", "document", "redacted"]) });

/** A `user.message` block: text, an image or a document (strict: see message-content.ts). */
const UserMessageBlock = z.discriminatedUnion("type", [TextBlock, ImageBlockParams, DocumentBlockParams]);

export const UserMessageParams = z.strictObject({
  type: z.literal("user.message"),
  content: z.array(UserMessageBlock).min(1).max(100),
});

export type UserMessage = z.infer<typeof UserMessageParams>;

export const UserInterruptParams = z.strictObject({
  type: z.literal("user.interrupt"),
  session_thread_id: z.string().max(128).nullable().optional(),
});

export const UserToolConfirmationParams = z.strictObject({
  type: z.literal("user.tool_confirmation"),
  tool_use_id: Id,
  result: z.enum(["allow", "deny"]),
  deny_message: z.string().max(10_000).nullable().optional(),
});

export const UserCustomToolResultParams = z.strictObject({
  type: z.literal("user.custom_tool_result"),
  custom_tool_use_id: Id,
  content: z
    .array(z.union([TextBlock, OtherBlock]))
    .max(100)
    .optional(),
  is_error: z.boolean().nullable().optional(),
});

export const SendEventParams = z.discriminatedUnion("type", [
  UserMessageParams,
  UserInterruptParams,
  UserToolConfirmationParams,
  UserCustomToolResultParams,
]);
export type SendEventParams = z.infer<typeof SendEventParams>;

export const SendEventsBody = z.strictObject({
  events: z.array(SendEventParams).min(1).max(MAX_EVENTS_PER_SEND),
});

export const MemoryStoreResourceParams = z.strictObject({
  type: z.literal("memory_store"),
  memory_store_id: IdWithPrefix("memstore"),
  access: z.enum(["read_write", "read_only"]).nullable().optional(),
  instructions: z.string().max(4096).nullable().optional(),
});
export const FileResourceParams = z.strictObject({
  type: z.literal("file"),
  file_id: IdWithPrefix("file"),
  mount_path: MountPath.nullable().optional(),
});
export const GitHubRepositoryResourceParams = z.strictObject({
  type: z.literal("github_repository"),
  url: z
    .string()
    .max(2048)
    .regex(/^https:\/\/github\.com\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+?(\.git)?\/?$/, {
      message: "must be https://github.com/<owner>/<repo>",
    }),
  authorization_token: z.string().min(1).max(4096).optional(),
  checkout: z
    .discriminatedUnion("type", [
      z.strictObject({ type: z.literal("branch"), name: z.string().min(1).max(255) }),
      z.strictObject({ type: z.literal("commit"), sha: z.string().regex(/^[0-9a-f]{7,64}$/) }),
    ])
    .nullable()
    .optional(),
  mount_path: MountPath.nullable().optional(),
});
export const ResourceParams = z.discriminatedUnion("type", [
  MemoryStoreResourceParams,
  FileResourceParams,
  GitHubRepositoryResourceParams,
]);
export type ResourceParams = z.infer<typeof ResourceParams>;

const AgentObjectRefParams = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("agent"), id: Id, version: z.number().int().min(1).optional() }),
  z.strictObject({
    type: z.literal("agent_with_overrides"),
    id: Id,
    version: z.number().int().min(1).optional(),
    // The same wire types an agent create takes: an override is checked as that agent field would be.
    model: AgentModelParam.optional(),
    system: z.string().max(MAX_MESSAGE_TEXT).nullable().optional(),
    tools: z.array(AgentToolParam).max(MAX_AGENT_TOOLS).optional(),
    skills: z.array(SkillParam).max(64).optional(),
    mcp_servers: z.array(McpServerParam).max(MAX_MCP_SERVERS).optional(),
  }),
]);

/**
 * An agent id, or an object by its `type`. Chosen by the value's JSON type first, so a bad object is
 * refused naming its own bad fields rather than "matches neither a string nor an object".
 */
export const AgentRefParams = z.unknown().transform((value, context) => {
  const parsed = (typeof value === "string" ? Id : AgentObjectRefParams).safeParse(value);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues)
    context.addIssue({ code: "custom", message: issue.message, path: issue.path });
  return z.NEVER;
});

/** `{type: "limit", max_list_cost: {amount, currency}}`: a positive whole number of cents, in USD. */
export const BudgetParams = z.strictObject({
  type: z.literal("limit"),
  max_list_cost: z.strictObject({
    amount: z.string().regex(/^[1-9][0-9]{0,14}$/, {
      message: 'a positive whole number of cents without leading zeros, e.g. "2500" for $25.00',
    }),
    currency: z.literal("USD", { message: "USD is the only currency a budget takes" }),
  }),
});
export type AgentRefParams = z.infer<typeof AgentRefParams>;

export const CreateSessionParams = z.strictObject({
  agent: AgentRefParams,
  environment_id: Id,
  vault_ids: z.array(IdWithPrefix("vlt")).max(50).optional(),
  resources: z.array(ResourceParams).max(MAX_RESOURCES).optional(),
  title: z.string().max(1000).nullable().optional(),
  metadata: Metadata.optional(),
  initial_events: z.array(UserMessageParams).max(MAX_EVENTS_PER_SEND).optional(),
  budget: BudgetParams.optional(),
});
export type CreateSessionParams = z.infer<typeof CreateSessionParams>;

export const UpdateSessionParams = z.strictObject({
  title: z.string().max(1000).nullable().optional(),
  /** A null value deletes that key; a null map leaves metadata as it is. */
  metadata: z.record(z.string().min(1).max(64), z.string().max(512).nullable()).nullable().optional(),
  vault_ids: z.array(IdWithPrefix("vlt")).max(50).optional(),
  agent: z.unknown().optional(),
  budget: BudgetParams.nullable().optional(),
});

export const UpdateResourceParams = z.strictObject({ authorization_token: z.string().min(1).max(4096) });

const IsoDate = z.iso.datetime({ offset: true }).transform((value) => new Date(value));
const BooleanQuery = z.enum(["true", "false"]).transform((value) => value === "true");

/** Single-valued query fields of `GET /v1/sessions` (arrays like `statuses[]` are read apart). */
export const ListSessionsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  page: z.string().min(1).max(1024).optional(),
  order: z.enum(["asc", "desc"]).default("desc"),
  agent_id: Id.optional(),
  agent_version: z.coerce.number().int().min(1).optional(),
  include_archived: BooleanQuery.optional(),
  memory_store_id: Id.optional(),
  deployment_id: Id.optional(),
  "created_at[gt]": IsoDate.optional(),
  "created_at[gte]": IsoDate.optional(),
  "created_at[lt]": IsoDate.optional(),
  "created_at[lte]": IsoDate.optional(),
  "statuses[]": z.string().optional(),
});

export const ListEventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  page: z.string().min(1).max(1024).optional(),
  order: z.enum(["asc", "desc"]).default("asc"),
  "created_at[gt]": IsoDate.optional(),
  "created_at[gte]": IsoDate.optional(),
  "created_at[lt]": IsoDate.optional(),
  "created_at[lte]": IsoDate.optional(),
  "types[]": z.string().optional(),
});

export const StreamEventsQuery = z.strictObject({ "event_deltas[]": z.string().optional() });

export const ListResourcesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(20),
  page: z.string().min(1).max(1024).optional(),
});
