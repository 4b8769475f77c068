/**
 * A wire-faithful fake LLM server (node:http only). Each model request gets the next scripted turn,
 * one cursor shared by the Anthropic Messages, OpenAI Chat Completions and OpenAI Responses endpoints.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { anthropicWire } from "./anthropic-wire.js";
import {
  type FakeLlmScript,
  type FakeLlmScriptInput,
  type FakeLlmTurn,
  parseFakeLlmScript,
} from "./fake-llm-script.js";
import { openAiChatWire } from "./openai-chat-wire.js";
import { openAiResponsesWire } from "./openai-responses-wire.js";
import { estimateTokens, formatSseEvent, type ResolvedTurn, type SseEvent } from "./wire-helpers.js";
import type { FakeLlmProtocol, WireProtocol } from "./wire-protocol.js";

export interface FakeLlmRequest {
  readonly protocol: FakeLlmProtocol | "unknown";
  readonly method: string;
  readonly path: string;
  /** Request headers; `authorization`, `x-api-key` and `api-key` values are replaced by `[redacted]`. */
  readonly headers: Record<string, string>;
  /** The parsed JSON body, or null when it was absent or malformed. */
  readonly body: unknown;
  /** Index of the scripted turn that answered it, or null when none was consumed. */
  readonly turnIndex: number | null;
}

export interface FakeLlmServerOptions {
  /** Defaults to 0 (an ephemeral port). */
  readonly port?: number;
  /** Defaults to 127.0.0.1. */
  readonly host?: string;
  readonly script: FakeLlmScript | FakeLlmScriptInput;
  /**
   * `sequential` (default): one cursor across all requests. `history`: the turn is picked by how many
   * model answers the request's conversation already holds, so concurrent sessions and retried calls
   * (after a crash) each get the answer for their own position. The cursor is then unused.
   * `successful-tools` (Anthropic Messages): the turn is picked by how many tool results in the
   * conversation are not errors, so a tool call that failed is asked for again, as a model would
   * retry it (scripts with one tool call per turn).
   */
  readonly turnSelection?: "sequential" | "history" | "successful-tools";
}

export interface FakeLlmServer {
  /** Base URL without a path, e.g. `http://127.0.0.1:7071`; providers take `${url}/v1`. */
  readonly url: string;
  /** Every request received, in order (model calls and malformed ones, not the `/__` control routes). */
  readonly requests: readonly FakeLlmRequest[];
  /** Replaces the script and resets the cursor (the request log is kept). */
  setScript(script: FakeLlmScript | FakeLlmScriptInput): void;
  /** Resolves once at least `count` requests were recorded (lets tests act mid-call without sleeping). */
  waitForRequests(count: number): Promise<void>;
  /** Number of turns consumed so far. */
  readonly cursor: number;
  /** Stops listening and destroys open connections. */
  close(): Promise<void>;
}

const PROTOCOLS: readonly WireProtocol[] = [anthropicWire, openAiChatWire, openAiResponsesWire];
const REDACTED_HEADERS = new Set(["authorization", "x-api-key", "api-key", "proxy-authorization"]);

function sanitizeHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    headers[name] = REDACTED_HEADERS.has(name)
      ? "[redacted]"
      : Array.isArray(value)
        ? value.join(", ")
        : value;
  }
  return headers;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function writeAndFlush(response: ServerResponse, text: string): Promise<void> {
  return new Promise((resolve) => {
    response.write(text, () => resolve());
  });
}

function resolveTurn(
  turn: FakeLlmTurn,
  protocol: WireProtocol,
  body: Record<string, unknown>,
  rawBody: string,
): ResolvedTurn {
  const toolCalls = (turn.toolCalls ?? []).map((call) => ({
    id: call.id ?? protocol.newToolCallId(),
    name: call.name,
    input: call.input,
    arguments: JSON.stringify(call.input),
  }));
  const outputText = (turn.text ?? "") + toolCalls.map((call) => call.name + call.arguments).join("");
  return {
    text: turn.text,
    toolCalls,
    stopReason: turn.stopReason ?? (toolCalls.length > 0 ? "tool_use" : "end_turn"),
    model: typeof body.model === "string" ? body.model : "fake-model",
    inputTokens: estimateTokens(rawBody),
    outputTokens: estimateTokens(outputText),
  };
}

/**
 * Starts the fake server. Resolves once it listens. Never hangs a client: an exhausted script answers
 * HTTP 500 with "fake-llm: script exhausted after N turns" in the provider's error body.
 * @example
 * const server = await startFakeLlmServer({ script: { turns: [{ text: "hello" }] } });
 * const baseURL = `${server.url}/v1`;
 */
export async function startFakeLlmServer(options: FakeLlmServerOptions): Promise<FakeLlmServer> {
  let script = parseFakeLlmScript(options.script);
  let cursor = 0;
  const requests: FakeLlmRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const record = (entry: FakeLlmRequest) => {
    requests.push(entry);
    for (const waiter of [...waiters]) {
      if (requests.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };

  const delay = (milliseconds: number, response: ServerResponse): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve(!response.destroyed);
      }, milliseconds);
      timers.add(timer);
      response.once("close", () => {
        clearTimeout(timer);
        timers.delete(timer);
        resolve(false);
      });
    });

  async function answerModelRequest(
    protocol: WireProtocol,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    const rawBody = await readBody(request);
    let body: Record<string, unknown> | null = null;
    try {
      const parsed: unknown = JSON.parse(rawBody);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
        body = parsed as Record<string, unknown>;
      }
    } catch {
      body = null;
    }
    const entry = {
      protocol: protocol.name,
      method: request.method ?? "POST",
      path: request.url ?? protocol.path,
      headers: sanitizeHeaders(request),
      body,
    };
    if (body === null) {
      record({ ...entry, turnIndex: null });
      const error = protocol.errorResponse(
        400,
        protocol.name === "anthropic-messages"
          ? "There was an error parsing the body of your request: expected a JSON object"
          : "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
      );
      sendJson(response, error.status, error.body, error.headers);
      return;
    }
    const turnIndex =
      options.turnSelection === "history"
        ? answersInHistory(body)
        : options.turnSelection === "successful-tools"
          ? successfulToolResults(body)
          : cursor;
    const turn = script.turns[turnIndex];
    if (turn === undefined) {
      record({ ...entry, turnIndex: null });
      const error = protocol.errorResponse(
        500,
        `fake-llm: script exhausted after ${script.turns.length} turns`,
      );
      sendJson(response, error.status, error.body, error.headers);
      return;
    }
    if (options.turnSelection === undefined || options.turnSelection === "sequential") cursor += 1;
    record({ ...entry, turnIndex });

    if (turn.delayMs !== undefined && turn.delayMs > 0) {
      const isStillOpen = await delay(turn.delayMs, response);
      if (!isStillOpen) return;
    }
    if (turn.raw !== undefined) {
      response.writeHead(turn.raw.status, {
        "content-type": turn.raw.contentType,
        ...protocol.successHeaders(),
        ...turn.raw.headers,
      });
      response.end(turn.raw.body);
      return;
    }
    if (turn.error !== undefined) {
      const error = protocol.errorResponse(turn.error.status, turn.error.message);
      const headers = { ...error.headers };
      if (turn.error.retryAfter !== undefined) headers["retry-after"] = String(turn.error.retryAfter);
      if (turn.error.retryAfterMs !== undefined) headers["retry-after-ms"] = String(turn.error.retryAfterMs);
      sendJson(response, error.status, error.body, headers);
      return;
    }
    const resolved = resolveTurn(turn, protocol, body, rawBody);
    if (body.stream !== true) {
      if (turn.cut !== undefined) {
        response.destroy();
        return;
      }
      sendJson(response, 200, protocol.jsonResponse(resolved, body), protocol.successHeaders());
      return;
    }
    await writeStream(protocol, response, protocol.streamEvents(resolved, body), turn.cut);
  }

  async function writeStream(
    protocol: WireProtocol,
    response: ServerResponse,
    events: readonly SseEvent[],
    cut: number | undefined,
  ): Promise<void> {
    response.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      ...protocol.successHeaders(),
    });
    if (cut === undefined) {
      // Zero latency: every event at once (still separate SSE events), so the fake adds no per-event
      // round trips to what the harness is measured with.
      response.end(events.map((event) => formatSseEvent(event)).join("") + (protocol.streamTerminator ?? ""));
      return;
    }
    // Send the status line now, so a cut at 0 events is a broken 200 stream rather than no response.
    response.flushHeaders();
    for (const [index, event] of events.entries()) {
      if (cut !== undefined && index >= cut) {
        // Every earlier event was flushed (awaited), so the client sees exactly `cut` events.
        response.destroy();
        return;
      }
      if (response.destroyed) return;
      await writeAndFlush(response, formatSseEvent(event));
    }
    if (cut !== undefined) {
      // A cut at or past the last event still drops the clean end of the stream (and Chat's `[DONE]`).
      response.destroy();
      return;
    }
    if (protocol.streamTerminator !== undefined) await writeAndFlush(response, protocol.streamTerminator);
    response.end();
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://fake-llm");
    if (request.method === "GET" && url.pathname === "/__requests") {
      sendJson(response, 200, requests);
      return;
    }
    if (request.method === "POST" && url.pathname === "/__reset") {
      await readBody(request);
      cursor = 0;
      requests.length = 0;
      sendJson(response, 200, { ok: true });
      return;
    }
    const protocol = PROTOCOLS.find((candidate) => candidate.path === url.pathname.replace(/\/+$/, ""));
    if (protocol !== undefined && request.method === "POST") {
      await answerModelRequest(protocol, request, response);
      return;
    }
    await readBody(request);
    record({
      protocol: "unknown",
      method: request.method ?? "GET",
      path: request.url ?? "/",
      headers: sanitizeHeaders(request),
      body: null,
      turnIndex: null,
    });
    sendJson(response, 404, {
      error: { message: `fake-llm: no route for ${request.method} ${url.pathname}`, type: "not_found_error" },
    });
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // Invariant: a bug here must not crash the process; answer 500 if we still can.
      if (!response.headersSent) {
        sendJson(response, 500, {
          error: { message: `fake-llm internal error: ${String(error)}`, type: "server_error" },
        });
      } else {
        response.destroy();
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    requests,
    get cursor() {
      return cursor;
    },
    waitForRequests(count) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    setScript(next) {
      script = parseFakeLlmScript(next);
      cursor = 0;
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

/** Tool results in an Anthropic Messages conversation that are not marked `is_error`. */
export function successfulToolResults(body: unknown): number {
  const messages = (body as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages)) return 0;
  let count = 0;
  for (const message of messages as { role?: unknown; content?: unknown }[]) {
    if (message?.role !== "user" || !Array.isArray(message.content)) continue;
    for (const block of message.content as { type?: unknown; is_error?: unknown }[])
      if (block?.type === "tool_result" && block.is_error !== true) count += 1;
  }
  return count;
}

/**
 * How many model answers a request's conversation holds: assistant messages (Anthropic, Chat) or runs
 * of assistant output items (Responses: messages and function calls of one answer are consecutive).
 */
export function answersInHistory(body: unknown): number {
  if (!body || typeof body !== "object") return 0;
  const record = body as { messages?: unknown; input?: unknown };
  if (Array.isArray(record.messages)) {
    return record.messages.filter((message) => (message as { role?: unknown })?.role === "assistant").length;
  }
  if (!Array.isArray(record.input)) return 0;
  let answers = 0;
  let isInAnswer = false;
  for (const item of record.input as { type?: unknown; role?: unknown }[]) {
    const isAnswerItem =
      item?.type === "function_call" || item?.role === "assistant" || item?.type === "reasoning";
    if (isAnswerItem && !isInAnswer) answers += 1;
    isInAnswer = isAnswerItem;
  }
  return answers;
}
