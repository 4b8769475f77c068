/** The model boundary: one streaming call, normalized events, never throws after it returns. */
import type { AssistantMessage, Message, StopReason, Usage } from "@outrig/protocol";

export interface ToolDefinition {
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the tool's input object. */
  readonly inputSchema: Record<string, unknown>;
  /** Vendor-defined tool types by provider; adapters send the vendor's type instead of the schema. */
  readonly providerTools?: Readonly<Record<string, string>>;
}

export interface ModelRequest {
  readonly system: string;
  readonly messages: readonly Message[];
  readonly tools: readonly ToolDefinition[];
  readonly maxOutputTokens?: number;
}

export type ModelEvent =
  | { readonly type: "text.delta"; readonly text: string }
  | {
      readonly type: "end";
      readonly message: AssistantMessage;
      readonly stopReason: StopReason;
      readonly usage: Usage;
    }
  | {
      readonly type: "error";
      readonly code: string;
      readonly message: string;
      readonly retryable: boolean;
      readonly status?: number;
      readonly retryAfterMs?: number;
    };

export interface LanguageModel {
  readonly provider: string;
  readonly modelId: string;
  /** Never throws after it returns: failures arrive as a terminal `error` event. Exactly one `end` or `error` ends the stream. */
  stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent>;
}

/** Builds a model from a spec such as `anthropic:claude-sonnet-4-5`. Throws InputError for an unknown provider. */
export type ModelFactory = (spec: string) => LanguageModel;
