/**
 * Which session events are audited and what their entries say: `tool.start` becomes a `tool_call`
 * entry, a `tool.end` the tool policy denied a `tool_call` entry marked `denied`, and
 * `approval.response` an `approval` entry. Pure; the session store writes them with the events.
 */
import type { NewSessionEvent } from "@outrig/protocol";
import { toStorableJson } from "../sessions/storable-json.js";
import type { AuditEntryInput } from "./postgres-audit-log.js";

/** Tool inputs are recorded up to this many bytes of JSON; longer ones are cut and flagged. */
export const MAX_AUDITED_INPUT_BYTES = 4096;

/** The session facts an entry needs. */
export interface AuditedSession {
  readonly id: string;
  /** Who the entries are attributed to: the user who started the turn. */
  readonly userId: string;
  /** The session's owner, recorded in the entry when someone else started the turn. */
  readonly ownerId?: string;
}

/** True when `appendEvents` must write an audit entry for this event. */
export function isAuditedEvent(event: NewSessionEvent): boolean {
  return (
    event.type === "tool.start" ||
    event.type === "approval.response" ||
    (event.type === "tool.end" && event.denied?.by === "policy")
  );
}

/**
 * The audit entries for a batch of events, in event order. `toolNames` maps an approval's tool call
 * id to the tool's name (from its `approval.request`), when known.
 */
export function auditEntriesForEvents(
  session: AuditedSession,
  events: readonly NewSessionEvent[],
  toolNames: ReadonlyMap<string, string> = new Map(),
): AuditEntryInput[] {
  const entries: AuditEntryInput[] = [];
  for (const event of events) {
    if (event.type === "tool.start") {
      entries.push(toolCallEntry(session, event, event.input));
    } else if (event.type === "tool.end" && event.denied?.by === "policy") {
      // Never run, so no tool.start: the entry says what was asked and which rule refused it.
      const { rule } = event.denied;
      entries.push(
        toolCallEntry(session, event, event.denied.input, {
          denied: { by: "policy", ...(rule === undefined ? {} : { rule }) },
        }),
      );
    } else if (event.type === "approval.response") {
      const name = toolNames.get(event.toolCallId);
      entries.push({
        kind: "approval",
        sessionId: session.id,
        // Who decided; a timeout was decided by nobody.
        ...(event.userId ? { userId: event.userId } : {}),
        data: {
          toolCallId: event.toolCallId,
          ...(name === undefined ? {} : { name }),
          turn: event.turn,
          decision: event.decision,
          reason: event.reason,
        },
      });
    }
  }
  return entries;
}

function toolCallEntry(
  session: AuditedSession,
  call: { readonly name: string; readonly toolCallId: string; readonly turn: number },
  input: unknown,
  extra: Record<string, unknown> = {},
): AuditEntryInput {
  return {
    kind: "tool_call",
    sessionId: session.id,
    userId: session.userId,
    data: {
      name: call.name,
      toolCallId: call.toolCallId,
      turn: call.turn,
      ...auditedInput(input),
      ...(session.ownerId === undefined || session.ownerId === session.userId
        ? {}
        : { sessionOwnerId: session.ownerId }),
      ...extra,
    },
  };
}

/**
 * The input as JSON when it fits in MAX_AUDITED_INPUT_BYTES; otherwise the first bytes of its JSON text
 * (cut on a character boundary) with `isInputTruncated` and the full size. An input holding NUL or an
 * unpaired surrogate is recorded with its strings escaped as in session events, and `isInputEscaped`.
 */
export function auditedInput(input: unknown): {
  input: unknown;
  inputBytes: number;
  isInputTruncated?: true;
  isInputEscaped?: true;
} {
  const json = JSON.stringify(input ?? null);
  const bytes = Buffer.from(json, "utf8");
  if (bytes.byteLength <= MAX_AUDITED_INPUT_BYTES) {
    // NUL and unpaired surrogates cannot be stored in jsonb: record them escaped (see storable-json.ts).
    const storable = toStorableJson(input ?? null);
    if (storable.isEscaped)
      return { input: JSON.parse(storable.json), inputBytes: bytes.byteLength, isInputEscaped: true };
    return { input: input ?? null, inputBytes: bytes.byteLength };
  }
  let end = MAX_AUDITED_INPUT_BYTES;
  // Back up to the start of a UTF-8 sequence (continuation bytes are 0b10xxxxxx).
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return {
    input: bytes.subarray(0, end).toString("utf8"),
    inputBytes: bytes.byteLength,
    isInputTruncated: true,
  };
}
