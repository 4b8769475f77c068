/** OpenAI error bodies and headers, shared by Chat Completions and Responses. */
import { randomHex } from "./wire-helpers.js";
import type { WireErrorResponse } from "./wire-protocol.js";

interface OpenAiErrorShape {
  readonly type: string;
  readonly code: string | null;
  readonly message: string;
}

const ERRORS: Record<number, OpenAiErrorShape> = {
  400: { type: "invalid_request_error", code: null, message: "Invalid request." },
  401: {
    type: "invalid_request_error",
    code: "invalid_api_key",
    message:
      "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
  },
  403: { type: "invalid_request_error", code: "unsupported_country_region_territory", message: "Forbidden." },
  404: { type: "invalid_request_error", code: "model_not_found", message: "The model does not exist." },
  429: {
    type: "requests",
    code: "rate_limit_exceeded",
    message: "Rate limit reached for requests per min (RPM). Please try again later.",
  },
  500: {
    type: "server_error",
    code: null,
    message: "The server had an error while processing your request. Sorry about that!",
  },
  503: {
    type: "server_error",
    code: null,
    message: "The engine is currently overloaded, please try again later.",
  },
};

export function newOpenAiRequestId(): string {
  return `req_${randomHex(32)}`;
}

export function openAiErrorResponse(status: number, message?: string): WireErrorResponse {
  const shape = ERRORS[status] ?? {
    type: status >= 500 ? "server_error" : "invalid_request_error",
    code: null,
    message: `HTTP ${status}`,
  };
  return {
    status,
    headers: { "x-request-id": newOpenAiRequestId() },
    body: { error: { message: message ?? shape.message, type: shape.type, param: null, code: shape.code } },
  };
}
