/** Small helpers shared by the three wire formats: vendor-shaped ids, chunking, token estimates, SSE framing. */
import { randomBytes } from "node:crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

export function randomBase62(length: number): string {
  const bytes = randomBytes(length);
  let result = "";
  for (const byte of bytes) result += BASE62[byte % 62];
  return result;
}

export function randomHex(length: number): string {
  return randomBytes(Math.ceil(length / 2))
    .toString("hex")
    .slice(0, length);
}

/** One server-sent event; `event` is omitted for OpenAI Chat, which sends bare `data:` lines. */
export interface SseEvent {
  readonly event?: string;
  readonly data: string;
}

export function formatSseEvent(event: SseEvent): string {
  return `${event.event === undefined ? "" : `event: ${event.event}\n`}data: ${event.data}\n\n`;
}

/** Splits text into several pieces (by code point) so clients see real streaming. */
export function splitIntoChunks(text: string, maxChunkLength = 16): string[] {
  const codePoints = Array.from(text);
  if (codePoints.length === 0) return [];
  const size = Math.max(1, Math.min(maxChunkLength, Math.ceil(codePoints.length / 3)));
  const chunks: string[] = [];
  for (let index = 0; index < codePoints.length; index += size) {
    chunks.push(codePoints.slice(index, index + size).join(""));
  }
  return chunks;
}

/** A rough token count (4 characters a token), enough for realistic, non-zero usage numbers. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A tool call with its id and serialized arguments resolved for one wire format. */
export interface ResolvedToolCall {
  readonly id: string;
  readonly name: string;
  readonly input: Record<string, unknown>;
  readonly arguments: string;
}

export interface ResolvedTurn {
  readonly text: string | undefined;
  readonly toolCalls: readonly ResolvedToolCall[];
  readonly stopReason: "end_turn" | "tool_use" | "max_tokens";
  readonly model: string;
  readonly inputTokens: number;
  readonly outputTokens: number;
}
