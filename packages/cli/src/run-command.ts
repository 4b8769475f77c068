/**
 * `outrig run "<prompt>"`: one line to run an agent. It finds (or creates) the default agent for the
 * model and system prompt and the default cloud environment, creates a session (or continues
 * `--session`), sends the prompt as a `user.message`, streams the session's events until it goes idle,
 * and exits 0 on `end_turn`, 2 when the session waits for an action (saying what waits and how to
 * answer it), 1 on an error. `--session` without a prompt reattaches: the current turn so far, then live.
 */
import { createHash } from "node:crypto";
import type Anthropic from "@anthropic-ai/sdk";
import { describeApiError } from "./api-client.js";
import { followSession, type StreamEvent } from "./follow-session.js";
import { createEventPrinter } from "./print-event.js";
import { describePendingActions, pendingActions } from "./session-actions-command.js";

export interface RunOptions {
  readonly client: Anthropic;
  /** Empty with `sessionId`: reattach to the session's current turn instead of sending a message. */
  readonly prompt: string;
  readonly model: string;
  /** The server's URL, for error messages. */
  readonly server: string;
  readonly json: boolean;
  readonly system?: string;
  readonly sessionId?: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Metadata key that marks the agents and environment `outrig run` made for itself. */
export const RUN_METADATA_KEY = "outrig_run";
/** Name of the cloud environment `outrig run` uses when it made it. */
export const RUN_ENVIRONMENT_NAME = "outrig-run";

export async function runCommand(options: RunOptions): Promise<number> {
  const { client } = options;
  let session: Anthropic.Beta.Sessions.BetaManagedAgentsSession;
  try {
    if (options.sessionId) session = await client.beta.sessions.retrieve(options.sessionId);
    else {
      const agent = await findOrCreateRunAgent(client, options.model, options.system);
      const environment = await findOrCreateRunEnvironment(client, options.err);
      session = await client.beta.sessions.create({
        agent: { type: "agent", id: agent.id, version: agent.version },
        environment_id: environment.id,
        title: options.prompt.length > 80 ? `${options.prompt.slice(0, 79)}…` : options.prompt,
      });
    }
  } catch (error) {
    options.err(`outrig: ${describeApiError(error, options.server)}`);
    return 1;
  }
  if (!options.json)
    options.err(
      `session ${session.id} (${session.agent.name} v${session.agent.version}, ${session.agent.model.id})`,
    );

  const printer = createEventPrinter(options.out);
  const sentIds = new Set<string>();
  let hasSeenOwnMessage = false;
  const isReattach = options.prompt === "";
  // Reattached: idles already in the log end the run only when it is the last and the session is idle
  // (an idle waiting for a confirmation that was given since must not end it).
  const listedIdles = new Set<string>();
  let finalIdleId: string | undefined;
  if (isReattach) {
    // The turn to follow starts at the session's last user.message (none yet: all of it).
    try {
      let lastMessageId: string | undefined;
      let lastIdleId: string | undefined;
      for await (const event of client.beta.sessions.events.list(session.id, { order: "asc" })) {
        if (event.type === "user.message") lastMessageId = event.id;
        if (event.type === "session.status_idle") {
          listedIdles.add(event.id);
          lastIdleId = event.id;
        }
      }
      if (lastMessageId) sentIds.add(lastMessageId);
      else hasSeenOwnMessage = true;
      session = await client.beta.sessions.retrieve(session.id);
      if (session.status === "idle") finalIdleId = lastIdleId;
    } catch (error) {
      options.err(`outrig: ${describeApiError(error, options.server)}`);
      return 1;
    }
    if (!options.json) options.err(`(reattached; ${session.status})`);
  }
  let exitCode = 1;
  const usage = { input: 0, output: 0 };
  const isOver = (event: StreamEvent): boolean => {
    if (event.type === "user.message" && sentIds.has(event.id)) hasSeenOwnMessage = true;
    if (event.type === "span.model_request_end") {
      usage.input += event.model_usage.input_tokens;
      usage.output += event.model_usage.output_tokens;
    }
    // Only what follows our message ends the run (a replayed or earlier idle does not).
    if (!hasSeenOwnMessage) return false;
    if (event.type === "session.status_terminated") {
      exitCode = 1;
      return true;
    }
    if (event.type !== "session.status_idle") return false;
    if (listedIdles.has(event.id) && event.id !== finalIdleId) return false;
    const reason = event.stop_reason.type;
    exitCode = reason === "end_turn" ? 0 : reason === "retries_exhausted" ? 1 : 2;
    return true;
  };
  try {
    await followSession({
      client,
      sessionId: session.id,
      ...(options.json ? {} : { deltas: ["agent.message"] as const }),
      // Reattaching lists the log first (followSession does without onOpen) and prints from the turn on.
      ...(isReattach ? {} : { onOpen: sendPrompt }),
      onReconnect: (attempt) => {
        if (!options.json) options.err(`(connection lost; reconnecting, attempt ${attempt})`);
      },
      onEvent: (event) => {
        const isDone = isOver(event);
        // Reattached: earlier turns are not shown; the turn's own message is (it gives the context).
        if (isReattach && !hasSeenOwnMessage) return isDone;
        if (options.json) options.out(`${JSON.stringify(event)}\n`);
        else if (isReattach || event.type !== "user.message" || !sentIds.has(event.id)) printer.print(event);
        return isDone;
      },
    });
  } catch (error) {
    printer.finish();
    options.err(`outrig: ${describeApiError(error, options.server)}`);
    return 1;
  }
  printer.finish();
  if (!options.json && exitCode === 2) {
    try {
      for (const line of describePendingActions(session.id, await pendingActions(client, session.id)))
        options.err(line);
    } catch (error) {
      options.err(`outrig: ${describeApiError(error, options.server)}`);
    }
  }
  if (!options.json) options.err(`(${usage.input} in / ${usage.output} out tokens)`);
  return exitCode;

  async function sendPrompt(): Promise<void> {
    const sent = await client.beta.sessions.events.send(session.id, {
      events: [{ type: "user.message", content: [{ type: "text", text: options.prompt }] }],
    });
    for (const event of sent.data ?? []) sentIds.add(event.id);
    // A server that does not echo ids: everything from now on is this run's.
    if (sentIds.size === 0) hasSeenOwnMessage = true;
  }
}

/** The key an agent made by `outrig run` carries: the model and system prompt it was made for. */
export function runAgentKey(model: string, system: string | undefined): string {
  return createHash("sha256")
    .update(`${model}\u0000${system ?? ""}`)
    .digest("hex")
    .slice(0, 32);
}

/** The newest agent `outrig run` made for this model and system prompt, or a new one. */
export async function findOrCreateRunAgent(
  client: Anthropic,
  model: string,
  system: string | undefined,
): Promise<Anthropic.Beta.Agents.BetaManagedAgentsAgent> {
  const key = runAgentKey(model, system);
  for await (const agent of client.beta.agents.list()) {
    if (agent.metadata[RUN_METADATA_KEY] === key && !agent.archived_at) return agent;
  }
  return client.beta.agents.create({
    name: `outrig run (${model})`,
    model,
    ...(system ? { system } : {}),
    tools: [{ type: "agent_toolset_20260401" }],
    metadata: { [RUN_METADATA_KEY]: key },
  });
}

/**
 * The cloud environment `outrig run` uses: `limited` networking with the org's egress allowlist as its
 * hosts, so a session reaches what the org allows without asking an admin for unrestricted
 * environments (a limited environment can only narrow the allowlist, never widen it). Each run brings
 * the hosts up to date with the allowlist; an environment of `outrig run` someone set to another
 * networking (e.g. `unrestricted`) is left as it is. An empty allowlist gets a note saying how to fill it.
 */
export async function findOrCreateRunEnvironment(
  client: Anthropic,
  note: (text: string) => void = () => undefined,
): Promise<Anthropic.Beta.Environments.BetaEnvironment> {
  const policy = await client.get<{ allowedHosts?: string[] }>("/v1/egress-policy");
  const hosts = [...new Set(policy.allowedHosts ?? [])].sort();
  if (hosts.length === 0)
    note(
      "(the org's egress allowlist is empty, so sessions reach no host; an admin adds hosts with " +
        "`outrig egress set` and the next run uses them)",
    );
  const networking = { type: "limited" as const, allowed_hosts: hosts };
  for await (const environment of client.beta.environments.list()) {
    if (environment.metadata[RUN_METADATA_KEY] !== "default" || environment.archived_at) continue;
    const current = environment.config.type === "cloud" ? environment.config.networking : undefined;
    if (current?.type !== "limited") return environment;
    if (JSON.stringify([...current.allowed_hosts].sort()) === JSON.stringify(hosts)) return environment;
    return client.beta.environments.update(environment.id, { config: { type: "cloud", networking } });
  }
  return client.beta.environments.create({
    name: RUN_ENVIRONMENT_NAME,
    config: { type: "cloud", networking },
    metadata: { [RUN_METADATA_KEY]: "default" },
  });
}
