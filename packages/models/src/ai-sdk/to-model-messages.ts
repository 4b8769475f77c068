/** Converts our provider-neutral transcript into the provider prompt (LanguageModelV3Prompt). Pure. */
import { assertNever } from "@outrig/core";
import type { Message } from "@outrig/protocol";
import type { LanguageModel as SdkLanguageModel } from "ai";

/** The provider-level model (LanguageModelV3), typed without importing the undeclared @ai-sdk/provider. */
export type ProviderLanguageModel = Extract<SdkLanguageModel, { readonly specificationVersion: "v3" }>;
export type ProviderCallOptions = Parameters<ProviderLanguageModel["doStream"]>[0];
export type ProviderPrompt = ProviderCallOptions["prompt"];
type ProviderMessage = ProviderPrompt[number];
type ProviderAssistantContent = Extract<ProviderMessage, { role: "assistant" }>["content"];

/**
 * Maps the system prompt, user text, assistant text + tool calls, and tool results to the provider prompt,
 * as the AI SDK's `streamText` would: an empty system prompt is left out (Anthropic rejects an empty system
 * block), empty text parts are dropped, consecutive tool messages are merged. Tool results become `text`
 * outputs, or `error-text` when `isError` (Anthropic sends `is_error: true` for those).
 */
export function toModelMessages(system: string, messages: readonly Message[]): ProviderPrompt {
  const prompt: ProviderMessage[] = system === "" ? [] : [{ role: "system", content: system }];
  for (const message of messages) {
    switch (message.role) {
      case "user":
        prompt.push({
          role: "user",
          content: message.content
            .filter((part) => part.text !== "")
            .map((part) => ({ type: "text", text: part.text })),
        });
        break;
      case "assistant": {
        const content: ProviderAssistantContent = [];
        for (const part of message.content) {
          if (part.type === "text") {
            if (part.text !== "") content.push({ type: "text", text: part.text });
          } else {
            content.push({
              type: "tool-call",
              toolCallId: part.toolCallId,
              toolName: part.name,
              input: part.input,
            });
          }
        }
        prompt.push({ role: "assistant", content });
        break;
      }
      case "tool": {
        const content = message.content.map((part) => ({
          type: "tool-result" as const,
          toolCallId: part.toolCallId,
          toolName: part.name,
          output: part.isError
            ? { type: "error-text" as const, value: part.output }
            : { type: "text" as const, value: part.output },
        }));
        const previous = prompt.at(-1);
        if (previous?.role === "tool") previous.content.push(...content);
        else if (content.length > 0) prompt.push({ role: "tool", content });
        break;
      }
      default:
        return assertNever(message);
    }
  }
  return prompt;
}
