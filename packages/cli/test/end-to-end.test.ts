/**
 * The spine, end to end: the real `outrig serve` process on embedded Postgres, the fake LLM over HTTP
 * speaking each provider's wire protocol, tools running in a bubblewrap sandbox, and `outrig run` (the
 * SDK as its client) streaming the Managed Agents API's events.
 */
import fs from "node:fs/promises";
import type Anthropic from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  apiClient,
  createAgentSession,
  type StreamEvent,
  stopReason,
  TOOLS,
  toolTrace,
  waitForIdle,
} from "./api-session.js";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

const CANARY = "sk-ant-canary-e2e-0123456789";

const script = {
  turns: [
    { toolCalls: [{ name: TOOLS.write, input: { file_path: "/workspace/hello.txt", content: "hello\n" } }] },
    { toolCalls: [{ name: TOOLS.bash, input: { command: "cat /workspace/hello.txt" } }] },
    {
      toolCalls: [
        {
          name: TOOLS.edit,
          input: { file_path: "/workspace/hello.txt", old_string: "hello", new_string: "hello, world" },
        },
      ],
    },
    { toolCalls: [{ name: TOOLS.bash, input: { command: "env; id -u" } }] },
    { text: "done" },
  ],
};

let fakeLlm: FakeLlmServer;
let server: ServerProcess;
let home: string;
let client: Anthropic;

beforeAll(async () => {
  fakeLlm = await startFakeLlmServer({ script });
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: {
      ANTHROPIC_API_KEY: CANARY,
      ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
      OPENAI_API_KEY: "sk-openai-canary-e2e",
      OPENAI_BASE_URL: `${fakeLlm.url}/v1`,
    },
  });
  client = apiClient(server);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await fakeLlm?.close();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

function cliEnv(): Record<string, string> {
  return { OUTRIG_HOME: home, OUTRIG_SERVER: server.url };
}

describe.each([
  ["anthropic:claude-sonnet-4-5", "anthropic-messages"],
  ["openai:gpt-5", "openai-responses"],
  ["openai-chat:gpt-4.1", "openai-chat"],
])("outrig run with %s", (model, protocol) => {
  it("writes, cats and edits a file in the sandbox and streams every event once, in order", async () => {
    fakeLlm.setScript(script);
    const before = fakeLlm.requests.length;
    const result = await runCli(["run", "--json", "--model", model, "make hello.txt"], cliEnv());
    expect(result.code, result.stderr).toBe(0);
    const streamed = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as StreamEvent);
    const events = streamed.filter((event) => event.type !== "event_start" && event.type !== "event_delta");
    // Every event once, in the log's order: the stream and the list agree.
    const sessionId = (await client.beta.sessions.list({ limit: 1 })).data[0]?.id ?? "";
    const listed = [];
    for await (const event of client.beta.sessions.events.list(sessionId, { order: "asc" }))
      listed.push(event);
    // The run stops at the idle; the sandbox may go to standby after it.
    expect(events.map((event) => "id" in event && event.id)).toEqual(
      listed.slice(0, events.length).map((event) => event.id),
    );
    expect(listed.slice(events.length).filter((event) => !event.type.startsWith("session.sandbox_"))).toEqual(
      [],
    );
    expect(new Set(events.map((event) => "id" in event && event.id)).size).toBe(events.length);
    expect(events[0]).toMatchObject({
      type: "user.message",
      content: [{ type: "text", text: "make hello.txt" }],
    });
    expect(toolTrace(listed)).toEqual([
      `use:${TOOLS.write}`,
      `result:${TOOLS.write}:false`,
      `use:${TOOLS.bash}`,
      `result:${TOOLS.bash}:false`,
      `use:${TOOLS.edit}`,
      `result:${TOOLS.edit}:false`,
      `use:${TOOLS.bash}`,
      `result:${TOOLS.bash}:false`,
    ]);
    const results = listed.flatMap((event) =>
      event.type === "agent.tool_result"
        ? [(event.content ?? []).map((block) => (block.type === "text" ? block.text : "")).join("")]
        : [],
    );
    expect(results[1]).toContain("hello");
    // The server's model key never reaches the sandbox, and the sandbox user is not root.
    expect(results[3]).not.toContain(CANARY);
    expect(results[3]).not.toContain("OUTRIG_HOME");
    expect(results[3]).toMatch(/^1000$/m);
    // The turn ends idle; only the sandbox's own lifecycle (standby) may follow it.
    expect(listed.filter((event) => !event.type.startsWith("session.sandbox_")).at(-1)).toMatchObject({
      type: "session.status_idle",
      stop_reason: { type: "end_turn" },
    });
    expect(listed.find((event) => event.type === "agent.message")).toMatchObject({
      content: [{ type: "text", text: "done" }],
    });
    const session = await client.beta.sessions.retrieve(sessionId);
    expect(session).toMatchObject({ status: "idle", agent: { model: { id: model } } });
    expect(session.usage.input_tokens).toBeGreaterThan(0);

    // Outrig's own route (the API has no word for a sandbox's files) beside the API's.
    const file = await fetch(`${server.url}/v1/sessions/${sessionId}/files?path=/workspace/hello.txt`, {
      headers: { "x-api-key": server.apiKey },
    });
    expect(await file.text()).toBe("hello, world\n");

    // What the harness sent back: tool results in the provider's own wire format.
    const requests = fakeLlm.requests.slice(before);
    expect(requests).toHaveLength(5);
    expect(new Set(requests.map((request) => request.protocol))).toEqual(new Set([protocol]));
    const last = JSON.stringify(requests.at(-1)?.body);
    if (protocol === "anthropic-messages") {
      expect(last).toMatch(/"type":"tool_result","tool_use_id":"toolu_/);
      expect(requests[0]?.headers["x-api-key"]).toBe("[redacted]");
    } else if (protocol === "openai-chat") {
      expect(last).toMatch(
        /"role":"tool"[^}]*"tool_call_id":"call_|"tool_call_id":"call_[^"]*"[^}]*"role":"tool"/,
      );
    } else {
      expect(last).toMatch(/"type":"function_call_output"/);
      expect(last).toMatch(/"call_id":"call_/);
    }
    expect(last).toContain("hello, world");
  });
});

describe("outrig run", () => {
  it("reuses its agent and environment, continues a session with --session, and prints the answer", async () => {
    fakeLlm.setScript({ turns: [{ text: "first answer" }, { text: "second answer" }] });
    const model = "anthropic:claude-haiku-4-5";
    const first = await runCli(["run", "--model", model, "hi"], cliEnv());
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("first answer");
    const sessionId = /session (sesn_\w+)/.exec(first.stderr)?.[1];
    expect(sessionId).toBeDefined();
    const second = await runCli(["run", "--session", String(sessionId), "again"], cliEnv());
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain("second answer");
    expect(second.stdout).not.toContain("first answer");
    const agents = [];
    for await (const agent of client.beta.agents.list()) if (agent.model.id === model) agents.push(agent);
    expect(agents).toHaveLength(1);
    const missing = await runCli(["run", "--session", "sesn_nope", "x"], cliEnv());
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^outrig: 404 not_found_error: /m);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  });

  it("drives the API's resources from the command line", async () => {
    const env = cliEnv();
    const created = await runCli(
      ["agents", "create", "--name", "cli agent", "--model", "anthropic:claude-sonnet-4-5", "--json"],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    const agent = JSON.parse(created.stdout) as { id: string; version: number };
    const updated = await runCli(
      ["agents", "update", agent.id, "--version", "1", "--system", "be brief"],
      env,
    );
    expect(updated.code, updated.stderr).toBe(0);
    const stale = await runCli(["agents", "update", agent.id, "--version", "1", "--system", "x"], env);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^outrig agents: 409 /);
    const versions = await runCli(["agents", "versions", agent.id, "--json"], env);
    expect(versions.stdout.trim().split("\n")).toHaveLength(2);
    const environment = JSON.parse(
      (await runCli(["envs", "create", "--name", "cli env", "--json"], env)).stdout,
    ) as { id: string };
    fakeLlm.setScript({ turns: [{ text: "from the cli" }] });
    const session = JSON.parse(
      (
        await runCli(
          [
            "sessions",
            "create",
            "--agent",
            `${agent.id}@2`,
            "--env",
            environment.id,
            "--message",
            "go",
            "--json",
          ],
          env,
        )
      ).stdout,
    ) as { id: string; agent: { version: number } };
    expect(session.agent.version).toBe(2);
    const log = await waitForIdle(client, session.id);
    expect(stopReason(log)).toBe("end_turn");
    const listed = (await runCli(["events", "ls", session.id], env)).stdout;
    expect(listed).toMatch(/user\.message[\s\S]*agent\.message[\s\S]*session\.status_idle/);
    expect((await runCli(["sessions", "archive", session.id], env)).code).toBe(0);
    expect((await runCli(["sessions", "delete", session.id], env)).code).toBe(0);
    const gone = await runCli(["sessions", "get", session.id], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^outrig sessions: 404 not_found_error: /);
    expect((await runCli(["agents", "--help"], env)).stdout).toContain("usage: outrig agents");
    expect((await runCli(["events", "send", "--help"], env)).stdout).toContain("--deny TOOL_USE_ID");
  }, 180_000);
});

describe("the server process", () => {
  it("keeps another org out of every session route", async () => {
    const created = await runCli(["keys", "create", "--org", "other-org", "--user", "mallory"], cliEnv());
    expect(created.code, created.stderr).toBe(0);
    const otherKey = created.stdout.trim();
    expect(otherKey).toMatch(/^outrig_/);
    // The CLI attached to the server's running Postgres and must have left it running.
    const own = await client.beta.sessions.list();
    const target = own.data[0]?.id;
    expect(target).toBeDefined();
    const other = apiClient({ url: server.url, apiKey: otherKey });
    expect((await other.beta.sessions.list()).data).toEqual([]);
    const headers = { "x-api-key": otherKey, "content-type": "application/json" };
    for (const [method, path] of [
      ["GET", `/v1/sessions/${target}`],
      ["GET", `/v1/sessions/${target}/events`],
      ["GET", `/v1/sessions/${target}/events/stream`],
      ["GET", `/v1/sessions/${target}/files?path=/workspace/hello.txt`],
      ["POST", `/v1/sessions/${target}/events`],
      ["POST", `/v1/sessions/${target}/archive`],
      ["DELETE", `/v1/sessions/${target}`],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers,
        ...(method === "POST"
          ? {
              body: JSON.stringify({
                events: [{ type: "user.message", content: [{ type: "text", text: "hi" }] }],
              }),
            }
          : {}),
      });
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(((await response.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
    }
  });

  it("survives a burst of malformed requests", async () => {
    const headers = { "x-api-key": server.apiKey, "content-type": "application/json" };
    const bodies = [
      "{",
      "[]",
      '{"agent":1}',
      '{"agent":"agent_x","environment_id":""}',
      '{"agent":"agent_x","environment_id":"env_x","unknown":true}',
      "\u0000",
      "x".repeat(2_000_000),
      "z".repeat(24 * 1024 * 1024),
    ];
    for (const body of bodies) {
      const response = await fetch(`${server.url}/v1/sessions`, { method: "POST", headers, body });
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(((await response.json()) as { type: string }).type).toBe("error");
    }
    // Over the limit without a Content-Length (chunked): the server reads past the limit, then
    // answers 413 once the client has sent the rest, so the client reads the answer.
    const chunk = new TextEncoder().encode("y".repeat(64 * 1024));
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let index = 0; index < 48; index += 1) controller.enqueue(chunk);
        controller.close();
      },
    });
    const tooLarge = await fetch(`${server.url}/v1/sessions`, {
      method: "POST",
      headers,
      body: chunked,
      duplex: "half",
    } as RequestInit);
    expect(tooLarge.status).toBe(413);
    expect(((await tooLarge.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    // Still serving the API.
    const { session } = await createAgentSession(client, { model: "anthropic:claude-sonnet-4-5" });
    expect(session.status).toBe("idle");
  });
});
