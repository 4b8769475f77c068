/**
 * A LanguageModel over any AI SDK provider model. Calls the provider model's `doStream` directly rather than
 * `streamText`, whose per-part web-stream stages and checks cost several times the stream itself on a large
 * streamed tool input. Owns error mapping; retries are off (the loop owns them).
 */

import { anthropic } from "@ai-sdk/anthropic";
import type { LanguageModel, ModelEvent, ModelRequest } from "@outrig/core";
import type { AssistantMessage, StopReason, TextPart, ToolCallPart, Usage } from "@outrig/protocol";
import { type FinishReason, type JSONSchema7, jsonSchema, type ToolSet } from "ai";
import { toModelErrorEvent } from "./to-model-error-event.js";
import {
  type ProviderCallOptions,
  type ProviderLanguageModel,
  toModelMessages,
} from "./to-model-messages.js";

export interface AiSdkLanguageModelOptions {
  /** Our provider name, e.g. `anthropic`, `openai-chat`. */
  readonly provider: string;
  readonly modelId: string;
  /** The provider-level model (LanguageModelV3), e.g. `createAnthropic(…).messages(modelId)`. */
  readonly model: ProviderLanguageModel;
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

type ProviderTools = NonNullable<ProviderCallOptions["tools"]>;

/**
 * Our tools as the provider call takes them, as `streamText` would send them: JSON Schema functions, or the
 * vendor tool type for a tool that implements one.
 */
export function toProviderTools(tools: ModelRequest["tools"], provider = ""): ProviderTools {
  const toolSet = toToolSet(tools, provider);
  return tools.map((definition): ProviderTools[number] => {
    const tool = toolSet[definition.name];
    if (tool?.type === "provider") {
      return { type: "provider", name: definition.name, id: tool.id, args: tool.args };
    }
    return {
      type: "function",
      name: definition.name,
      description: definition.description,
      inputSchema: definition.inputSchema as JSONSchema7,
    };
  });
}

/** Keys that secure JSON parsing (as the AI SDK does) refuses: they could pollute a prototype downstream. */
function hasForbiddenKey(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  for (const [key, child] of Object.entries(value)) {
    if (key === "__proto__") return true;
    if (
      key === "constructor" &&
      typeof child === "object" &&
      child !== null &&
      Object.hasOwn(child, "prototype")
    ) {
      return true;
    }
    if (hasForbiddenKey(child)) return true;
  }
  return false;
}

/**
 * A tool call's streamed input as `streamText` reads it: empty means `{}`; JSON that does not parse (or
 * carries a prototype-polluting key) stays the raw string, which the tool then rejects as invalid input.
 */
export function parseToolInput(text: string): unknown {
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text;
  }
  if ((text.includes("__proto__") || text.includes("constructor")) && hasForbiddenKey(value)) return text;
  return value;
}

/**
 * Streams one model call as `text.delta`* then exactly one `end` or `error`. Never throws: every failure,
 * including abort (`model_aborted`), arrives as the terminal `error` event. Tool input deltas are not
 * looked at: the provider assembles each call's input and hands it over whole in its `tool-call` part.
 */
export class AiSdkLanguageModel implements LanguageModel {
  readonly provider: string;
  readonly modelId: string;
  readonly #model: ProviderLanguageModel;

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
    // As in `streamText`: a stream that closes without a finish part still ends the call if it carried output.
    let hasOutput = false;
    let reader: ReadableStreamDefaultReader<unknown> | undefined;
    let isDone = false;
    try {
      const hasTools = request.tools.length > 0;
      const { stream } = await this.#model.doStream({
        prompt: toModelMessages(request.system, request.messages, this.provider),
        ...(hasTools
          ? { tools: toProviderTools(request.tools, this.provider), toolChoice: { type: "auto" } }
          : {}),
        maxOutputTokens: request.maxOutputTokens,
        abortSignal: signal,
      });
      const partReader = stream.getReader();
      reader = partReader;
      for (;;) {
        const next = await partReader.read();
        if (next.done) {
          isDone = true;
          break;
        }
        const part = next.value;
        switch (part.type) {
          case "text-start": {
            hasOutput = true;
            const textPart: TextPart = { type: "text", text: "" };
            textParts.set(part.id, textPart);
            content.push(textPart);
            break;
          }
          case "text-delta": {
            hasOutput = true;
            if (part.delta === "") break;
            let textPart = textParts.get(part.id);
            if (textPart === undefined) {
              textPart = { type: "text", text: "" };
              textParts.set(part.id, textPart);
              content.push(textPart);
            }
            textPart.text += part.delta;
            yield { type: "text.delta", text: part.delta };
            break;
          }
          case "tool-call":
            hasOutput = true;
            // Vendor-hosted tools (e.g. Anthropic web search) already ran upstream; only ours go to the loop.
            if (part.providerExecuted === true) break;
            content.push({
              type: "tool_call",
              toolCallId: part.toolCallId,
              name: part.toolName,
              input: parseToolInput(part.input),
            });
            break;
          case "error":
            failure ??= { error: part.error };
            break;
          case "finish":
            finish = {
              finishReason: part.finishReason.unified,
              usage: {
                inputTokens: part.usage.inputTokens.total ?? 0,
                outputTokens: part.usage.outputTokens.total ?? 0,
              },
            };
            break;
          case "stream-start":
          case "response-metadata":
          case "raw":
            break;
          default:
            // Reasoning, tool input, sources, files, tool results and approvals: output we do not keep.
            hasOutput = true;
        }
      }
    } catch (error) {
      failure ??= { error };
    } finally {
      // The consumer stopped early or the stream broke: release the HTTP response.
      if (reader !== undefined && !isDone) reader.cancel().catch(() => {});
    }
    if (signal.aborted) {
      yield toModelErrorEvent(undefined, true);
      return;
    }
    if (failure !== undefined) {
      yield toModelErrorEvent(failure.error, false);
      return;
    }
    if (finish === undefined && hasOutput)
      finish = { finishReason: "other", usage: { inputTokens: 0, outputTokens: 0 } };
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
