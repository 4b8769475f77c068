/** Wire shapes of the audit API (`GET /v1/audit`, `GET /v1/audit/verify`). */
import { z } from "zod";

export const AUDIT_KIND_NAMES = [
  "tool_call",
  "secret_use",
  "egress",
  "approval",
  "memory_write",
  "secret_write",
  "policy_change",
  "session_message",
  "session_cancel",
  "session_share",
  "api_key",
] as const;
export const AuditKindName = z.enum(AUDIT_KIND_NAMES);
export type AuditKindName = z.infer<typeof AuditKindName>;

export const AuditEntryResource = z.object({
  seq: z.number().int(),
  kind: AuditKindName,
  at: z.string(),
  sessionId: z.string().nullable(),
  userId: z.string().nullable(),
  data: z.unknown(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEntryResource = z.infer<typeof AuditEntryResource>;

export const AuditList = z.object({
  entries: z.array(AuditEntryResource),
  /** Pass as `after` for the next page; null when this page was the last. */
  nextAfter: z.number().int().nullable(),
});
export type AuditList = z.infer<typeof AuditList>;

/** The newest checkpoint (kept outside the database) the chain was checked against; null: none yet. */
const LastCheckpoint = z.object({ seq: z.number().int(), at: z.string() }).nullable().optional();

export const AuditVerifyReport = z.discriminatedUnion("isValid", [
  z.object({
    isValid: z.literal(true),
    count: z.number().int(),
    headHash: z.string(),
    lastCheckpoint: LastCheckpoint,
  }),
  z.object({
    isValid: z.literal(false),
    count: z.number().int(),
    seq: z.number().int(),
    problem: z.enum([
      "altered",
      "missing",
      "broken_link",
      "head_mismatch",
      "checkpoint_mismatch",
      "truncated",
      "checkpoint_invalid",
    ]),
    message: z.string(),
    lastCheckpoint: LastCheckpoint,
  }),
]);
export type AuditVerifyReport = z.infer<typeof AuditVerifyReport>;
