/** Wire shapes of roles, API keys (`/v1/me`, `/v1/keys`, `/v1/users`) and session shares. */
import { z } from "zod";

/** `admin`: everything in the org; `member`: own sessions, files and secrets; `viewer`: read-only. */
export const UserRole = z.enum(["admin", "member", "viewer"]);
export type UserRole = z.infer<typeof UserRole>;

/** What a session share allows, each including the ones before: viewer ⊂ approver ⊂ steerer. */
export const ShareRole = z.enum(["viewer", "approver", "steerer"]);
export type ShareRole = z.infer<typeof ShareRole>;

const UserName = z
  .string()
  .min(1)
  .max(100)
  .refine((name) => ![...name].some((character) => /\p{Cc}/u.test(character)), "no control characters");

/**
 * `POST /v1/keys`. Without `userId` or `userName`: a key for the caller. With either (admins only): a
 * key for that user, created with `role` (default `member`) when `userName` names nobody yet; `role`
 * on an existing user changes that user's role.
 */
export const CreateApiKeyBody = z
  .strictObject({
    name: z.string().min(1).max(100).optional(),
    userId: z.string().min(1).max(128).optional(),
    userName: UserName.optional(),
    role: UserRole.optional(),
  })
  .refine((body) => !(body.userId && body.userName), "give userId or userName, not both");
export type CreateApiKeyBody = z.infer<typeof CreateApiKeyBody>;

export const ApiKeyResource = z.object({
  id: z.string(),
  userId: z.string(),
  userName: z.string(),
  role: UserRole,
  name: z.string(),
  /** The first characters of the key, to tell keys apart; never the whole key. */
  prefix: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});
export type ApiKeyResource = z.infer<typeof ApiKeyResource>;

/** `POST /v1/keys` answer: the plaintext `key` is shown this once. */
export const CreatedApiKeyResource = ApiKeyResource.extend({ key: z.string() });
export type CreatedApiKeyResource = z.infer<typeof CreatedApiKeyResource>;

export const UserResource = z.object({
  id: z.string(),
  name: z.string(),
  role: UserRole,
  createdAt: z.string(),
});
export type UserResource = z.infer<typeof UserResource>;

/** `GET /v1/me`: who the presented key belongs to. */
export const MeResource = z.object({
  orgId: z.string(),
  userId: z.string(),
  userName: z.string(),
  role: UserRole,
  keyId: z.string(),
});
export type MeResource = z.infer<typeof MeResource>;

/** `PUT /v1/sessions/:id/shares/:userId`. */
export const ShareSessionBody = z.strictObject({ role: ShareRole });
export type ShareSessionBody = z.infer<typeof ShareSessionBody>;

export const SessionShareResource = z.object({
  sessionId: z.string(),
  userId: z.string(),
  role: ShareRole,
  grantedBy: z.string(),
  createdAt: z.string(),
});
export type SessionShareResource = z.infer<typeof SessionShareResource>;
