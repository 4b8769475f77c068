/**
 * One session or key must not stall the others, on the real `outrig serve` process (embedded Postgres,
 * bubblewrap sandbox, fake LLM over HTTP): a tool printing NUL bytes ends its turn with the bytes intact,
 * and a flood of event streams from one key is refused with 429 while another key is served at once.
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
      authorization: `Bearer ${key ?? server.apiKey}`,
      "content-type": "application/json",
      ...(rest.headers as Record<string, string> | undefined),
    },
  });
}

/** Reads a session's SSE stream from the start until `turn.end`/`turn.error`, or throws after `timeoutMs`. */
async function readTurn(sessionId: string, timeoutMs: number): Promise<Record<string, unknown>[]> {
  const response = await api(`/v1/sessions/${sessionId}/events?after=0`, {
    signal: AbortSignal.timeout(timeoutMs),
  });
  expect(response.status).toBe(200);
  const reader = response.body?.getReader();
  if (!reader) throw new Error("no body");
  const decoder = new TextDecoder();
  const events: Record<string, unknown>[] = [];
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const data = buffer
        .slice(0, end)
        .split("\n")
        .find((line) => line.startsWith("data:"));
      buffer = buffer.slice(end + 2);
      if (!data) continue;
      const event = JSON.parse(data.slice(5)) as Record<string, unknown>;
      if (event.type === "message.delta") continue;
      events.push(event);
      if (event.type === "turn.end" || event.type === "turn.error") {
        await reader.cancel();
        return events;
      }
    }
  }
}

async function startSession(text: string): Promise<string> {
  const created = await api("/v1/sessions", {
    method: "POST",
    body: JSON.stringify({ model: "anthropic:claude-sonnet-4-5" }),
  });
  expect(created.status).toBe(201);
  const { id } = (await created.json()) as { id: string };
  const posted = await api(`/v1/sessions/${id}/messages`, { method: "POST", body: JSON.stringify({ text }) });
  expect(posted.status).toBe(202);
  return id;
}

describe("one session cannot stall the others", () => {
  it("stores a tool's NUL bytes faithfully and ends the turn", async () => {
    fakeLlm.setScript({
      turns: [{ toolCalls: [{ name: "Bash", input: { command: "printf 'a\\0b'" } }] }, { text: "done" }],
    });
    const before = fakeLlm.requests.length;
    const sessionId = await startSession("print a NUL byte");
    const events = await readTurn(sessionId, 60_000);
    const loopEvents = events.filter((event) => /^(turn|message|tool)\./.test(String(event.type)));
    expect(loopEvents.map((event) => event.type)).toEqual([
      "turn.start",
      "message.end",
      "tool.start",
      "tool.end",
      "message.end",
      "turn.end",
    ]);
    const toolEnd = events.find((event) => event.type === "tool.end");
    expect(toolEnd).toMatchObject({ name: "Bash", isError: false });
    expect(toolEnd?.output).toContain("a\u0000b");
    // The model was sent the bytes as they were printed.
    const followUp = JSON.stringify(fakeLlm.requests[before + 1]?.body);
    expect(followUp).toContain("a\\u0000b");
    // Read back from the log again (a fresh replay), and the session is idle.
    const replayed = await readTurn(sessionId, 10_000);
    expect(replayed.find((event) => event.type === "tool.end")?.output).toBe(toolEnd?.output);
    const session = (await (await api(`/v1/sessions/${sessionId}`)).json()) as { status: string };
    expect(session.status).toBe("idle");
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
          api(`/v1/sessions/${sessionId}/events?after=0`, { signal: controller.signal }),
        ),
      );
      const statuses = flood.map((response) => response.status);
      expect(statuses.filter((status) => status === 200)).toHaveLength(KEY_STREAMS);
      expect(statuses.filter((status) => status === 429)).toHaveLength(KEY_STREAMS * 2);
      const refused = flood.find((response) => response.status === 429);
      if (!refused) throw new Error("no stream was refused");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("rate_limited");

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
          const response = await api(`/v1/sessions/${sessionId}/events?after=0`, {
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
