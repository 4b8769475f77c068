import fs from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { serve } from "@hono/node-server";
import {
  type AgentConfig,
  type AgentDirectory,
  createDefaultTools,
  type EnvironmentDirectory,
  InputError,
  type LanguageModel,
  TOOLSET_TOOL_NAMES,
} from "@outrig/core";
import type { ToolPolicy } from "@outrig/protocol";
import { FakeSandboxProvider, MemorySessionStore, ScriptedModel, type ScriptedStep } from "@outrig/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type AuthenticatedCaller, createApp } from "../src/app.js";
import { InProcessTurnScheduler } from "../src/durable/in-process-turn-scheduler.js";
import { EventBus } from "../src/event-bus.js";
import { registerSessionShareRoutes, type SessionShareRecord } from "../src/routes/session-share-routes.js";
import { SessionManager } from "../src/session-manager.js";

const KEY_A = "outrig_keyA";
const KEY_A2 = "outrig_keyA2";
const KEY_A3 = "outrig_keyA3";
const KEY_VIEWER = "outrig_keyViewer";
const KEY_B = "outrig_keyB";
const callers: Record<string, AuthenticatedCaller> = {
  [KEY_A]: { orgId: "org_a", userId: "usr_a", keyId: "key_a", role: "admin" },
  [KEY_A2]: { orgId: "org_a", userId: "usr_a2", keyId: "key_a2", role: "member" },
  [KEY_A3]: { orgId: "org_a", userId: "usr_a3", keyId: "key_a3", role: "member" },
  [KEY_VIEWER]: { orgId: "org_a", userId: "usr_av", keyId: "key_av", role: "viewer" },
  [KEY_B]: { orgId: "org_b", userId: "usr_b", keyId: "key_b", role: "admin" },
};
const ORG_A_USERS = new Set(["usr_a", "usr_a2", "usr_a3", "usr_av"]);
const AGENT = "agent_test1";
const ARCHIVED_AGENT = "agent_old1";
const ENV = "env_test1";

type ApiEvent = { id: string; type: string; [field: string]: unknown };

/** Agents of org_a: `agent_test1` at versions 1 and 2 (different models), and an archived one. */
const agents: AgentDirectory = {
  async resolve(orgId, ref) {
    if (orgId !== "org_a" || (ref.id !== AGENT && ref.id !== ARCHIVED_AGENT)) return null;
    const version = ref.version ?? 2;
    if (version < 1 || version > 2) return null;
    const config: AgentConfig = {
      agentId: ref.id,
      version,
      model: `anthropic:test-v${version}`,
      system: `system v${version}`,
      // What an agent with the default agent_toolset_20260401 pins: every tool on, always_allow.
      toolset: Object.fromEntries(
        TOOLSET_TOOL_NAMES.map((name) => [name, { enabled: true, permission: "always_allow" as const }]),
      ),
      customTools: [],
      skills: [],
    };
    return {
      config,
      archived: ref.id === ARCHIVED_AGENT,
      resource: {
        type: "agent",
        id: ref.id,
        version,
        name: "Tester",
        description: null,
        model: { id: `test-v${version}` },
        system: config.system,
        tools: [],
        skills: [],
        mcp_servers: [],
        multiagent: null,
      },
    };
  },
};
const environments: EnvironmentDirectory = {
  async get(orgId, id) {
    if (orgId !== "org_a" || id !== ENV) return null;
    return { id, kind: "cloud", networking: { type: "unrestricted" }, packages: {}, archived: false };
  },
};

interface Fixture {
  app: ReturnType<typeof createApp>;
  sessions: SessionManager;
  scheduler: InProcessTurnScheduler;
  models: ScriptedModel[];
  store: MemorySessionStore;
  audited: { orgId: string; kind: string; sessionId?: string; userId: string; data: unknown }[];
  policy: ToolPolicy;
  baseURL: string;
  client(key?: string): Anthropic;
  script(steps: ScriptedStep[]): void;
  call(
    method: string,
    url: string,
    options?: { key?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<Response>;
  /** Creates a session of org_a's test agent (as `key`), optionally starting a turn with `text`. */
  create(text?: string, key?: string): Promise<{ id: string; status: string }>;
  close(): Promise<void>;
}

let fixture: Fixture;
let home: string;

beforeEach(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-http-"));
  const store = new MemorySessionStore();
  const bus = new EventBus();
  const models: ScriptedModel[] = [];
  let nextSteps: ScriptedStep[] = [];
  const scheduler = new InProcessTurnScheduler();
  // Shares by `${sessionId}/${userId}`: the same contract as the Postgres share store.
  const shares = new Map<string, SessionShareRecord>();
  const audited: Fixture["audited"] = [];
  const policy: ToolPolicy = { rules: [], approvalTimeoutMs: 3600_000 };
  const sessions = new SessionManager({
    shares: async (_orgId, sessionId, userId) => shares.get(`${sessionId}/${userId}`)?.role ?? null,
    audit: async (orgId, entry) => {
      audited.push({ orgId, ...entry });
    },
    policies: { get: async () => policy },
    scheduler,
    store,
    bus,
    modelFactory: (spec): LanguageModel => {
      if (!spec.startsWith("anthropic:") && !spec.startsWith("openai:")) {
        throw new InputError("invalid_model", `unknown provider in ${spec}`);
      }
      const model = new ScriptedModel(nextSteps);
      models.push(model);
      return model;
    },
    sandboxProvider: new FakeSandboxProvider(),
    tools: createDefaultTools(),
    home,
    limits: { maxSteps: 10, maxModelAttempts: 2 },
    sandboxIdleMs: 60_000,
    log: () => undefined,
  });
  const app = createApp({
    auth: { authenticate: async (key) => callers[key] ?? null },
    sessions,
    store,
    bus,
    log: () => undefined,
    managed: { agents, environments },
    extraRoutes: [
      (routes) =>
        registerSessionShareRoutes(routes, {
          sessions,
          shares: {
            list: async (_orgId, sessionId) =>
              [...shares.values()].filter((share) => share.sessionId === sessionId),
            put: async (orgId, sessionId, userId, role, grantedBy) => {
              if (orgId !== "org_a" || !ORG_A_USERS.has(userId))
                throw new InputError("user_not_found", "No such user in this org.", 404);
              const share = { sessionId, userId, role, grantedBy, createdAt: new Date() };
              shares.set(`${sessionId}/${userId}`, share);
              return share;
            },
            delete: async (_orgId, sessionId, userId) => shares.delete(`${sessionId}/${userId}`),
          },
          audit: async (orgId, entry) => {
            audited.push({ orgId, ...entry });
          },
        }),
    ],
  });
  await sessions.start();
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call: Fixture["call"] = (method, url, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    const key = options.key === undefined ? KEY_A : options.key;
    if (key !== null) headers["x-api-key"] = key;
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
    return Promise.resolve(app.request(url, { method, headers, ...(body !== undefined ? { body } : {}) }));
  };
  fixture = {
    app,
    sessions,
    scheduler,
    models,
    store,
    audited,
    policy,
    baseURL,
    client: (key = KEY_A) => new Anthropic({ apiKey: key, baseURL, maxRetries: 0 }),
    script(steps) {
      nextSteps = steps;
    },
    call,
    async create(text, key = KEY_A) {
      const response = await call("POST", "/v1/sessions", {
        key,
        body: {
          agent: AGENT,
          environment_id: ENV,
          ...(text ? { initial_events: [{ type: "user.message", content: [{ type: "text", text }] }] } : {}),
        },
      });
      if (response.status !== 200) throw new Error(`create: ${response.status} ${await response.text()}`);
      return (await response.json()) as { id: string; status: string };
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
});

afterEach(async () => {
  await fixture.close();
  await fixture.sessions.close();
  await fs.rm(home, { recursive: true, force: true });
});

/** Reads an SDK event stream until `stopAt` matches (then stops reading, which closes the connection). */
async function readStream(
  stream: AsyncIterable<unknown> & { controller: AbortController },
  stopAt: (event: ApiEvent) => boolean,
): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for await (const item of stream) {
    const event = item as ApiEvent;
    events.push(event);
    if (stopAt(event)) break;
  }
  return events;
}

const isIdle = (reason: string) => (event: ApiEvent) =>
  event.type === "session.status_idle" && (event.stop_reason as { type: string }).type === reason;

async function allEvents(client: Anthropic, id: string): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for await (const event of client.beta.sessions.events.list(id, { limit: 3 }))
    events.push(event as ApiEvent);
  return events;
}

describe("sessions and events through the SDK", () => {
  it("runs a turn with tools and streams every API event once, in order, as the events list has them", async () => {
    fixture.script([
      { toolCalls: [{ name: "Write", input: { file_path: "/workspace/hello.txt", content: "hello\n" } }] },
      { text: "done" },
    ]);
    const client = fixture.client();
    const session = await client.beta.sessions.create({
      agent: { type: "agent", id: AGENT, version: 1 },
      environment_id: ENV,
      title: "first",
      metadata: { team: "core" },
    });
    expect(session).toMatchObject({
      type: "session",
      status: "idle",
      title: "first",
      metadata: { team: "core" },
      environment_id: ENV,
      archived_at: null,
      vault_ids: [],
      resources: [],
      agent: { id: AGENT, version: 1, type: "agent" },
    });
    expect(session.id).toMatch(/^sesn_/);

    const stream = await client.beta.sessions.events.stream(session.id);
    const sent = await client.beta.sessions.events.send(session.id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "write it" }] }],
    });
    expect(sent.data).toHaveLength(1);
    expect(sent.data?.[0]).toMatchObject({
      type: "user.message",
      content: [{ type: "text", text: "write it" }],
    });
    const streamed = await readStream(stream, isIdle("end_turn"));

    expect(streamed[0]).toEqual(sent.data?.[0]);
    const types = streamed.map((event) => event.type);
    expect(types).toEqual(
      expect.arrayContaining([
        "user.message",
        "session.status_running",
        "span.model_request_start",
        "span.model_request_end",
        "agent.tool_use",
        "agent.tool_result",
        "agent.message",
        "session.status_idle",
      ]),
    );
    const ids = streamed.map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^sevt_/);
    const toolUse = streamed.find((event) => event.type === "agent.tool_use");
    expect(toolUse).toMatchObject({ name: "Write", evaluated_permission: "allow" });
    const toolResult = streamed.find((event) => event.type === "agent.tool_result");
    expect(toolResult).toMatchObject({ tool_use_id: toolUse?.id, is_error: false });
    expect(streamed.find((event) => event.type === "agent.message")).toMatchObject({
      content: [{ type: "text", text: "done" }],
    });
    const end = streamed.find((event) => event.type === "span.model_request_end");
    expect(end).toMatchObject({ is_error: false, model_usage: { input_tokens: 10, output_tokens: 5 } });

    // The list has the same events, ids and order (plus whatever the sandbox did in between).
    await fixture.scheduler.idle(session.id);
    const listed = await allEvents(client, session.id);
    expect(listed.filter((event) => ids.includes(event.id))).toEqual(streamed);

    const file = await fixture.call("GET", `/v1/sessions/${session.id}/files?path=/workspace/hello.txt`);
    expect(file.status).toBe(200);
    expect(await file.text()).toBe("hello\n");

    const after = await client.beta.sessions.retrieve(session.id);
    expect(after).toMatchObject({ status: "idle", usage: { input_tokens: 20, output_tokens: 10 } });
    // The session ran the pinned version's model.
    expect(fixture.models).toHaveLength(1);
  });

  it("resumes a dropped stream with Last-Event-ID: every event exactly once, in order", async () => {
    fixture.policy.rules.push({ tool: "Write", action: "ask" });
    fixture.script([
      { toolCalls: [{ name: "Write", input: { file_path: "/workspace/a.txt", content: "a" } }] },
      { text: "written" },
    ]);
    const client = fixture.client();
    const { id } = await fixture.create();
    const first = await client.beta.sessions.events.stream(id);
    await client.beta.sessions.events.send(id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "go" }] }],
    });
    // Drop the connection mid-turn, when the session waits for a confirmation.
    const before = await readStream(first, isIdle("requires_action"));
    const ask = before.find((event) => event.type === "agent.tool_use");
    expect(ask).toMatchObject({ evaluated_permission: "ask", name: "Write" });
    const idle = before.at(-1);
    expect(idle?.stop_reason).toEqual({ type: "requires_action", event_ids: [ask?.id] });
    expect(await fs.readFile(path.join(home, "workspaces", id, "a.txt")).catch(() => null)).toBeNull();
    // The Session object says the same: idle until someone acts.
    expect((await client.beta.sessions.retrieve(id)).status).toBe("idle");

    // While nobody listens, the call is allowed and the turn ends.
    const confirmed = await client.beta.sessions.events.send(id, {
      events: [{ type: "user.tool_confirmation", tool_use_id: String(ask?.id), result: "allow" }],
    });
    expect(confirmed.data?.[0]).toMatchObject({
      type: "user.tool_confirmation",
      tool_use_id: ask?.id,
      result: "allow",
    });
    await fixture.scheduler.idle(id);

    const last = before.at(-1)?.id as string;
    const resumed = await client.beta.sessions.events.stream(id, {}, { headers: { "last-event-id": last } });
    const after = await readStream(resumed, isIdle("end_turn"));
    const listed = await allEvents(client, id);
    const start = listed.findIndex((event) => event.id === before[0]?.id);
    expect([...before, ...after]).toEqual(listed.slice(start));
    expect(after[0]).toMatchObject({ type: "user.tool_confirmation", tool_use_id: ask?.id });

    // Resuming from the middle of one log entry's events skips exactly the ones already seen.
    const middle = listed.findIndex((event) => event.type === "session.status_running");
    const again = await client.beta.sessions.events.stream(
      id,
      {},
      {
        headers: { "last-event-id": String(listed[middle - 1]?.id) },
      },
    );
    const replayed = await readStream(again, isIdle("end_turn"));
    expect(replayed[0]).toEqual(listed[middle]);
  });

  it("gives two concurrent streams the identical sequence", async () => {
    fixture.script([
      { toolCalls: [{ name: "Bash", input: { command: "echo one" } }] },
      { toolCalls: [{ name: "Bash", input: { command: "echo two" } }] },
      { text: "both" },
    ]);
    const client = fixture.client();
    const { id } = await fixture.create();
    const streams = await Promise.all([
      client.beta.sessions.events.stream(id),
      client.beta.sessions.events.stream(id),
    ]);
    await client.beta.sessions.events.send(id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "run" }] }],
    });
    const [one, two] = await Promise.all(streams.map((stream) => readStream(stream, isIdle("end_turn"))));
    expect(one?.length).toBeGreaterThan(8);
    expect(two).toEqual(one);
  });

  it("pages the events list in order with stable ids, in both orders and by type", async () => {
    fixture.script([{ toolCalls: [{ name: "Bash", input: { command: "echo hi" } }] }, { text: "ok" }]);
    const { id } = await fixture.create("hello");
    await fixture.scheduler.idle(id);
    const full = (await (await fixture.call("GET", `/v1/sessions/${id}/events?limit=1000`)).json()) as {
      data: ApiEvent[];
      next_page: string | null;
    };
    expect(full.next_page).toBeNull();
    expect(full.data.length).toBeGreaterThan(6);
    const paged: ApiEvent[] = [];
    let page: string | null = null;
    let requests = 0;
    do {
      const response: Response = await fixture.call(
        "GET",
        `/v1/sessions/${id}/events?limit=2${page ? `&page=${encodeURIComponent(page)}` : ""}`,
      );
      const body = (await response.json()) as { data: ApiEvent[]; next_page: string | null };
      expect(body.data.length).toBeLessThanOrEqual(2);
      paged.push(...body.data);
      page = body.next_page;
      requests += 1;
    } while (page && requests < 100);
    expect(paged).toEqual(full.data);

    const descending: ApiEvent[] = [];
    for await (const event of fixture.client().beta.sessions.events.list(id, { order: "desc", limit: 3 }))
      descending.push(event as ApiEvent);
    expect(descending).toEqual([...full.data].reverse());

    const toolEvents = (await (
      await fixture.call("GET", `/v1/sessions/${id}/events?types[]=agent.tool_use&types[]=agent.tool_result`)
    ).json()) as { data: ApiEvent[] };
    expect(toolEvents.data.map((event) => event.type)).toEqual(["agent.tool_use", "agent.tool_result"]);
    const future = (await (
      await fixture.call("GET", `/v1/sessions/${id}/events?created_at[gt]=2999-01-01T00:00:00Z`)
    ).json()) as { data: ApiEvent[] };
    expect(future.data).toEqual([]);

    for (const bad of ["garbage", Buffer.from('{"s":"x"}').toString("base64url")]) {
      const response = await fixture.call("GET", `/v1/sessions/${id}/events?page=${bad}`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({
        type: "error",
        error: { type: "invalid_request_error" },
      });
    }
  });

  it("lists sessions newest first with next_page and prev_page, and filters them", async () => {
    const client = fixture.client();
    const created: string[] = [];
    for (let index = 0; index < 5; index += 1) created.push((await fixture.create()).id);
    const listed: string[] = [];
    for await (const session of client.beta.sessions.list({ limit: 2 })) listed.push(session.id);
    expect(listed).toEqual([...created].reverse());
    const ascending: string[] = [];
    for await (const session of client.beta.sessions.list({ limit: 2, order: "asc" }))
      ascending.push(session.id);
    expect(ascending).toEqual(created);

    const first = (await (await fixture.call("GET", "/v1/sessions?limit=2")).json()) as {
      data: { id: string }[];
      next_page: string;
      prev_page: string | null;
    };
    expect(first.prev_page).toBeNull();
    const second = (await (
      await fixture.call("GET", `/v1/sessions?limit=2&page=${encodeURIComponent(first.next_page)}`)
    ).json()) as { data: { id: string }[]; prev_page: string };
    expect(second.data.map((session) => session.id)).toEqual([created[2], created[1]]);
    const back = (await (
      await fixture.call("GET", `/v1/sessions?limit=2&page=${encodeURIComponent(second.prev_page)}`)
    ).json()) as { data: { id: string }[]; prev_page: string | null };
    expect(back.data).toEqual(first.data);
    expect(back.prev_page).toBeNull();

    const byAgent: string[] = [];
    for await (const session of client.beta.sessions.list({ agent_id: "agent_other" }))
      byAgent.push(session.id);
    expect(byAgent).toEqual([]);
    const byStore: string[] = [];
    for await (const session of client.beta.sessions.list({ memory_store_id: "memstore_none" }))
      byStore.push(session.id);
    expect(byStore).toEqual([]);
    const idle: string[] = [];
    for await (const session of client.beta.sessions.list({ statuses: ["idle"] })) idle.push(session.id);
    expect(idle).toHaveLength(5);
    expect((await fixture.call("GET", "/v1/sessions?page=garbage")).status).toBe(400);
  });

  it("updates, archives (read-only afterwards) and deletes a session; delete ends open streams", async () => {
    fixture.script([{ text: "hi" }]);
    const client = fixture.client();
    const { id } = await fixture.create("hi");
    await fixture.scheduler.idle(id);
    const updated = await client.beta.sessions.update(id, { title: "renamed", metadata: { a: "1", b: "2" } });
    expect(updated).toMatchObject({ title: "renamed", metadata: { a: "1", b: "2" } });
    const dropped = await client.beta.sessions.update(id, { metadata: { a: null } });
    expect(dropped.metadata).toEqual({ b: "2" });

    const archived = await client.beta.sessions.archive(id);
    expect(archived.archived_at).not.toBeNull();
    await expect(
      client.beta.sessions.events.send(id, {
        events: [{ type: "user.message", content: [{ type: "text", text: "more" }] }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.ConflictError);
    await expect(client.beta.sessions.update(id, { title: "x" })).rejects.toBeInstanceOf(
      Anthropic.ConflictError,
    );
    const visible: string[] = [];
    for await (const session of client.beta.sessions.list()) visible.push(session.id);
    expect(visible).not.toContain(id);
    const all: string[] = [];
    for await (const session of client.beta.sessions.list({ include_archived: true })) all.push(session.id);
    expect(all).toContain(id);
    // Reading stays possible.
    expect((await allEvents(client, id)).length).toBeGreaterThan(0);

    const other = await fixture.create();
    const stream = await client.beta.sessions.events.stream(other.id);
    const ended = readStream(stream, (event) => event.type === "session.deleted");
    expect(await client.beta.sessions.delete(other.id)).toEqual({ id: other.id, type: "session_deleted" });
    expect((await ended).map((event) => event.type)).toEqual(["session.deleted"]);

    expect(await client.beta.sessions.delete(id)).toEqual({ id, type: "session_deleted" });
    await expect(client.beta.sessions.retrieve(id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(client.beta.sessions.events.list(id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    expect(await fixture.store.readEvents(id, { afterSeq: 0, limit: 10 })).toEqual([]);
  });

  it("interrupts a running turn and reports exhausted model retries", async () => {
    fixture.script([{ hang: true }, { text: "after the interrupt" }]);
    const client = fixture.client();
    const { id } = await fixture.create();
    const stream = await client.beta.sessions.events.stream(id);
    await client.beta.sessions.events.send(id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "hang" }] }],
    });
    // A message sent while the turn runs is queued, in order, and answered by a turn of its own.
    const queued = await client.beta.sessions.events.send(id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "more" }] }],
    });
    expect(queued.data?.[0]).toMatchObject({
      type: "user.message",
      content: [{ type: "text", text: "more" }],
    });
    // The interrupt stops the model call in flight; the queued message then runs.
    const interrupted = await client.beta.sessions.events.send(id, { events: [{ type: "user.interrupt" }] });
    expect(interrupted.data?.[0]).toMatchObject({ type: "user.interrupt" });
    let idles = 0;
    const events = await readStream(stream, (event) => event.type === "session.status_idle" && ++idles === 2);
    expect(events.map((event) => event.type)).toEqual([
      "user.message",
      "session.status_running",
      "user.message",
      "user.interrupt",
      "session.status_idle",
      "session.status_running",
      "span.model_request_start",
      "agent.message",
      "span.model_request_end",
      "session.status_idle",
    ]);
    expect(events[7]).toMatchObject({ content: [{ type: "text", text: "after the interrupt" }] });
    // Interrupting an idle session changes nothing.
    expect(
      (await client.beta.sessions.events.send(id, { events: [{ type: "user.interrupt" }] })).data,
    ).toEqual([]);

    fixture.script([
      { error: { code: "model_overloaded", retryable: true } },
      { error: { code: "model_overloaded", retryable: true } },
    ]);
    // Version 1 pins another model, so the new script is used (the manager keeps one model per spec).
    const failing = await client.beta.sessions.create({
      agent: { type: "agent", id: AGENT, version: 1 },
      environment_id: ENV,
    });
    const failingStream = await client.beta.sessions.events.stream(failing.id);
    await client.beta.sessions.events.send(failing.id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "fail" }] }],
    });
    const failed = await readStream(failingStream, (event) => event.type === "session.status_idle");
    const errors = failed.filter((event) => event.type === "session.error");
    expect(
      errors.map((event) => (event.error as { retry_status: { type: string } }).retry_status.type),
    ).toEqual(["retrying", "exhausted"]);
    expect(errors[0]?.error).toMatchObject({ type: "model_overloaded_error" });
    // While the retry waits the session is rescheduling; the retry runs, fails, and retries run out.
    const statuses = failed
      .filter((event) => event.type.startsWith("session.status_"))
      .map((event) => event.type);
    expect(statuses).toEqual(["session.status_running", "session.status_rescheduled", "session.status_idle"]);
    expect(failed.at(-1)?.stop_reason).toEqual({ type: "retries_exhausted" });
  });

  it("refuses a confirmation for an unknown or already decided call and changes nothing", async () => {
    fixture.policy.rules.push({ tool: "Write", action: "ask" });
    fixture.script([
      { toolCalls: [{ name: "Write", input: { file_path: "/workspace/b.txt", content: "b" } }] },
      { text: "fine" },
    ]);
    const client = fixture.client();
    const { id } = await fixture.create();
    const stream = await client.beta.sessions.events.stream(id);
    await client.beta.sessions.events.send(id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "go" }] }],
    });
    const events = await readStream(stream, isIdle("requires_action"));
    const ask = events.find((event) => event.type === "agent.tool_use") as ApiEvent;
    const running = events.find((event) => event.type === "session.status_running") as ApiEvent;
    const logLength = async () => (await fixture.store.readEvents(id, { afterSeq: 0, limit: 1000 })).length;
    const before = await logLength();
    for (const toolUseId of [running.id, "sevt_nope_1_0", `${ask.id}0`, "x"]) {
      await expect(
        client.beta.sessions.events.send(id, {
          events: [{ type: "user.tool_confirmation", tool_use_id: toolUseId, result: "allow" }],
        }),
      ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    }
    expect(await logLength()).toBe(before);

    await client.beta.sessions.events.send(id, {
      events: [{ type: "user.tool_confirmation", tool_use_id: ask.id, result: "deny", deny_message: "no" }],
    });
    await fixture.scheduler.idle(id);
    const settled = await logLength();
    const again = await fixture.call("POST", `/v1/sessions/${id}/events`, {
      body: { events: [{ type: "user.tool_confirmation", tool_use_id: ask.id, result: "allow" }] },
    });
    expect(again.status).toBeGreaterThanOrEqual(400);
    expect(again.status).toBeLessThan(500);
    expect(await logLength()).toBe(settled);
    const listed = await allEvents(client, id);
    expect(listed.find((event) => event.type === "agent.tool_result")).toMatchObject({
      tool_use_id: ask.id,
      is_error: true,
    });
    expect(await fs.readFile(path.join(home, "workspaces", id, "b.txt")).catch(() => null)).toBeNull();
  });

  it("validates, stores and lists session resources", async () => {
    const client = fixture.client();
    const session = await client.beta.sessions.create({
      agent: AGENT,
      environment_id: ENV,
      resources: [
        { type: "memory_store", memory_store_id: "memstore_abc", access: "read_only" },
        {
          type: "github_repository",
          url: "https://github.com/acme/widgets",
          checkout: { type: "branch", name: "main" },
        },
      ],
    });
    expect(session.resources).toMatchObject([
      {
        type: "memory_store",
        memory_store_id: "memstore_abc",
        access: "read_only",
        mount_path: "/mnt/memory/memstore_abc/",
      },
      { type: "github_repository", url: "https://github.com/acme/widgets", mount_path: "/workspace/widgets" },
    ]);
    const added = await client.beta.sessions.resources.add(session.id, { type: "file", file_id: "file_xyz" });
    expect(added).toMatchObject({
      type: "file",
      file_id: "file_xyz",
      mount_path: "/mnt/session/uploads/file_xyz",
    });
    // Concurrent adds all land (each is appended atomically).
    const concurrent = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        client.beta.sessions.resources.add(session.id, { type: "file", file_id: `file_many${index}` }),
      ),
    );
    expect((await client.beta.sessions.retrieve(session.id)).resources).toHaveLength(11);
    for (const resource of concurrent)
      await client.beta.sessions.resources.delete(resource.id, { session_id: session.id });
    const listed = [];
    for await (const resource of client.beta.sessions.resources.list(session.id, { limit: 2 }))
      listed.push(resource);
    expect(listed.map((resource) => resource.type)).toEqual(["memory_store", "github_repository", "file"]);
    expect(await client.beta.sessions.resources.retrieve(added.id, { session_id: session.id })).toEqual(
      added,
    );
    expect(await client.beta.sessions.resources.delete(added.id, { session_id: session.id })).toEqual({
      id: added.id,
      type: "session_resource_deleted",
    });
    await expect(
      client.beta.sessions.resources.retrieve(added.id, { session_id: session.id }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    // A token would be stored in the clear: refused until a vault keeps it.
    const token = await fixture.call("POST", "/v1/sessions", {
      body: {
        agent: AGENT,
        environment_id: ENV,
        resources: [
          { type: "github_repository", url: "https://github.com/a/b", authorization_token: "ghp_x" },
        ],
      },
    });
    expect(token.status).toBe(400);
    expect(await token.text()).not.toContain("ghp_x");
  });

  it("keeps every org's sessions invisible to other orgs", async () => {
    fixture.script([{ text: "hi" }]);
    const { id } = await fixture.create("hi");
    await fixture.scheduler.idle(id);
    const clientB = fixture.client(KEY_B);
    const listB: string[] = [];
    for await (const session of clientB.beta.sessions.list()) listB.push(session.id);
    expect(listB).toEqual([]);
    const attempts: (() => Promise<unknown>)[] = [
      () => clientB.beta.sessions.retrieve(id),
      () => clientB.beta.sessions.update(id, { title: "x" }),
      () => clientB.beta.sessions.archive(id),
      () => clientB.beta.sessions.delete(id),
      () => clientB.beta.sessions.events.list(id),
      () => clientB.beta.sessions.events.stream(id),
      () =>
        clientB.beta.sessions.events.send(id, {
          events: [{ type: "user.message", content: [{ type: "text", text: "steal" }] }],
        }),
      () => clientB.beta.sessions.resources.list(id),
      () => clientB.beta.sessions.resources.add(id, { type: "file", file_id: "file_x" }),
    ];
    for (const attempt of attempts) await expect(attempt()).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    // Org B cannot start a session on org A's agent or environment either.
    await expect(clientB.beta.sessions.create({ agent: AGENT, environment_id: ENV })).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    const files = await fixture.call("GET", `/v1/sessions/${id}/files?path=/workspace/x`, { key: KEY_B });
    expect(files.status).toBe(404);
    expect(await files.json()).toMatchObject({ error: { code: "not_found", type: "not_found_error" } });
    // A second user of the same org does not see it either (it is not shared with them).
    const listA2: string[] = [];
    for await (const session of fixture.client(KEY_A2).beta.sessions.list()) listA2.push(session.id);
    expect(listA2).toEqual([]);
    expect((await fixture.client().beta.sessions.retrieve(id)).id).toBe(id);
  });

  it("rejects missing and invalid keys with 401", async () => {
    expect((await fixture.call("GET", "/v1/sessions", { key: null })).status).toBe(401);
    expect((await fixture.call("GET", "/v1/sessions", { key: "outrig_wrong" })).status).toBe(401);
    const malformed = await fixture.call("GET", "/v1/sessions", {
      key: null,
      headers: { authorization: "Basic abc" },
    });
    expect(malformed.status).toBe(401);
    expect(await malformed.json()).toMatchObject({
      error: { code: "unauthorized", type: "authentication_error" },
    });
    await expect(fixture.client("outrig_wrong").beta.sessions.list()).rejects.toBeInstanceOf(
      Anthropic.AuthenticationError,
    );
  });

  it("answers bad input on every route with the API's error shape and stays up", async () => {
    fixture.script([{ text: "ok" }]);
    const { id } = await fixture.create();
    const huge = JSON.stringify({ agent: AGENT, environment_id: ENV, title: "x".repeat(1024 * 1024 + 10) });
    const message = (text: unknown) => ({
      events: [{ type: "user.message", content: [{ type: "text", text }] }],
    });
    const cases: [string, string, Parameters<Fixture["call"]>[2], number][] = [
      ["POST", "/v1/sessions", { raw: "{not json" }, 400],
      ["POST", "/v1/sessions", { raw: "" }, 400],
      ["POST", "/v1/sessions", { raw: "null" }, 400],
      ["POST", "/v1/sessions", { raw: "[]" }, 400],
      ["POST", "/v1/sessions", { body: { agent: AGENT, environment_id: ENV, extra: 1 } }, 400],
      ["POST", "/v1/sessions", { body: { agent: 42, environment_id: ENV } }, 400],
      ["POST", "/v1/sessions", { body: { agent: AGENT } }, 400],
      ["POST", "/v1/sessions", { body: { agent: "agent_missing", environment_id: ENV } }, 404],
      [
        "POST",
        "/v1/sessions",
        { body: { agent: { type: "agent", id: AGENT, version: 9 }, environment_id: ENV } },
        404,
      ],
      ["POST", "/v1/sessions", { body: { agent: ARCHIVED_AGENT, environment_id: ENV } }, 400],
      ["POST", "/v1/sessions", { body: { agent: AGENT, environment_id: "env_missing" } }, 404],
      ["POST", "/v1/sessions", { body: { agent: { type: "robot", id: AGENT }, environment_id: ENV } }, 400],
      ["POST", "/v1/sessions", { body: { agent: AGENT, environment_id: ENV, metadata: { a: 1 } } }, 400],
      ["POST", "/v1/sessions", { body: { agent: AGENT, environment_id: ENV, vault_ids: ["nope"] } }, 400],
      [
        "POST",
        "/v1/sessions",
        { body: { agent: AGENT, environment_id: ENV, resources: [{ type: "disk" }] } },
        400,
      ],
      [
        "POST",
        "/v1/sessions",
        {
          body: {
            agent: AGENT,
            environment_id: ENV,
            resources: [{ type: "file", file_id: "file_a", mount_path: "/x/../etc" }],
          },
        },
        400,
      ],
      [
        "POST",
        "/v1/sessions",
        { body: { agent: AGENT, environment_id: ENV, budget: { type: "limit" } } },
        400,
      ],
      ["POST", "/v1/sessions", { raw: huge }, 413],
      ["POST", "/v1/sessions", { raw: "{}", headers: { "content-type": "text/plain" } }, 415],
      ["POST", `/v1/sessions/${id}/events`, { body: message(5) }, 400],
      ["POST", `/v1/sessions/${id}/events`, { body: message("") }, 400],
      ["POST", `/v1/sessions/${id}/events`, { body: { events: [] } }, 400],
      ["POST", `/v1/sessions/${id}/events`, { body: { events: [{ type: "user.shout" }] } }, 400],
      ["POST", `/v1/sessions/${id}/events`, { body: { ...message("hi"), role: "system" } }, 400],
      [
        "POST",
        `/v1/sessions/${id}/events`,
        { body: { events: [{ type: "user.message", content: [{ type: "image", source: {} }] }] } },
        400,
      ],
      [
        "POST",
        `/v1/sessions/${id}/events`,
        { body: { events: [{ type: "user.tool_confirmation", tool_use_id: "x", result: "maybe" }] } },
        400,
      ],
      [
        "POST",
        `/v1/sessions/${id}/events`,
        // A result for a custom tool use this session never made.
        { body: { events: [{ type: "user.custom_tool_result", custom_tool_use_id: "sevt_x_1_0" }] } },
        404,
      ],
      ["POST", `/v1/sessions/${id}/events`, { raw: "\u0000\u0001" }, 400],
      ["POST", "/v1/sessions/sesn_missing/events", { body: message("hi") }, 404],
      ["POST", `/v1/sessions/${id}`, { body: { title: 5 } }, 400],
      ["POST", `/v1/sessions/${id}`, { body: { colour: "red" } }, 400],
      ["POST", `/v1/sessions/${id}/resources`, { body: { type: "file", file_id: "bad" } }, 400],
      ["GET", `/v1/sessions/${id}/resources/sesrsc_missing`, {}, 404],
      ["DELETE", `/v1/sessions/${id}/resources/sesrsc_missing`, {}, 404],
      ["GET", "/v1/sessions?limit=abc", {}, 400],
      ["GET", "/v1/sessions?limit=100000", {}, 400],
      ["GET", "/v1/sessions?bogus=1", {}, 400],
      ["GET", "/v1/sessions?order=sideways", {}, 400],
      ["GET", "/v1/sessions?statuses[]=sleeping", {}, 400],
      ["GET", "/v1/sessions?created_at[gt]=yesterday", {}, 400],
      ["GET", "/v1/sessions/sesn_missing", {}, 404],
      ["GET", "/v1/sessions/a%00b", {}, 404],
      ["GET", `/v1/sessions/${id}/events?limit=0`, {}, 400],
      ["GET", `/v1/sessions/${id}/events?types[]=NOPE`, {}, 400],
      ["GET", `/v1/sessions/${id}/events?after=1`, {}, 400],
      ["GET", `/v1/sessions/${id}/events/stream`, { headers: { "last-event-id": "abc" } }, 400],
      ["GET", `/v1/sessions/${id}/events/stream`, { headers: { "last-event-id": "sevt_other_1_0" } }, 400],
      ["GET", `/v1/sessions/${id}/events/stream?event_deltas[]=agent.nope`, {}, 400],
      ["GET", `/v1/sessions/${id}/files`, {}, 400],
      ["GET", `/v1/sessions/${id}/files?path=relative.txt`, {}, 400],
      ["GET", `/v1/sessions/${id}/files?path=/etc/passwd`, {}, 400],
      ["GET", `/v1/sessions/${id}/files?path=/workspace/../etc/passwd`, {}, 400],
      ["GET", `/v1/sessions/${id}/files?path=/workspace/a%00b`, {}, 400],
      ["GET", `/v1/sessions/${id}/files?path=/workspace/missing.txt`, {}, 404],
      ["DELETE", "/v1/sessions", {}, 404],
      ["GET", "/v1/nothing-here", {}, 404],
    ];
    for (const [method, url, options, status] of cases) {
      const response = await fixture.call(method, url, options);
      const label = `${method} ${url} ${JSON.stringify(options).slice(0, 120)}`;
      expect(response.status, label).toBe(status);
      const body = (await response.json()) as {
        type: string;
        error: { type: string; code: string; message: string };
        request_id: string;
      };
      expect(body.type, label).toBe("error");
      expect(body.error.code).toMatch(/^[a-z_]+$/);
      expect(body.error.type).toMatch(/_error$|^request_too_large$/);
      expect(body.error.message.length).toBeGreaterThan(0);
      expect(body.request_id).toBe(response.headers.get("request-id"));
    }
    expect((await fixture.call("GET", "/healthz", { key: null })).status).toBe(200);
    expect((await fixture.client().beta.sessions.retrieve(id)).id).toBe(id);
  });
});

describe("session access", () => {
  const listIds = async (key: string) => {
    const ids: string[] = [];
    for await (const session of fixture.client(key).beta.sessions.list()) ids.push(session.id);
    return ids;
  };
  const send = (id: string, key: string, text = "steer") =>
    fixture.call("POST", `/v1/sessions/${id}/events`, {
      key,
      body: { events: [{ type: "user.message", content: [{ type: "text", text }] }] },
    });

  it("hides a member's session from other members until shared, and lets only the owner and steerers start turns", async () => {
    fixture.script([{ text: "one" }, { text: "two" }]);
    const { id } = await fixture.create("mine", KEY_A2);
    await fixture.scheduler.idle(id);

    // Another member of the org: the session does not exist for them.
    expect(await listIds(KEY_A3)).toEqual([]);
    for (const [method, url, body] of [
      ["GET", `/v1/sessions/${id}`, undefined],
      ["GET", `/v1/sessions/${id}/events`, undefined],
      ["GET", `/v1/sessions/${id}/events/stream`, undefined],
      ["GET", `/v1/sessions/${id}/files?path=/workspace/x`, undefined],
      [
        "POST",
        `/v1/sessions/${id}/events`,
        { events: [{ type: "user.message", content: [{ type: "text", text: "x" }] }] },
      ],
      ["POST", `/v1/sessions/${id}/events`, { events: [{ type: "user.interrupt" }] }],
      ["POST", `/v1/sessions/${id}/archive`, undefined],
      ["DELETE", `/v1/sessions/${id}`, undefined],
      ["GET", `/v1/sessions/${id}/shares`, undefined],
      ["PUT", `/v1/sessions/${id}/shares/usr_a3`, { role: "steerer" }],
    ] as const) {
      const response = await fixture.call(method, url, { key: KEY_A3, body });
      expect(response.status, `${method} ${url}`).toBe(404);
      expect(await response.text()).not.toContain("usr_a2");
    }

    // An admin sees it, but its turns run as the owner: no turn or confirmation without a share.
    expect(await listIds(KEY_A)).toContain(id);
    expect((await fixture.call("GET", `/v1/sessions/${id}`)).status).toBe(200);
    const adminTurn = await send(id, KEY_A, "x");
    expect(adminTurn.status).toBe(403);
    expect(await adminTurn.json()).toMatchObject({ error: { code: "forbidden", type: "permission_error" } });

    // Shared as viewer: readable, not steerable, and a viewer share cannot re-share.
    const viewer = await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_a3`, {
      key: KEY_A2,
      body: { role: "viewer" },
    });
    expect(viewer.status).toBe(200);
    expect((await fixture.call("GET", `/v1/sessions/${id}`, { key: KEY_A3 })).status).toBe(200);
    // (Listing shared sessions needs the share table: see the Postgres store's tests.)
    expect((await send(id, KEY_A3, "x")).status).toBe(403);
    const reshare = await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_a`, {
      key: KEY_A3,
      body: { role: "steerer" },
    });
    expect(reshare.status).toBe(403);

    // Shared as steerer: the turn starts, and it is recorded as the steerer's.
    await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_a3`, { key: KEY_A2, body: { role: "steerer" } });
    const steered = await send(id, KEY_A3);
    expect(steered.status).toBe(200);
    await fixture.scheduler.idle(id);
    const starts = (await fixture.store.readEvents(id, { afterSeq: 0, limit: 100 })).filter(
      (event) => event.type === "turn.start",
    );
    expect(starts.map((event) => event.type === "turn.start" && event.userId)).toEqual(["usr_a2", "usr_a3"]);

    // An admin may unshare; the session is gone for the former steerer.
    expect((await fixture.call("DELETE", `/v1/sessions/${id}/shares/usr_a3`)).status).toBe(204);
    expect((await fixture.call("GET", `/v1/sessions/${id}`, { key: KEY_A3 })).status).toBe(404);
    expect(
      fixture.audited
        .filter((entry) => entry.kind === "session_share")
        .map((entry) => [entry.userId, entry.data]),
    ).toEqual([
      ["usr_a2", { targetUserId: "usr_a3", role: "viewer" }],
      ["usr_a2", { targetUserId: "usr_a3", role: "steerer" }],
      ["usr_a", { targetUserId: "usr_a3", role: null }],
    ]);
  });

  it("lets an admin interrupt someone's turn and audits the cancel as the admin", async () => {
    fixture.script([{ hang: true }]);
    const { id } = await fixture.create("hang", KEY_A2);
    const interrupt = { events: [{ type: "user.interrupt" }] };
    expect(
      (await fixture.call("POST", `/v1/sessions/${id}/events`, { key: KEY_A3, body: interrupt })).status,
    ).toBe(404);
    expect((await fixture.call("POST", `/v1/sessions/${id}/events`, { body: interrupt })).status).toBe(200);
    expect(fixture.audited.filter((entry) => entry.kind === "session_cancel")).toEqual([
      {
        orgId: "org_a",
        kind: "session_cancel",
        sessionId: id,
        userId: "usr_a",
        data: { turn: 1, sessionOwnerId: "usr_a2" },
      },
    ]);
  });

  it("keeps viewers read-only", async () => {
    fixture.script([{ text: "hi" }]);
    const created = await fixture.call("POST", "/v1/sessions", {
      key: KEY_VIEWER,
      body: { agent: AGENT, environment_id: ENV },
    });
    expect(created.status).toBe(403);
    expect(await created.json()).toMatchObject({ error: { code: "read_only" } });
    expect((await fixture.call("GET", "/v1/sessions", { key: KEY_VIEWER })).status).toBe(200);
    const { id } = await fixture.create("hi");
    await fixture.scheduler.idle(id);
    await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_av`, { body: { role: "steerer" } });
    expect((await fixture.call("GET", `/v1/sessions/${id}`, { key: KEY_VIEWER })).status).toBe(200);
    const steer = await send(id, KEY_VIEWER, "x");
    expect(steer.status).toBe(403);
    expect(await steer.json()).toMatchObject({ error: { code: "read_only" } });
  });
});
