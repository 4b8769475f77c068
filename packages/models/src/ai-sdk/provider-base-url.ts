/**
 * Base URLs as users bring them. The official Anthropic SDK and Claude Code take `ANTHROPIC_BASE_URL`
 * without `/v1` (they add it); the AI SDK's providers want it with. OpenAI's SDK takes
 * `OPENAI_BASE_URL` with `/v1`, yet a bare host is a common copy. Both forms reach the same endpoint.
 */

/**
 * The Anthropic provider's base URL: `/v1` is added unless the path already ends with it, as the
 * Anthropic SDK does (`https://proxy.example/anthropic` → `https://proxy.example/anthropic/v1`).
 * @example anthropicBaseUrl("http://127.0.0.1:7071") // "http://127.0.0.1:7071/v1"
 */
export function anthropicBaseUrl(value: string): string {
  const trimmed = trimTrailingSlashes(value);
  return /\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
}

/**
 * The OpenAI provider's base URL: a bare host gets `/v1`; any other path is the full base already
 * (OpenAI's SDK convention, e.g. a gateway's `https://gateway.example/openai/v1` or `/openai`).
 * @example openaiBaseUrl("https://api.openai.com/") // "https://api.openai.com/v1"
 */
export function openaiBaseUrl(value: string): string {
  const trimmed = trimTrailingSlashes(value);
  let pathname: string;
  try {
    pathname = new URL(trimmed).pathname;
  } catch {
    return trimmed; // not a URL: the provider reports it on the first call
  }
  return pathname === "" || pathname === "/" ? `${trimmed}/v1` : trimmed;
}

function trimTrailingSlashes(value: string): string {
  return value.trim().replace(/\/+$/, "");
}
