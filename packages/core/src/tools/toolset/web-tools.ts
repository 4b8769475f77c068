/**
 * `web_fetch` and `web_search` of the agent toolset. Both run in the backend, never in the sandbox: the
 * fetcher the server passes sends every request through the session's egress (its allowlist, its
 * audit, credentials added there and never shown to the model), and the searcher is whatever search
 * backend the operator configured. Core only shapes inputs and results.
 */
import { z } from "zod";
import { ensureError } from "../../errors/app-error.js";
import type { Tool } from "../tool.js";
import { success, truncateOutput } from "../tool-support.js";
import { defineToolsetTool, toolsetError } from "./toolset-results.js";

/** One HTTP exchange, redirects not followed (the tool follows them, checking each hop). */
export type WebFetchOutcome =
  | {
      readonly kind: "response";
      readonly status: number;
      readonly contentType: string | undefined;
      /** The redirect target of a 3xx, as sent. */
      readonly location: string | undefined;
      readonly body: Uint8Array;
      /** True when the body was cut at `maxBytes`. */
      readonly isTruncated: boolean;
    }
  /** Egress refused the request (host not allowed, secret in it, …); `reason` is egress's own words. */
  | { readonly kind: "refused"; readonly reason: string };

export interface WebFetcher {
  /** Rejects on a network failure; a refusal by policy is an outcome, not an error. */
  fetch(
    url: URL,
    options: { readonly signal: AbortSignal; readonly maxBytes: number },
  ): Promise<WebFetchOutcome>;
}

export interface WebSearchResult {
  readonly title: string;
  readonly url: string;
  readonly snippet?: string;
}

export interface WebSearcher {
  search(
    query: string,
    options: {
      readonly signal: AbortSignal;
      readonly allowedDomains?: readonly string[];
      readonly blockedDomains?: readonly string[];
    },
  ): Promise<readonly WebSearchResult[]>;
}

/** The agent's per-tool domain lists (`allowed_domains` / `blocked_domains` in the API). */
export interface WebDomainSettings {
  readonly allowedDomains?: readonly string[];
  readonly blockedDomains?: readonly string[];
  /** web_fetch only: fetched text kept per call, in tokens (`max_content_tokens`). */
  readonly maxContentTokens?: number | null;
}

export const WEB_FETCH_MAX_BYTES = 5 * 1024 * 1024;
export const WEB_FETCH_MAX_REDIRECTS = 5;
/** Text kept when the agent sets no max_content_tokens (the API writes longer tool output to a file). */
export const WEB_FETCH_DEFAULT_MAX_CHARS = 100_000;

/** True when `host` is `domain` or a subdomain of it. */
export function isHostInDomain(host: string, domain: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  const suffix = domain.toLowerCase().replace(/\.$/, "");
  return name === suffix || name.endsWith(`.${suffix}`);
}

/** Why the agent's own domain lists forbid `host`, or undefined. */
function domainRefusal(host: string, settings: WebDomainSettings): string | undefined {
  if (settings.allowedDomains !== undefined && settings.allowedDomains.length > 0) {
    if (!settings.allowedDomains.some((domain) => isHostInDomain(host, domain)))
      return `${host} is not in this agent's allowed_domains (${settings.allowedDomains.join(", ")})`;
  }
  if (settings.blockedDomains?.some((domain) => isHostInDomain(host, domain)))
    return `${host} is in this agent's blocked_domains`;
  return undefined;
}

const ENTITIES: Readonly<Record<string, string>> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
};

/** Readable text of an HTML page: scripts, styles and tags dropped, block ends as line breaks. */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style|noscript|template)\b[\s\S]*?<\/\1\s*>/gi, "")
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<(br|\/p|\/div|\/li|\/h[1-6]|\/tr|\/section|\/article|\/header|\/footer)\b[^>]*>/gi, "\n")
    .replace(/<[^>]+>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (entity, name: string) => {
      if (name.startsWith("#x") || name.startsWith("#X"))
        return String.fromCodePoint(Number.parseInt(name.slice(2), 16) || 0xfffd);
      if (name.startsWith("#")) return String.fromCodePoint(Number.parseInt(name.slice(1), 10) || 0xfffd);
      return ENTITIES[name.toLowerCase()] ?? entity;
    })
    .replace(/[ \t\r\f\v]+/g, " ")
    .replace(/ *\n */g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

function isTextual(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return (
    type.startsWith("text/") ||
    type.endsWith("+json") ||
    type.endsWith("+xml") ||
    ["application/json", "application/xml", "application/javascript", "application/x-ndjson"].includes(type)
  );
}

const webFetchSchema = z.strictObject({ url: z.string() });

export function createWebFetchTool(
  fetcher: WebFetcher,
  settings: WebDomainSettings = {},
): Tool<z.output<typeof webFetchSchema>> {
  const maxChars =
    settings.maxContentTokens !== undefined && settings.maxContentTokens !== null
      ? Math.max(1, settings.maxContentTokens) * 4
      : WEB_FETCH_DEFAULT_MAX_CHARS;
  return defineToolsetTool({
    name: "web_fetch",
    description:
      "Fetches an http(s) URL and returns its content as text (HTML is reduced to its text). Requests go out " +
      "through the session's egress: only hosts the environment allows can be reached. Follows up to 5 " +
      `redirects. Text beyond ${maxChars} characters is cut.`,
    inputSchema: webFetchSchema,
    async run(input, context) {
      let url: URL;
      try {
        url = new URL(input.url);
      } catch {
        return toolsetError("web_fetch", `not a valid URL: ${input.url.slice(0, 200)}`);
      }
      for (let hop = 0; ; hop++) {
        if (url.protocol !== "http:" && url.protocol !== "https:")
          return toolsetError("web_fetch", `only http and https URLs can be fetched, not ${url.protocol}`);
        if (url.username !== "" || url.password !== "")
          return toolsetError("web_fetch", "URLs with credentials in them are refused");
        const refusal = domainRefusal(url.hostname, settings);
        if (refusal !== undefined)
          return toolsetError("web_fetch", `${url.href} was not fetched: ${refusal}`);
        let outcome: WebFetchOutcome;
        try {
          outcome = await fetcher.fetch(url, { signal: context.signal, maxBytes: WEB_FETCH_MAX_BYTES });
        } catch (error) {
          return toolsetError("web_fetch", `${url.href} could not be fetched: ${ensureError(error).message}`);
        }
        if (outcome.kind === "refused") {
          return toolsetError(
            "web_fetch",
            `${url.href} was refused by this session's egress policy: ${outcome.reason}`,
          );
        }
        if (outcome.status >= 300 && outcome.status < 400 && outcome.location !== undefined) {
          if (hop >= WEB_FETCH_MAX_REDIRECTS)
            return toolsetError(
              "web_fetch",
              `${input.url} redirected more than ${WEB_FETCH_MAX_REDIRECTS} times`,
            );
          try {
            url = new URL(outcome.location, url);
          } catch {
            return toolsetError("web_fetch", `${url.href} redirected to an invalid URL`);
          }
          continue;
        }
        const type = outcome.contentType?.split(";")[0]?.trim() || "unknown type";
        if (!isTextual(outcome.contentType)) {
          return toolsetError(
            "web_fetch",
            `${url.href} returned ${type} (${outcome.body.length} bytes), which is not text`,
          );
        }
        const raw = new TextDecoder().decode(outcome.body);
        const text = /html/i.test(type) ? htmlToText(raw) : raw;
        const cut = outcome.isTruncated ? `\n\n[the response was cut at ${WEB_FETCH_MAX_BYTES} bytes]` : "";
        const body = truncateOutput(text, maxChars) + cut;
        const heading = `${url.href} (HTTP ${outcome.status}, ${type})`;
        if (outcome.status >= 400) return toolsetError("web_fetch", `${heading}\n\n${body}`);
        return success(`${heading}\n\n${body}`);
      }
    },
  });
}

const webSearchSchema = z.strictObject({ query: z.string().min(1) });

export function createWebSearchTool(
  searcher: WebSearcher,
  settings: WebDomainSettings = {},
): Tool<z.output<typeof webSearchSchema>> {
  return defineToolsetTool({
    name: "web_search",
    description: "Searches the web and returns the top results: title, URL and a snippet of each.",
    inputSchema: webSearchSchema,
    async run(input, context) {
      let results: readonly WebSearchResult[];
      try {
        results = await searcher.search(input.query, {
          signal: context.signal,
          ...(settings.allowedDomains ? { allowedDomains: settings.allowedDomains } : {}),
          ...(settings.blockedDomains ? { blockedDomains: settings.blockedDomains } : {}),
        });
      } catch (error) {
        return toolsetError("web_search", `the search failed: ${ensureError(error).message}`);
      }
      const kept = results.filter((result) => {
        try {
          return domainRefusal(new URL(result.url).hostname, settings) === undefined;
        } catch {
          return false;
        }
      });
      if (kept.length === 0) return success("no results");
      return success(
        kept
          .map(
            (result, index) =>
              `${index + 1}. ${result.title}\n${result.url}${result.snippet ? `\n${result.snippet}` : ""}`,
          )
          .join("\n\n"),
      );
    },
  });
}
