/** Converts our provider-neutral transcript into the provider prompt (LanguageModelV3Prompt). Pure. */
import { assertNever } from "@outrig/core";
import type { DocumentPart, MediaSource, Message, UserContentPart } from "@outrig/protocol";
import type { LanguageModel as SdkLanguageModel } from "ai";

/** The provider-level model (LanguageModelV3), typed without importing the undeclared @ai-sdk/provider. */
export type ProviderLanguageModel = Extract<SdkLanguageModel, { readonly specificationVersion: "v3" }>;
export type ProviderCallOptions = Parameters<ProviderLanguageModel["doStream"]>[0];
export type ProviderPrompt = ProviderCallOptions["prompt"];
type ProviderMessage = ProviderPrompt[number];
type ProviderAssistantContent = Extract<ProviderMessage, { role: "assistant" }>["content"];
type ProviderUserPart = Extract<ProviderMessage, { role: "user" }>["content"][number];

/**
 * Maps the system prompt, user text, assistant text + tool calls, and tool results to the provider prompt,
 * as the AI SDK's `streamText` would: an empty system prompt is left out (Anthropic rejects an empty system
 * block), empty text parts are dropped, consecutive tool messages are merged. Tool results become `text`
 * outputs, or `error-text` when `isError` (Anthropic sends `is_error: true` for those).
 */
export function toModelMessages(system: string, messages: readonly Message[], provider = ""): ProviderPrompt {
  const prompt: ProviderMessage[] = system === "" ? [] : [{ role: "system", content: system }];
  for (const message of messages) {
    switch (message.role) {
      case "user":
        prompt.push({ role: "user", content: message.content.flatMap((part) => toUserPart(part, provider)) });
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

/**
 * One user block as the provider's part: text, or a `file` part whose media type picks the provider's
 * wire shape (Anthropic: `image` / `document` blocks; OpenAI: `image_url` / `file`). Bytes go as base64
 * (a plain-text document too: the providers decode it); a `url` source goes as a URL the provider fetches
 * (the backend never does). A document's title and context reach Anthropic through its provider options.
 * Only Anthropic takes plain-text documents; other providers get one as a text part that names it.
 */
function toUserPart(part: UserContentPart, provider: string): ProviderUserPart[] {
  switch (part.type) {
    case "text":
      return part.text === "" ? [] : [{ type: "text", text: part.text }];
    case "image":
      return [{ type: "file", mediaType: part.mediaType || "image/*", data: sourceData(part.source) }];
    case "document": {
      if (provider !== "anthropic" && part.mediaType === "text/plain" && part.source.type !== "url") {
        const text =
          part.source.type === "text"
            ? part.source.data
            : Buffer.from(part.source.data, "base64").toString("utf8");
        return [{ type: "text", text: documentText(part, text) }];
      }
      const metadata = {
        ...(part.title ? { title: part.title } : {}),
        ...(part.context ? { context: part.context } : {}),
      };
      return [
        {
          type: "file",
          mediaType: part.mediaType || "application/pdf",
          data: sourceData(part.source),
          ...(part.title ? { filename: part.title } : {}),
          ...(Object.keys(metadata).length > 0 ? { providerOptions: { anthropic: metadata } } : {}),
        },
      ];
    }
    default:
      return assertNever(part);
  }
}

function documentText(part: DocumentPart, text: string): string {
  const title = part.title ? ` title=${JSON.stringify(part.title)}` : "";
  const context = part.context ? ` context=${JSON.stringify(part.context)}` : "";
  return `<document${title}${context}>\n${text}\n</document>`;
}

function sourceData(source: MediaSource): string | URL {
  switch (source.type) {
    case "url":
      return new URL(source.url);
    case "text":
      return Buffer.from(source.data, "utf8").toString("base64");
    case "base64":
    case "file":
      return source.data;
    default:
      return assertNever(source);
  }
}
