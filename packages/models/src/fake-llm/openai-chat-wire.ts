/** OpenAI Chat Completions wire format: `chat.completion.chunk` SSE (ending in `[DONE]`), JSON and errors. */
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

const FINISH_REASONS = { end_turn: "stop", tool_use: "tool_calls", max_tokens: "length" } as const;

function usageObject(turn: ResolvedTurn): Record<string, unknown> {
  return {
    prompt_tokens: turn.inputTokens,
    completion_tokens: turn.outputTokens,
    total_tokens: turn.inputTokens + turn.outputTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function wantsUsage(requestBody: Record<string, unknown>): boolean {
  const options = requestBody.stream_options;
  return (
    typeof options === "object" &&
    options !== null &&
    (options as { include_usage?: unknown }).include_usage === true
  );
}

export const openAiChatWire: WireProtocol = {
  name: "openai-chat",
  path: "/v1/chat/completions",
  streamTerminator: "data: [DONE]\n\n",

  newToolCallId: () => `call_${randomBase62(24)}`,

  successHeaders: () => ({ "x-request-id": newOpenAiRequestId(), "openai-processing-ms": "1" }),

  streamEvents(turn: ResolvedTurn, requestBody: Record<string, unknown>): SseEvent[] {
    const includeUsage = wantsUsage(requestBody);
    const base = {
      id: `chatcmpl-${randomBase62(29)}`,
      object: "chat.completion.chunk",
      created: nowSeconds(),
      model: turn.model,
      service_tier: "default",
      system_fingerprint: `fp_${randomHex(10)}`,
    };
    const chunk = (delta: Record<string, unknown>, finishReason: string | null = null): SseEvent => ({
      data: JSON.stringify({
        ...base,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
        ...(includeUsage ? { usage: null } : {}),
      }),
    });
    const events: SseEvent[] = [];
    if (turn.text !== undefined) {
      events.push(chunk({ role: "assistant", content: "", refusal: null }));
      for (const piece of splitIntoChunks(turn.text)) events.push(chunk({ content: piece }));
    }
    turn.toolCalls.forEach((call, index) => {
      const head = {
        tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }],
      };
      // With no text before it, the first tool call chunk also carries the role (as the real API does).
      events.push(
        chunk(events.length === 0 ? { role: "assistant", content: null, refusal: null, ...head } : head),
      );
      for (const piece of splitIntoChunks(call.arguments)) {
        events.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
      }
    });
    events.push(chunk({}, FINISH_REASONS[turn.stopReason]));
    if (includeUsage) {
      events.push({ data: JSON.stringify({ ...base, choices: [], usage: usageObject(turn) }) });
    }
    return events;
  },

  jsonResponse(turn: ResolvedTurn): unknown {
    const message: Record<string, unknown> = {
      role: "assistant",
      content: turn.text ?? null,
      refusal: null,
      annotations: [],
    };
    if (turn.toolCalls.length > 0) {
      message.tool_calls = turn.toolCalls.map((call) => ({
        id: call.id,
        type: "function",
        function: { name: call.name, arguments: call.arguments },
      }));
    }
    return {
      id: `chatcmpl-${randomBase62(29)}`,
      object: "chat.completion",
      created: nowSeconds(),
      model: turn.model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: FINISH_REASONS[turn.stopReason] }],
      usage: usageObject(turn),
      service_tier: "default",
      system_fingerprint: `fp_${randomHex(10)}`,
    };
  },

  errorResponse: openAiErrorResponse,
};
