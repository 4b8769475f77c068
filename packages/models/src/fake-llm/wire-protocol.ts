/** The shape each vendor wire format implements for the fake server. */
import type { ResolvedTurn, SseEvent } from "./wire-helpers.js";

export type FakeLlmProtocol = "anthropic-messages" | "openai-chat" | "openai-responses";

export interface WireErrorResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

export interface WireProtocol {
  readonly name: FakeLlmProtocol;
  readonly path: string;
  /** A tool call id in the vendor's shape (toolu_…, call_…). */
  newToolCallId(): string;
  /** Response headers for a successful answer (request ids and the like). */
  successHeaders(): Record<string, string>;
  streamEvents(turn: ResolvedTurn, requestBody: Record<string, unknown>): SseEvent[];
  /** Chat Completions ends with `data: [DONE]`; the others end with their last event. */
  readonly streamTerminator: string | undefined;
  jsonResponse(turn: ResolvedTurn, requestBody: Record<string, unknown>): unknown;
  errorResponse(status: number, message?: string): WireErrorResponse;
}
