/** HTTP request and response bodies of the public API. */
import { z } from "zod";

export const MAX_TEXT_LENGTH = 200_000;

export const ModelSpec = z
  .string()
  .min(3)
  .max(200)
  .regex(/^(anthropic|openai|openai-chat|openai-compatible):[\w.\-/:@]+$/, {
    message: "model must look like anthropic:<model>, openai:<model> or openai-compatible:<model>",
  });

export const CreateSessionBody = z.strictObject({
  model: ModelSpec,
  prompt: z.string().min(1).max(MAX_TEXT_LENGTH).optional(),
  system: z.string().max(MAX_TEXT_LENGTH).optional(),
});
export type CreateSessionBody = z.infer<typeof CreateSessionBody>;

export const PostMessageBody = z.strictObject({ text: z.string().min(1).max(MAX_TEXT_LENGTH) });
export type PostMessageBody = z.infer<typeof PostMessageBody>;

export const SessionStatus = z.enum(["idle", "running", "error"]);
export type SessionStatus = z.infer<typeof SessionStatus>;

export const SessionResource = z.object({
  id: z.string(),
  orgId: z.string(),
  /** The owner: the user who created it, whose memories and credentials its turns use. */
  userId: z.string(),
  model: z.string(),
  status: SessionStatus,
  turns: z.number().int(),
  lastSeq: z.number().int(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type SessionResource = z.infer<typeof SessionResource>;

export const SessionList = z.object({ sessions: z.array(SessionResource) });
export type SessionList = z.infer<typeof SessionList>;

export const CreateKeyBody = z.strictObject({ name: z.string().min(1).max(100).optional() });
export type CreateKeyBody = z.infer<typeof CreateKeyBody>;

export const ErrorCode = z.enum([
  "invalid_json",
  "invalid_request",
  "body_too_large",
  "unauthorized",
  "not_found",
  "conflict",
  "unsupported_media_type",
  "internal",
]);
export type ErrorCode = z.infer<typeof ErrorCode>;

/**
 * The API's error types (`error.type`), as the Managed Agents API and its SDKs name them. The SDK
 * picks its error class from the HTTP status; callers read `error.type` and `error.message`.
 */
export const ApiErrorType = z.enum([
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "not_found_error",
  "conflict_error",
  "request_too_large",
  "rate_limit_error",
  "api_error",
  "overloaded_error",
  "timeout_error",
  "memory_precondition_failed_error",
  "memory_path_conflict_error",
]);
export type ApiErrorType = z.infer<typeof ApiErrorType>;

/**
 * Every error response: `{"type":"error","error":{"type","message","code"},"request_id"}`. `code` is
 * Outrig's finer reason (`session_busy`, `approval_mismatch`, …), an addition in the API's style.
 */
export const ErrorBody = z.object({
  type: z.literal("error"),
  error: z.object({ type: z.string(), message: z.string(), code: z.string() }),
  request_id: z.string().nullable(),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

export const ApprovalBody = z.strictObject({
  decision: z.enum(["allow", "deny"]),
  /** The `inputDigest` of the approval.request being answered; a mismatch is refused (409). */
  inputDigest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type ApprovalBody = z.infer<typeof ApprovalBody>;

export const ToolPolicyRule = z.strictObject({
  /** Tool name, or `*` for every tool. */
  tool: z.string().min(1).max(100),
  /** Wildcard (`*`, `?`) matched against the call's main input: Bash `command`, file tools' path, search pattern. */
  match: z.string().min(1).max(1000).optional(),
  action: z.enum(["allow", "deny", "ask"]),
});
export type ToolPolicyRule = z.infer<typeof ToolPolicyRule>;

export const ToolPolicy = z.strictObject({
  rules: z.array(ToolPolicyRule).max(200),
  /** How long an `ask` waits for a decision before it denies. */
  approvalTimeoutMs: z
    .number()
    .int()
    .min(1000)
    .max(7 * 24 * 3600 * 1000)
    .default(3600 * 1000),
});
export type ToolPolicy = z.infer<typeof ToolPolicy>;
