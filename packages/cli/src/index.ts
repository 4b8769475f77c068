export { main } from "./main.js";
export { type RunOptions, runCommand } from "./run-command.js";
export { type FollowOptions, followSse, parseSse, type SseMessage } from "./sse-client.js";
