/**
 * `outrig run "<prompt>"`: one line to run an agent. It finds (or creates) the default agent for the
 * model and system prompt and the default cloud environment, creates a session (or continues
 * `--session`), sends the prompt as a `user.message`, streams the session's events until it goes idle,
 * and exits 0 on `end_turn`, 2 when the session waits for an action, 1 on an error.
 */
import { createHash } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import { describeApiError } from "./api-client.js";
import { followSession, type StreamEvent } from "./follow-session.js";
import { createEventPrinter } from "./print-event.js";

export interface RunOptions {
  readonly client: Anthropic;
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
    const reason = event.stop_reason.type;
    exitCode = reason === "end_turn" ? 0 : reason === "retries_exhausted" ? 1 : 2;
    return true;
  };
  try {
    await followSession({
      client,
      sessionId: session.id,
      ...(options.json ? {} : { deltas: ["agent.message"] as const }),
      onOpen: async () => {
        const sent = await client.beta.sessions.events.send(session.id, {
          events: [{ type: "user.message", content: [{ type: "text", text: options.prompt }] }],
        });
        for (const event of sent.data ?? []) sentIds.add(event.id);
        // A server that does not echo ids: everything from now on is this run's.
        if (sentIds.size === 0) hasSeenOwnMessage = true;
      },
      onReconnect: (attempt) => {
        if (!options.json) options.err(`(connection lost; reconnecting, attempt ${attempt})`);
      },
      onEvent: (event) => {
        if (options.json) options.out(`${JSON.stringify(event)}\n`);
        else if (event.type !== "user.message" || !sentIds.has(event.id)) printer.print(event);
        return isOver(event);
      },
    });
  } catch (error) {
    printer.finish();
    options.err(`outrig: ${describeApiError(error, options.server)}`);
    return 1;
  }
  printer.finish();
  if (!options.json) options.err(`(${usage.input} in / ${usage.output} out tokens)`);
  return exitCode;
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
 * The cloud environment `outrig run` made, or a new one. It asks for `unrestricted` networking, which
 * Outrig bounds by the org's egress allowlist (what a session reached before environments existed);
 * an org that has not allowed unrestricted environments gets `limited` with no hosts, and a note.
 */
export async function findOrCreateRunEnvironment(
  client: Anthropic,
  note: (text: string) => void = () => undefined,
): Promise<Anthropic.Beta.Environments.BetaEnvironment> {
  for await (const environment of client.beta.environments.list()) {
    if (environment.metadata[RUN_METADATA_KEY] === "default" && !environment.archived_at) return environment;
  }
  const create = (networking: Anthropic.Beta.Environments.BetaCloudConfigParams["networking"]) =>
    client.beta.environments.create({
      name: RUN_ENVIRONMENT_NAME,
      config: { type: "cloud", networking },
      metadata: { [RUN_METADATA_KEY]: "default" },
    });
  try {
    return await create({ type: "unrestricted" });
  } catch (error) {
    if (!(error instanceof Anthropic.PermissionDeniedError)) throw error;
    note(
      "(this org does not allow unrestricted environments, so outrig run's environment reaches no host; " +
        "an admin can allow them (allowUnrestrictedEnvironments in the egress policy), or pass --session " +
        "of a session in an environment with allowed_hosts)",
    );
    return create({ type: "limited", allowed_hosts: [] });
  }
}
