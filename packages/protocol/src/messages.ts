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

export const UserMessage = z.object({ role: z.literal("user"), content: z.array(TextPart) });
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
