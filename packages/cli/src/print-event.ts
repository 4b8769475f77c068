/** One session event as a line a person reads (`outrig run`, `outrig events stream|ls`). */
import type { StreamEvent } from "./follow-session.js";

/** What a printer remembers between events: tool names by call id, text already streamed as deltas. */
export interface EventPrinter {
  /** Prints the event (or nothing for events a person need not see). */
  print(event: StreamEvent): void;
  /** Ends a line left open by streamed text. */
  finish(): void;
}

export function createEventPrinter(out: (text: string) => void): EventPrinter {
  const toolNames = new Map<string, string>();
  const streamed = new Set<string>();
  let isMidLine = false;
  const line = (text: string) => {
    if (isMidLine) out("\n");
    isMidLine = false;
    out(`${text}\n`);
  };
  return {
    print(event) {
      switch (event.type) {
        case "event_delta":
          streamed.add(event.event_id);
          out(event.delta.content.text);
          isMidLine = !event.delta.content.text.endsWith("\n");
          break;
        case "agent.message":
          if (streamed.has(event.id)) {
            if (isMidLine) out("\n");
            isMidLine = false;
            break;
          }
          line(
            event.content
              .map((block) => (block.type === "text" ? block.text : "[redacted]"))
              .join("")
              .replace(/\n$/, ""),
          );
          break;
        case "user.message":
          line(
            `> ${event.content.map((block) => (block.type === "text" ? block.text : `[${block.type}]`)).join("")}`,
          );
          break;
        case "agent.tool_use":
        case "agent.custom_tool_use": {
          toolNames.set(event.id, event.name);
          const permission =
            event.type === "agent.tool_use" && event.evaluated_permission === "ask"
              ? " — waiting for a confirmation"
              : event.type === "agent.custom_tool_use"
                ? " — waiting for the client's result"
                : "";
          line(`→ ${event.name}(${summarizeInput(event.input)})${permission}`);
          break;
        }
        case "agent.tool_result": {
          const text = (event.content ?? [])
            .map((block) => (block.type === "text" ? block.text : `[${block.type}]`))
            .join("");
          const first = text.split("\n").slice(0, 6).join("\n  ");
          line(
            `${event.is_error ? "✗" : "✓"} ${toolNames.get(event.tool_use_id) ?? "tool"}: ${first.length > 600 ? `${first.slice(0, 600)}…` : first}`,
          );
          break;
        }
        case "user.tool_confirmation":
          line(
            `(${event.result === "allow" ? "allowed" : "denied"} ${toolNames.get(event.tool_use_id) ?? event.tool_use_id}${event.deny_message ? `: ${event.deny_message}` : ""})`,
          );
          break;
        case "user.interrupt":
          line("(interrupted)");
          break;
        case "session.error":
          line(`(error ${event.error.type}: ${event.error.message}; ${event.error.retry_status.type})`);
          break;
        case "session.status_idle": {
          const reason = event.stop_reason;
          line(
            reason.type === "requires_action"
              ? `— idle: requires action on ${reason.event_ids.join(", ")}`
              : `— idle (${reason.type})`,
          );
          break;
        }
        case "session.status_terminated":
          line("— session terminated");
          break;
        default: {
          // Outrig's own events in the API's naming style: a sandbox started or replaced is worth a line
          // (standby, resume and snapshots are routine; `--json` shows every event).
          const type = (event as { type: string }).type;
          if (NOTABLE_SANDBOX_EVENTS.has(type)) line(`(${type}${describeSandboxEvent(event)})`);
          break;
        }
      }
    },
    finish() {
      if (isMidLine) out("\n");
      isMidLine = false;
    },
  };
}

const NOTABLE_SANDBOX_EVENTS = new Set([
  "session.sandbox_started",
  "session.sandbox_replaced",
  "session.sandbox_hibernated",
]);

function describeSandboxEvent(event: object): string {
  const record = event as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of ["sandbox_id", "duration_ms", "reason"]) {
    const value = record[key];
    if (typeof value === "string") parts.push(value);
    else if (typeof value === "number") parts.push(`${Math.round(value)} ms`);
  }
  return parts.length > 0 ? `: ${parts.join(", ")}` : "";
}

export function summarizeInput(input: unknown): string {
  if (input && typeof input === "object") {
    const record = input as Record<string, unknown>;
    const main = record.command ?? record.file_path ?? record.pattern ?? record.path ?? record.url;
    if (typeof main === "string") return main.length > 120 ? `${main.slice(0, 120)}…` : main;
  }
  const text = JSON.stringify(input) ?? "";
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}
