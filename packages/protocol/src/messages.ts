/** Transcript messages: the provider-neutral conversation we persist and send to models. */
import { z } from "zod";

export const TextPart = z.object({ type: z.literal("text"), text: z.string() });
export type TextPart = z.infer<typeof TextPart>;

export const ToolCallPart = z.object({
  type: z.literal("tool_call"),
  toolCallId: z.string(),
  name: z.string(),
  input: z.unknown(),
});
export type ToolCallPart = z.infer<typeof ToolCallPart>;

export const ToolResultPart = z.object({
  type: z.literal("tool_result"),
  toolCallId: z.string(),
  name: z.string(),
  output: z.string(),
  isError: z.boolean(),
});
export type ToolResultPart = z.infer<typeof ToolResultPart>;

/**
 * Where an image's or a document's bytes come from: `base64` data, `text` (a plain-text document), a
 * `url` the provider fetches itself (the backend never fetches it), or a Files API `file` whose bytes
 * were read (org-checked) when the message was sent and are kept in `data` (base64).
 */
export const MediaSource = z.discriminatedUnion("type", [
  z.object({ type: z.literal("base64"), data: z.string() }),
  z.object({ type: z.literal("text"), data: z.string() }),
  z.object({ type: z.literal("url"), url: z.string() }),
  z.object({ type: z.literal("file"), fileId: z.string(), data: z.string() }),
]);
export type MediaSource = z.infer<typeof MediaSource>;

/** An image in a user message (`mediaType` is image/jpeg, image/png, image/gif or image/webp; "" for a url). */
export const ImagePart = z.object({ type: z.literal("image"), mediaType: z.string(), source: MediaSource });
export type ImagePart = z.infer<typeof ImagePart>;

/** A document in a user message: a PDF or plain text (`mediaType`; "" for a url, which is a PDF). */
export const DocumentPart = z.object({
  type: z.literal("document"),
  mediaType: z.string(),
  source: MediaSource,
  title: z.string().optional(),
  context: z.string().optional(),
});
export type DocumentPart = z.infer<typeof DocumentPart>;

export const UserContentPart = z.discriminatedUnion("type", [TextPart, ImagePart, DocumentPart]);
export type UserContentPart = z.infer<typeof UserContentPart>;

export const UserMessage = z.object({ role: z.literal("user"), content: z.array(UserContentPart) });
export type UserMessage = z.infer<typeof UserMessage>;

export const AssistantMessage = z.object({
  role: z.literal("assistant"),
  content: z.array(z.discriminatedUnion("type", [TextPart, ToolCallPart])),
});
export type AssistantMessage = z.infer<typeof AssistantMessage>;

export const ToolMessage = z.object({ role: z.literal("tool"), content: z.array(ToolResultPart) });
export type ToolMessage = z.infer<typeof ToolMessage>;

export const Message = z.discriminatedUnion("role", [UserMessage, AssistantMessage, ToolMessage]);
export type Message = z.infer<typeof Message>;

export const Usage = z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() });
export type Usage = z.infer<typeof Usage>;

/** Why a model call ended, normalized across providers. */
export const StopReason = z.enum(["end_turn", "tool_use", "max_tokens", "refusal", "other"]);
export type StopReason = z.infer<typeof StopReason>;
