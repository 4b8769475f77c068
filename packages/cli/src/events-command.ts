/** `outrig events ls|send|stream`: a session's events through the SDK. */
import type Anthropic from "@anthropic-ai/sdk";
import {
  collect,
  parseCount,
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

type EventParams = Anthropic.Beta.Sessions.BetaManagedAgentsEventParams;

export const EVENTS_USAGE = `usage: outrig events <subcommand> SESSION_ID [options]

  ls SESSION_ID [--type T]... [--limit N] [--json]
                                               the session's events, oldest first
  send SESSION_ID (--message TEXT | --interrupt | --allow TOOL_USE_ID | --deny TOOL_USE_ID
                   [--deny-message TEXT] | --tool-result CUSTOM_TOOL_USE_ID --content TEXT [--error]
                   | --body FILE|-) [--json]
                                               send one event (--body: {"events": [...]} as the API takes)
  stream SESSION_ID [--until-idle] [--json]    follow the session live from now on (reconnects
                                               without gaps); --until-idle stops at the next
                                               session.status_idle

Run \`outrig events <subcommand> --help\` for one subcommand.`;

function eventsToSend(flags: Parameters<Subcommand["run"]>[0]): EventParams[] | undefined {
  const chosen: EventParams[] = [];
  const message = flags.string("message");
  if (message !== undefined)
    chosen.push({ type: "user.message", content: [{ type: "text", text: message }] });
  if (flags.boolean("interrupt")) chosen.push({ type: "user.interrupt" });
  const allow = flags.string("allow");
  if (allow !== undefined)
    chosen.push({ type: "user.tool_confirmation", tool_use_id: allow, result: "allow" });
  const deny = flags.string("deny");
  if (deny !== undefined)
    chosen.push({
      type: "user.tool_confirmation",
      tool_use_id: deny,
      result: "deny",
      ...(flags.string("deny-message") !== undefined ? { deny_message: flags.string("deny-message") } : {}),
    });
  const toolResult = flags.string("tool-result");
  if (toolResult !== undefined)
    chosen.push({
      type: "user.custom_tool_result",
      custom_tool_use_id: toolResult,
      content: [{ type: "text", text: flags.string("content") ?? "" }],
      ...(flags.boolean("error") ? { is_error: true } : {}),
    });
  if (chosen.length > 1) throw new UsageError("send one event at a time (or several with --body)");
  return chosen.length === 1 ? chosen : undefined;
}

const subcommands: Record<string, Subcommand> = {
  ls: {
    usage: "usage: outrig events ls SESSION_ID [--type T]... [--limit N] [--json]",
    options: {
      type: { type: "string", multiple: true },
      limit: { type: "string" },
      json: { type: "boolean" },
    },
    async run(flags, positionals, io) {
      const sessionId = requireId(positionals, "session id", this.usage);
      const types = flags.list("type") as Anthropic.Beta.Sessions.BetaManagedAgentsSessionEventType[];
      const events = await collect(
        io.client.beta.sessions.events.list(sessionId, {
          order: "asc",
          ...(types.length > 0 ? { types } : {}),
        }),
        parseCount(flags.string("limit"), "--limit"),
      );
      if (flags.boolean("json")) {
        printRows(io, events, true, []);
        return 0;
      }
      printRows(io, events, false, [
        ["id", (event) => event.id],
        ["type", (event) => event.type],
        ["at", (event) => ("processed_at" in event && event.processed_at ? event.processed_at : "-")],
      ]);
      return 0;
    },
  },
  send: {
    usage:
      "usage: outrig events send SESSION_ID (--message TEXT | --interrupt | --allow TOOL_USE_ID\n" +
      "                          | --deny TOOL_USE_ID [--deny-message TEXT]\n" +
      "                          | --tool-result CUSTOM_TOOL_USE_ID --content TEXT [--error] | --body FILE|-) [--json]",
    options: {
      message: { type: "string" },
      interrupt: { type: "boolean" },
      allow: { type: "string" },
      deny: { type: "string" },
      "deny-message": { type: "string" },
      "tool-result": { type: "string" },
      content: { type: "string" },
      error: { type: "boolean" },
      body: { type: "string" },
      json: { type: "boolean" },
    },
    async run(flags, positionals, io) {
      const sessionId = requireId(positionals, "session id", this.usage);
      const fromFlags = eventsToSend(flags);
      const bodySource = flags.string("body");
      if (fromFlags && bodySource) throw new UsageError("give either an event flag or --body, not both");
      const events =
        fromFlags ?? (bodySource ? (await readJsonBody(bodySource, io.stdin)).events : undefined);
      if (!Array.isArray(events) || events.length === 0)
        throw new UsageError(`nothing to send\n\n${this.usage}`);
      const sent = await io.client.beta.sessions.events.send(sessionId, { events: events as EventParams[] });
      if (flags.boolean("json")) io.out(`${JSON.stringify(sent, null, 2)}\n`);
      else for (const event of sent.data ?? []) io.out(`sent ${event.type} ${event.id}\n`);
      return 0;
    },
  },
  stream: {
    usage: "usage: outrig events stream SESSION_ID [--until-idle] [--json]",
    options: { "until-idle": { type: "boolean" }, json: { type: "boolean" } },
    async run(flags, positionals, io) {
      const sessionId = requireId(positionals, "session id", this.usage);
      const json = flags.boolean("json");
      const printer = createEventPrinter(io.out);
      const untilIdle = flags.boolean("until-idle");
      let code = 0;
      await followSession({
        client: io.client,
        sessionId,
        // Live from now on (`events ls` shows what came before).
        onOpen: async () => undefined,
        ...(json ? {} : { deltas: ["agent.message"] as const }),
        onReconnect: (attempt) => io.err(`(connection lost; reconnecting, attempt ${attempt})\n`),
        onEvent: (event) => {
          if (json) io.out(`${JSON.stringify(event)}\n`);
          else printer.print(event);
          if (event.type === "session.status_terminated") {
            code = 1;
            return true;
          }
          return untilIdle && event.type === "session.status_idle";
        },
      });
      printer.finish();
      return code;
    },
  },
};

export function eventsCommand(argv: readonly string[], io: ResourceCommandIo): Promise<number> {
  return runSubcommand(argv, EVENTS_USAGE, subcommands, io);
}
