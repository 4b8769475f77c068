/**
 * Test harness for the sandbox probes: a real `outrig serve` process on embedded Postgres, the fake LLM
 * answering by conversation position, and helpers that run a list of scripted tool calls as one
 * session and hand back each tool result in order.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { parseSse } from "../../src/sse-client.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "../server-process.js";

export type ToolName = "Bash" | "Read" | "Write" | "Edit";

export interface ToolCall {
  readonly name: ToolName;
  readonly input: Record<string, unknown>;
}

export interface ToolResult {
  readonly output: string;
  readonly isError: boolean;
}

export interface SessionEvent {
  readonly seq?: number;
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface SessionRun {
  readonly sessionId: string;
  readonly results: ToolResult[];
  readonly events: SessionEvent[];
  /** The raw SSE text, deltas included: everything a client of the session could see. */
  readonly raw: string;
}

export interface SecurityHarness {
  readonly server: ServerProcess;
  readonly fakeLlm: FakeLlmServer;
  /** The planted secret: in the server's environment, a file in OUTRIG_HOME and the database. */
  readonly marker: string;
  /** The marker split in two, for commands that search for it without containing it. */
  readonly markerHalves: readonly [string, string];
  /** A loopback HTTP service on the host that answers with the marker. */
  readonly loopbackUrl: string;
  readonly loopbackHits: () => number;
  runSession(calls: readonly ToolCall[], options?: { timeoutMs?: number }): Promise<SessionRun>;
  api(method: string, route: string, body?: unknown): Promise<Response>;
  close(): Promise<void>;
}

const MODEL = "anthropic:claude-sonnet-4-5";

export async function startSecurityHarness(
  options: { env?: Record<string, string> } = {},
): Promise<SecurityHarness> {
  const marker = `outrigMarker${randomBytes(12).toString("hex")}`;
  const markerHalves = [marker.slice(0, 14), marker.slice(14)] as const;
  const fakeLlm = await startFakeLlmServer({
    script: { turns: [{ text: "idle" }] },
    turnSelection: "history",
  });
  const loopback = await startLoopbackService(marker);
  const home = await createOutrigHome();
  let server: ServerProcess | undefined;
  try {
    // The marker in the server's home before the server starts (a file beside master.key).
    await fs.writeFile(path.join(home, "planted-secret.txt"), `${marker}\n`, { mode: 0o600 });
    server = await startServerProcess({
      home,
      env: {
        ANTHROPIC_API_KEY: `sk-ant-${marker}`,
        ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
        OUTRIG_PLANTED_SECRET: marker,
        OUTRIG_SANDBOX_IDLE_MS: "600000",
        ...options.env,
      },
    });
  } catch (error) {
    await fakeLlm.close();
    await loopback.close();
    await fs.rm(home, { recursive: true, force: true });
    throw error;
  }
  const running = server;
  const api = (method: string, route: string, body?: unknown) =>
    fetch(`${running.url}${route}`, {
      method,
      headers: {
        authorization: `Bearer ${running.apiKey}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
  // The marker in the database: an org vault's credential (encrypted at rest, never handed to a sandbox).
  const vault = await api("POST", "/v1/vaults", { display_name: "Planted", scope: "org" });
  if (vault.status !== 200) throw new Error(`creating the vault failed: HTTP ${vault.status}`);
  const { id: vaultId } = (await vault.json()) as { id: string };
  const secret = await api("POST", `/v1/vaults/${vaultId}/credentials`, {
    auth: {
      type: "environment_variable",
      secret_name: "PLANTED_SECRET",
      secret_value: marker,
      networking: { type: "unrestricted" },
    },
  });
  if (secret.status !== 200) throw new Error(`planting the secret failed: HTTP ${secret.status}`);

  return {
    server: running,
    fakeLlm,
    marker,
    markerHalves,
    loopbackUrl: loopback.url,
    loopbackHits: loopback.hits,
    api,
    async runSession(calls, runOptions = {}) {
      fakeLlm.setScript({
        turns: [...calls.map((call) => ({ toolCalls: [call] })), { text: "probes done" }],
      });
      const created = await api("POST", "/v1/sessions", { model: MODEL, prompt: "run the probes" });
      if (created.status !== 201)
        throw new Error(`create session: HTTP ${created.status} ${await created.text()}`);
      const sessionId = ((await created.json()) as { id: string }).id;
      const { events, raw } = await readUntilTurnEnd(running, sessionId, runOptions.timeoutMs ?? 120_000);
      const results = events
        .filter((event) => event.type === "tool.end")
        .map((event) => ({ output: String(event.output ?? ""), isError: event.isError === true }));
      return { sessionId, results, events, raw };
    },
    async close() {
      await running.stop();
      await fakeLlm.close();
      await loopback.close();
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}

async function readUntilTurnEnd(
  server: ServerProcess,
  sessionId: string,
  timeoutMs: number,
): Promise<{ events: SessionEvent[]; raw: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const events: SessionEvent[] = [];
  let raw = "";
  try {
    const response = await fetch(`${server.url}/v1/sessions/${sessionId}/events`, {
      headers: { authorization: `Bearer ${server.apiKey}` },
      signal: controller.signal,
    });
    if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
    for await (const message of parseSse(response.body)) {
      raw += `${message.data}\n`;
      if (message.id === undefined) continue;
      const event = JSON.parse(message.data) as SessionEvent;
      events.push(event);
      if (event.type === "turn.end" || event.type === "turn.error") break;
    }
    controller.abort();
  } catch (error) {
    if (!controller.signal.aborted || events.at(-1)?.type !== "turn.end") {
      throw new Error(
        `session ${sessionId} did not end within ${timeoutMs} ms; last events: ${JSON.stringify(events.slice(-3))}`,
        { cause: error },
      );
    }
  } finally {
    clearTimeout(timer);
  }
  return { events, raw };
}

async function startLoopbackService(
  marker: string,
): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server = http.createServer((_request, response) => {
    hits += 1;
    response.end(`loopback service: ${marker}\n`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
