import type { ModelEvent } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeLlmServer, startFakeLlmServer } from "../fake-llm/start-fake-llm-server.js";
import { createModelFactory, type ModelsConfig } from "./create-model-factory.js";
import { anthropicBaseUrl, openaiBaseUrl } from "./provider-base-url.js";

describe("base URLs with or without /v1", () => {
  let server: FakeLlmServer;
  beforeAll(async () => {
    server = await startFakeLlmServer({ script: { turns: [] } });
  });
  afterAll(() => server.close());

  const cases: readonly {
    spec: string;
    path: string;
    config: (baseURL: string) => ModelsConfig;
  }[] = [
    {
      spec: "anthropic:claude-sonnet-4-5",
      path: "/v1/messages",
      config: (baseURL) => ({ anthropic: { apiKey: "k", baseURL } }),
    },
    {
      spec: "openai:gpt-5",
      path: "/v1/responses",
      config: (baseURL) => ({ openai: { apiKey: "k", baseURL } }),
    },
    {
      spec: "openai-chat:gpt-4.1",
      path: "/v1/chat/completions",
      config: (baseURL) => ({ openai: { apiKey: "k", baseURL } }),
    },
  ];
  const forms = [
    (url: string) => url,
    (url: string) => `${url}/`,
    (url: string) => `${url}/v1`,
    (url: string) => `${url}/v1/`,
  ];

  it.each(cases)("$spec reaches the fake LLM with each form of the base URL", async (kind) => {
    for (const form of forms) {
      const text = `hello via ${form(server.url)}`;
      server.setScript({ turns: [{ text }] });
      const before = server.requests.length;
      const model = createModelFactory(kind.config(form(server.url)))(kind.spec);
      const events: ModelEvent[] = [];
      for await (const event of model.stream(
        { system: "s", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }], tools: [] },
        new AbortController().signal,
      ))
        events.push(event);
      expect(events.at(-1)).toMatchObject({ type: "end", message: { content: [{ type: "text", text }] } });
      expect(server.requests.slice(before).map((request) => request.path)).toEqual([kind.path]);
    }
  });

  it("adds /v1 as the Anthropic SDK does, and keeps an OpenAI gateway's own path", () => {
    expect(anthropicBaseUrl("https://proxy.example/anthropic")).toBe("https://proxy.example/anthropic/v1");
    expect(anthropicBaseUrl("https://api.anthropic.com/v1/")).toBe("https://api.anthropic.com/v1");
    expect(openaiBaseUrl("https://api.openai.com")).toBe("https://api.openai.com/v1");
    expect(openaiBaseUrl("https://gateway.example/openai/v1")).toBe("https://gateway.example/openai/v1");
    expect(openaiBaseUrl("https://gateway.example/openai")).toBe("https://gateway.example/openai");
  });
});
