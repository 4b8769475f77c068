/** `outrig run "<prompt>"`: creates a session, streams its turn live, exits 0 when the turn ends. */
import type { SessionEvent, SessionResource } from "@outrig/protocol";
import { followSse } from "./sse-client.js";

export interface RunOptions {
  readonly prompt: string;
  readonly model: string;
  readonly server: string;
  readonly apiKey: string;
  readonly json: boolean;
  readonly system?: string;
  readonly sessionId?: string;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export async function runCommand(options: RunOptions): Promise<number> {
  const headers = { authorization: `Bearer ${options.apiKey}`, "content-type": "application/json" };
  let session: SessionResource;
  let afterSeq: number;
  try {
    if (options.sessionId) {
      const current = await request<SessionResource>(`${options.server}/v1/sessions/${options.sessionId}`, {
        headers,
      });
      afterSeq = current.lastSeq;
      session = await request<SessionResource>(
        `${options.server}/v1/sessions/${options.sessionId}/messages`,
        {
          method: "POST",
          headers,
          body: JSON.stringify({ text: options.prompt }),
        },
      );
    } else {
      afterSeq = 0;
      session = await request<SessionResource>(`${options.server}/v1/sessions`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          model: options.model,
          prompt: options.prompt,
          ...(options.system ? { system: options.system } : {}),
        }),
      });
    }
  } catch (error) {
    options.err(`outrig: ${(error as Error).message}`);
    return 1;
  }
  const turn = session.turns;
  if (!options.json) options.err(`session ${session.id} (${session.model}), turn ${turn}`);
  let exitCode = 1;
  let isMidLine = false;
  const line = (text: string) => {
    if (isMidLine) options.out("\n");
    isMidLine = false;
    options.out(`${text}\n`);
  };
  try {
    await followSse({
      url: `${options.server}/v1/sessions/${session.id}/events`,
      headers: { authorization: headers.authorization },
      afterSeq,
      onReconnect: (attempt) => {
        if (!options.json) options.err(`(connection lost; reconnecting, attempt ${attempt})`);
      },
      onMessage: (message) => {
        const event = JSON.parse(message.data) as
          | SessionEvent
          | { type: "message.delta"; text: string; turn: number };
        if (options.json) {
          options.out(`${message.data}\n`);
        } else if (event.type === "message.delta") {
          options.out(event.text);
          isMidLine = !event.text.endsWith("\n");
        } else {
          printEvent(event, line);
        }
        if ("turn" in event && event.turn === turn) {
          if (event.type === "turn.end") {
            exitCode = event.reason === "end_turn" ? 0 : 2;
            return true;
          }
          if (event.type === "turn.error") {
            exitCode = 1;
            return true;
          }
        }
        return false;
      },
    });
  } catch (error) {
    options.err(`outrig: ${(error as Error).message}`);
    return 1;
  }
  if (isMidLine) options.out("\n");
  return exitCode;
}

function printEvent(event: SessionEvent, line: (text: string) => void): void {
  switch (event.type) {
    case "tool.start":
      line(`→ ${event.name}(${summarizeInput(event.input)})`);
      break;
    case "tool.end": {
      const first = event.output.split("\n").slice(0, 6).join("\n  ");
      line(
        `${event.isError ? "✗" : "✓"} ${event.name}: ${first.length > 600 ? `${first.slice(0, 600)}…` : first}`,
      );
      break;
    }
    case "model.retry":
      line(`(model ${event.code}; retrying in ${Math.round(event.delayMs)} ms)`);
      break;
    case "turn.end":
      line(
        `— turn ended (${event.reason}; ${event.usage.inputTokens} in / ${event.usage.outputTokens} out tokens)`,
      );
      break;
    case "turn.error":
      line(`— turn failed: ${event.code}: ${event.message}`);
      break;
    case "sandbox.start":
      line(`(sandbox ${event.sandboxId} started in ${Math.round(event.durationMs)} ms)`);
      break;
    default:
      break;
  }
}

function summarizeInput(input: unknown): string {
  if (input && typeof input === "object") {
    const record = input as Record<string, unknown>;
    const main = record.command ?? record.file_path ?? record.pattern ?? record.path;
    if (typeof main === "string") return main.length > 120 ? `${main.slice(0, 120)}…` : main;
  }
  const text = JSON.stringify(input) ?? "";
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

async function request<T>(url: string, init: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new Error(
      `cannot reach the server at ${new URL(url).origin} (is \`npm start\` running?): ${(error as Error).message}`,
    );
  }
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
      message = `${body.error?.code}: ${body.error?.message}`;
    } catch {}
    throw new Error(`HTTP ${response.status}: ${message}`);
  }
  return JSON.parse(text) as T;
}
