/**
 * Answering a session without knowing event ids: `outrig approve|deny SESSION_ID [TOOL_USE_ID]` confirms
 * the tool call that waits (the only one, or the one named), `outrig cancel SESSION_ID` interrupts the
 * running turn. What waits is read from the session's event log, so `outrig run` can say the same.
 */
import type Anthropic from "@anthropic-ai/sdk";
import { type Flags, parseCommand, type ResourceCommandIo, UsageError } from "./command-kit.js";
import { summarizeInput } from "./print-event.js";

type SessionEvent = Anthropic.Beta.Sessions.BetaManagedAgentsSessionEvent;

/** A tool call the session waits on: a confirmation (`tool_use`) or a client's result (`custom_tool_use`). */
export interface PendingAction {
  readonly kind: "confirmation" | "custom_tool_result";
  /** The `agent.tool_use` / `agent.custom_tool_use` event id the answer names. */
  readonly eventId: string;
  readonly name: string;
  readonly input: unknown;
}

export const APPROVE_USAGE = `usage: outrig approve SESSION_ID [TOOL_USE_ID]

Allows the tool call the session waits to have confirmed (an always_ask tool). Without TOOL_USE_ID
the only one that waits; name it when several wait (\`outrig sessions logs SESSION_ID\` shows them).
Follow the turn afterwards with \`outrig run --session SESSION_ID\`.`;

export const DENY_USAGE = `usage: outrig deny SESSION_ID [TOOL_USE_ID] [--message TEXT]

Denies the tool call the session waits to have confirmed; --message tells the model why.
Without TOOL_USE_ID the only one that waits.`;

export const CANCEL_USAGE = `usage: outrig cancel SESSION_ID

Interrupts the session's running turn (a user.interrupt): a command in flight finishes, nothing is
called after it, and the session goes idle. An idle session is left as it is.`;

/** Pending tool calls, oldest first: asked or custom tool uses that no answer or result followed. */
export async function pendingActions(client: Anthropic, sessionId: string): Promise<PendingAction[]> {
  const waiting = new Map<string, PendingAction>();
  for await (const event of client.beta.sessions.events.list(sessionId, { order: "asc" }))
    notePending(waiting, event);
  return [...waiting.values()];
}

/** Updates `waiting` with one event of the log (also fed by `outrig run` as events stream by). */
export function notePending(waiting: Map<string, PendingAction>, event: { type: string }): void {
  const typed = event as SessionEvent;
  switch (typed.type) {
    case "agent.tool_use":
      if (typed.evaluated_permission === "ask")
        waiting.set(typed.id, {
          kind: "confirmation",
          eventId: typed.id,
          name: typed.name,
          input: typed.input,
        });
      break;
    case "agent.custom_tool_use":
      waiting.set(typed.id, {
        kind: "custom_tool_result",
        eventId: typed.id,
        name: typed.name,
        input: typed.input,
      });
      break;
    case "user.tool_confirmation":
      waiting.delete(typed.tool_use_id);
      break;
    case "agent.tool_result":
      waiting.delete(typed.tool_use_id);
      break;
    case "user.custom_tool_result":
      waiting.delete(typed.custom_tool_use_id);
      break;
    default:
      break;
  }
}

/** Lines that say what waits and the commands that answer it. */
export function describePendingActions(sessionId: string, actions: readonly PendingAction[]): string[] {
  const lines: string[] = [];
  for (const action of actions) {
    if (action.kind === "confirmation") {
      lines.push(`waiting for your confirmation: ${action.name}(${summarizeInput(action.input)})`);
      lines.push(`  allow: outrig approve ${sessionId} ${action.eventId}`);
      lines.push(`  deny:  outrig deny ${sessionId} ${action.eventId} --message "why"`);
    } else {
      lines.push(`waiting for the result of custom tool ${action.name}(${summarizeInput(action.input)})`);
      lines.push(`  answer: outrig events send ${sessionId} --tool-result ${action.eventId} --content TEXT`);
    }
  }
  if (lines.length > 0) lines.push(`then follow the turn: outrig run --session ${sessionId}`);
  return lines;
}

/** `outrig approve` / `outrig deny`. */
export function confirmCommand(result: "allow" | "deny") {
  const usage = result === "allow" ? APPROVE_USAGE : DENY_USAGE;
  return async (argv: readonly string[], io: ResourceCommandIo): Promise<number> => {
    const parsed = parseCommand(argv, result === "deny" ? { message: { type: "string" } } : {}, usage);
    if (parsed === "help") {
      io.out(`${usage}\n`);
      return 0;
    }
    const [sessionId, named, ...extra] = parsed.positionals;
    if (!sessionId || extra.length > 0) throw new UsageError(`expected SESSION_ID [TOOL_USE_ID]\n\n${usage}`);
    const action = await chooseConfirmation(io.client, sessionId, named);
    const message = denyMessage(parsed.flags, result);
    await io.client.beta.sessions.events.send(sessionId, {
      events: [
        {
          type: "user.tool_confirmation",
          tool_use_id: action.eventId,
          result,
          ...(message ? { deny_message: message } : {}),
        },
      ],
    });
    io.out(
      `${result === "allow" ? "allowed" : "denied"} ${action.name}(${summarizeInput(action.input)}) ${action.eventId}\n`,
    );
    io.err(`(follow the turn: outrig run --session ${sessionId})\n`);
    return 0;
  };
}

function denyMessage(flags: Flags, result: "allow" | "deny"): string | undefined {
  return result === "deny" ? flags.string("message") : undefined;
}

async function chooseConfirmation(
  client: Anthropic,
  sessionId: string,
  named: string | undefined,
): Promise<PendingAction> {
  const waiting = (await pendingActions(client, sessionId)).filter(
    (action) => action.kind === "confirmation",
  );
  if (named) {
    const action = waiting.find((candidate) => candidate.eventId === named);
    if (!action) throw new UsageError(`no tool call ${named} waits for a confirmation in ${sessionId}`);
    return action;
  }
  const [only, ...more] = waiting;
  if (!only) throw new UsageError(`nothing in ${sessionId} waits for a confirmation`);
  if (more.length > 0)
    throw new UsageError(
      `${waiting.length} tool calls wait; name one:\n${describePendingActions(sessionId, waiting).join("\n")}`,
    );
  return only;
}

/** `outrig cancel SESSION_ID`. */
export async function cancelCommand(argv: readonly string[], io: ResourceCommandIo): Promise<number> {
  const parsed = parseCommand(argv, {}, CANCEL_USAGE);
  if (parsed === "help") {
    io.out(`${CANCEL_USAGE}\n`);
    return 0;
  }
  const [sessionId, ...extra] = parsed.positionals;
  if (!sessionId || extra.length > 0) throw new UsageError(`expected one SESSION_ID\n\n${CANCEL_USAGE}`);
  const sent = await io.client.beta.sessions.events.send(sessionId, { events: [{ type: "user.interrupt" }] });
  const interrupt = sent.data?.[0];
  io.out(
    interrupt ? `interrupted ${sessionId} (${interrupt.id})\n` : `${sessionId} was idle; nothing to cancel\n`,
  );
  return 0;
}
