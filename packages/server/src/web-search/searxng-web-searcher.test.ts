/** web_search with the SearXNG backend: results as the model sees them, the agent's domain lists, failures. */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createToolsetTools, type Tool, type ToolContext } from "@outrig/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { createSearxngWebSearcher } from "./searxng-web-searcher.js";

describe("web_search through a SearXNG backend", () => {
  let server: http.Server;
  let base: string;
  const queries: string[] = [];

  beforeAll(async () => {
    server = http.createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://x");
      queries.push(`${url.searchParams.get("q")}|${url.searchParams.get("format")}`);
      if (url.searchParams.get("q") === "broken") {
        response.writeHead(500);
        response.end();
        return;
      }
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          results: [
            { title: "Docs", url: "https://docs.example.com/a", content: "the docs" },
            { title: "Ads", url: "https://ads.example.net/b" },
          ],
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/search`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  function webSearch(
    settings: Record<string, unknown> = {},
  ): (query: unknown) => ReturnType<Tool["execute"]> {
    const { tools } = createToolsetTools(
      { web_search: { enabled: true, permission: "always_allow", ...settings } },
      {
        webSearcher: createSearxngWebSearcher({
          url: loadConfig({ OUTRIG_WEB_SEARCH_URL: base }).webSearchUrl ?? "",
        }),
      },
    );
    const tool = tools[0];
    if (!tool) throw new Error("web_search not offered");
    const context = { signal: new AbortController().signal, cwd: "/workspace" } as ToolContext;
    return (query) => tool.execute({ query }, context);
  }

  it("lists the results, filtered by the agent's blocked_domains", async () => {
    expect(await webSearch()("outrig docs")).toEqual({
      output: "1. Docs\nhttps://docs.example.com/a\nthe docs\n\n2. Ads\nhttps://ads.example.net/b",
      isError: false,
    });
    expect(queries.at(-1)).toBe("outrig docs|json");
    expect((await webSearch({ blockedDomains: ["example.net"] })("x")).output).toBe(
      "1. Docs\nhttps://docs.example.com/a\nthe docs",
    );
  });

  it("reports a failing backend and bad input as tool errors", async () => {
    expect(await webSearch()("broken")).toEqual({
      output: "web_search: the search failed: the search backend answered HTTP 500",
      isError: true,
    });
    expect((await webSearch()("")).output).toContain("InputValidationError: web_search failed");
  });

  it("is configured by OUTRIG_WEB_SEARCH_URL, which must be an http(s) URL", () => {
    expect(loadConfig({}).webSearchUrl).toBeUndefined();
    expect(() => loadConfig({ OUTRIG_WEB_SEARCH_URL: "ftp://x" })).toThrow(/OUTRIG_WEB_SEARCH_URL/);
  });
});
