export {
  FakeLlmErrorSpec,
  FakeLlmRawResponse,
  FakeLlmScript,
  type FakeLlmScriptInput,
  FakeLlmToolCall,
  FakeLlmTurn,
  loadFakeLlmScript,
  parseFakeLlmScript,
} from "./fake-llm-script.js";
export {
  answersInHistory,
  type FakeLlmRequest,
  type FakeLlmServer,
  type FakeLlmServerOptions,
  startFakeLlmServer,
} from "./start-fake-llm-server.js";
export type { FakeLlmProtocol } from "./wire-protocol.js";
