/** Executes one step — a model call or a tool call — and returns what happened. Never throws for model or tool failures. */
import type { AssistantMessage, StopReason, Usage } from "@outrig/protocol";
import { ensureError } from "../errors/app-error.js";
import type { LanguageModel, ModelEvent, ModelRequest } from "../model/language-model.js";
import type { Tool, ToolContext, ToolResult } from "../tools/tool.js";
import { formatInputValidationError } from "../tools/tool-support.js";

export type ModelCallOutcome =
  | {
      readonly type: "ok";
      readonly message: AssistantMessage;
      readonly stopReason: StopReason;
      readonly usage: Usage;
    }
  | Extract<ModelEvent, { type: "error" }>;

/** Streams one model call; `onDelta` sees text as it arrives. Only the final message is returned. */
export async function executeModelCall(
  model: LanguageModel,
  request: ModelRequest,
  signal: AbortSignal,
  onDelta: (text: string) => void,
): Promise<ModelCallOutcome> {
  try {
    for await (const event of model.stream(request, signal)) {
      switch (event.type) {
        case "text.delta":
          onDelta(event.text);
          break;
        case "end":
          return { type: "ok", message: event.message, stopReason: event.stopReason, usage: event.usage };
        case "error":
          return event;
      }
    }
    return {
      type: "error",
      code: "model_stream_cut",
      message: "The model stream ended without a result.",
      retryable: true,
    };
  } catch (thrown) {
    // Adapters must not throw once streaming; treat a breach as a retryable provider failure.
    const error = ensureError(thrown);
    if (signal.aborted)
      return { type: "error", code: "cancelled", message: "The turn was cancelled.", retryable: false };
    return { type: "error", code: "model_error", message: error.message, retryable: true };
  }
}

export function unknownToolResult(name: string): ToolResult {
  return { output: `<tool_use_error>Error: No such tool available: ${name}</tool_use_error>`, isError: true };
}

/** Validates input and runs the tool; every failure becomes an `isError` result the model can read. */
export async function executeToolCall(
  tool: Tool | undefined,
  name: string,
  input: unknown,
  context: ToolContext,
): Promise<ToolResult> {
  if (!tool) return unknownToolResult(name);
  const parsed = tool.inputSchema.safeParse(input);
  if (!parsed.success)
    return { output: formatInputValidationError(name, parsed.error, input), isError: true };
  try {
    return await tool.execute(parsed.data, context);
  } catch (thrown) {
    const error = ensureError(thrown);
    if (context.signal.aborted) return { output: "The tool call was cancelled.", isError: true };
    return { output: `<tool_use_error>Error: ${error.message}</tool_use_error>`, isError: true };
  }
}
