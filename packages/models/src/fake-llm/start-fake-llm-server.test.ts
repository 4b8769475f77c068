import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFakeLlmScript, parseFakeLlmScript } from "./fake-llm-script.js";
import { type FakeLlmServer, startFakeLlmServer } from "./start-fake-llm-server.js";

interface ParsedEvent {
  readonly event: string | undefined;
  readonly data: string;
}

function parseSse(text: string): ParsedEvent[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const lines = block.split("\n");
      const event = lines.find((line) => line.startsWith("event: "))?.slice(7);
      const data = lines
        .filter((line) => line.startsWith("data: "))
        .map((line) => line.slice(6))
        .join("\n");
      return { event, data };
    });
}

const TOOL_TURN = {
  text: "Let me write that file for you now.",
  toolCalls: [
    { name: "Write", input: { file_path: "/workspace/hello.txt", content: "hello\n" } },
    { name: "Bash", input: { command: "cat /workspace/hello.txt" } },
  ],
};

let server: FakeLlmServer;

beforeAll(async () => {
  server = await startFakeLlmServer({ script: { turns: [] } });
});
afterAll(() => server.close());

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { response, text: await response.text() };
}

describe("Anthropic Messages", () => {
  it("streams text and tool_use blocks with ping, input_json_delta and the tool_use stop reason", async () => {
    server.setScript({ turns: [TOOL_TURN] });
    const { response, text } = await post("/v1/messages", {
      model: "claude-test",
      stream: true,
      messages: [],
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(response.headers.get("request-id")).toMatch(/^req_/);
    const events = parseSse(text);
    for (const event of events) {
      expect(event.event).toBe((JSON.parse(event.data) as { type: string }).type);
    }
    const names = events.map((event) => event.event);
    expect(names[0]).toBe("message_start");
    expect(names).toContain("ping");
    expect(names.at(-2)).toBe("message_delta");
    expect(names.at(-1)).toBe("message_stop");
    expect(text).not.toContain("[DONE]");
    const payloads = events.filter((event) => event.event !== "ping").map((event) => JSON.parse(event.data));
    expect(payloads[0].message).toMatchObject({
      id: expect.stringMatching(/^msg_01[0-9A-Za-z]{22}$/),
      type: "message",
      role: "assistant",
      model: "claude-test",
      content: [],
      stop_reason: null,
      usage: { input_tokens: expect.any(Number), output_tokens: 1 },
    });
    const starts = payloads.filter((payload) => payload.type === "content_block_start");
    expect(starts.map((start) => start.content_block.type)).toEqual(["text", "tool_use", "tool_use"]);
    expect(starts[1].content_block).toMatchObject({
      id: expect.stringMatching(/^toolu_01/),
      name: "Write",
      input: {},
    });
    const textDeltas = payloads.filter((payload) => payload.delta?.type === "text_delta");
    expect(textDeltas.length).toBeGreaterThan(1);
    expect(textDeltas.map((payload) => payload.delta.text).join("")).toBe(TOOL_TURN.text);
    for (const [position, call] of TOOL_TURN.toolCalls.entries()) {
      const jsonDeltas = payloads.filter(
        (payload) => payload.index === position + 1 && payload.delta?.type === "input_json_delta",
      );
      expect(jsonDeltas[0].delta.partial_json).toBe("");
      expect(jsonDeltas.length).toBeGreaterThan(2);
      expect(JSON.parse(jsonDeltas.map((payload) => payload.delta.partial_json).join(""))).toEqual(
        call.input,
      );
    }
    expect(payloads.at(-2)).toMatchObject({
      type: "message_delta",
      delta: { stop_reason: "tool_use", stop_sequence: null },
      usage: { output_tokens: expect.any(Number) },
    });
  });

  it("answers a non-streaming request with a message body", async () => {
    server.setScript({ turns: [TOOL_TURN] });
    const { response, text } = await post("/v1/messages", { model: "claude-test", messages: [] });
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(text)).toMatchObject({
      id: expect.stringMatching(/^msg_01/),
      type: "message",
      role: "assistant",
      model: "claude-test",
      content: [
        { type: "text", text: TOOL_TURN.text },
        {
          type: "tool_use",
          id: expect.stringMatching(/^toolu_01/),
          name: "Write",
          input: TOOL_TURN.toolCalls[0]?.input,
        },
        { type: "tool_use", name: "Bash", input: TOOL_TURN.toolCalls[1]?.input },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
  });

  it.each([
    [429, "rate_limit_error"],
    [500, "api_error"],
    [529, "overloaded_error"],
    [400, "invalid_request_error"],
    [401, "authentication_error"],
  ])("answers a scripted %i with the %s error body", async (status, type) => {
    server.setScript({ turns: [{ error: { status, retryAfter: 2 } }] });
    const { response, text } = await post("/v1/messages", { model: "m", stream: true });
    expect(response.status).toBe(status);
    expect(response.headers.get("retry-after")).toBe("2");
    expect(response.headers.get("request-id")).toMatch(/^req_/);
    expect(JSON.parse(text)).toEqual({
      type: "error",
      error: { type, message: expect.any(String) },
      request_id: response.headers.get("request-id"),
    });
  });
});

describe("OpenAI Chat Completions", () => {
  it("streams content and tool_calls deltas, a finish chunk, usage when asked, then [DONE]", async () => {
    server.setScript({ turns: [TOOL_TURN] });
    const { response, text } = await post("/v1/chat/completions", {
      model: "gpt-test",
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(response.headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
    const events = parseSse(text);
    expect(events.every((event) => event.event === undefined)).toBe(true);
    expect(events.at(-1)?.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.data));
    for (const chunk of chunks) {
      expect(chunk).toMatchObject({
        id: expect.stringMatching(/^chatcmpl-[0-9A-Za-z]{29}$/),
        object: "chat.completion.chunk",
        model: "gpt-test",
        created: expect.any(Number),
      });
    }
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "", refusal: null });
    const content = chunks.flatMap((chunk) =>
      chunk.choices.map((choice: { delta: { content?: string } }) => choice.delta.content ?? ""),
    );
    expect(content.join("")).toBe(TOOL_TURN.text);
    const toolDeltas = chunks.flatMap((chunk) =>
      chunk.choices.flatMap((choice: { delta: { tool_calls?: unknown[] } }) => choice.delta.tool_calls ?? []),
    );
    const heads = toolDeltas.filter((delta) => delta.id !== undefined);
    expect(heads).toEqual([
      {
        index: 0,
        id: expect.stringMatching(/^call_/),
        type: "function",
        function: { name: "Write", arguments: "" },
      },
      {
        index: 1,
        id: expect.stringMatching(/^call_/),
        type: "function",
        function: { name: "Bash", arguments: "" },
      },
    ]);
    for (const [index, call] of TOOL_TURN.toolCalls.entries()) {
      const pieces = toolDeltas
        .filter((delta) => delta.index === index)
        .map((delta) => delta.function.arguments);
      expect(pieces.length).toBeGreaterThan(2);
      expect(JSON.parse(pieces.join(""))).toEqual(call.input);
    }
    const finish = chunks.at(-2);
    expect(finish.choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: "tool_calls" }]);
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: {
        prompt_tokens: expect.any(Number),
        completion_tokens: expect.any(Number),
        total_tokens: expect.any(Number),
      },
    });
  });

  it("sends no usage chunk unless stream_options.include_usage is set", async () => {
    server.setScript({ turns: [{ text: "hi there" }] });
    const { text } = await post("/v1/chat/completions", { model: "gpt-test", stream: true });
    const chunks = parseSse(text)
      .slice(0, -1)
      .map((event) => JSON.parse(event.data));
    expect(chunks.at(-1).choices[0].finish_reason).toBe("stop");
    expect(chunks.some((chunk) => "usage" in chunk)).toBe(false);
  });

  it("answers a non-streaming request with a chat.completion body", async () => {
    server.setScript({ turns: [TOOL_TURN] });
    const { text } = await post("/v1/chat/completions", { model: "gpt-test" });
    const body = JSON.parse(text);
    expect(body).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: "chat.completion",
      model: "gpt-test",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: TOOL_TURN.text },
          finish_reason: "tool_calls",
        },
      ],
      usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) },
    });
    const toolCalls = body.choices[0].message.tool_calls;
    expect(toolCalls).toHaveLength(2);
    expect(toolCalls[0]).toMatchObject({
      id: expect.stringMatching(/^call_/),
      type: "function",
      function: { name: "Write" },
    });
    expect(JSON.parse(toolCalls[0].function.arguments)).toEqual(TOOL_TURN.toolCalls[0]?.input);
  });

  it.each([
    [429, "requests", "rate_limit_exceeded"],
    [500, "server_error", null],
    [400, "invalid_request_error", null],
    [401, "invalid_request_error", "invalid_api_key"],
  ])("answers a scripted %i with an OpenAI error body", async (status, type, code) => {
    server.setScript({ turns: [{ error: { status, retryAfter: 1 } }] });
    const { response, text } = await post("/v1/chat/completions", { model: "m", stream: true });
    expect(response.status).toBe(status);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(response.headers.get("x-request-id")).toMatch(/^req_/);
    expect(JSON.parse(text)).toEqual({ error: { message: expect.any(String), type, param: null, code } });
  });
});

describe("OpenAI Responses", () => {
  it("streams typed events with consecutive sequence numbers and ends with response.completed", async () => {
    server.setScript({ turns: [TOOL_TURN] });
    const { text } = await post("/v1/responses", { model: "gpt-test", stream: true, input: [] });
    expect(text).not.toContain("[DONE]");
    const events = parseSse(text);
    const payloads = events.map((event) => JSON.parse(event.data));
    payloads.forEach((payload, index) => {
      expect(payload.type).toBe(events[index]?.event);
      expect(payload.sequence_number).toBe(index);
    });
    expect(payloads.map((payload) => payload.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      ...payloads
        .filter((payload) => payload.type === "response.output_text.delta")
        .map(() => "response.output_text.delta"),
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      ...Array(
        payloads.filter(
          (payload) =>
            payload.type === "response.function_call_arguments.delta" && payload.output_index === 1,
        ).length,
      ).fill("response.function_call_arguments.delta"),
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.output_item.added",
      ...Array(
        payloads.filter(
          (payload) =>
            payload.type === "response.function_call_arguments.delta" && payload.output_index === 2,
        ).length,
      ).fill("response.function_call_arguments.delta"),
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(
      payloads.filter((payload) => payload.type === "response.output_text.delta").length,
    ).toBeGreaterThan(1);
    expect(payloads[0].response).toMatchObject({
      id: expect.stringMatching(/^resp_[0-9a-f]{50}$/),
      object: "response",
      status: "in_progress",
      output: [],
      usage: null,
    });
    const added = payloads
      .filter((payload) => payload.type === "response.output_item.added")
      .map((payload) => payload.item);
    expect(added[0]).toMatchObject({
      id: expect.stringMatching(/^msg_/),
      type: "message",
      status: "in_progress",
    });
    expect(added[1]).toMatchObject({
      id: expect.stringMatching(/^fc_/),
      type: "function_call",
      status: "in_progress",
      arguments: "",
      call_id: expect.stringMatching(/^call_/),
      name: "Write",
    });
    const argumentsDone = payloads.filter(
      (payload) => payload.type === "response.function_call_arguments.done",
    );
    expect(argumentsDone.map((payload) => payload.name)).toEqual(["Write", "Bash"]);
    expect(JSON.parse(argumentsDone[1].arguments)).toEqual(TOOL_TURN.toolCalls[1]?.input);
    const completed = payloads.at(-1).response;
    expect(completed).toMatchObject({
      status: "completed",
      output: [
        { type: "message", status: "completed", content: [{ type: "output_text", text: TOOL_TURN.text }] },
        { type: "function_call", status: "completed", name: "Write", call_id: added[1].call_id },
        { type: "function_call", status: "completed", name: "Bash" },
      ],
      usage: {
        input_tokens: expect.any(Number),
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: expect.any(Number),
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: expect.any(Number),
      },
    });
  });

  it("marks a max_tokens turn as incomplete", async () => {
    server.setScript({ turns: [{ text: "cut short", stopReason: "max_tokens" }] });
    const { text } = await post("/v1/responses", { model: "gpt-test", stream: true });
    const last = JSON.parse(parseSse(text).at(-1)?.data ?? "{}");
    expect(last).toMatchObject({
      type: "response.incomplete",
      response: { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } },
    });
  });

  it("answers a non-streaming request with a response object", async () => {
    server.setScript({ turns: [TOOL_TURN] });
    const { text } = await post("/v1/responses", { model: "gpt-test", instructions: "be brief" });
    expect(JSON.parse(text)).toMatchObject({
      id: expect.stringMatching(/^resp_/),
      object: "response",
      status: "completed",
      instructions: "be brief",
      model: "gpt-test",
      output: [
        { type: "message", role: "assistant", content: [{ type: "output_text", text: TOOL_TURN.text }] },
        {
          type: "function_call",
          name: "Write",
          call_id: expect.stringMatching(/^call_/),
          id: expect.stringMatching(/^fc_/),
        },
        { type: "function_call", name: "Bash" },
      ],
      usage: { input_tokens: expect.any(Number), output_tokens: expect.any(Number) },
    });
  });
});

describe("the AI SDK's generateText over non-streaming endpoints", () => {
  const tools = {
    Write: { description: "write", inputSchema: jsonSchema({ type: "object", properties: {} }) },
    Bash: { description: "bash", inputSchema: jsonSchema({ type: "object", properties: {} }) },
  };
  it.each(["anthropic", "openai-chat", "openai-responses"] as const)(
    "%s recovers text and tool calls",
    async (kind) => {
      server.setScript({ turns: [TOOL_TURN] });
      const baseURL = `${server.url}/v1`;
      const model =
        kind === "anthropic"
          ? createAnthropic({ apiKey: "k", baseURL }).messages("claude-sonnet-4-5")
          : kind === "openai-chat"
            ? createOpenAI({ apiKey: "k", baseURL }).chat("gpt-test")
            : createOpenAI({ apiKey: "k", baseURL }).responses("gpt-test");
      const result = await generateText({ model, prompt: "hi", tools, maxRetries: 0 });
      expect(result.text).toBe(TOOL_TURN.text);
      expect(result.toolCalls.map((call) => [call.toolName, call.input])).toEqual(
        TOOL_TURN.toolCalls.map((call) => [call.name, call.input]),
      );
      expect(result.finishReason).toBe("tool-calls");
      expect(result.usage.inputTokens).toBeGreaterThan(0);
      expect(server.requests.at(-1)?.body).toMatchObject({
        model: kind === "anthropic" ? "claude-sonnet-4-5" : "gpt-test",
      });
      expect((server.requests.at(-1)?.body as { stream?: boolean } | undefined)?.stream).not.toBe(true);
    },
  );
});

describe("script control", () => {
  it("shares one cursor across protocols and says when the script is exhausted", async () => {
    server.setScript({ turns: [{ text: "one" }, { text: "two" }] });
    const first = await post("/v1/messages", { model: "m" });
    const second = await post("/v1/responses", { model: "m" });
    const third = await post("/v1/chat/completions", { model: "m" });
    expect(JSON.parse(first.text).content[0].text).toBe("one");
    expect(JSON.parse(second.text).output[0].content[0].text).toBe("two");
    expect(third.response.status).toBe(500);
    expect(JSON.parse(third.text).error.message).toBe("fake-llm: script exhausted after 2 turns");
    expect(server.cursor).toBe(2);
  });

  it("answers malformed JSON with the provider's 400 body without using a turn", async () => {
    server.setScript({ turns: [{ text: "kept" }] });
    const anthropic = await post("/v1/messages", "{not json");
    expect(anthropic.response.status).toBe(400);
    expect(JSON.parse(anthropic.text)).toMatchObject({
      type: "error",
      error: { type: "invalid_request_error" },
    });
    const openai = await post("/v1/chat/completions", "[1, 2");
    expect(openai.response.status).toBe(400);
    expect(JSON.parse(openai.text)).toMatchObject({ error: { type: "invalid_request_error", param: null } });
    expect(server.cursor).toBe(0);
    const ok = await post("/v1/responses", { model: "m" });
    expect(JSON.parse(ok.text).output[0].content[0].text).toBe("kept");
  });

  it("records requests without credentials, serves them at /__requests and resets at /__reset", async () => {
    server.setScript({ turns: [{ text: "a" }] });
    await post(
      "/v1/messages",
      { model: "m", messages: [{ role: "user", content: "hi" }] },
      { "x-api-key": "sk-secret", authorization: "Bearer sk-secret" },
    );
    const listed = (await (await fetch(`${server.url}/__requests`)).json()) as Array<Record<string, unknown>>;
    expect(listed.at(-1)).toMatchObject({
      protocol: "anthropic-messages",
      method: "POST",
      path: "/v1/messages",
      body: { model: "m", messages: [{ role: "user", content: "hi" }] },
      headers: { "x-api-key": "[redacted]", authorization: "[redacted]" },
      turnIndex: 0,
    });
    expect(JSON.stringify(listed)).not.toContain("sk-secret");
    const reset = await fetch(`${server.url}/__reset`, { method: "POST" });
    expect(reset.status).toBe(200);
    expect(server.requests).toHaveLength(0);
    expect(server.cursor).toBe(0);
    const again = await post("/v1/messages", { model: "m" });
    expect(JSON.parse(again.text).content[0].text).toBe("a");
  });

  it.each([
    ["/v1/messages", 4],
    ["/v1/chat/completions", 3],
    ["/v1/responses", 5],
  ])("cuts a %s stream after exactly N events", async (path, cut) => {
    server.setScript({ turns: [{ ...TOOL_TURN, cut }] });
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      body: JSON.stringify({ model: "m", stream: true }),
    });
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let received = "";
    let failure: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += decoder.decode(value, { stream: true });
      }
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeDefined();
    expect(parseSse(received)).toHaveLength(cut);
  });

  it("holds a delayed turn and then answers it", async () => {
    server.setScript({ turns: [{ text: "later", delayMs: 20 }] });
    const { text } = await post("/v1/messages", { model: "m" });
    expect(JSON.parse(text).content[0].text).toBe("later");
  });

  it("replays a raw turn byte for byte with its status and content type", async () => {
    const body = 'event: ping\ndata: {"type": "ping"}\n\n';
    server.setScript({
      turns: [{ raw: { status: 202, contentType: "text/event-stream", body, headers: { "x-extra": "1" } } }],
    });
    const { response, text } = await post("/v1/messages", { model: "m", stream: true });
    expect(response.status).toBe(202);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(response.headers.get("x-extra")).toBe("1");
    expect(text).toBe(body);
  });

  it("answers unknown routes with 404 and keeps serving", async () => {
    const response = await fetch(`${server.url}/v1/embeddings`, { method: "POST", body: "{}" });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
      "/v1/embeddings",
    );
  });
});

describe("script validation", () => {
  it.each([
    [{ turns: [{ toolCalls: [{ input: {} }] }] }, "turns[0].toolCalls[0].name"],
    [{ turns: [{ text: "ok" }, { error: { status: 200 } }] }, "turns[1].error.status"],
    [{ turns: [{ txt: "typo" }] }, "turns[0]"],
    [{ turns: [{}] }, "a turn needs text, toolCalls, error, raw or cut"],
    [{ turns: [{ text: "x", error: { status: 500 } }] }, "turns[0].error"],
    [{ turn: [] }, "turns"],
  ])("names the bad field in %j", (script, field) => {
    expect(() => parseFakeLlmScript(script)).toThrow(field);
  });

  it("loads a script file and reports bad JSON and bad fields with the path", async () => {
    const folder = await mkdtemp(join(tmpdir(), "fake-llm-"));
    try {
      const good = join(folder, "good.json");
      await writeFile(
        good,
        JSON.stringify({
          turns: [{ toolCalls: [{ name: "Bash", input: { command: "ls" } }] }, { text: "done" }],
        }),
      );
      expect((await loadFakeLlmScript(good)).turns).toHaveLength(2);
      const badJson = join(folder, "bad.json");
      await writeFile(badJson, "{");
      await expect(loadFakeLlmScript(badJson)).rejects.toThrow(
        `fake-llm script ${badJson} is not valid JSON`,
      );
      const badField = join(folder, "field.json");
      await writeFile(badField, JSON.stringify({ turns: [{ cut: -1 }] }));
      await expect(loadFakeLlmScript(badField)).rejects.toThrow("turns[0].cut");
      await expect(loadFakeLlmScript(join(folder, "missing.json"))).rejects.toMatchObject({
        name: "ConfigError",
        code: "invalid_fake_llm_script",
      });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it("rejects an invalid script at start and on setScript", async () => {
    await expect(startFakeLlmServer({ script: { turns: [{ toolCalls: [{}] }] } as never })).rejects.toThrow(
      "turns[0].toolCalls[0].name",
    );
    expect(() => server.setScript({ turns: [{ delayMs: "soon" }] } as never)).toThrow("turns[0].delayMs");
  });
});

describe("turn selection by history", () => {
  it("answers each conversation by its own position, for every protocol", async () => {
    const { answersInHistory, startFakeLlmServer: start } = await import("./start-fake-llm-server.js");
    expect(answersInHistory({ messages: [{ role: "user" }, { role: "assistant" }, { role: "user" }] })).toBe(
      1,
    );
    expect(
      answersInHistory({
        input: [
          { role: "user" },
          { type: "function_call" },
          { type: "function_call" },
          { type: "function_call_output" },
          { type: "function_call_output" },
          { role: "assistant" },
          { role: "user" },
        ],
      }),
    ).toBe(2);
    const server = await start({
      script: { turns: [{ text: "first" }, { text: "second" }] },
      turnSelection: "history",
    });
    try {
      const ask = async (messages: unknown[]) => {
        const response = await fetch(`${server.url}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "m", max_tokens: 10, messages }),
        });
        return ((await response.json()) as { content: { text: string }[] }).content[0]?.text;
      };
      const user = { role: "user", content: "hi" };
      expect(await ask([user])).toBe("first");
      expect(await ask([user])).toBe("first"); // a retried call gets the same answer
      expect(await ask([user, { role: "assistant", content: "first" }, user])).toBe("second");
    } finally {
      await server.close();
    }
  });
});

describe("turn selection by successful tool results", () => {
  it("asks again for a tool call whose result was an error", async () => {
    const { successfulToolResults, startFakeLlmServer: start } = await import("./start-fake-llm-server.js");
    const call = (id: string) => ({
      role: "assistant",
      content: [{ type: "tool_use", id, name: "Bash", input: {} }],
    });
    const result = (id: string, isError: boolean) => ({
      role: "user",
      content: [
        { type: "tool_result", tool_use_id: id, content: "x", ...(isError ? { is_error: true } : {}) },
      ],
    });
    const user = { role: "user", content: "go" };
    expect(successfulToolResults({ messages: [user] })).toBe(0);
    expect(successfulToolResults({ messages: [user, call("a"), result("a", true)] })).toBe(0);
    expect(
      successfulToolResults({
        messages: [user, call("a"), result("a", true), call("b"), result("b", false)],
      }),
    ).toBe(1);
    const server = await start({
      script: { turns: [{ text: "first" }, { text: "second" }] },
      turnSelection: "successful-tools",
    });
    try {
      const ask = async (messages: unknown[]) => {
        const response = await fetch(`${server.url}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "m", max_tokens: 10, messages }),
        });
        return ((await response.json()) as { content: { text: string }[] }).content[0]?.text;
      };
      expect(await ask([user, call("a"), result("a", true)])).toBe("first");
      expect(await ask([user, call("a"), result("a", false)])).toBe("second");
    } finally {
      await server.close();
    }
  });
});
