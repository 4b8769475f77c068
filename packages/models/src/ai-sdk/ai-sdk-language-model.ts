/** A LanguageModel over any AI SDK provider model. Owns error mapping; retries are off (the loop owns them). */

import { anthropic } from "@ai-sdk/anthropic";
import type { LanguageModel, ModelEvent, ModelRequest } from "@outrig/core";
import type { AssistantMessage, StopReason, TextPart, ToolCallPart, Usage } from "@outrig/protocol";
import {
  type FinishReason,
  type JSONSchema7,
  jsonSchema,
  type LanguageModel as SdkLanguageModel,
  streamText,
  type ToolSet,
} from "ai";
import { toModelErrorEvent } from "./to-model-error-event.js";
import { toModelMessages } from "./to-model-messages.js";

export interface AiSdkLanguageModelOptions {
  /** Our provider name, e.g. `anthropic`, `openai-chat`. */
  readonly provider: string;
  readonly modelId: string;
  readonly model: SdkLanguageModel;
}

export function toStopReason(finishReason: FinishReason, hasToolCalls: boolean): StopReason {
  switch (finishReason) {
    case "length":
      return "max_tokens";
    case "content-filter":
      return "refusal";
    case "tool-calls":
      return "tool_use";
    case "stop":
      // Some compatible servers say `stop` even when they called tools; the tools decide.
      return hasToolCalls ? "tool_use" : "end_turn";
    case "error":
    case "other":
      return hasToolCalls ? "tool_use" : "other";
  }
}

/** Vendor-defined tools we can serve ourselves, by provider and tool type. */
const anthropicTools = anthropic.tools;
const VENDOR_TOOLS: Readonly<Record<string, Readonly<Record<string, () => ToolSet[string]>>>> = {
  anthropic: { memory_20250818: () => anthropicTools.memory_20250818({}) },
};

/**
 * Tools go to the SDK as JSON Schema with no `execute`, so the SDK never runs them. A tool that
 * implements a vendor tool type (e.g. Anthropic's memory tool) goes as that type to that vendor.
 */
export function toToolSet(tools: ModelRequest["tools"], provider = ""): ToolSet {
  const toolSet: ToolSet = {};
  for (const definition of tools) {
    const vendorType = definition.providerTools?.[provider];
    const vendorTool = vendorType === undefined ? undefined : VENDOR_TOOLS[provider]?.[vendorType];
    if (vendorTool) {
      toolSet[definition.name] = vendorTool();
      continue;
    }
    toolSet[definition.name] = {
      description: definition.description,
      inputSchema: jsonSchema(definition.inputSchema as JSONSchema7),
    };
  }
  return toolSet;
}

/**
 * Streams one model call as `text.delta`* then exactly one `end` or `error`. Never throws: every failure,
 * including abort (`model_aborted`), arrives as the terminal `error` event.
 */
export class AiSdkLanguageModel implements LanguageModel {
  readonly provider: string;
  readonly modelId: string;
  readonly #model: SdkLanguageModel;

  constructor(options: AiSdkLanguageModelOptions) {
    this.provider = options.provider;
    this.modelId = options.modelId;
    this.#model = options.model;
  }

  async *stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
    const content: Array<TextPart | ToolCallPart> = [];
    const textParts = new Map<string, TextPart>();
    let failure: { error: unknown } | undefined;
    let finish: { finishReason: FinishReason; usage: Usage } | undefined;
    try {
      const result = streamText({
        model: this.#model,
        // An empty system block is rejected by Anthropic, so leave it out entirely.
        system: request.system === "" ? undefined : request.system,
        messages: toModelMessages(request.messages),
        tools: request.tools.length > 0 ? toToolSet(request.tools, this.provider) : undefined,
        maxOutputTokens: request.maxOutputTokens,
        maxRetries: 0,
        abortSignal: signal,
        // Errors arrive as `error` parts below; the default handler would log them to the console.
        onError: () => {},
      });
      for await (const part of result.fullStream) {
        if (part.type === "text-start") {
          const textPart: TextPart = { type: "text", text: "" };
          textParts.set(part.id, textPart);
          content.push(textPart);
        } else if (part.type === "text-delta") {
          if (part.text === "") continue;
          let textPart = textParts.get(part.id);
          if (textPart === undefined) {
            textPart = { type: "text", text: "" };
            textParts.set(part.id, textPart);
            content.push(textPart);
          }
          textPart.text += part.text;
          yield { type: "text.delta", text: part.text };
        } else if (part.type === "tool-call") {
          // Vendor-hosted tools (e.g. Anthropic web search) already ran upstream; only ours go to the loop.
          if (part.providerExecuted === true) continue;
          content.push({
            type: "tool_call",
            toolCallId: part.toolCallId,
            name: part.toolName,
            input: part.input,
          });
        } else if (part.type === "error") {
          failure ??= { error: part.error };
        } else if (part.type === "abort") {
          failure ??= { error: new Error("aborted") };
        } else if (part.type === "finish") {
          finish = {
            finishReason: part.finishReason,
            usage: {
              inputTokens: part.totalUsage.inputTokens ?? 0,
              outputTokens: part.totalUsage.outputTokens ?? 0,
            },
          };
        }
      }
    } catch (error) {
      failure ??= { error };
    }
    if (signal.aborted) {
      yield toModelErrorEvent(undefined, true);
      return;
    }
    if (failure !== undefined) {
      yield toModelErrorEvent(failure.error, false);
      return;
    }
    if (finish === undefined) {
      yield {
        type: "error",
        code: "model_stream_cut",
        message: "model stream ended without a finish event",
        retryable: true,
      };
      return;
    }
    const message: AssistantMessage = {
      role: "assistant",
      content: content.filter((part) => part.type !== "text" || part.text !== ""),
    };
    const hasToolCalls = message.content.some((part) => part.type === "tool_call");
    yield {
      type: "end",
      message,
      stopReason: toStopReason(finish.finishReason, hasToolCalls),
      usage: finish.usage,
    };
  }
}
