import type { LanguageModel, ModelEvent, ModelRequest } from "@outrig/core";
import type { Message } from "@outrig/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FakeLlmScriptInput } from "../fake-llm/fake-llm-script.js";
import { type FakeLlmServer, startFakeLlmServer } from "../fake-llm/start-fake-llm-server.js";
import { AiSdkLanguageModel } from "./ai-sdk-language-model.js";
import { createModelFactory, type ModelsConfig } from "./create-model-factory.js";
import type { ProviderLanguageModel } from "./to-model-messages.js";

interface ModelKind {
  readonly spec: string;
  readonly path: string;
  readonly config: (baseURL: string) => ModelsConfig;
  readonly toolCallIdPattern: RegExp;
}

const KINDS: readonly ModelKind[] = [
  {
    spec: "anthropic:claude-sonnet-4-5",
    path: "/v1/messages",
    config: (baseURL) => ({ anthropic: { apiKey: "test-anthropic-key", baseURL } }),
    toolCallIdPattern: /^toolu_01[0-9A-Za-z]{22}$/,
  },
  {
    spec: "openai:gpt-5",
    path: "/v1/responses",
    config: (baseURL) => ({ openai: { apiKey: "test-openai-key", baseURL } }),
    toolCallIdPattern: /^call_[0-9A-Za-z]{24}$/,
  },
  {
    spec: "openai-chat:gpt-4.1",
    path: "/v1/chat/completions",
    config: (baseURL) => ({ openai: { apiKey: "test-openai-key", baseURL } }),
    toolCallIdPattern: /^call_[0-9A-Za-z]{24}$/,
  },
  {
    spec: "openai-compatible:local-model",
    path: "/v1/chat/completions",
    config: (baseURL) => ({ openaiCompatible: { apiKey: "test-local-key", baseURL, name: "local" } }),
    toolCallIdPattern: /^call_[0-9A-Za-z]{24}$/,
  },
];

const TOOLS: ModelRequest["tools"] = [
  {
    name: "Write",
    description: "Write a file",
    inputSchema: {
      type: "object",
      properties: { file_path: { type: "string" }, content: { type: "string" } },
      required: ["file_path", "content"],
    },
  },
  {
    name: "Bash",
    description: "Run a command",
    inputSchema: { type: "object", properties: { command: { type: "string" } }, required: ["command"] },
  },
];

function request(messages: Message[] = [{ role: "user", content: [{ type: "text", text: "say hello" }] }]) {
  return { system: "You are a test agent.", messages, tools: TOOLS } satisfies ModelRequest;
}

async function collect(stream: AsyncIterable<ModelEvent>): Promise<ModelEvent[]> {
  const events: ModelEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

/** Checks the grammar `text.delta* (end | error)` and returns the terminal event. */
function terminal(events: readonly ModelEvent[]): Exclude<ModelEvent, { type: "text.delta" }> {
  const last = events.at(-1);
  expect(events.slice(0, -1).every((event) => event.type === "text.delta")).toBe(true);
  if (last === undefined || last.type === "text.delta") throw new Error("stream has no terminal event");
  return last;
}

describe.each(KINDS)("$spec over the fake LLM server", (kind) => {
  let server: FakeLlmServer;
  let model: LanguageModel;

  beforeAll(async () => {
    server = await startFakeLlmServer({ script: { turns: [] } });
    model = createModelFactory(kind.config(`${server.url}/v1`))(kind.spec);
  });
  afterAll(() => server.close());

  async function run(script: FakeLlmScriptInput, messages?: Message[]) {
    server.setScript(script);
    const before = server.requests.length;
    const events = await collect(model.stream(request(messages), new AbortController().signal));
    return { events, requests: server.requests.slice(before) };
  }

  it("streams a text turn as several deltas and one end", async () => {
    const text = "Hello from the fake server, streamed in pieces.";
    const { events, requests } = await run({ turns: [{ text }] });
    const deltas = events.filter((event) => event.type === "text.delta");
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((event) => event.text).join("")).toBe(text);
    const end = terminal(events);
    expect(end).toMatchObject({
      type: "end",
      message: { role: "assistant", content: [{ type: "text", text }] },
      stopReason: "end_turn",
    });
    if (end.type !== "end") throw new Error("expected end");
    expect(end.usage.inputTokens).toBeGreaterThan(0);
    expect(end.usage.outputTokens).toBeGreaterThan(0);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ method: "POST", path: kind.path, body: { stream: true } });
    const headers = requests[0]?.headers ?? {};
    const credential = headers.authorization ?? headers["x-api-key"];
    expect(credential).toBe("[redacted]");
    expect(JSON.stringify(requests[0]?.body)).not.toContain("test-");
    expect(JSON.stringify(requests[0]?.body)).toContain("You are a test agent.");
  });

  it("sends images and documents in the provider's wire shape", async () => {
    const png =
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    const pdf = Buffer.from("%PDF-1.4\n%%EOF\n").toString("base64");
    const { events, requests } = await run({ turns: [{ text: "seen" }] }, [
      {
        role: "user",
        content: [
          { type: "text", text: "look" },
          { type: "image", mediaType: "image/png", source: { type: "base64", data: png } },
          { type: "image", mediaType: "", source: { type: "url", url: "https://example.com/cat.png" } },
          {
            type: "document",
            mediaType: "application/pdf",
            source: { type: "file", fileId: "file_1", data: pdf },
          },
          {
            type: "document",
            mediaType: "text/plain",
            source: { type: "text", data: "plain notes" },
            title: "notes",
          },
          {
            type: "document",
            mediaType: "text/plain",
            source: { type: "file", fileId: "file_2", data: Buffer.from("filed notes").toString("base64") },
          },
        ],
      },
    ]);
    expect(terminal(events).type).toBe("end");
    const body = JSON.stringify(requests[0]?.body);
    expect(body).toContain(png);
    expect(body).toContain("https://example.com/cat.png");
    expect(body).toContain(pdf);
    if (kind.spec.startsWith("anthropic")) {
      expect(body).toContain('"source":{"type":"text","media_type":"text/plain","data":"plain notes"}');
      expect(body).toContain('"source":{"type":"text","media_type":"text/plain","data":"filed notes"}');
    } else {
      expect(body).toContain('<document title=\\"notes\\">\\nplain notes\\n</document>');
      expect(body).toContain("<document>\\nfiled notes\\n</document>");
      expect(body).toContain(`data:image/png;base64,${png}`);
    }
  });

  it("leaves out an empty system prompt", async () => {
    server.setScript({ turns: [{ text: "ok" }] });
    const before = server.requests.length;
    const events = await collect(model.stream({ ...request(), system: "" }, new AbortController().signal));
    expect(terminal(events).type).toBe("end");
    const body = JSON.stringify(server.requests[before]?.body);
    expect(body).not.toContain('"system":');
    expect(body).not.toContain('"role":"system"');
  });

  it("returns parallel tool calls with ids, names and parsed input", async () => {
    const { events, requests } = await run({
      turns: [
        {
          text: "Writing and listing.",
          toolCalls: [
            { name: "Write", input: { file_path: "/workspace/hello.txt", content: "hello\n" } },
            { name: "Bash", input: { command: "cat /workspace/hello.txt" } },
          ],
        },
      ],
    });
    const end = terminal(events);
    if (end.type !== "end") throw new Error(`expected end, got ${JSON.stringify(end)}`);
    expect(end.stopReason).toBe("tool_use");
    expect(end.message.content).toMatchObject([
      { type: "text", text: "Writing and listing." },
      { type: "tool_call", name: "Write", input: { file_path: "/workspace/hello.txt", content: "hello\n" } },
      { type: "tool_call", name: "Bash", input: { command: "cat /workspace/hello.txt" } },
    ]);
    for (const part of end.message.content) {
      if (part.type === "tool_call") expect(part.toolCallId).toMatch(kind.toolCallIdPattern);
    }
    const body = JSON.stringify(requests[0]?.body);
    expect(body).toContain('"Write"');
    expect(body).toContain('"file_path"');
  });

  it("sends tool results back in the provider's format", async () => {
    const transcript: Message[] = [
      { role: "user", content: [{ type: "text", text: "write hello" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "On it." },
          {
            type: "tool_call",
            toolCallId: "call_write1",
            name: "Write",
            input: { file_path: "/a", content: "x" },
          },
          { type: "tool_call", toolCallId: "call_bash2", name: "Bash", input: { command: "false" } },
        ],
      },
      {
        role: "tool",
        content: [
          {
            type: "tool_result",
            toolCallId: "call_write1",
            name: "Write",
            output: "wrote /a",
            isError: false,
          },
          {
            type: "tool_result",
            toolCallId: "call_bash2",
            name: "Bash",
            output: "exit code 1",
            isError: true,
          },
        ],
      },
    ];
    const { events, requests } = await run({ turns: [{ text: "done" }] }, transcript);
    expect(terminal(events).type).toBe("end");
    const body = requests[0]?.body as Record<string, unknown>;
    if (kind.path === "/v1/messages") {
      const messages = body.messages as Array<{ role: string; content: unknown[] }>;
      expect(messages[1]).toMatchObject({
        role: "assistant",
        content: [
          { type: "text", text: "On it." },
          { type: "tool_use", id: "call_write1", name: "Write", input: { file_path: "/a", content: "x" } },
          { type: "tool_use", id: "call_bash2", name: "Bash", input: { command: "false" } },
        ],
      });
      expect(messages[2]?.role).toBe("user");
      expect(messages[2]?.content).toMatchObject([
        { type: "tool_result", tool_use_id: "call_write1", content: "wrote /a" },
        { type: "tool_result", tool_use_id: "call_bash2", content: "exit code 1", is_error: true },
      ]);
      const firstResult = messages[2]?.content[0] as { is_error?: boolean } | undefined;
      expect(firstResult?.is_error).not.toBe(true);
    } else if (kind.path === "/v1/chat/completions") {
      const messages = body.messages as Array<Record<string, unknown>>;
      expect(messages[0]).toMatchObject({ role: "system", content: "You are a test agent." });
      expect(messages).toContainEqual(
        expect.objectContaining({
          role: "assistant",
          tool_calls: [
            expect.objectContaining({
              id: "call_write1",
              type: "function",
              function: expect.objectContaining({ name: "Write" }),
            }),
            expect.objectContaining({
              id: "call_bash2",
              type: "function",
              function: expect.objectContaining({ name: "Bash" }),
            }),
          ],
        }),
      );
      expect(messages).toContainEqual({ role: "tool", tool_call_id: "call_write1", content: "wrote /a" });
      expect(messages).toContainEqual({ role: "tool", tool_call_id: "call_bash2", content: "exit code 1" });
    } else {
      const input = body.input as Array<Record<string, unknown>>;
      expect(input).toContainEqual(
        expect.objectContaining({ type: "function_call", call_id: "call_write1", name: "Write" }),
      );
      expect(input).toContainEqual({
        type: "function_call_output",
        call_id: "call_write1",
        output: "wrote /a",
      });
      expect(input).toContainEqual({
        type: "function_call_output",
        call_id: "call_bash2",
        output: "exit code 1",
      });
    }
  });

  it("reports a 429 as retryable with retryAfterMs from retry-after, without retrying itself", async () => {
    const { events, requests } = await run({
      turns: [{ error: { status: 429, retryAfter: 1 } }, { text: "x" }],
    });
    expect(events).toEqual([
      expect.objectContaining({
        type: "error",
        code: "model_rate_limited",
        retryable: true,
        status: 429,
        retryAfterMs: 1000,
      }),
    ]);
    expect(requests).toHaveLength(1);
  });

  it("prefers retry-after-ms when present", async () => {
    const { events } = await run({ turns: [{ error: { status: 429, retryAfter: 3, retryAfterMs: 250 } }] });
    expect(terminal(events)).toMatchObject({ code: "model_rate_limited", retryAfterMs: 250 });
  });

  it("reports a 500 as a retryable server error", async () => {
    const { events, requests } = await run({ turns: [{ error: { status: 500 } }] });
    expect(terminal(events)).toMatchObject({
      type: "error",
      code: "model_server_error",
      retryable: true,
      status: 500,
    });
    expect(requests).toHaveLength(1);
  });

  it("reports a 400 as a bad request that is not retryable", async () => {
    const { events } = await run({
      turns: [{ error: { status: 400, message: "messages: field required" } }],
    });
    const end = terminal(events);
    expect(end).toMatchObject({ type: "error", code: "model_bad_request", retryable: false, status: 400 });
    expect(end.type === "error" && end.message).toContain("messages: field required");
  });

  it("reports a 401 as an auth failure", async () => {
    const { events } = await run({ turns: [{ error: { status: 401 } }] });
    expect(terminal(events)).toMatchObject({ code: "model_auth_failed", retryable: false, status: 401 });
  });

  if (kind.spec.startsWith("anthropic:")) {
    it("reports a 529 as retryable overload", async () => {
      const { events } = await run({ turns: [{ error: { status: 529 } }] });
      expect(terminal(events)).toMatchObject({
        type: "error",
        code: "model_overloaded",
        retryable: true,
        status: 529,
      });
    });
  }

  it("reports a stream cut mid tool call as a retryable model_stream_cut after the text so far", async () => {
    const { events } = await run({
      turns: [
        {
          text: "Starting a long answer",
          toolCalls: [{ name: "Bash", input: { command: "ls -la /" } }],
          cut: 6,
        },
      ],
    });
    const end = terminal(events);
    expect(end).toMatchObject({ type: "error", code: "model_stream_cut", retryable: true });
    expect(events.filter((event) => event.type === "text.delta").length).toBeGreaterThan(0);
  });

  it("reports a stream cut before any event as model_stream_cut", async () => {
    const { events } = await run({ turns: [{ text: "never seen", cut: 0 }] });
    expect(events).toEqual([
      expect.objectContaining({ type: "error", code: "model_stream_cut", retryable: true }),
    ]);
  });

  it("ends promptly with model_aborted when the signal aborts while the server stalls", async () => {
    server.setScript({ turns: [{ text: "too late", delayMs: 600_000 }] });
    const controller = new AbortController();
    const before = server.requests.length;
    const pending = collect(model.stream(request(), controller.signal));
    await server.waitForRequests(before + 1);
    controller.abort();
    const events = await pending;
    expect(events).toEqual([
      expect.objectContaining({ type: "error", code: "model_aborted", retryable: false }),
    ]);
  });

  it("reports an exhausted script as a server error that names the turn count", async () => {
    const { events } = await run({ turns: [] });
    const end = terminal(events);
    expect(end).toMatchObject({ type: "error", code: "model_server_error", status: 500 });
    expect(end.type === "error" && end.message).toContain("fake-llm: script exhausted after 0 turns");
  });
});

describe("createModelFactory", () => {
  it("rejects an unknown provider prefix with invalid_model", () => {
    const createModel = createModelFactory({ anthropic: { apiKey: "key" } });
    expect(() => createModel("gemini:pro")).toThrow(expect.objectContaining({ code: "invalid_model" }));
    expect(() => createModel("claude-sonnet")).toThrow(expect.objectContaining({ name: "InputError" }));
    expect(() => createModel("anthropic:")).toThrow(expect.objectContaining({ code: "invalid_model" }));
  });

  it.each([
    ["anthropic:claude-sonnet-4-5", "ANTHROPIC_API_KEY"],
    ["openai:gpt-5", "OPENAI_API_KEY"],
    ["openai-chat:gpt-4.1", "OPENAI_API_KEY"],
    ["openai-compatible:llama", "OPENAI_COMPATIBLE_BASE_URL"],
  ])("names the missing setting for %s", (spec, variable) => {
    const createModel = createModelFactory({});
    expect(() => createModel(spec)).toThrow(expect.objectContaining({ name: "ConfigError" }));
    expect(() => createModel(spec)).toThrow(variable);
  });

  it("builds models that carry their provider and model id", () => {
    const createModel = createModelFactory({
      anthropic: { apiKey: "a" },
      openai: { apiKey: "o" },
      openaiCompatible: { baseURL: "http://127.0.0.1:1/v1" },
    });
    expect(createModel("anthropic:claude-haiku-4-5")).toMatchObject({
      provider: "anthropic",
      modelId: "claude-haiku-4-5",
    });
    expect(createModel("openai-chat:gpt-4.1")).toMatchObject({ provider: "openai-chat", modelId: "gpt-4.1" });
    expect(createModel("openai-compatible:org/model:tag")).toMatchObject({ modelId: "org/model:tag" });
  });
});

describe("AiSdkLanguageModel over a provider stream", () => {
  type StreamPart =
    Awaited<ReturnType<ProviderLanguageModel["doStream"]>>["stream"] extends ReadableStream<infer Part>
      ? Part
      : never;
  const USAGE = {
    inputTokens: { total: 12, noCache: 12, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 34, text: 34, reasoning: undefined },
  };

  /** A provider model that replays `parts` and records the call options it was given. */
  function providerModel(parts: readonly StreamPart[]) {
    const calls: Array<Parameters<ProviderLanguageModel["doStream"]>[0]> = [];
    const model: ProviderLanguageModel = {
      specificationVersion: "v3",
      provider: "stub",
      modelId: "stub-model",
      supportedUrls: {},
      doGenerate: () => Promise.reject(new Error("not used")),
      doStream: async (options) => {
        calls.push(options);
        let index = 0;
        const stream = new ReadableStream<StreamPart>({
          pull(controller) {
            const part = parts[index++];
            if (part === undefined) controller.close();
            else controller.enqueue(part);
          },
        });
        return { stream };
      },
    };
    return { model, calls };
  }

  function toolCallParts(id: string, input: string, deltaSize: number): StreamPart[] {
    const deltas: StreamPart[] = [];
    for (let offset = 0; offset < input.length; offset += deltaSize) {
      deltas.push({ type: "tool-input-delta", id, delta: input.slice(offset, offset + deltaSize) });
    }
    return [
      { type: "tool-input-start", id, toolName: "Write" },
      ...deltas,
      { type: "tool-input-end", id },
      { type: "tool-call", toolCallId: id, toolName: "Write", input },
    ];
  }

  it("hands a tool input streamed in 40,000 deltas to the loop through no web-stream stage of its own", async () => {
    const input = JSON.stringify({ file_path: "/workspace/big.txt", content: "x".repeat(640_000) });
    const { model, calls } = providerModel([
      { type: "stream-start", warnings: [] },
      { type: "response-metadata", id: "msg_1", modelId: "stub-model" },
      ...toolCallParts("toolu_big", input, 16),
      { type: "finish", usage: USAGE, finishReason: { unified: "tool-calls", raw: "tool_use" } },
    ]);
    // Each TransformStream between the provider stream and us is a per-part hop (and garbage) for every delta.
    const NativeTransformStream = globalThis.TransformStream;
    let transformStreams = 0;
    globalThis.TransformStream = class CountedTransformStream extends NativeTransformStream {
      constructor(...args: ConstructorParameters<typeof NativeTransformStream>) {
        super(...args);
        transformStreams += 1;
      }
    } as typeof TransformStream;
    let events: ModelEvent[];
    try {
      const adapter = new AiSdkLanguageModel({ provider: "anthropic", modelId: "stub-model", model });
      events = await collect(adapter.stream(request(), new AbortController().signal));
    } finally {
      globalThis.TransformStream = NativeTransformStream;
    }
    expect(transformStreams).toBe(0);
    expect(calls).toHaveLength(1);
    expect(events).toEqual([
      {
        type: "end",
        message: {
          role: "assistant",
          content: [{ type: "tool_call", toolCallId: "toolu_big", name: "Write", input: JSON.parse(input) }],
        },
        stopReason: "tool_use",
        usage: { inputTokens: 12, outputTokens: 34 },
      },
    ]);
  });

  it("sends the system prompt, transcript and tools in the provider prompt format", async () => {
    const { model, calls } = providerModel([
      { type: "text-start", id: "0" },
      { type: "text-delta", id: "0", delta: "ok" },
      { type: "text-end", id: "0" },
      { type: "finish", usage: USAGE, finishReason: { unified: "stop", raw: "end_turn" } },
    ]);
    const adapter = new AiSdkLanguageModel({ provider: "anthropic", modelId: "stub-model", model });
    const transcript: Message[] = [
      { role: "user", content: [{ type: "text", text: "write hello" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "" },
          {
            type: "tool_call",
            toolCallId: "call_1",
            name: "Write",
            input: { file_path: "/a", content: "x" },
          },
          { type: "tool_call", toolCallId: "call_2", name: "Bash", input: { command: "false" } },
        ],
      },
      {
        role: "tool",
        content: [
          { type: "tool_result", toolCallId: "call_1", name: "Write", output: "wrote /a", isError: false },
        ],
      },
      {
        role: "tool",
        content: [
          { type: "tool_result", toolCallId: "call_2", name: "Bash", output: "exit 1", isError: true },
        ],
      },
    ];
    const events = await collect(
      adapter.stream({ ...request(transcript), maxOutputTokens: 99 }, new AbortController().signal),
    );
    expect(events.at(-1)).toMatchObject({ type: "end", stopReason: "end_turn" });
    expect(calls[0]).toMatchObject({
      maxOutputTokens: 99,
      toolChoice: { type: "auto" },
      tools: [
        { type: "function", name: "Write", description: "Write a file", inputSchema: TOOLS[0]?.inputSchema },
        { type: "function", name: "Bash", description: "Run a command", inputSchema: TOOLS[1]?.inputSchema },
      ],
    });
    expect(calls[0]?.prompt).toEqual([
      { role: "system", content: "You are a test agent." },
      { role: "user", content: [{ type: "text", text: "write hello" }] },
      {
        role: "assistant",
        content: [
          {
            type: "tool-call",
            toolCallId: "call_1",
            toolName: "Write",
            input: { file_path: "/a", content: "x" },
          },
          { type: "tool-call", toolCallId: "call_2", toolName: "Bash", input: { command: "false" } },
        ],
      },
      {
        role: "tool",
        content: [
          {
            type: "tool-result",
            toolCallId: "call_1",
            toolName: "Write",
            output: { type: "text", value: "wrote /a" },
          },
          {
            type: "tool-result",
            toolCallId: "call_2",
            toolName: "Bash",
            output: { type: "error-text", value: "exit 1" },
          },
        ],
      },
    ]);
  });

  it("reads tool inputs as the AI SDK does: empty is {}, unparsable or prototype-polluting stays the raw text", async () => {
    const polluting = '{"__proto__":{"isAdmin":true}}';
    const { model } = providerModel([
      { type: "reasoning-start", id: "r" },
      { type: "reasoning-delta", id: "r", delta: "thinking" },
      { type: "reasoning-end", id: "r" },
      { type: "tool-call", toolCallId: "call_empty", toolName: "Bash", input: "" },
      { type: "tool-call", toolCallId: "call_broken", toolName: "Bash", input: '{"command": "ls' },
      { type: "tool-call", toolCallId: "call_proto", toolName: "Bash", input: polluting },
      {
        type: "tool-call",
        toolCallId: "srvtoolu_1",
        toolName: "web_search",
        input: "{}",
        providerExecuted: true,
      },
      { type: "finish", usage: USAGE, finishReason: { unified: "tool-calls", raw: "tool_use" } },
    ]);
    const adapter = new AiSdkLanguageModel({ provider: "anthropic", modelId: "stub-model", model });
    const events = await collect(adapter.stream(request(), new AbortController().signal));
    expect(events).toEqual([
      {
        type: "end",
        message: {
          role: "assistant",
          content: [
            { type: "tool_call", toolCallId: "call_empty", name: "Bash", input: {} },
            { type: "tool_call", toolCallId: "call_broken", name: "Bash", input: '{"command": "ls' },
            { type: "tool_call", toolCallId: "call_proto", name: "Bash", input: polluting },
          ],
        },
        stopReason: "tool_use",
        usage: { inputTokens: 12, outputTokens: 34 },
      },
    ]);
  });

  it("reports an error part as the terminal error, after the text so far", async () => {
    const { model } = providerModel([
      { type: "text-start", id: "0" },
      { type: "text-delta", id: "0", delta: "partial" },
      { type: "error", error: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } } },
      { type: "finish", usage: USAGE, finishReason: { unified: "error", raw: undefined } },
    ]);
    const adapter = new AiSdkLanguageModel({ provider: "anthropic", modelId: "stub-model", model });
    const events = await collect(adapter.stream(request(), new AbortController().signal));
    expect(events).toEqual([
      { type: "text.delta", text: "partial" },
      expect.objectContaining({ type: "error", code: "model_overloaded", retryable: true }),
    ]);
  });
});

describe("vendor tools", () => {
  let server: FakeLlmServer;
  beforeAll(async () => {
    server = await startFakeLlmServer({ script: { turns: [] } });
  });
  afterAll(() => server.close());

  it("sends a tool that implements Anthropic's memory tool as that vendor type, and others as functions", async () => {
    server.setScript({ turns: [{ text: "ok" }] });
    const model = createModelFactory({ anthropic: { apiKey: "key", baseURL: `${server.url}/v1` } })(
      "anthropic:claude-sonnet-4-5",
    );
    const memory = {
      name: "memory",
      description: "Memory",
      inputSchema: { type: "object" },
      providerTools: { anthropic: "memory_20250818" },
    };
    const before = server.requests.length;
    const events = await collect(
      model.stream({ ...request(), tools: [...TOOLS.slice(1), memory] }, new AbortController().signal),
    );
    expect(events.at(-1)).toMatchObject({ type: "end" });
    const body = server.requests[before]?.body as { tools: Array<Record<string, unknown>> };
    expect(body.tools).toEqual([
      expect.objectContaining({
        name: "Bash",
        description: "Run a command",
        input_schema: TOOLS[1]?.inputSchema,
      }),
      { type: "memory_20250818", name: "memory" },
    ]);
  });
});
