import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createDefaultTools, InputError, type LanguageModel } from "@outrig/core";
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

interface Fixture {
  app: ReturnType<typeof createApp>;
  sessions: SessionManager;
  scheduler: InProcessTurnScheduler;
  models: ScriptedModel[];
  store: MemorySessionStore;
  audited: { orgId: string; kind: string; sessionId?: string; userId: string; data: unknown }[];
  script(steps: ScriptedStep[]): void;
  call(
    method: string,
    url: string,
    options?: { key?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<Response>;
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
  const sessions = new SessionManager({
    shares: async (_orgId, sessionId, userId) => shares.get(`${sessionId}/${userId}`)?.role ?? null,
    audit: async (orgId, entry) => {
      audited.push({ orgId, ...entry });
    },
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
  fixture = {
    app,
    sessions,
    scheduler,
    models,
    store,
    audited,
    script(steps) {
      nextSteps = steps;
    },
    call(method, url, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const key = options.key === undefined ? KEY_A : options.key;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let body: string | undefined;
      if (options.raw !== undefined) body = options.raw;
      else if (options.body !== undefined) body = JSON.stringify(options.body);
      if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
      return Promise.resolve(app.request(url, { method, headers, ...(body !== undefined ? { body } : {}) }));
    },
  };
});

afterEach(async () => {
  await fixture.sessions.close();
  await fs.rm(home, { recursive: true, force: true });
});

async function readSse(response: Response, stopAt: (event: { type: string }) => boolean) {
  const reader = response.body?.getReader();
  if (!reader) throw new Error("no body");
  const decoder = new TextDecoder();
  let buffer = "";
  const events: { id?: string; type: string; data: Record<string, unknown> }[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let boundary = buffer.indexOf("\n\n");
    while (boundary >= 0) {
      const block = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      boundary = buffer.indexOf("\n\n");
      const fields = Object.fromEntries(
        block
          .split("\n")
          .filter((line) => !line.startsWith(":") && line.includes(":"))
          .map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 1).trim()]),
      );
      if (!fields.data) continue;
      const event = {
        ...(fields.id ? { id: fields.id } : {}),
        type: fields.event,
        data: JSON.parse(fields.data),
      };
      events.push(event);
      if (stopAt(event)) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}

describe("HTTP API", () => {
  it("runs a session with tools and streams every event with a gap-free id", async () => {
    fixture.script([
      { toolCalls: [{ name: "Write", input: { file_path: "/workspace/hello.txt", content: "hello\n" } }] },
      { text: "done" },
    ]);
    const created = await fixture.call("POST", "/v1/sessions", {
      body: { model: "anthropic:test", prompt: "write it" },
    });
    expect(created.status).toBe(201);
    const session = (await created.json()) as { id: string; turns: number; status: string };
    expect(session).toMatchObject({ turns: 1, status: "running" });

    const stream = await fixture.call("GET", `/v1/sessions/${session.id}/events`);
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    const events = await readSse(stream, (event) => event.type === "turn.end");
    const persisted = events.filter((event) => event.id !== undefined);
    expect(persisted.map((event) => Number(event.id))).toEqual(persisted.map((_, index) => index + 1));
    expect(persisted.map((event) => event.type)).toEqual(
      expect.arrayContaining([
        "session.start",
        "turn.start",
        "message.end",
        "tool.start",
        "tool.end",
        "turn.end",
      ]),
    );
    const toolEnd = persisted.find((event) => event.type === "tool.end");
    expect(toolEnd?.data).toMatchObject({ name: "Write", isError: false });

    const file = await fixture.call("GET", `/v1/sessions/${session.id}/files?path=/workspace/hello.txt`);
    expect(file.status).toBe(200);
    expect(await file.text()).toBe("hello\n");

    await fixture.scheduler.idle(session.id);
    const after = await fixture.call("GET", `/v1/sessions/${session.id}`);
    expect(await after.json()).toMatchObject({ status: "idle", turns: 1 });

    // Reconnect with Last-Event-ID: only what follows is replayed.
    const resumed = await fixture.call("GET", `/v1/sessions/${session.id}/events`, {
      headers: { "last-event-id": String(persisted.length - 2) },
    });
    const replayed = await readSse(resumed, (event) => event.type === "turn.end");
    expect(replayed.map((event) => Number(event.id))).toEqual([persisted.length - 1, persisted.length]);
  });

  it("queues a message sent while a turn runs and starts it as the next turn when that one ends", async () => {
    fixture.script([{ hang: true }, { text: "answered the queued one" }]);
    const created = await fixture.call("POST", "/v1/sessions", {
      body: { model: "anthropic:test", prompt: "hang" },
    });
    const { id } = (await created.json()) as { id: string };
    const queued = await fixture.call("POST", `/v1/sessions/${id}/messages`, { body: { text: "more" } });
    expect(queued.status).toBe(202);
    expect(await queued.json()).toMatchObject({ status: "running", turns: 1 });
    const cancelled = await fixture.call("POST", `/v1/sessions/${id}/cancel`);
    expect(cancelled.status).toBe(200);
    await fixture.scheduler.idle(id);
    const after = await fixture.call("GET", `/v1/sessions/${id}`);
    expect(await after.json()).toMatchObject({ status: "idle", turns: 2 });
  });

  it("keeps every org's sessions invisible to other orgs", async () => {
    fixture.script([{ text: "hi" }]);
    const created = await fixture.call("POST", "/v1/sessions", {
      body: { model: "anthropic:test", prompt: "hi" },
    });
    const { id } = (await created.json()) as { id: string };
    await fixture.scheduler.idle(id);

    const listB = await fixture.call("GET", "/v1/sessions", { key: KEY_B });
    expect(await listB.json()).toEqual({ sessions: [] });
    for (const [method, url, body] of [
      ["GET", `/v1/sessions/${id}`, undefined],
      ["GET", `/v1/sessions/${id}/events`, undefined],
      ["GET", `/v1/sessions/${id}/files?path=/workspace/x`, undefined],
      ["POST", `/v1/sessions/${id}/messages`, { text: "steal" }],
    ] as const) {
      const response = await fixture.call(method, url, { key: KEY_B, body });
      expect(response.status, `${method} ${url}`).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
    }
    // A second user of the same org does not see it either (it is not shared with them).
    const listA2 = (await (await fixture.call("GET", "/v1/sessions", { key: KEY_A2 })).json()) as {
      sessions: { id: string }[];
    };
    expect(listA2.sessions).toEqual([]);
  });

  it("rejects missing and invalid keys with 401", async () => {
    expect((await fixture.call("GET", "/v1/sessions", { key: null })).status).toBe(401);
    expect((await fixture.call("GET", "/v1/sessions", { key: "outrig_wrong" })).status).toBe(401);
    const malformed = await fixture.call("GET", "/v1/sessions", {
      key: null,
      headers: { authorization: "Basic abc" },
    });
    expect(malformed.status).toBe(401);
    expect(await malformed.json()).toMatchObject({ error: { code: "unauthorized" } });
  });

  it("answers bad input on every route with a clear 4xx and stays up", async () => {
    fixture.script([{ text: "ok" }]);
    const created = await fixture.call("POST", "/v1/sessions", { body: { model: "anthropic:test" } });
    const { id } = (await created.json()) as { id: string };
    const huge = JSON.stringify({ model: "anthropic:x", prompt: "x".repeat(1024 * 1024 + 10) });
    const cases: [string, string, Parameters<Fixture["call"]>[2], number][] = [
      ["POST", "/v1/sessions", { raw: "{not json" }, 400],
      ["POST", "/v1/sessions", { raw: "" }, 400],
      ["POST", "/v1/sessions", { raw: "null" }, 400],
      ["POST", "/v1/sessions", { raw: "[]" }, 400],
      ["POST", "/v1/sessions", { body: { model: "anthropic:x", extra: 1 } }, 400],
      ["POST", "/v1/sessions", { body: { model: 42 } }, 400],
      ["POST", "/v1/sessions", { body: { model: "nope" } }, 400],
      ["POST", "/v1/sessions", { body: { model: "mystery:model" } }, 400],
      ["POST", "/v1/sessions", { body: { model: "anthropic:x", prompt: "" } }, 400],
      ["POST", "/v1/sessions", { raw: huge }, 413],
      ["POST", "/v1/sessions", { raw: "{}", headers: { "content-type": "text/plain" } }, 415],
      ["POST", `/v1/sessions/${id}/messages`, { body: { text: 5 } }, 400],
      ["POST", `/v1/sessions/${id}/messages`, { body: { text: "hi", role: "system" } }, 400],
      ["POST", `/v1/sessions/${id}/messages`, { raw: "\u0000\u0001" }, 400],
      ["POST", "/v1/sessions/ses_missing/messages", { body: { text: "hi" } }, 404],
      ["GET", "/v1/sessions?limit=abc", {}, 400],
      ["GET", "/v1/sessions?limit=100000", {}, 400],
      ["GET", "/v1/sessions?bogus=1", {}, 400],
      ["GET", "/v1/sessions/ses_missing", {}, 404],
      ["GET", `/v1/sessions/${id}/events`, { headers: { "last-event-id": "abc" } }, 400],
      ["GET", `/v1/sessions/${id}/events?after=-1`, {}, 400],
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
      expect(response.status, `${method} ${url} ${JSON.stringify(options).slice(0, 80)}`).toBe(status);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toMatch(/^[a-z_]+$/);
      expect(body.error.message.length).toBeGreaterThan(0);
    }
    expect((await fixture.call("GET", "/healthz", { key: null })).status).toBe(200);
  });
});

describe("session access", () => {
  const json = async <T>(response: Response | Promise<Response>) => (await (await response).json()) as T;
  const listIds = async (key: string) =>
    (await json<{ sessions: { id: string }[] }>(fixture.call("GET", "/v1/sessions", { key }))).sessions.map(
      (session) => session.id,
    );

  it("hides a member's session from other members until shared, and lets only the owner and steerers start turns", async () => {
    fixture.script([{ text: "one" }, { text: "two" }]);
    const created = await fixture.call("POST", "/v1/sessions", {
      key: KEY_A2,
      body: { model: "anthropic:test", prompt: "mine" },
    });
    expect(created.status).toBe(201);
    const { id, userId } = (await created.json()) as { id: string; userId: string };
    expect(userId).toBe("usr_a2");
    await fixture.scheduler.idle(id);

    // Another member of the org: the session does not exist for them.
    expect(await listIds(KEY_A3)).toEqual([]);
    for (const [method, url, body] of [
      ["GET", `/v1/sessions/${id}`, undefined],
      ["GET", `/v1/sessions/${id}/events`, undefined],
      ["GET", `/v1/sessions/${id}/files?path=/workspace/x`, undefined],
      ["POST", `/v1/sessions/${id}/messages`, { text: "steer" }],
      ["POST", `/v1/sessions/${id}/cancel`, undefined],
      ["POST", `/v1/sessions/${id}/approvals/toolu_x`, { decision: "allow" }],
      ["GET", `/v1/sessions/${id}/shares`, undefined],
      ["PUT", `/v1/sessions/${id}/shares/usr_a3`, { role: "steerer" }],
    ] as const) {
      const response = await fixture.call(method, url, { key: KEY_A3, body });
      expect(response.status, `${method} ${url}`).toBe(404);
      expect(await response.text()).not.toContain("usr_a2");
    }

    // An admin sees it, but its turns run as the owner: no turn or approval without a share.
    expect(await listIds(KEY_A)).toContain(id);
    expect((await fixture.call("GET", `/v1/sessions/${id}`)).status).toBe(200);
    const adminTurn = await fixture.call("POST", `/v1/sessions/${id}/messages`, { body: { text: "x" } });
    expect(adminTurn.status).toBe(403);
    expect(await adminTurn.json()).toMatchObject({ error: { code: "forbidden" } });
    const adminApproval = await fixture.call("POST", `/v1/sessions/${id}/approvals/toolu_x`, {
      body: { decision: "allow" },
    });
    expect(adminApproval.status).toBe(403);

    // Shared as viewer: readable and listed, not steerable, and a viewer share cannot re-share.
    const viewer = await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_a3`, {
      key: KEY_A2,
      body: { role: "viewer" },
    });
    expect(viewer.status).toBe(200);
    expect((await fixture.call("GET", `/v1/sessions/${id}`, { key: KEY_A3 })).status).toBe(200);
    // (Listing shared sessions needs the share table: see the Postgres store's tests.)
    const viewerTurn = await fixture.call("POST", `/v1/sessions/${id}/messages`, {
      key: KEY_A3,
      body: { text: "x" },
    });
    expect(viewerTurn.status).toBe(403);
    const reshare = await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_a`, {
      key: KEY_A3,
      body: { role: "steerer" },
    });
    expect(reshare.status).toBe(403);

    // Shared as steerer: the turn starts, and it is recorded as the steerer's.
    await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_a3`, { key: KEY_A2, body: { role: "steerer" } });
    const steered = await fixture.call("POST", `/v1/sessions/${id}/messages`, {
      key: KEY_A3,
      body: { text: "steer" },
    });
    expect(steered.status).toBe(202);
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

  it("lets an admin cancel someone's turn and audits the cancel as the admin", async () => {
    fixture.script([{ hang: true }]);
    const created = await fixture.call("POST", "/v1/sessions", {
      key: KEY_A2,
      body: { model: "anthropic:test", prompt: "hang" },
    });
    const { id } = (await created.json()) as { id: string };
    expect((await fixture.call("POST", `/v1/sessions/${id}/cancel`, { key: KEY_A3 })).status).toBe(404);
    expect((await fixture.call("POST", `/v1/sessions/${id}/cancel`)).status).toBe(200);
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
      body: { model: "anthropic:test", prompt: "hi" },
    });
    expect(created.status).toBe(403);
    expect(await created.json()).toMatchObject({ error: { code: "read_only" } });
    expect((await fixture.call("GET", "/v1/sessions", { key: KEY_VIEWER })).status).toBe(200);
    const own = await fixture.call("POST", "/v1/sessions", {
      body: { model: "anthropic:test", prompt: "hi" },
    });
    const { id } = (await own.json()) as { id: string };
    await fixture.scheduler.idle(id);
    await fixture.call("PUT", `/v1/sessions/${id}/shares/usr_av`, { body: { role: "steerer" } });
    expect((await fixture.call("GET", `/v1/sessions/${id}`, { key: KEY_VIEWER })).status).toBe(200);
    const steer = await fixture.call("POST", `/v1/sessions/${id}/messages`, {
      key: KEY_VIEWER,
      body: { text: "x" },
    });
    expect(steer.status).toBe(403);
    expect(await steer.json()).toMatchObject({ error: { code: "read_only" } });
  });
});
