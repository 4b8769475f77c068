/** OpenAI Responses wire format: typed SSE events with `sequence_number` (no `[DONE]`), JSON and errors. */
import { newOpenAiRequestId, openAiErrorResponse } from "./openai-errors.js";
import {
  nowSeconds,
  type ResolvedTurn,
  randomBase62,
  randomHex,
  type SseEvent,
  splitIntoChunks,
} from "./wire-helpers.js";
import type { WireProtocol } from "./wire-protocol.js";

interface ResponseContext {
  readonly id: string;
  readonly createdAt: number;
  readonly turn: ResolvedTurn;
  readonly requestBody: Record<string, unknown>;
}

function messageItem(id: string, text: string, status: "in_progress" | "completed"): Record<string, unknown> {
  return {
    id,
    type: "message",
    status,
    content: status === "completed" ? [{ type: "output_text", annotations: [], logprobs: [], text }] : [],
    role: "assistant",
  };
}

function functionCallItem(
  id: string,
  call: ResolvedTurn["toolCalls"][number],
  status: "in_progress" | "completed",
): Record<string, unknown> {
  return {
    id,
    type: "function_call",
    status,
    arguments: status === "completed" ? call.arguments : "",
    call_id: call.id,
    name: call.name,
  };
}

function responseObject(
  context: ResponseContext,
  status: "in_progress" | "completed" | "incomplete",
  output: unknown[],
): Record<string, unknown> {
  const { turn, requestBody } = context;
  const isDone = status !== "in_progress";
  return {
    id: context.id,
    object: "response",
    created_at: context.createdAt,
    status,
    background: false,
    completed_at: status === "completed" ? nowSeconds() : null,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: typeof requestBody.instructions === "string" ? requestBody.instructions : null,
    max_output_tokens:
      typeof requestBody.max_output_tokens === "number" ? requestBody.max_output_tokens : null,
    max_tool_calls: null,
    model: turn.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: isDone ? "default" : "auto",
    store: requestBody.store !== false,
    temperature: 1,
    text: { format: { type: "text" }, verbosity: "medium" },
    tool_choice: "auto",
    tools: Array.isArray(requestBody.tools) ? requestBody.tools : [],
    top_logprobs: 0,
    top_p: 1,
    truncation: "disabled",
    usage: isDone
      ? {
          input_tokens: turn.inputTokens,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: turn.outputTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: turn.inputTokens + turn.outputTokens,
        }
      : null,
    user: null,
    metadata: {},
  };
}

function finalStatus(turn: ResolvedTurn): "completed" | "incomplete" {
  return turn.stopReason === "max_tokens" ? "incomplete" : "completed";
}

function newItemId(prefix: "msg" | "fc"): string {
  return `${prefix}_${randomHex(50)}`;
}

export const openAiResponsesWire: WireProtocol = {
  name: "openai-responses",
  path: "/v1/responses",
  streamTerminator: undefined,

  newToolCallId: () => `call_${randomBase62(24)}`,

  successHeaders: () => ({ "x-request-id": newOpenAiRequestId(), "openai-processing-ms": "1" }),

  streamEvents(turn: ResolvedTurn, requestBody: Record<string, unknown>): SseEvent[] {
    const context: ResponseContext = {
      id: `resp_${randomHex(50)}`,
      createdAt: nowSeconds(),
      turn,
      requestBody,
    };
    const events: SseEvent[] = [];
    const emit = (type: string, fields: Record<string, unknown>) => {
      events.push({ event: type, data: JSON.stringify({ type, sequence_number: events.length, ...fields }) });
    };
    const output: unknown[] = [];
    emit("response.created", { response: responseObject(context, "in_progress", []) });
    emit("response.in_progress", { response: responseObject(context, "in_progress", []) });
    if (turn.text !== undefined) {
      const text = turn.text;
      const itemId = newItemId("msg");
      const outputIndex = output.length;
      const position = { item_id: itemId, output_index: outputIndex, content_index: 0 };
      emit("response.output_item.added", {
        output_index: outputIndex,
        item: messageItem(itemId, text, "in_progress"),
      });
      emit("response.content_part.added", {
        ...position,
        part: { type: "output_text", annotations: [], logprobs: [], text: "" },
      });
      for (const delta of splitIntoChunks(text)) {
        emit("response.output_text.delta", { ...position, delta, logprobs: [] });
      }
      emit("response.output_text.done", { ...position, text, logprobs: [] });
      emit("response.content_part.done", {
        ...position,
        part: { type: "output_text", annotations: [], logprobs: [], text },
      });
      const done = messageItem(itemId, text, "completed");
      emit("response.output_item.done", { output_index: outputIndex, item: done });
      output.push(done);
    }
    for (const call of turn.toolCalls) {
      const itemId = newItemId("fc");
      const outputIndex = output.length;
      emit("response.output_item.added", {
        output_index: outputIndex,
        item: functionCallItem(itemId, call, "in_progress"),
      });
      for (const delta of splitIntoChunks(call.arguments)) {
        emit("response.function_call_arguments.delta", { item_id: itemId, output_index: outputIndex, delta });
      }
      emit("response.function_call_arguments.done", {
        item_id: itemId,
        name: call.name,
        output_index: outputIndex,
        arguments: call.arguments,
      });
      const done = functionCallItem(itemId, call, "completed");
      emit("response.output_item.done", { output_index: outputIndex, item: done });
      output.push(done);
    }
    const status = finalStatus(turn);
    emit(status === "completed" ? "response.completed" : "response.incomplete", {
      response: responseObject(context, status, output),
    });
    return events;
  },

  jsonResponse(turn: ResolvedTurn, requestBody: Record<string, unknown>): unknown {
    const context: ResponseContext = {
      id: `resp_${randomHex(50)}`,
      createdAt: nowSeconds(),
      turn,
      requestBody,
    };
    const output: unknown[] = [];
    if (turn.text !== undefined) output.push(messageItem(newItemId("msg"), turn.text, "completed"));
    for (const call of turn.toolCalls) output.push(functionCallItem(newItemId("fc"), call, "completed"));
    return responseObject(context, finalStatus(turn), output);
  },

  errorResponse: openAiErrorResponse,
};
