/** Anthropic Messages wire format: SSE events (with `ping`), JSON bodies and error bodies. */
import { type ResolvedTurn, randomBase62, type SseEvent, splitIntoChunks } from "./wire-helpers.js";
import type { WireErrorResponse, WireProtocol } from "./wire-protocol.js";

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

const ERROR_MESSAGES: Record<string, string> = {
  invalid_request_error: "Invalid request",
  authentication_error: "invalid x-api-key",
  rate_limit_error: "Number of request tokens has exceeded your per-minute rate limit",
  api_error: "Internal server error",
  overloaded_error: "Overloaded",
};

function anthropicErrorType(status: number): string {
  return ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}

function usageObject(inputTokens: number, outputTokens: number): Record<string, unknown> {
  return {
    input_tokens: inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: outputTokens,
    service_tier: "standard",
  };
}

function sse(data: Record<string, unknown> & { type: string }): SseEvent {
  return { event: data.type, data: JSON.stringify(data) };
}

export function newAnthropicRequestId(): string {
  return `req_011C${randomBase62(20)}`;
}

export const anthropicWire: WireProtocol = {
  name: "anthropic-messages",
  path: "/v1/messages",
  streamTerminator: undefined,

  newToolCallId: () => `toolu_01${randomBase62(22)}`,

  successHeaders: () => ({ "request-id": newAnthropicRequestId(), "anthropic-organization-id": "fake-llm" }),

  streamEvents(turn: ResolvedTurn): SseEvent[] {
    const events: SseEvent[] = [];
    events.push(
      sse({
        type: "message_start",
        message: {
          id: `msg_01${randomBase62(22)}`,
          type: "message",
          role: "assistant",
          model: turn.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: usageObject(turn.inputTokens, 1),
        },
      }),
    );
    let index = 0;
    let hasPing = false;
    const ping = () => {
      if (hasPing) return;
      hasPing = true;
      // The real API sends one ping early in the stream, after the first block starts.
      events.push({ event: "ping", data: '{"type": "ping"}' });
    };
    if (turn.text !== undefined) {
      events.push(sse({ type: "content_block_start", index, content_block: { type: "text", text: "" } }));
      ping();
      for (const chunk of splitIntoChunks(turn.text)) {
        events.push(sse({ type: "content_block_delta", index, delta: { type: "text_delta", text: chunk } }));
      }
      events.push(sse({ type: "content_block_stop", index }));
      index += 1;
    }
    for (const call of turn.toolCalls) {
      events.push(
        sse({
          type: "content_block_start",
          index,
          content_block: { type: "tool_use", id: call.id, name: call.name, input: {} },
        }),
      );
      ping();
      for (const chunk of ["", ...splitIntoChunks(call.arguments)]) {
        events.push(
          sse({
            type: "content_block_delta",
            index,
            delta: { type: "input_json_delta", partial_json: chunk },
          }),
        );
      }
      events.push(sse({ type: "content_block_stop", index }));
      index += 1;
    }
    ping();
    events.push(
      sse({
        type: "message_delta",
        delta: { stop_reason: turn.stopReason, stop_sequence: null },
        usage: { output_tokens: turn.outputTokens },
      }),
    );
    events.push(sse({ type: "message_stop" }));
    return events;
  },

  jsonResponse(turn: ResolvedTurn): unknown {
    const content: unknown[] = [];
    if (turn.text !== undefined) content.push({ type: "text", text: turn.text });
    for (const call of turn.toolCalls) {
      content.push({ type: "tool_use", id: call.id, name: call.name, input: call.input });
    }
    return {
      id: `msg_01${randomBase62(22)}`,
      type: "message",
      role: "assistant",
      model: turn.model,
      content,
      stop_reason: turn.stopReason,
      stop_sequence: null,
      usage: usageObject(turn.inputTokens, turn.outputTokens),
    };
  },

  errorResponse(status: number, message?: string): WireErrorResponse {
    const type = anthropicErrorType(status);
    const requestId = newAnthropicRequestId();
    const headers: Record<string, string> = { "request-id": requestId };
    if (status === 429 || status >= 500) headers["x-should-retry"] = "true";
    return {
      status,
      headers,
      body: {
        type: "error",
        error: { type, message: message ?? ERROR_MESSAGES[type] ?? `HTTP ${status}` },
        request_id: requestId,
      },
    };
  },
};
