/**
 * One session or key must not stall the others, on the real `outrig serve` process (embedded Postgres,
 * bubblewrap sandbox, fake LLM over HTTP): a tool printing NUL bytes ends its turn with the bytes intact,
 * and a flood of event streams from one key is refused with 429 while another key is served at once.
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiClient,
  createAgentSession,
  listEvents,
  resultText,
  type SessionEvent,
  stopReason,
  TOOLS,
  waitForIdle,
} from "./api-session.js";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

const KEY_STREAMS = 20;

let fakeLlm: FakeLlmServer;
let server: ServerProcess;
let home: string;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script: { turns: [] } });
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: {
      ANTHROPIC_API_KEY: "sk-ant-noisy-neighbours",
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
      OUTRIG_RATE_KEY_STREAMS: String(KEY_STREAMS),
    },
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

function api(path: string, init: RequestInit & { key?: string } = {}): Promise<Response> {
  const { key, ...rest } = init;
  return fetch(`${server.url}${path}`, {
    ...rest,
    headers: {
      "x-api-key": key ?? server.apiKey,
      "content-type": "application/json",
      ...(rest.headers as Record<string, string> | undefined),
    },
  });
}

/** The session's events once its turn is over (the API's event log, through the SDK). */
async function readTurn(sessionId: string, timeoutMs: number): Promise<SessionEvent[]> {
  return waitForIdle(apiClient(server), sessionId, timeoutMs);
}

async function startSession(text: string): Promise<string> {
  const client = apiClient(server);
  const { session } = await createAgentSession(client, { model: "anthropic:claude-sonnet-4-5" });
  const sent = await client.beta.sessions.events.send(session.id, {
    events: [{ type: "user.message", content: [{ type: "text", text }] }],
  });
  expect(sent.data?.[0]?.type).toBe("user.message");
  return session.id;
}

describe("one session cannot stall the others", () => {
  it("stores a tool's NUL bytes faithfully and ends the turn", async () => {
    fakeLlm.setScript({
      turns: [{ toolCalls: [{ name: TOOLS.bash, input: { command: "printf 'a\\0b'" } }] }, { text: "done" }],
    });
    const before = fakeLlm.requests.length;
    const sessionId = await startSession("print a NUL byte");
    const events = await readTurn(sessionId, 60_000);
    const loopEvents = events.filter((event) => !event.type.startsWith("session.sandbox_"));
    expect(loopEvents.map((event) => event.type)).toEqual([
      "user.message",
      "session.status_running",
      "span.model_request_start",
      "span.model_request_end",
      "agent.tool_use",
      "agent.tool_result",
      "span.model_request_start",
      "agent.message",
      "span.model_request_end",
      "session.status_idle",
    ]);
    expect(events.find((event) => event.type === "agent.tool_use")).toMatchObject({ name: TOOLS.bash });
    const toolEnd = events.find((event) => event.type === "agent.tool_result");
    expect(toolEnd).toMatchObject({ is_error: false });
    expect(resultText(toolEnd)).toContain("a\u0000b");
    // The model was sent the bytes as they were printed.
    const followUp = JSON.stringify(fakeLlm.requests[before + 1]?.body);
    expect(followUp).toContain("a\\u0000b");
    // Read back from the log again (a fresh read), and from a stream resumed at the start; the session is idle.
    const replayed = await listEvents(apiClient(server), sessionId);
    expect(resultText(replayed.find((event) => event.type === "agent.tool_result"))).toBe(
      resultText(toolEnd),
    );
    const resumed = await apiClient(server).beta.sessions.events.stream(
      sessionId,
      {},
      { headers: { "last-event-id": events[0]?.id ?? "" } },
    );
    for await (const event of resumed) {
      if (event.type === "agent.tool_result") {
        expect(resultText(event)).toBe(resultText(toolEnd));
        break;
      }
    }
    expect(stopReason(replayed)).toBe("end_turn");
    expect((await apiClient(server).beta.sessions.retrieve(sessionId)).status).toBe("idle");
  });

  it("refuses a flood of event streams from one key with 429 while another key is served quickly", async () => {
    fakeLlm.setScript({ turns: [{ text: "hello" }] });
    const sessionId = await startSession("hi");
    await readTurn(sessionId, 60_000);
    const created = await runCli(["keys", "create", "--org", "neighbours", "--user", "bob"], {
      OUTRIG_HOME: home,
      OUTRIG_SERVER: server.url,
    });
    expect(created.code, created.stderr).toBe(0);
    const otherKey = created.stdout.trim();

    const controller = new AbortController();
    try {
      const flood = await Promise.all(
        Array.from({ length: KEY_STREAMS * 3 }, () =>
          api(`/v1/sessions/${sessionId}/events/stream`, { signal: controller.signal }),
        ),
      );
      const statuses = flood.map((response) => response.status);
      expect(statuses.filter((status) => status === 200)).toHaveLength(KEY_STREAMS);
      expect(statuses.filter((status) => status === 429)).toHaveLength(KEY_STREAMS * 2);
      const refused = flood.find((response) => response.status === 429);
      if (!refused) throw new Error("no stream was refused");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(await refused.json()).toMatchObject({
        type: "error",
        error: { type: "rate_limit_error", code: "rate_limited" },
      });

      // While the flood holds its streams open, another key's request is answered at once.
      const startedAt = performance.now();
      const other = await api("/v1/sessions", { key: otherKey });
      expect(other.status).toBe(200);
      expect(performance.now() - startedAt).toBeLessThan(1000);
    } finally {
      controller.abort();
    }
    // Closed streams free their slots: the key can stream again.
    await expect
      .poll(
        async () => {
          const response = await api(`/v1/sessions/${sessionId}/events/stream`, {
            signal: AbortSignal.timeout(2000),
          });
          void response.body?.cancel();
          return response.status;
        },
        { timeout: 10_000 },
      )
      .toBe(200);
  });
});
