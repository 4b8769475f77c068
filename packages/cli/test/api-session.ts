/**
 * Test helpers on the Managed Agents API, with the official SDK as the client: an agent + cloud
 * environment + session in one call, sending a message, and waiting for the session to go idle by
 * reading its event log (the API's own record of what happened).
 */
import Anthropic from "@anthropic-ai/sdk";

/**
 * Tool names the fake LLM calls. The server runs the agent toolset by the names its loop registers;
 * until the toolset's own names (`bash`, `write`, …) replace the older ones, tests call these.
 */
export const TOOLS = { bash: "bash", write: "write", edit: "edit", read: "read" } as const;

export type SessionEvent = Anthropic.Beta.Sessions.BetaManagedAgentsSessionEvent;
export type StreamEvent = Anthropic.Beta.Sessions.BetaManagedAgentsStreamSessionEvents;
export type Session = Anthropic.Beta.Sessions.BetaManagedAgentsSession;

/** An SDK client for a test server; no retries, so a test sees the first answer. */
export function apiClient(server: { readonly url: string; readonly apiKey: string }): Anthropic {
  return new Anthropic({ apiKey: server.apiKey, baseURL: server.url, maxRetries: 0 });
}

export interface AgentSessionOptions {
  readonly model: string;
  /** The first user.message; none when absent. */
  readonly prompt?: string;
  readonly system?: string;
  /** The agent's tools; default the whole agent toolset, always allowed. */
  readonly tools?: Anthropic.Beta.Agents.AgentCreateParams["tools"];
  /** The agent's skills: the only ones its sessions see at /skills. */
  readonly skills?: Anthropic.Beta.Agents.AgentCreateParams["skills"];
  /** An environment to use; default a new cloud environment with the server's default networking. */
  readonly environmentId?: string;
  readonly environment?: Omit<Anthropic.Beta.Environments.EnvironmentCreateParams, "name">;
  readonly title?: string;
}

/** Creates an agent, a cloud environment (unless given) and a session; sends `prompt` when given. */
export async function createAgentSession(
  client: Anthropic,
  options: AgentSessionOptions,
): Promise<{ agent: Anthropic.Beta.Agents.BetaManagedAgentsAgent; environmentId: string; session: Session }> {
  const agent = await client.beta.agents.create({
    name: `test agent ${Math.random().toString(36).slice(2, 8)}`,
    model: options.model,
    ...(options.system ? { system: options.system } : {}),
    tools: options.tools ?? [{ type: "agent_toolset_20260401" }],
    ...(options.skills ? { skills: options.skills } : {}),
  });
  const environmentId =
    options.environmentId ??
    (
      await client.beta.environments.create({
        name: `test env ${Math.random().toString(36).slice(2, 8)}`,
        config: { type: "cloud" },
        ...options.environment,
      })
    ).id;
  const session = await client.beta.sessions.create({
    agent: agent.id,
    environment_id: environmentId,
    ...(options.title ? { title: options.title } : {}),
    ...(options.prompt
      ? { initial_events: [{ type: "user.message", content: [{ type: "text", text: options.prompt }] }] }
      : {}),
  });
  return { agent, environmentId, session };
}

/** Sends one user.message; returns the event the server recorded. */
export async function sendMessage(client: Anthropic, sessionId: string, text: string): Promise<string> {
  const sent = await client.beta.sessions.events.send(sessionId, {
    events: [{ type: "user.message", content: [{ type: "text", text }] }],
  });
  return sent.data?.[0]?.id ?? "";
}

/** Every event of the session so far, oldest first (follows the pages). */
export async function listEvents(client: Anthropic, sessionId: string): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of client.beta.sessions.events.list(sessionId, { order: "asc", limit: 100 }))
    events.push(event);
  return events;
}

/** Polls the event log until `predicate` holds for it; returns the log. */
export async function waitForEvents(
  client: Anthropic,
  sessionId: string,
  predicate: (events: SessionEvent[]) => boolean,
  timeoutMs = 60_000,
): Promise<SessionEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await listEvents(client, sessionId);
    if (predicate(events)) return events;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting on session ${sessionId}; its events: ${events.map((event) => event.type).join(", ")}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls until `predicate` holds for one event; returns the log. */
export function waitForEvent(
  client: Anthropic,
  sessionId: string,
  predicate: (event: SessionEvent) => boolean,
  timeoutMs?: number,
): Promise<SessionEvent[]> {
  return waitForEvents(client, sessionId, (events) => events.some(predicate), timeoutMs);
}

/** True when the session went idle (or ended) after the last event a user sent (message, confirmation, …). */
export function isSettled(events: readonly SessionEvent[]): boolean {
  const lastMessage = events.findLastIndex((event) => event.type.startsWith("user."));
  return events.some(
    (event, index) =>
      index > lastMessage &&
      (event.type === "session.status_idle" || event.type === "session.status_terminated"),
  );
}

/** Waits until the session is idle after the last event a user sent; returns the log. */
export function waitForIdle(
  client: Anthropic,
  sessionId: string,
  timeoutMs?: number,
): Promise<SessionEvent[]> {
  return waitForEvents(client, sessionId, isSettled, timeoutMs);
}

/** The last idle event's stop reason (`end_turn`, `requires_action`, …), or undefined. */
export function stopReason(events: readonly SessionEvent[]): string | undefined {
  const idle = events.findLast((event) => event.type === "session.status_idle");
  return idle?.type === "session.status_idle" ? idle.stop_reason.type : undefined;
}

/** Text of a tool result's content blocks. */
export function resultText(event: SessionEvent | undefined): string {
  if (event?.type !== "agent.tool_result") return "";
  return (event.content ?? []).map((block) => (block.type === "text" ? block.text : "")).join("");
}

/** The tool calls of a log as `use:name` / `result:name:isError` lines, in order. */
export function toolTrace(events: readonly SessionEvent[]): string[] {
  const names = new Map<string, string>();
  const trace: string[] = [];
  for (const event of events) {
    if (event.type === "agent.tool_use") {
      names.set(event.id, event.name);
      trace.push(`use:${event.name}`);
    } else if (event.type === "agent.tool_result")
      trace.push(`result:${names.get(event.tool_use_id) ?? "?"}:${event.is_error === true}`);
  }
  return trace;
}
