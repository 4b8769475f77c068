/**
 * Replays every recorded vendor stream in __fixtures__/llm-wire through the fake server (raw turns) and checks
 * that the AI SDK providers and our adapter parse each one. Framing is rebuilt as __fixtures__/llm-wire/MANIFEST.md
 * describes. Recordings: vercel/ai @ ed857f5 and anthropic-sdk-typescript @ bfa9197 (see MANIFEST.md).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import type { ModelEvent } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createModelFactory } from "./ai-sdk/create-model-factory.js";
import { type FakeLlmServer, startFakeLlmServer } from "./fake-llm/start-fake-llm-server.js";

const ROOT = join(import.meta.dirname, "__fixtures__", "llm-wire");

/** The provider-level model (LanguageModelV3), typed without importing the undeclared @ai-sdk/provider. */
type LanguageModelV3 = ReturnType<ReturnType<typeof createAnthropic>["messages"]>;

type ProviderKind = "anthropic" | "openai-chat" | "openai-compatible" | "openai";

interface ExpectedToolCall {
  readonly name: string;
  /** Parsed JSON input (matched with toMatchObject), or the raw string for free-form custom tools. */
  readonly input: unknown;
  readonly isProviderExecuted?: boolean;
}

interface StreamExpectation {
  /** Exact text, or a substring when `textIncludes` is used. */
  readonly text?: string;
  readonly textIncludes?: string;
  readonly toolCalls?: readonly ExpectedToolCall[];
  /** The SDK's unified finish reason. */
  readonly finishReason?: string;
  /** The stream is a vendor error: the SDK reports an error part or throws; our adapter ends with this code. */
  readonly errorCode?: string;
}

const SF = { location: "San Francisco" };
const SPARKLE = [{ name: "test-tool", input: { value: "Sparkle Day" } }];

/** One entry per recorded stream file; a test below fails if a fixture file has no entry. */
const STREAMS: Record<string, StreamExpectation> = {
  "anthropic-chunks/anthropic-clear-thinking.1.chunks.txt": { text: "925 ÷ 5 = 185", finishReason: "stop" },
  "anthropic-chunks/anthropic-clear-tool-uses.1.chunks.txt": {
    textIncludes: "Here's a comparison of the weather in both cities",
    toolCalls: [],
    finishReason: "stop",
  },
  "anthropic-chunks/anthropic-combined-context-editing.1.chunks.txt": {
    textIncludes: "# 25 × 37",
    finishReason: "stop",
  },
  "anthropic-chunks/anthropic-compaction.1.chunks.txt": {
    textIncludes: "## Summary of Conversation",
    finishReason: "stop",
  },
  "anthropic-chunks/anthropic-json-other-tool.1.chunks.txt": {
    text: "",
    toolCalls: [{ name: "weather", input: SF }],
    finishReason: "tool-calls",
  },
  "anthropic-chunks/anthropic-json-tool.1.chunks.txt": {
    text: "",
    toolCalls: [{ name: "json", input: { elements: [{ location: "San Francisco", temperature: 58 }] } }],
    finishReason: "tool-calls",
  },
  "anthropic-chunks/anthropic-json-tool.2.chunks.txt": {
    text: "I'll invoke the JSON response tool.",
    toolCalls: [{ name: "json", input: { elements: [{ location: "San Francisco", temperature: 58 }] } }],
    finishReason: "tool-calls",
  },
  "anthropic-chunks/anthropic-message-delta-input-tokens.chunks.txt": { text: "pong", finishReason: "stop" },
  "anthropic-chunks/anthropic-refusal.chunks.txt": {
    text: "",
    toolCalls: [],
    finishReason: "content-filter",
  },
  "anthropic-chunks/anthropic-text.chunks.txt": {
    textIncludes: "Hello! I'm doing well, thank you for asking.",
    finishReason: "stop",
  },
  "anthropic-chunks/anthropic-tool-no-args.chunks.txt": {
    text: "I'll update the issue list for you.",
    toolCalls: [{ name: "updateIssueList", input: {} }],
    finishReason: "tool-calls",
  },
  "anthropic-chunks/duplicate-message-start.chunks.txt": { text: "Hello, World!", finishReason: "stop" },
  // A second message_start spliced into one stream: the SDK refuses it as invalid response data.
  "anthropic-chunks/spliced-message-start.chunks.txt": { errorCode: "model_bad_response" },
  "anthropic-sse-full/basic_response.txt": { text: "Hello there!", finishReason: "stop" },
  // max_tokens hit inside a tool_use block: the partial tool call is dropped, the text survives.
  "anthropic-sse-full/incomplete_partial_json_response.txt": {
    textIncludes: "I'll create a comprehensive tax guide",
    toolCalls: [],
    finishReason: "length",
  },
  "anthropic-sse-full/stream-a-refusal.sse": { text: "Hi", finishReason: "content-filter" },
  "anthropic-sse-full/stream-a-toolrefusal.sse": {
    textIncludes: "Here's a summary of this year's solar eclipses",
    toolCalls: [
      {
        name: "web_search",
        input: { query: "solar eclipse viewing safety news 2026" },
        isProviderExecuted: true,
      },
    ],
    finishReason: "content-filter",
  },
  "anthropic-sse-full/stream-b-fallback.sse": {
    textIncludes: "**Solar eclipses** happen",
    finishReason: "stop",
  },
  "anthropic-sse-full/tool_use_response.txt": {
    text: "I'll check the current weather in Paris for you.",
    toolCalls: [{ name: "get_weather", input: { location: "Paris" } }],
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/alibaba-alibaba-tool-call.chunks.txt": {
    text: "",
    toolCalls: [{ name: "weather", input: SF }],
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/deepseek-deepseek-reasoning.chunks.txt": {
    text: 'The word "strawberry" contains three "r"s.',
    finishReason: "stop",
  },
  "openai-chat-chunks/deepseek-deepseek-tool-call.chunks.txt": {
    toolCalls: [{ name: "weather", input: SF }],
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/groq-groq-tool-call.chunks.txt": {
    toolCalls: [{ name: "weather", input: {} }],
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/mistral-mistral-incremental-tool-call.chunks.txt": {
    toolCalls: [{ name: "webSearchTool", input: { query: "current Berlin weather" } }],
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/openai-azure-model-router.1.chunks.txt": {
    text: "Capital of Denmark.",
    finishReason: "stop",
  },
  "openai-chat-chunks/openai-compatible-anthropic-fallback-tool-call.sse": {
    text: "Reading it.",
    toolCalls: [{ name: "read_file", input: { path: "a.txt" } }],
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/openai-compatible-xai-tool-call.chunks.txt": {
    toolCalls: [{ name: "weather", input: SF }],
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/openai-first-chunk-error.sse": { errorCode: "model_server_error" },
  "openai-chat-chunks/openai-gpt-3.5-turbo-0125-tool-deltas.sse": {
    toolCalls: SPARKLE,
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/openai-openai-text.chunks.txt": {
    textIncludes: "**Holiday Name:** Harmony Day",
    toolCalls: [],
    finishReason: "stop",
  },
  "openai-chat-chunks/openai-tool-call-args-in-first-chunk.sse": {
    toolCalls: SPARKLE,
    finishReason: "tool-calls",
  },
  "openai-chat-chunks/openai-tool-call-one-chunk.sse": { toolCalls: SPARKLE, finishReason: "tool-calls" },
  "openai-responses-chunks/azure-azure-text.1.chunks.txt": { text: "Hello", finishReason: "stop" },
  "openai-responses-chunks/azure-azure-tool-call.1.chunks.txt": {
    text: "",
    toolCalls: [{ name: "weather", input: SF }],
    finishReason: "tool-calls",
  },
  "openai-responses-chunks/open-responses-lmstudio-tool-call.1.chunks.txt": {
    textIncludes: "I'll get the current weather information for San Francisco",
    toolCalls: [{ name: "weather", input: SF }],
    finishReason: "tool-calls",
  },
  // Provider tools (apply_patch, shell, local_shell, custom) arrive as tool calls named after the vendor tool.
  "openai-responses-chunks/openai-openai-apply-patch-tool-delete.1.chunks.txt": {
    toolCalls: [{ name: "apply_patch", input: { operation: { type: "delete_file", path: "obsolete.txt" } } }],
    finishReason: "tool-calls",
  },
  "openai-responses-chunks/openai-openai-apply-patch-tool.1.chunks.txt": {
    toolCalls: [{ name: "apply_patch", input: { operation: { type: "create_file" } } }],
    finishReason: "tool-calls",
  },
  "openai-responses-chunks/openai-openai-custom-tool.1.chunks.txt": {
    toolCalls: [{ name: "write_sql", input: "SELECT * FROM users WHERE age > 25" }],
    finishReason: "tool-calls",
  },
  "openai-responses-chunks/openai-openai-error.1.chunks.txt": { errorCode: "model_quota_exceeded" },
  "openai-responses-chunks/openai-openai-local-shell-tool.1.chunks.txt": {
    toolCalls: [{ name: "local_shell", input: { action: { type: "exec", command: ["ls", "-a", "~"] } } }],
    finishReason: "stop",
  },
  "openai-responses-chunks/openai-openai-reasoning-encrypted-content.1.chunks.txt": {
    text: "The final result is **570**.",
    toolCalls: [
      { name: "calculator", input: { a: 12, b: 7, op: "add" } },
      { name: "calculator", input: { a: 19, b: 3, op: "multiply" } },
      { name: "calculator", input: { a: 57, b: 10, op: "multiply" } },
    ],
    finishReason: "tool-calls",
  },
  "openai-responses-chunks/openai-openai-shell-tool.1.chunks.txt": {
    textIncludes: "Here are the files and folders in your `~/Desktop` directory",
    toolCalls: [{ name: "shell", input: { action: { commands: ["ls -a ~/Desktop"] } } }],
    finishReason: "stop",
  },
};

function kindsFor(file: string): ProviderKind[] {
  if (file.startsWith("anthropic-")) return ["anthropic"];
  if (file.startsWith("openai-chat-chunks/")) return ["openai-chat", "openai-compatible"];
  return ["openai"];
}

/** Rebuilds the wire framing (MANIFEST.md, "Formats"). Raw `.sse`/`.txt` files are already wire-exact. */
function frameStream(file: string): string {
  const text = readFileSync(join(ROOT, file), "utf8");
  if (!file.endsWith(".chunks.txt")) return text;
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (file.startsWith("openai-chat-chunks/")) {
    return `${lines.map((line) => `data: ${line}\n\n`).join("")}data: [DONE]\n\n`;
  }
  return lines
    .map((line) => `event: ${(JSON.parse(line) as { type: string }).type}\ndata: ${line}\n\n`)
    .join("");
}

function streamFiles(): string[] {
  return readdirSync(ROOT, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((folder) => readdirSync(join(ROOT, folder.name)).map((name) => `${folder.name}/${name}`))
    .filter((file) => /\.(chunks\.txt|sse|txt)$/.test(file))
    .sort();
}

interface ParsedStream {
  text: string;
  toolCalls: Array<{ name: string; input: unknown; isProviderExecuted: boolean }>;
  finishReason: string | undefined;
  hasError: boolean;
}

function parseInput(input: string): unknown {
  try {
    return JSON.parse(input);
  } catch {
    return input;
  }
}

async function parseWithProvider(model: LanguageModelV3): Promise<ParsedStream> {
  const parsed: ParsedStream = { text: "", toolCalls: [], finishReason: undefined, hasError: false };
  try {
    const { stream } = await model.doStream({
      prompt: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
    });
    const reader = stream.getReader();
    for (;;) {
      const { done, value: part } = await reader.read();
      if (done) break;
      if (part.type === "text-delta") parsed.text += part.delta;
      else if (part.type === "tool-call") {
        parsed.toolCalls.push({
          name: part.toolName,
          input: parseInput(part.input),
          isProviderExecuted: part.providerExecuted === true,
        });
      } else if (part.type === "error") parsed.hasError = true;
      else if (part.type === "finish") parsed.finishReason = part.finishReason.unified;
    }
  } catch {
    parsed.hasError = true;
  }
  return parsed;
}

let server: FakeLlmServer;
let providerModels: Record<ProviderKind, LanguageModelV3>;
let createModel: ReturnType<typeof createModelFactory>;

beforeAll(async () => {
  // "replay-model" is unknown to the SDK, which would warn about its token limit on every call.
  (globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;
  server = await startFakeLlmServer({ script: { turns: [] } });
  const baseURL = `${server.url}/v1`;
  const openai = createOpenAI({ apiKey: "test-key", baseURL });
  providerModels = {
    anthropic: createAnthropic({ apiKey: "test-key", baseURL }).messages("claude-replay"),
    "openai-chat": openai.chat("gpt-replay"),
    "openai-compatible": createOpenAICompatible({ name: "replay", baseURL, includeUsage: true }).chatModel(
      "replay",
    ),
    openai: openai.responses("gpt-replay"),
  };
  createModel = createModelFactory({
    anthropic: { apiKey: "test-key", baseURL },
    openai: { apiKey: "test-key", baseURL },
    openaiCompatible: { baseURL, name: "replay" },
  });
});
afterAll(() => server.close());

describe("replaying recorded vendor streams", () => {
  it("has an expectation for every recorded stream and no stale ones", () => {
    const files = streamFiles();
    expect(files.length).toBeGreaterThanOrEqual(40);
    expect(Object.keys(STREAMS).sort()).toEqual(files);
  });

  const cases = Object.entries(STREAMS).flatMap(([file, expected]) =>
    kindsFor(file).map((kind) => ({ file, kind, expected })),
  );

  it.each(cases)("$kind parses $file", async ({ file, kind, expected }) => {
    server.setScript({ turns: [{ raw: { body: frameStream(file) } }] });
    const parsed = await parseWithProvider(providerModels[kind]);
    if (expected.errorCode !== undefined) {
      expect(parsed.hasError).toBe(true);
      return;
    }
    expect(parsed.hasError).toBe(false);
    if (expected.text !== undefined) expect(parsed.text).toBe(expected.text);
    if (expected.textIncludes !== undefined) expect(parsed.text).toContain(expected.textIncludes);
    expect(parsed.toolCalls).toHaveLength(expected.toolCalls?.length ?? 0);
    expected.toolCalls?.forEach((call, index) => {
      const actual = parsed.toolCalls[index];
      expect(actual?.name).toBe(call.name);
      if (typeof call.input === "string") expect(actual?.input).toBe(call.input);
      else expect(actual?.input).toMatchObject(call.input as object);
      expect(actual?.isProviderExecuted).toBe(call.isProviderExecuted ?? false);
    });
    expect(parsed.finishReason).toBe(expected.finishReason);
  });

  it.each(cases)("the $kind adapter ends $file with one terminal event", async ({ file, kind, expected }) => {
    server.setScript({ turns: [{ raw: { body: frameStream(file) } }] });
    const model = createModel(`${kind}:replay-model`);
    const events: ModelEvent[] = [];
    const request = {
      system: "",
      messages: [{ role: "user" as const, content: [{ type: "text" as const, text: "hi" }] }],
      tools: [],
    };
    for await (const event of model.stream(request, new AbortController().signal)) events.push(event);
    const last = events.at(-1);
    expect(events.slice(0, -1).every((event) => event.type === "text.delta")).toBe(true);
    if (expected.errorCode !== undefined) {
      expect(last).toMatchObject({ type: "error", code: expected.errorCode });
      return;
    }
    if (last?.type !== "end") throw new Error(`expected end, got ${JSON.stringify(last)}`);
    const text = events.flatMap((event) => (event.type === "text.delta" ? [event.text] : [])).join("");
    if (expected.text !== undefined) expect(text).toBe(expected.text);
    if (expected.textIncludes !== undefined) expect(text).toContain(expected.textIncludes);
    // Provider-executed tools already ran upstream and never reach our loop.
    const ours = (expected.toolCalls ?? []).filter((call) => call.isProviderExecuted !== true);
    const toolCalls = last.message.content.filter((part) => part.type === "tool_call");
    expect(toolCalls.map((part) => part.name)).toEqual(ours.map((call) => call.name));
  });
});

describe("replaying recorded non-streaming responses", () => {
  interface JsonCase {
    readonly name: string;
    readonly body: Record<string, unknown>;
  }
  const toolRunner = JSON.parse(
    readFileSync(join(ROOT, "anthropic-sse-full/ToolRunner.json"), "utf8"),
  ) as Array<{
    response: Record<string, unknown>;
  }>;
  const jsonCases: JsonCase[] = [
    ...["anthropic-text.json", "anthropic-tool-no-args.json", "anthropic-memory-20250818.1.json"].map(
      (name) => ({
        name: `anthropic-chunks/${name}`,
        body: JSON.parse(readFileSync(join(ROOT, "anthropic-chunks", name), "utf8")) as Record<
          string,
          unknown
        >,
      }),
    ),
    ...toolRunner.map((entry, index) => ({ name: `ToolRunner.json[${index}]`, body: entry.response })),
  ];

  it("covers every recorded JSON response", () => {
    expect(jsonCases).toHaveLength(13);
  });

  it.each(jsonCases)("anthropic doGenerate recovers the content blocks of $name", async ({ body }) => {
    server.setScript({ turns: [{ raw: { contentType: "application/json", body: JSON.stringify(body) } }] });
    const result = await providerModels.anthropic.doGenerate({
      prompt: [{ role: "user", content: [{ type: "text", text: "hi" }] }],
    });
    const blocks = body.content as Array<Record<string, unknown>>;
    const expected = blocks.map((block) =>
      block.type === "text"
        ? { type: "text", text: block.text }
        : {
            type: "tool-call",
            toolCallId: block.id,
            toolName: block.name,
            input: JSON.stringify(block.input),
          },
    );
    expect(blocks.length).toBeGreaterThan(0);
    expect(
      result.content.map((part) =>
        part.type === "tool-call" ? { ...part, input: JSON.stringify(JSON.parse(part.input)) } : part,
      ),
    ).toMatchObject(expected);
    expect(result.finishReason.raw).toBe(body.stop_reason);
  });
});
