export {
  AiSdkLanguageModel,
  type AiSdkLanguageModelOptions,
  parseToolInput,
  toProviderTools,
  toStopReason,
  toToolSet,
} from "./ai-sdk-language-model.js";
export {
  createModelFactory,
  MODEL_PROVIDERS,
  type ModelProvider,
  type ModelsConfig,
  type ProviderConfig,
} from "./create-model-factory.js";
export {
  codeForStatus,
  type ModelErrorEvent,
  parseRetryAfterMs,
  toModelErrorEvent,
} from "./to-model-error-event.js";
export {
  type ProviderCallOptions,
  type ProviderLanguageModel,
  type ProviderPrompt,
  toModelMessages,
} from "./to-model-messages.js";
