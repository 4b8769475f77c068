/** Converts our provider-neutral transcript into AI SDK ModelMessages. Pure. */
import { assertNever } from "@outrig/core";
import type { Message } from "@outrig/protocol";
import type { AssistantModelMessage, ModelMessage, ToolModelMessage } from "ai";

/**
 * Maps user text, assistant text + tool calls, and tool results to ModelMessages. Tool results become
 * `text` outputs, or `error-text` when `isError` (Anthropic sends `is_error: true` for those).
 */
export function toModelMessages(messages: readonly Message[]): ModelMessage[] {
  return messages.map((message): ModelMessage => {
    switch (message.role) {
      case "user":
        return { role: "user", content: message.content.map((part) => ({ type: "text", text: part.text })) };
      case "assistant": {
        const content: AssistantModelMessage["content"] = message.content.map((part) =>
          part.type === "text"
            ? { type: "text", text: part.text }
            : { type: "tool-call", toolCallId: part.toolCallId, toolName: part.name, input: part.input },
        );
        return { role: "assistant", content };
      }
      case "tool": {
        const content: ToolModelMessage["content"] = message.content.map((part) => ({
          type: "tool-result",
          toolCallId: part.toolCallId,
          toolName: part.name,
          output: part.isError
            ? { type: "error-text", value: part.output }
            : { type: "text", value: part.output },
        }));
        return { role: "tool", content };
      }
      default:
        return assertNever(message);
    }
  });
}
