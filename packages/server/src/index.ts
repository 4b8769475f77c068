export {
  type AppDependencies,
  type AuthenticatedCaller,
  type Authenticator,
  createApp,
  listRoutes,
  MAX_BODY_BYTES,
  type RouteInfo,
} from "./app.js";
export { loadConfig, type ServerConfig } from "./config.js";
export { Credentials, credentialsPath, loadCredentials, saveCredentials } from "./credentials.js";
export { type BusEvent, type BusListener, EventBus } from "./event-bus.js";
export { type ErrorResponse, toErrorResponse } from "./http-error.js";
export {
  type ApiSessionEvent,
  apiEventId,
  parseApiEventId,
  SANDBOX_EVENT_TYPES,
  SessionEventProjector,
} from "./managed/session-event-projection.js";
export { toApiSession } from "./managed/session-object.js";
export { type Caller, SessionManager, type SessionManagerOptions, WORKSPACE } from "./session-manager.js";
export { SessionSandbox } from "./session-sandbox.js";
export { type RunningServer, type StartServerOptions, startServer } from "./start-server.js";
