export { createApiClient, describeApiError } from "./api-client.js";
export { type FollowSessionOptions, followSession, type StreamEvent } from "./follow-session.js";
export { main } from "./main.js";
export { type RunOptions, runCommand } from "./run-command.js";
