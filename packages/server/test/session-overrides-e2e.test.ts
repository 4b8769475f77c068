/**
 * Session overrides, budgets and pinned skills on a real server (startServer on Postgres, the fake LLM,
 * bubblewrap sandboxes) with the pinned SDK as the client: `agent_with_overrides` replaces tools,
 * skills and MCP servers for one session (checked as an agent would be) and the model sees exactly
 * that; a budget stops the session with `budget_reached` once its list cost reaches it and changes by
 * the API's update rules; `/skills` shows the agent's skills at the versions the session pinned, to
 * the file tools and to bash alike. Raw HTTP covers the error bodies the SDK hides.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic, { toFile } from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createDatabase } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type SessionEvent = Anthropic.Beta.Sessions.BetaManagedAgentsSessionEvent;

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
let client: Anthropic;
let environmentId: string;
/** A client of another org. */
let otherClient: Anthropic;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  fakeLlm = await startFakeLlmServer({ script: { turns: [] } });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-overrides-e2e-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-overrides-e2e",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `overrides-e2e-${process.pid}`,
  });
  server = await startServer(config, { log: () => undefined });
  client = new Anthropic({ apiKey: server.bootstrapKey ?? "", baseURL: server.url, maxRetries: 0 });
  environmentId = (await client.beta.environments.create({ name: "overrides" })).id;
  const database = await createDatabase({ url: testDatabase.url });
  try {
    const other = await database.auth.createOrg("other-org");
    const mallory = await database.auth.createUser(other.id, { name: "mallory", role: "admin" });
    const key = (await database.auth.createApiKey(other.id, mallory.id, "mallory")).key;
    otherClient = new Anthropic({ apiKey: key, baseURL: server.url, maxRetries: 0 });
  } finally {
    await database.close();
  }
}, 180_000);

afterAll(async () => {
  await server?.close();
  await fakeLlm?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** A raw request with the bootstrap key: status and parsed body. */
interface ErrorBody {
  type: string;
  error: { type: string; message: string; code?: string };
}

async function raw(
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: ErrorBody }> {
  const response = await fetch(`${server.url}${route}`, {
    method,
    headers: { "x-api-key": server.bootstrapKey ?? "", "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as ErrorBody };
}

async function listEvents(sessionId: string): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of client.beta.sessions.events.list(sessionId, { limit: 100 })) events.push(event);
  return events;
}

/** Waits (on the SSE stream, no polling) until the session goes idle after the latest user event. */
async function untilIdle(sessionId: string, send: () => Promise<unknown>): Promise<SessionEvent[]> {
  const stream = await client.beta.sessions.events.stream(sessionId);
  await send();
  for await (const event of stream) if (event.type === "session.status_idle") break;
  return listEvents(sessionId);
}

const say = (sessionId: string, text: string) =>
  client.beta.sessions.events.send(sessionId, {
    events: [{ type: "user.message", content: [{ type: "text", text }] }],
  });

function idleReasons(events: readonly SessionEvent[]): string[] {
  return events.flatMap((event) => (event.type === "session.status_idle" ? [event.stop_reason.type] : []));
}

function toolResults(events: readonly SessionEvent[]): { text: string; isError: boolean }[] {
  return events.flatMap((event) =>
    event.type === "agent.tool_result"
      ? [
          {
            text: (event.content ?? []).map((block) => ("text" in block ? block.text : "")).join(""),
            isError: event.is_error === true,
          },
        ]
      : [],
  );
}

describe("agent_with_overrides", () => {
  it("replaces model, system, tools and MCP servers for the session only; the model sees exactly those", async () => {
    const agent = await client.beta.agents.create({
      name: "base",
      model: "claude-sonnet-4-5",
      system: "agent system",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const session = await client.beta.sessions.create({
      environment_id: environmentId,
      agent: {
        type: "agent_with_overrides",
        id: agent.id,
        model: "claude-haiku-4-5",
        system: "override system",
        tools: [
          {
            type: "agent_toolset_20260401",
            default_config: { enabled: false },
            configs: [{ name: "read", enabled: true, permission_policy: { type: "always_ask" } }],
          },
          {
            type: "custom",
            name: "lookup_order",
            description: "Looks up an order",
            input_schema: { type: "object", properties: { id: { type: "string" } } },
          },
          { type: "mcp_toolset", mcp_server_name: "docs" },
        ],
        mcp_servers: [{ type: "url", name: "docs", url: "https://mcp.example.com/sse" }],
      },
    });
    expect(session.agent).toMatchObject({
      id: agent.id,
      version: 1,
      model: { id: "claude-haiku-4-5" },
      system: "override system",
      mcp_servers: [{ type: "url", name: "docs", url: "https://mcp.example.com/sse" }],
      skills: [],
    });
    const [toolset, custom, mcp] = session.agent.tools;
    if (toolset?.type !== "agent_toolset_20260401") throw new Error("expected the toolset first");
    expect(toolset.configs.filter((config) => config.enabled).map((config) => config.name)).toEqual(["read"]);
    expect(toolset.configs.find((config) => config.name === "read")?.permission_policy).toEqual({
      type: "always_ask",
    });
    expect(custom).toMatchObject({ type: "custom", name: "lookup_order" });
    // An MCP toolset defaults to always_ask (stored and shown; running MCP servers is another issue's).
    expect(mcp).toMatchObject({
      type: "mcp_toolset",
      default_config: { permission_policy: { type: "always_ask" } },
    });
    // The agent itself is unchanged, and the session stays pinned to what it was created with.
    expect(await client.beta.agents.retrieve(agent.id)).toMatchObject({
      version: 1,
      system: "agent system",
      mcp_servers: [],
      model: { id: "claude-sonnet-4-5" },
    });
    expect((await client.beta.sessions.retrieve(session.id)).agent).toEqual(session.agent);

    fakeLlm.setScript({ turns: [{ text: "hello" }] });
    const before = fakeLlm.requests.length;
    const events = await untilIdle(session.id, () => say(session.id, "hi"));
    expect(idleReasons(events)).toEqual(["end_turn"]);
    const request = fakeLlm.requests[before]?.body as {
      model: string;
      system: unknown;
      tools: { name: string }[];
    };
    expect(request.model).toBe("claude-haiku-4-5");
    expect(JSON.stringify(request.system)).toContain("override system");
    expect(JSON.stringify(request.system)).not.toContain("agent system");
    const offered = request.tools.map((tool) => tool.name);
    expect(offered).toContain("read");
    expect(offered).toContain("lookup_order");
    expect(offered).not.toContain("bash");
    expect(offered).not.toContain("write");
  }, 120_000);

  it("clears with empty arrays and null, and refuses what an agent could not hold (400, nothing created)", async () => {
    const agent = await client.beta.agents.create({
      name: "cleared",
      model: "claude-sonnet-4-5",
      system: "to clear",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const cleared = await client.beta.sessions.create({
      environment_id: environmentId,
      agent: { type: "agent_with_overrides", id: agent.id, system: null, tools: [], skills: [] },
    });
    expect(cleared.agent).toMatchObject({ system: null, tools: [], skills: [] });

    const before = (await client.beta.sessions.list({ limit: 100 })).data.length;
    const refused = async (overrides: Record<string, unknown>, message: RegExp) => {
      const answer = await raw("POST", "/v1/sessions", {
        environment_id: environmentId,
        agent: { type: "agent_with_overrides", id: agent.id, ...overrides },
      });
      expect(answer.status, JSON.stringify(answer.body)).toBe(400);
      expect(answer.body).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
      expect(answer.body.error.message).toMatch(message);
    };
    await refused(
      { tools: [{ type: "mcp_toolset", mcp_server_name: "nowhere" }] },
      /agent\.tools\.0\.mcp_server_name: no server in mcp_servers is named nowhere/,
    );
    await refused(
      { mcp_servers: [{ type: "url", name: "unused", url: "https://mcp.example.com" }] },
      /agent\.mcp_servers\.0: unused is not used by any mcp_toolset/,
    );
    await refused(
      { tools: [{ type: "agent_toolset_20260401" }, { type: "agent_toolset_20260401" }] },
      /at most one agent_toolset_20260401/,
    );
    await refused(
      {
        tools: [
          { type: "agent_toolset_20260401" },
          { type: "custom", name: "bash", description: "x", input_schema: { type: "object" } },
        ],
      },
      /bash is a tool of agent_toolset_20260401/,
    );
    await refused(
      {
        tools: [
          {
            type: "agent_toolset_20260401",
            default_config: { permission_policy: { type: "auto" } },
          },
        ],
      },
      /auto/,
    );
    await refused({ model: "gpt-5" }, /model: names no provider/);
    await refused({ tools: [{ type: "custom", name: "x", surprise: true }] }, /surprise|Unrecognized/i);
    await refused({ skills: [{ type: "custom", skill_id: "not-a-skill-id" }] }, /skill_/);
    expect((await client.beta.sessions.list({ limit: 100 })).data.length).toBe(before);
  }, 60_000);
});

describe("budgets", () => {
  const budget = (cents: string) => ({
    type: "limit" as const,
    max_list_cost: { amount: cents, currency: "USD" as const },
  });

  it("stops issuing model requests once the list cost reaches the budget, and shows the cost", async () => {
    const agent = await client.beta.agents.create({
      name: "spender",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const session = await client.beta.sessions.create({
      agent: agent.id,
      environment_id: environmentId,
      budget: budget("2"),
    });
    expect(session.budget).toEqual(budget("2"));
    expect(session.usage.list_cost).toEqual({ amount: "0", currency: "USD" });
    // Every answer asks for another tool call (a database read: no sandbox needed), so only the budget ends it.
    fakeLlm.setScript({
      turns: Array.from({ length: 40 }, () => ({
        toolCalls: [{ name: "read", input: { file_path: "/memories/me/missing.md" } }],
      })),
    });
    const events = await untilIdle(session.id, () => say(session.id, "spend"));
    expect(idleReasons(events)).toEqual(["budget_reached"]);
    // Claude Sonnet 4.5 lists at $3 / $15 per million tokens: 3000 and 15000 nano-dollars per token.
    const costs: bigint[] = [];
    let total = 0n;
    for (const event of events) {
      if (event.type !== "span.model_request_end") continue;
      total +=
        BigInt(event.model_usage.input_tokens) * 3000n + BigInt(event.model_usage.output_tokens) * 15000n;
      costs.push(total);
    }
    const limit = 2n * 10_000_000n;
    expect(costs.length).toBeGreaterThan(0);
    expect(costs.length).toBeLessThan(40);
    // Every request but the last was made under the budget; the last one reached it.
    expect(costs.at(-1)).toBeGreaterThanOrEqual(limit);
    expect(costs.at(-2) ?? 0n).toBeLessThan(limit);
    const spent = await client.beta.sessions.retrieve(session.id);
    expect(spent.status).toBe("idle");
    const cents = ((costs.at(-1) ?? 0n) + 9_999_999n) / 10_000_000n;
    expect(spent.usage.list_cost).toEqual({ amount: cents.toString(), currency: "USD" });

    // Another message: the budget is spent, so the turn ends before any model request.
    const requests = fakeLlm.requests.length;
    const again = await untilIdle(session.id, () => say(session.id, "more"));
    expect(idleReasons(again)).toEqual(["budget_reached", "budget_reached"]);
    expect(fakeLlm.requests.length).toBe(requests);

    // Raising it to no more than what was spent is refused; above it, the session runs again.
    const notRaised = await raw("POST", `/v1/sessions/${session.id}`, { budget: budget(cents.toString()) });
    expect(notRaised.status).toBe(400);
    expect(notRaised.body.error).toMatchObject({ type: "invalid_request_error", code: "budget_not_raised" });
    const raised = await client.beta.sessions.update(session.id, { budget: budget("1000") });
    expect(raised.budget).toEqual(budget("1000"));
    fakeLlm.setScript({ turns: [{ text: "ran again" }] });
    const resumed = await untilIdle(session.id, () => say(session.id, "go on"));
    expect(idleReasons(resumed).at(-1)).toBe("end_turn");

    // Removing it is allowed; adding one back is not.
    expect((await client.beta.sessions.update(session.id, { budget: null })).budget).toBeNull();
    const readded = await raw("POST", `/v1/sessions/${session.id}`, { budget: budget("5000") });
    expect(readded.status).toBe(400);
    expect(readded.body.error.code).toBe("budget_create_only");
    await expect(client.beta.sessions.update(session.id, { budget: budget("5000") })).rejects.toBeInstanceOf(
      Anthropic.BadRequestError,
    );
    // Another org's key cannot see or change it.
    await expect(otherClient.beta.sessions.update(session.id, { budget: null })).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
  }, 180_000);

  it("is set only at create, only for priced models, and only in the API's shape", async () => {
    const priced = await client.beta.agents.create({ name: "priced", model: "claude-haiku-4-5" });
    // A Claude model this server serves but has no list price for.
    const unpriced = await client.beta.agents.create({ name: "unpriced", model: "claude-opus-4-8" });
    const uncapped = await client.beta.sessions.create({ agent: priced.id, environment_id: environmentId });
    expect(uncapped.budget).toBeNull();
    const created = await raw("POST", `/v1/sessions/${uncapped.id}`, { budget: budget("100") });
    expect(created.status).toBe(400);
    expect(created.body.error.code).toBe("budget_create_only");

    const notBudgetable = await raw("POST", "/v1/sessions", {
      agent: unpriced.id,
      environment_id: environmentId,
      budget: budget("100"),
    });
    expect(notBudgetable.status).toBe(400);
    expect(notBudgetable.body.error).toMatchObject({
      type: "invalid_request_error",
      code: "model_not_budgetable",
    });
    // An override to a priced model makes the same agent budgetable; without a price, no list cost is shown.
    const overridden = await client.beta.sessions.create({
      agent: { type: "agent_with_overrides", id: unpriced.id, model: "claude-haiku-4-5" },
      environment_id: environmentId,
      budget: budget("100"),
    });
    expect(overridden.budget).toEqual(budget("100"));
    const plain = await client.beta.sessions.create({ agent: unpriced.id, environment_id: environmentId });
    expect(plain.usage.list_cost).toBeNull();

    for (const bad of [
      { type: "limit", max_list_cost: { amount: "100", currency: "EUR" } },
      { type: "limit", max_list_cost: { amount: "0100", currency: "USD" } },
      { type: "limit", max_list_cost: { amount: 100, currency: "USD" } },
      { type: "limit", max_list_cost: { amount: "1.5", currency: "USD" } },
      { type: "limit", max_list_cost: { amount: "0", currency: "USD" } },
      { type: "limit", max_list_cost: { amount: "100", currency: "USD" }, extra: 1 },
      { type: "cap", max_list_cost: { amount: "100", currency: "USD" } },
    ]) {
      const answer = await raw("POST", "/v1/sessions", {
        agent: priced.id,
        environment_id: environmentId,
        budget: bad,
      });
      expect(answer.status, JSON.stringify(bad)).toBe(400);
      expect(answer.body.type).toBe("error");
    }
  }, 60_000);
});

describe("pinned skills", () => {
  const skillFiles = (name: string, body: string) =>
    Promise.all([
      toFile(Buffer.from(`---\nname: ${name}\ndescription: ${body}\n---\n${body}\n`), `${name}/SKILL.md`),
      toFile(Buffer.from(`#!/bin/sh\necho ${body}\n`), `${name}/scripts/run.sh`),
    ]);

  it("shows the agent's skills at the versions the session pinned, to the file tools and bash alike", async () => {
    const skill = await client.beta.skills.create({ files: await skillFiles("pinned-demo", "first") });
    const first = skill.latest_version_id;
    const second = (
      await client.beta.skills.versions.create(skill.id, { files: await skillFiles("pinned-demo", "second") })
    ).id;
    // Another skill of the org that the agents below do not list.
    await client.beta.skills.create({ files: await skillFiles("unlisted-demo", "hidden") });

    const pinnedAgent = await client.beta.agents.create({
      name: "pinned",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
      skills: [{ type: "custom", skill_id: skill.id, version: first }],
    });
    const latestAgent = await client.beta.agents.create({
      name: "latest",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
      skills: [{ type: "custom", skill_id: skill.id }],
    });
    const pinned = await client.beta.sessions.create({
      agent: pinnedAgent.id,
      environment_id: environmentId,
    });
    const latest = await client.beta.sessions.create({
      agent: latestAgent.id,
      environment_id: environmentId,
    });
    expect(pinned.agent.skills).toEqual([{ type: "custom", skill_id: skill.id, version: first }]);
    // `latest` is the newest version when the session starts, and stays that for the session's life.
    expect(latest.agent.skills).toEqual([{ type: "custom", skill_id: skill.id, version: second }]);
    await client.beta.skills.versions.create(skill.id, { files: await skillFiles("pinned-demo", "third") });

    const probe = [
      { toolCalls: [{ name: "read", input: { file_path: "/skills/pinned-demo/SKILL.md" } }] },
      {
        toolCalls: [
          {
            name: "bash",
            input: {
              command:
                "cat /skills/pinned-demo/SKILL.md; ls /skills; stat -c '%a' /skills/pinned-demo/scripts/run.sh; /skills/pinned-demo/scripts/run.sh",
            },
          },
        ],
      },
      { toolCalls: [{ name: "write", input: { file_path: "/skills/pinned-demo/SKILL.md", content: "x" } }] },
      { toolCalls: [{ name: "bash", input: { command: "echo x > /skills/pinned-demo/SKILL.md" } }] },
      { text: "done" },
    ];
    for (const [session, expected] of [
      [pinned, "first"],
      [latest, "second"],
    ] as const) {
      fakeLlm.setScript({ turns: probe });
      const before = fakeLlm.requests.length;
      const events = await untilIdle(session.id, () => say(session.id, "show skills"));
      expect(idleReasons(events)).toEqual(["end_turn"]);
      const [read, bash, write, bashWrite] = toolResults(events);
      expect(read).toMatchObject({
        isError: false,
        text: expect.stringContaining(`description: ${expected}`),
      });
      expect(bash?.isError).toBe(false);
      expect(bash?.text).toBe(
        `---\nname: pinned-demo\ndescription: ${expected}\n---\n${expected}\npinned-demo\n755\n${expected}`,
      );
      expect(write).toMatchObject({ isError: true, text: expect.stringContaining("read-only") });
      expect(bashWrite?.isError).toBe(true);
      // The system prompt lists the pinned skill, and not the org's other one.
      const system = JSON.stringify(
        (fakeLlm.requests[before]?.body as { system?: unknown } | undefined)?.system,
      );
      expect(system).toContain("/skills/pinned-demo/SKILL.md");
      expect(system).not.toContain("unlisted-demo");
    }
    // The session's host copy of its skills goes with it.
    const copy = path.join(home, "session-skills", pinned.id);
    expect((await fs.stat(copy)).isDirectory()).toBe(true);
    await client.beta.sessions.delete(pinned.id);
    expect(await fs.stat(copy).catch(() => null)).toBeNull();
    expect(await fs.stat(`${copy}.digest`).catch(() => null)).toBeNull();
  }, 240_000);

  it("refuses a session whose agent lists a skill or version the org lacks (404, as another org's is)", async () => {
    const skill = await client.beta.skills.create({ files: await skillFiles("missing-demo", "here") });
    for (const skills of [
      [{ type: "custom" as const, skill_id: "skill_doesnotexist" }],
      [{ type: "custom" as const, skill_id: skill.id, version: "123" }],
    ]) {
      const agent = await client.beta.agents.create({ name: "missing", model: "claude-sonnet-4-5", skills });
      const answer = await raw("POST", "/v1/sessions", { agent: agent.id, environment_id: environmentId });
      expect(answer.status).toBe(404);
      expect(answer.body.error).toMatchObject({ type: "not_found_error" });
      expect(answer.body.error.message).toMatch(/agent\.skills\[0\]/);
    }
    // Another org's skill is as absent as a missing one.
    const foreign = await otherClient.beta.agents.create({
      name: "foreign",
      model: "claude-sonnet-4-5",
      skills: [{ type: "custom", skill_id: skill.id }],
    });
    const environment = await otherClient.beta.environments.create({ name: "foreign" });
    await expect(
      otherClient.beta.sessions.create({ agent: foreign.id, environment_id: environment.id }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  }, 60_000);
});
