export { AgentConnection, type AgentErrorBody, AgentRequestError } from "./bubblewrap/agent-connection.js";
export {
  buildBubblewrapArguments,
  SANDBOX_AGENT_PATH,
  SANDBOX_NODE_PATH,
  SANDBOX_PATH,
  SANDBOX_WORKSPACE,
  type SandboxLayout,
} from "./bubblewrap/bubblewrap-arguments.js";
export {
  BubblewrapSandbox,
  type SandboxAgentInfo,
} from "./bubblewrap/bubblewrap-sandbox.js";
export {
  BubblewrapSandboxProvider,
  type BubblewrapSandboxProviderOptions,
  createBubblewrapSandboxProvider,
} from "./bubblewrap/bubblewrap-sandbox-provider.js";
export {
  BUBBLEWRAP_MISSING_MESSAGE,
  type BubblewrapInfo,
  checkBubblewrap,
} from "./bubblewrap/check-bubblewrap.js";
export { fileErrorCodeOf } from "./bubblewrap/to-file-error.js";
