/**
 * A search backend for the toolset's web_search: a SearXNG instance (or anything answering its JSON
 * API, `GET <url>?q=…&format=json` → `{results: [{title, url, content}]}`), set with
 * OUTRIG_WEB_SEARCH_URL. The operator's own service, called from the backend; without it web_search is
 * not offered.
 */
import type { WebSearcher, WebSearchResult } from "@outrig/core";
import { z } from "zod";

export const WEB_SEARCH_TIMEOUT_MS = 15_000;
export const WEB_SEARCH_MAX_RESULTS = 10;

const SearxngAnswer = z.object({
  results: z
    .array(z.object({ title: z.string().optional(), url: z.string(), content: z.string().optional() }))
    .default([]),
});

export function createSearxngWebSearcher(options: {
  readonly url: string;
  readonly timeoutMs?: number;
}): WebSearcher {
  return {
    async search(query, { signal }) {
      const url = new URL(options.url);
      url.searchParams.set("q", query);
      url.searchParams.set("format", "json");
      const response = await fetch(url, {
        headers: { accept: "application/json" },
        signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs ?? WEB_SEARCH_TIMEOUT_MS)]),
      });
      if (!response.ok) throw new Error(`the search backend answered HTTP ${response.status}`);
      const parsed = SearxngAnswer.safeParse(await response.json().catch(() => undefined));
      if (!parsed.success) throw new Error("the search backend's answer is not SearXNG's JSON");
      return parsed.data.results.slice(0, WEB_SEARCH_MAX_RESULTS).map(
        (result): WebSearchResult => ({
          title: result.title ?? result.url,
          url: result.url,
          ...(result.content ? { snippet: result.content } : {}),
        }),
      );
    },
  };
}
