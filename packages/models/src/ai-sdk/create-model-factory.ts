/** Builds LanguageModels from specs like `anthropic:claude-sonnet-4-5`. Reads no environment variables. */
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ConfigError, InputError, type LanguageModel, type ModelFactory } from "@outrig/core";
import { AiSdkLanguageModel } from "./ai-sdk-language-model.js";
import { anthropicBaseUrl, openaiBaseUrl } from "./provider-base-url.js";

export interface ProviderConfig {
  readonly apiKey?: string;
  readonly baseURL?: string;
}

export interface ModelsConfig {
  readonly anthropic?: ProviderConfig;
  readonly openai?: ProviderConfig;
  readonly openaiCompatible?: ProviderConfig & { readonly name?: string };
}

export const MODEL_PROVIDERS = ["anthropic", "openai", "openai-chat", "openai-compatible"] as const;
export type ModelProvider = (typeof MODEL_PROVIDERS)[number];

const ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com/v1";
const OPENAI_DEFAULT_URL = "https://api.openai.com/v1";

function isModelProvider(value: string): value is ModelProvider {
  return (MODEL_PROVIDERS as readonly string[]).includes(value);
}

/**
 * A key is required unless a base URL points elsewhere (a proxy or the fake server). We always pass an explicit
 * key and URL so the SDK never falls back to reading `process.env` itself. A base URL is taken with or
 * without `/v1` (provider-base-url.ts).
 */
function resolveCredentials(
  config: ProviderConfig | undefined,
  environmentVariable: string,
  defaultURL: string,
  normalize: (baseURL: string) => string,
): { apiKey: string; baseURL: string } {
  const apiKey = config?.apiKey;
  const baseURL = config?.baseURL;
  if ((apiKey === undefined || apiKey === "") && baseURL === undefined) {
    throw new ConfigError("model_api_key_missing", `${environmentVariable} is not set`);
  }
  return { apiKey: apiKey ?? "", baseURL: baseURL === undefined ? defaultURL : normalize(baseURL) };
}

/**
 * Returns a ModelFactory. The factory throws InputError(`invalid_model`) for an unknown or malformed spec and
 * ConfigError when the chosen provider has neither an API key nor a base URL; it does no I/O.
 * @example
 * const createModel = createModelFactory({ anthropic: { apiKey: "sk-ant-…" } });
 * const model = createModel("anthropic:claude-sonnet-4-5");
 */
export function createModelFactory(config: ModelsConfig): ModelFactory {
  return (spec: string): LanguageModel => {
    const separator = spec.indexOf(":");
    const prefix = separator === -1 ? "" : spec.slice(0, separator);
    const modelId = separator === -1 ? "" : spec.slice(separator + 1);
    if (!isModelProvider(prefix) || modelId === "") {
      throw new InputError(
        "invalid_model",
        `unknown model spec "${spec}": expected <provider>:<model> with provider one of ${MODEL_PROVIDERS.join(", ")}`,
      );
    }
    switch (prefix) {
      case "anthropic": {
        const credentials = resolveCredentials(
          config.anthropic,
          "ANTHROPIC_API_KEY",
          ANTHROPIC_DEFAULT_URL,
          anthropicBaseUrl,
        );
        const provider = createAnthropic(credentials);
        return new AiSdkLanguageModel({ provider: prefix, modelId, model: provider.messages(modelId) });
      }
      case "openai":
      case "openai-chat": {
        const credentials = resolveCredentials(
          config.openai,
          "OPENAI_API_KEY",
          OPENAI_DEFAULT_URL,
          openaiBaseUrl,
        );
        const provider = createOpenAI(credentials);
        const model = prefix === "openai" ? provider.responses(modelId) : provider.chat(modelId);
        return new AiSdkLanguageModel({ provider: prefix, modelId, model });
      }
      case "openai-compatible": {
        const settings = config.openaiCompatible;
        if (settings?.baseURL === undefined) {
          throw new ConfigError("model_base_url_missing", "OPENAI_COMPATIBLE_BASE_URL is not set");
        }
        const provider = createOpenAICompatible({
          name: settings.name ?? "openai-compatible",
          baseURL: settings.baseURL,
          ...(settings.apiKey === undefined || settings.apiKey === "" ? {} : { apiKey: settings.apiKey }),
          includeUsage: true,
        });
        return new AiSdkLanguageModel({ provider: prefix, modelId, model: provider.chatModel(modelId) });
      }
    }
  };
}
