/**
 * The spine, end to end: the real `outrig serve` process on embedded Postgres, the fake LLM over HTTP
 * speaking each provider's wire protocol, and tools running in a bubblewrap sandbox.
 */
import fs from "node:fs/promises";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

const CANARY = "sk-ant-canary-e2e-0123456789";

const script = {
  turns: [
    { toolCalls: [{ name: "Write", input: { file_path: "/workspace/hello.txt", content: "hello\n" } }] },
    { toolCalls: [{ name: "Bash", input: { command: "cat /workspace/hello.txt" } }] },
    {
      toolCalls: [
        {
          name: "Edit",
          input: { file_path: "/workspace/hello.txt", old_string: "hello", new_string: "hello, world" },
        },
      ],
    },
    { toolCalls: [{ name: "Bash", input: { command: "env; id -u" } }] },
    { text: "done" },
  ],
};

let fakeLlm: FakeLlmServer;
let server: ServerProcess;
let home: string;

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
])("a session with %s", (model, protocol) => {
  it("writes, cats and edits a file in the sandbox and streams every step", async () => {
    fakeLlm.setScript(script);
    const before = fakeLlm.requests.length;
    const result = await runCli(["run", "--json", "--model", model, "make hello.txt"], cliEnv());
    expect(result.code, result.stderr).toBe(0);
    const events = result.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string; seq?: number; [key: string]: unknown });
    const persisted = events.filter((event) => event.type !== "message.delta");
    expect(persisted.map((event) => event.seq)).toEqual(persisted.map((_, index) => index + 1));
    const toolEvents = persisted.filter((event) => event.type === "tool.start" || event.type === "tool.end");
    expect(toolEvents.map((event) => `${event.type}:${event.name}:${event.isError ?? ""}`)).toEqual([
      "tool.start:Write:",
      "tool.end:Write:false",
      "tool.start:Bash:",
      "tool.end:Bash:false",
      "tool.start:Edit:",
      "tool.end:Edit:false",
      "tool.start:Bash:",
      "tool.end:Bash:false",
    ]);
    const catOutput = toolEvents[3]?.output as string;
    expect(catOutput).toContain("hello");
    // The server's model key never reaches the sandbox, and the sandbox user is not root.
    const envOutput = toolEvents[7]?.output as string;
    expect(envOutput).not.toContain(CANARY);
    expect(envOutput).not.toContain("OUTRIG_HOME");
    expect(envOutput).toMatch(/^1000$/m);
    expect(persisted.at(-1)).toMatchObject({ type: "turn.end", reason: "end_turn" });

    const sessionId = (await (
      await fetch(`${server.url}/v1/sessions?limit=1`, {
        headers: { authorization: `Bearer ${server.apiKey}` },
      })
    ).json()) as { sessions: { id: string }[] };
    const file = await fetch(
      `${server.url}/v1/sessions/${sessionId.sessions[0]?.id}/files?path=/workspace/hello.txt`,
      { headers: { authorization: `Bearer ${server.apiKey}` } },
    );
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

describe("the server process", () => {
  it("keeps another org out of every route", async () => {
    const created = await runCli(["keys", "create", "--org", "other-org", "--user", "mallory"], {
      ...cliEnv(),
    });
    expect(created.code, created.stderr).toBe(0);
    const otherKey = created.stdout.trim();
    // The CLI attached to the server's running Postgres and must have left it running.
    expect(
      (await fetch(`${server.url}/v1/sessions`, { headers: { authorization: `Bearer ${server.apiKey}` } }))
        .status,
    ).toBe(200);
    expect(otherKey).toMatch(/^outrig_/);
    const own = (await (
      await fetch(`${server.url}/v1/sessions`, { headers: { authorization: `Bearer ${server.apiKey}` } })
    ).json()) as { sessions: { id: string }[] };
    const target = own.sessions[0]?.id;
    expect(target).toBeDefined();
    const headers = { authorization: `Bearer ${otherKey}`, "content-type": "application/json" };
    const list = (await (await fetch(`${server.url}/v1/sessions`, { headers })).json()) as {
      sessions: unknown[];
    };
    expect(list.sessions).toEqual([]);
    for (const [method, path] of [
      ["GET", `/v1/sessions/${target}`],
      ["GET", `/v1/sessions/${target}/events`],
      ["GET", `/v1/sessions/${target}/files?path=/workspace/hello.txt`],
      ["POST", `/v1/sessions/${target}/messages`],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers,
        ...(method === "POST" ? { body: JSON.stringify({ text: "hi" }) } : {}),
      });
      expect(response.status, `${method} ${path}`).toBe(404);
    }
  });

  it("survives a burst of malformed requests", async () => {
    const headers = { authorization: `Bearer ${server.apiKey}`, "content-type": "application/json" };
    const bodies = [
      "{",
      "[]",
      '{"model":1}',
      '{"model":"anthropic:x","prompt":""}',
      "\u0000",
      "x".repeat(2_000_000),
      "z".repeat(24 * 1024 * 1024),
    ];
    for (const body of bodies) {
      const response = await fetch(`${server.url}/v1/sessions`, { method: "POST", headers, body });
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
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
  });
});
