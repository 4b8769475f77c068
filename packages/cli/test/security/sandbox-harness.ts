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
import { apiClient, resultText } from "../api-session.js";
import { createOutrigHome, type ServerProcess, startServerProcess } from "../server-process.js";

export type ToolName = "bash" | "read" | "write" | "edit";

export interface ToolCall {
  readonly name: ToolName;
  readonly input: Record<string, unknown>;
}

export interface ToolResult {
  readonly output: string;
  readonly isError: boolean;
}

/** An event of the Managed Agents API as the session's stream delivered it. */
export interface SessionEvent {
  readonly id?: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

export interface SessionRun {
  readonly sessionId: string;
  readonly results: ToolResult[];
  readonly events: SessionEvent[];
  /** Every streamed event as JSON, deltas included: everything a client of the session could see. */
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
        "x-api-key": running.apiKey,
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
      const client = apiClient(running);
      const agent = await client.beta.agents.create({
        name: "probes",
        model: MODEL,
        tools: [{ type: "agent_toolset_20260401" }],
      });
      const environment = await client.beta.environments.create({
        name: "probes",
        config: { type: "cloud" },
      });
      const session = await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id });
      const { events, raw } = await readUntilIdle(running, session.id, runOptions.timeoutMs ?? 120_000);
      const results = events
        .filter((event) => event.type === "agent.tool_result")
        .map((event) => ({
          output: resultText(event as never),
          isError: event.is_error === true,
        }));
      return { sessionId: session.id, results, events, raw };
    },
    async close() {
      await running.stop();
      await fakeLlm.close();
      await loopback.close();
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}

/** Streams the session (text deltas included), sends the prompt, and reads until the session is idle. */
async function readUntilIdle(
  server: ServerProcess,
  sessionId: string,
  timeoutMs: number,
): Promise<{ events: SessionEvent[]; raw: string }> {
  const client = apiClient(server);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const events: SessionEvent[] = [];
  let raw = "";
  let isIdle = false;
  try {
    const stream = await client.beta.sessions.events.stream(
      sessionId,
      { event_deltas: ["agent.message"] },
      { signal: controller.signal },
    );
    await client.beta.sessions.events.send(sessionId, {
      events: [{ type: "user.message", content: [{ type: "text", text: "run the probes" }] }],
    });
    for await (const event of stream) {
      raw += `${JSON.stringify(event)}\n`;
      if (event.type === "event_start" || event.type === "event_delta") continue;
      events.push(event as SessionEvent);
      if (event.type === "session.status_idle" || event.type === "session.status_terminated") {
        isIdle = true;
        break;
      }
    }
  } catch (error) {
    if (!isIdle)
      throw new Error(
        `session ${sessionId} did not go idle within ${timeoutMs} ms; last events: ${JSON.stringify(events.slice(-3))}`,
        { cause: error },
      );
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  if (!isIdle)
    throw new Error(
      `session ${sessionId} stream ended before idle; last events: ${JSON.stringify(events.slice(-3))}`,
    );
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
