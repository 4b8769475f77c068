/** `outrig sessions ls|create|get|show|logs|archive|delete`: the Sessions API through the SDK. */
import type Anthropic from "@anthropic-ai/sdk";
import {
  collect,
  parseCount,
  parseMetadata,
  printResource,
  printRows,
  type ResourceCommandIo,
  readJsonBody,
  requireId,
  runSubcommand,
  type Subcommand,
  UsageError,
} from "./command-kit.js";
import { followSession } from "./follow-session.js";
import { createEventPrinter } from "./print-event.js";
import { describePendingActions, notePending, type PendingAction } from "./session-actions-command.js";

type Session = Anthropic.Beta.Sessions.BetaManagedAgentsSession;

export const SESSIONS_USAGE = `usage: outrig sessions <subcommand> [options]

  ls [--agent AGENT_ID] [--status S]... [--archived] [--limit N] [--json]
                                               the sessions you can see, newest first
  create --agent AGENT_ID[@VERSION] --env ENV_ID [--title TEXT] [--vault VAULT_ID]...
         [--message TEXT] [--metadata key=value]... [--body FILE|-] [--json]
                                               a session pinned to the agent's latest version (or
                                               VERSION); --message starts it with a user.message
  get|show SESSION_ID [--json]                 one session: status, agent, usage (and what it waits for)
  logs SESSION_ID [--follow] [--json]          what happened in it, as \`outrig run\` prints it;
                                               --follow keeps going live until it is idle
  archive SESSION_ID                           archive it (read-only afterwards)
  delete SESSION_ID                            delete it with its events, sandbox and snapshots

Run \`outrig sessions <subcommand> --help\` for one subcommand.`;

const STATUSES = ["rescheduling", "running", "idle", "terminated"] as const;

/** `agent_x` or `agent_x@3` as the API's agent reference. */
export function parseAgentReference(
  value: string,
): string | Anthropic.Beta.Sessions.BetaManagedAgentsAgentParams {
  const at = value.lastIndexOf("@");
  if (at < 0) return value;
  const version = Number(value.slice(at + 1));
  if (!Number.isInteger(version) || version < 1 || at === 0)
    throw new UsageError(`--agent expects AGENT_ID or AGENT_ID@VERSION, not "${value}"`);
  return { type: "agent", id: value.slice(0, at), version };
}

const subcommands: Record<string, Subcommand> = {
  ls: {
    usage: "usage: outrig sessions ls [--agent AGENT_ID] [--status S]... [--archived] [--limit N] [--json]",
    options: {
      agent: { type: "string" },
      status: { type: "string", multiple: true },
      archived: { type: "boolean" },
      limit: { type: "string" },
      json: { type: "boolean" },
    },
    async run(flags, _positionals, io) {
      const statuses = flags.list("status");
      for (const status of statuses)
        if (!(STATUSES as readonly string[]).includes(status))
          throw new UsageError(`--status is one of ${STATUSES.join(", ")}, not "${status}"`);
      const limit = parseCount(flags.string("limit"), "--limit");
      const sessions = await collect(
        io.client.beta.sessions.list({
          ...(flags.string("agent") ? { agent_id: flags.string("agent") } : {}),
          ...(statuses.length > 0 ? { statuses: statuses as (typeof STATUSES)[number][] } : {}),
          ...(flags.boolean("archived") ? { include_archived: true } : {}),
          ...(limit !== undefined ? { limit: Math.min(limit, 100) } : {}),
        }),
        limit,
      );
      printRows<Session>(io, sessions, flags.boolean("json"), [
        ["id", (session) => session.id],
        ["status", (session) => session.status],
        ["agent", (session) => `${session.agent.id}@${session.agent.version}`],
        ["created", (session) => session.created_at],
        ["title", (session) => session.title ?? ""],
      ]);
      return 0;
    },
  },
  create: {
    usage:
      "usage: outrig sessions create --agent AGENT_ID[@VERSION] --env ENV_ID [--title TEXT] [--vault VAULT_ID]...\n" +
      "                              [--message TEXT] [--metadata key=value]... [--body FILE|-] [--json]",
    options: {
      agent: { type: "string" },
      env: { type: "string" },
      title: { type: "string" },
      vault: { type: "string", multiple: true },
      message: { type: "string" },
      metadata: { type: "string", multiple: true },
      body: { type: "string" },
      json: { type: "boolean" },
    },
    async run(flags, _positionals, io) {
      const body = flags.string("body") ? await readJsonBody(flags.string("body") ?? "-", io.stdin) : {};
      const agentFlag = flags.string("agent");
      const agent = agentFlag ? parseAgentReference(agentFlag) : body.agent;
      const environmentId = flags.string("env") ?? body.environment_id;
      if (!agent || !environmentId) throw new UsageError(`--agent and --env are required\n\n${this.usage}`);
      const metadata = parseMetadata(flags.list("metadata"));
      const vaults = flags.list("vault");
      const message = flags.string("message");
      const session = await io.client.beta.sessions.create({
        ...body,
        agent,
        environment_id: environmentId,
        ...(flags.string("title") !== undefined ? { title: flags.string("title") } : {}),
        ...(vaults.length > 0 ? { vault_ids: vaults } : {}),
        ...(metadata ? { metadata } : {}),
        ...(message
          ? { initial_events: [{ type: "user.message", content: [{ type: "text", text: message }] }] }
          : {}),
      } as Anthropic.Beta.Sessions.SessionCreateParams);
      printResource(io, session, flags.boolean("json"));
      return 0;
    },
  },
  get: {
    usage: "usage: outrig sessions get SESSION_ID [--json]",
    options: { json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const session = await io.client.beta.sessions.retrieve(
        requireId(positionals, "session id", this.usage),
      );
      printResource(io, session, flags.boolean("json"));
      return 0;
    },
  },
  show: {
    usage: "usage: outrig sessions show SESSION_ID [--json]   (the session, then what it waits for)",
    options: { json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const sessionId = requireId(positionals, "session id", this.usage);
      const session = await io.client.beta.sessions.retrieve(sessionId);
      printResource(io, session, flags.boolean("json"));
      if (!flags.boolean("json") && session.status === "idle") {
        const waiting = new Map<string, PendingAction>();
        for await (const event of io.client.beta.sessions.events.list(sessionId, { order: "asc" }))
          notePending(waiting, event);
        for (const line of describePendingActions(sessionId, [...waiting.values()])) io.out(`${line}\n`);
      }
      return 0;
    },
  },
  logs: {
    usage: "usage: outrig sessions logs SESSION_ID [--follow] [--json]",
    options: { follow: { type: "boolean", short: "f" }, json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const sessionId = requireId(positionals, "session id", this.usage);
      const json = flags.boolean("json");
      const printer = createEventPrinter(io.out);
      const print = (event: { type: string }) => {
        if (json) io.out(`${JSON.stringify(event)}\n`);
        else printer.print(event as Parameters<typeof printer.print>[0]);
      };
      const printed = new Set<string>();
      for await (const event of io.client.beta.sessions.events.list(sessionId, { order: "asc" })) {
        print(event);
        printed.add(event.id);
      }
      if (!flags.boolean("follow")) {
        printer.finish();
        return 0;
      }
      // Then live, until the first idle that was not in the log above (the running turn's, or the next).
      let code = 0;
      await followSession({
        client: io.client,
        sessionId,
        onEvent: (event) => {
          if ("id" in event && printed.has(event.id)) return false;
          print(event);
          if (event.type === "session.status_terminated") code = 1;
          return event.type === "session.status_idle" || event.type === "session.status_terminated";
        },
      });
      printer.finish();
      return code;
    },
  },
  archive: {
    usage: "usage: outrig sessions archive SESSION_ID [--json]",
    options: { json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const session = await io.client.beta.sessions.archive(requireId(positionals, "session id", this.usage));
      if (flags.boolean("json")) printResource(io, session, true);
      else io.out(`archived ${session.id} at ${session.archived_at}\n`);
      return 0;
    },
  },
  delete: {
    usage: "usage: outrig sessions delete SESSION_ID",
    options: {},
    async run(_flags, positionals, io) {
      const deleted = await io.client.beta.sessions.delete(requireId(positionals, "session id", this.usage));
      io.out(`deleted ${deleted.id}\n`);
      return 0;
    },
  },
};

export function sessionsCommand(argv: readonly string[], io: ResourceCommandIo): Promise<number> {
  return runSubcommand(argv, SESSIONS_USAGE, subcommands, io);
}
