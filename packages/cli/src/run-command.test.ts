/**
 * `outrig run` and the resource commands against a stub of the Managed Agents routes (the SDK is the
 * client): the default agent and environment are found or made once, the stream is open before the
 * message is sent, the run ends at the idle that follows its message, and API errors are one line.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { agentsCommand } from "./agents-command.js";
import { createApiClient, describeApiError } from "./api-client.js";
import { eventsCommand } from "./events-command.js";
import { runCommand } from "./run-command.js";

interface Stub {
  readonly url: string;
  readonly requests: string[];
  readonly agents: Record<string, unknown>[];
  close(): Promise<void>;
}

const stamp = "2026-12-06T00:00:00.000Z";

/** Just enough of the API for the CLI: lists, creates, one session whose turn answers "hi". */
async function startStub(options: { idleReason?: string; replayOldIdle?: boolean } = {}): Promise<Stub> {
  const requests: string[] = [];
  const agents: Record<string, unknown>[] = [];
  const environments: Record<string, unknown>[] = [];
  const streams: http.ServerResponse[] = [];
  let counter = 0;
  const write = (response: http.ServerResponse, event: Record<string, unknown>) =>
    response.write(`event: message\ndata: ${JSON.stringify(event)}\n\n`);
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url ?? "/", "http://stub");
    requests.push(`${request.method} ${url.pathname}`);
    let text = "";
    for await (const chunk of request) text += chunk;
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    const json = (status: number, value: unknown) => {
      response.writeHead(status, { "content-type": "application/json", "request-id": "req_stub" });
      response.end(JSON.stringify(value));
    };
    if (request.headers["x-api-key"] !== "key" && request.headers.authorization !== "Bearer key")
      return json(401, { type: "error", error: { type: "authentication_error", message: "bad key" } });
    const path = url.pathname;
    if (request.method === "GET" && path === "/v1/agents")
      return json(200, { data: agents, next_page: null });
    if (request.method === "POST" && path === "/v1/agents") {
      const agent = {
        ...body,
        id: `agent_${++counter}`,
        type: "agent",
        version: 1,
        archived_at: null,
        model: { id: body.model },
        metadata: body.metadata ?? {},
        created_at: stamp,
        updated_at: stamp,
      };
      agents.push(agent);
      return json(200, agent);
    }
    if (request.method === "GET" && path.startsWith("/v1/agents/"))
      return json(404, {
        type: "error",
        error: { type: "not_found_error", message: "agent not found" },
        request_id: "req_stub",
      });
    if (request.method === "GET" && path === "/v1/egress-policy")
      return json(200, { allowedHosts: [], credentials: [] });
    if (request.method === "GET" && path === "/v1/environments")
      return json(200, { data: environments, next_page: null });
    if (request.method === "POST" && path === "/v1/environments") {
      const environment = {
        ...body,
        id: `env_${++counter}`,
        type: "environment",
        archived_at: null,
        metadata: body.metadata ?? {},
      };
      environments.push(environment);
      return json(200, environment);
    }
    if (request.method === "POST" && path === "/v1/sessions") {
      const agent = agents.find((candidate) => candidate.id === (body.agent as { id: string }).id);
      return json(200, { id: "sesn_1", type: "session", status: "idle", agent: { ...agent, type: "agent" } });
    }
    if (request.method === "GET" && path === "/v1/sessions/sesn_1/events/stream") {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.flushHeaders();
      if (options.replayOldIdle)
        write(response, {
          id: "sevt_old",
          type: "session.status_idle",
          stop_reason: { type: "end_turn" },
          processed_at: stamp,
        });
      streams.push(response);
      return;
    }
    if (request.method === "GET" && path === "/v1/sessions/sesn_1/events")
      return json(200, {
        data: [{ id: "sevt_old", type: "session.status_running", processed_at: stamp }],
        next_page: null,
      });
    if (request.method === "POST" && path === "/v1/sessions/sesn_1/events") {
      const events = (body.events as Record<string, unknown>[]).map((event, index) => ({
        ...event,
        id: `sevt_u${index}`,
        processed_at: stamp,
      }));
      json(200, { data: events });
      for (const stream of streams) {
        for (const event of events) write(stream, event);
        write(stream, { id: "sevt_2", type: "session.status_running", processed_at: stamp });
        write(stream, {
          id: "sevt_3",
          type: "agent.tool_use",
          name: "bash",
          input: { command: "echo hi" },
          evaluated_permission: "allow",
          processed_at: stamp,
        });
        write(stream, {
          id: "sevt_4",
          type: "agent.tool_result",
          tool_use_id: "sevt_3",
          content: [{ type: "text", text: "hi\n" }],
          is_error: false,
          processed_at: stamp,
        });
        write(stream, {
          id: "sevt_5",
          type: "span.model_request_end",
          model_request_start_id: "x",
          is_error: false,
          model_usage: {
            input_tokens: 7,
            output_tokens: 3,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
          },
          processed_at: stamp,
        });
        write(stream, {
          id: "sevt_6",
          type: "agent.message",
          content: [{ type: "text", text: "the answer" }],
          processed_at: stamp,
        });
        const reason = options.idleReason ?? "end_turn";
        write(stream, {
          id: "sevt_7",
          type: "session.status_idle",
          stop_reason:
            reason === "requires_action" ? { type: reason, event_ids: ["sevt_3"] } : { type: reason },
          stop_details: null,
          processed_at: stamp,
        });
      }
      return;
    }
    json(404, { type: "error", error: { type: "not_found_error", message: `no route ${path}` } });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    agents,
    close: () =>
      new Promise((resolve) => {
        for (const stream of streams) stream.end();
        server.close(() => resolve());
      }),
  };
}

let stub: Stub | undefined;
afterEach(async () => {
  await stub?.close();
  stub = undefined;
});

function capture() {
  let out = "";
  let err = "";
  return {
    out: (text: string) => {
      out += text;
    },
    err: (text: string) => {
      err += `${text}\n`;
    },
    text: () => ({ out, err }),
  };
}

describe("outrig run", () => {
  it("makes the default agent and environment once, sends after the stream opens, prints the answer", async () => {
    stub = await startStub();
    const client = createApiClient({ server: stub.url, apiKey: "key" });
    const first = capture();
    const code = await runCommand({
      client,
      prompt: "say hi",
      model: "anthropic:claude-x",
      server: stub.url,
      json: false,
      ...first,
    });
    expect(code, first.text().err).toBe(0);
    expect(first.text().out).toContain("→ bash(echo hi)");
    expect(first.text().out).toContain("✓ bash: hi");
    expect(first.text().out).toContain("the answer");
    expect(first.text().err).toContain("(7 in / 3 out tokens)");
    const streamAt = stub.requests.indexOf("GET /v1/sessions/sesn_1/events/stream");
    expect(streamAt).toBeGreaterThan(-1);
    expect(stub.requests.indexOf("POST /v1/sessions/sesn_1/events")).toBeGreaterThan(streamAt);

    const second = capture();
    expect(
      await runCommand({
        client,
        prompt: "again",
        model: "anthropic:claude-x",
        server: stub.url,
        json: false,
        ...second,
      }),
    ).toBe(0);
    expect(stub.requests.filter((line) => line === "POST /v1/agents")).toHaveLength(1);
    expect(stub.requests.filter((line) => line === "POST /v1/environments")).toHaveLength(1);
    // Another system prompt is another agent.
    const third = capture();
    await runCommand({
      client,
      prompt: "x",
      model: "anthropic:claude-x",
      system: "be brief",
      server: stub.url,
      json: true,
      ...third,
    });
    expect(stub.agents.map((agent) => agent.system ?? null)).toEqual([null, "be brief"]);
    const lines = third
      .text()
      .out.trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string });
    expect(lines.at(-1)?.type).toBe("session.status_idle");
    expect(lines.map((event) => event.type)).toContain("agent.tool_use");
  });

  it("ignores an idle from before its message and exits 2 when the session waits for an action", async () => {
    stub = await startStub({ idleReason: "requires_action", replayOldIdle: true });
    const client = createApiClient({ server: stub.url, apiKey: "key" });
    const io = capture();
    expect(await runCommand({ client, prompt: "p", model: "m", server: stub.url, json: false, ...io })).toBe(
      2,
    );
    expect(io.text().out).toContain("requires action on sevt_3");
  });

  it("fails with one line when the key is wrong or the server is not there", async () => {
    stub = await startStub();
    const wrongKey = capture();
    const client = createApiClient({ server: stub.url, apiKey: "nope" });
    expect(
      await runCommand({ client, prompt: "p", model: "m", server: stub.url, json: false, ...wrongKey }),
    ).toBe(1);
    expect(wrongKey.text().err).toBe("outrig: 401 authentication_error: bad key\n");
    const nowhere = capture();
    const unreachable = createApiClient({ server: "http://127.0.0.1:1", apiKey: "key" });
    const offline = await runCommand({
      client: unreachable.withOptions({ maxRetries: 0 }),
      prompt: "p",
      model: "m",
      server: "http://127.0.0.1:1",
      json: false,
      ...nowhere,
    });
    expect(offline).toBe(1);
    expect(nowhere.text().err).toMatch(/^outrig: cannot reach the server at http:\/\/127\.0\.0\.1:1/);
    expect(nowhere.text().err).not.toMatch(/\n\s+at /);
  });
});

describe("resource commands", () => {
  it("print help, reject bad flags, and report the API's error without a stack", async () => {
    stub = await startStub();
    const io = {
      client: createApiClient({ server: stub.url, apiKey: "key" }),
      stdin: Readable.from([]),
      ...capture(),
    };
    expect(await agentsCommand(["--help"], io)).toBe(0);
    expect(await agentsCommand(["create", "--help"], io)).toBe(0);
    expect(io.text().out).toContain("usage: outrig agents create --name NAME --model MODEL");
    await expect(agentsCommand(["create", "--name", "x"], io)).rejects.toThrow(
      /--name and --model are required/,
    );
    await expect(eventsCommand(["send", "sesn_1", "--message", "a", "--interrupt"], io)).rejects.toThrow(
      /one event at a time/,
    );
    const missing = await agentsCommand(["get", "agent_nope"], io).catch((error: unknown) => error);
    expect(describeApiError(missing, stub.url)).toBe("404 not_found_error: agent not found");
    expect(
      await agentsCommand(
        ["create", "--name", "a", "--model", "anthropic:claude-x", "--metadata", "team=x"],
        io,
      ),
    ).toBe(0);
    expect(stub.agents[0]).toMatchObject({
      name: "a",
      model: { id: "anthropic:claude-x" },
      metadata: { team: "x" },
      tools: [{ type: "agent_toolset_20260401" }],
    });
    expect(await agentsCommand(["ls"], io)).toBe(0);
    expect(io.text().out).toMatch(
      /ID\s+VERSION\s+NAME\s+MODEL\s+ARCHIVED\nagent_\d+\s+1\s+a\s+anthropic:claude-x\s+-/,
    );
  });
});
