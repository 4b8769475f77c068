/**
 * The CLI's client of the server: the official Anthropic SDK pointed at Outrig (`baseURL`), so the CLI
 * speaks exactly the Managed Agents API any other SDK user speaks. Errors become one line, never a stack.
 */
import Anthropic from "@anthropic-ai/sdk";

export interface ApiClientSettings {
  readonly server: string;
  readonly apiKey: string;
}

/** An SDK client for the server; retries stay with the SDK's defaults (429 and 5xx, twice). */
export function createApiClient(settings: ApiClientSettings): Anthropic {
  return new Anthropic({ apiKey: settings.apiKey, baseURL: settings.server });
}

/** One line for an error a command failed with: the API's message and type, or why the server was not reached. */
export function describeApiError(error: unknown, server: string): string {
  if (error instanceof Anthropic.APIConnectionError)
    return `cannot reach the server at ${server} (is \`npm start\` running?): ${error.message}`;
  if (error instanceof Anthropic.APIError) {
    const body = error.error as { error?: { message?: unknown; type?: unknown } } | undefined;
    const message = typeof body?.error?.message === "string" ? body.error.message : error.message;
    const type = typeof body?.error?.type === "string" ? body.error.type : undefined;
    return `${error.status ?? "error"}${type ? ` ${type}` : ""}: ${message}`;
  }
  return error instanceof Error ? error.message : String(error);
}
