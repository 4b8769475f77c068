import { InputError } from "@outrig/core";
import type { SessionEvent } from "@outrig/protocol";
import { createDatabase, type Database, PostgresSandboxPolicyStore } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthenticatedCaller, createApp } from "../app.js";
import { SessionEventProjector } from "../managed/session-event-projection.js";
import { foldSandboxState } from "../sandbox-state.js";
import { registerSandboxRoutes } from "./sandbox-routes.js";

const MIB = 1024 * 1024;
const at = (second: number) => new Date(Date.UTC(2026, 11, 4, 12, 0, second)).toISOString();
const LOG: SessionEvent[] = [
  { seq: 1, at: at(0), type: "session.start", model: "fake:m" },
  {
    seq: 2,
    at: at(1),
    type: "sandbox.start",
    sandboxId: "bwrap-1",
    provider: "bubblewrap",
    durationMs: 80,
    limits: { pids: 64 },
  },
  { seq: 3, at: at(2), type: "sandbox.standby", sandboxId: "bwrap-1" },
] as SessionEvent[];

describe("sandbox routes", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let app: ReturnType<typeof createApp>;
  const callers: Record<string, AuthenticatedCaller> = {};

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const org = await database.auth.createOrg("sandbox-routes");
    const other = await database.auth.createOrg("sandbox-routes-other");
    const admin = await database.auth.createUser(org.id, { name: "admin", role: "admin" });
    const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
    const outsider = await database.auth.createUser(other.id, { name: "admin", role: "admin" });
    callers.admin = { orgId: org.id, userId: admin.id, keyId: "key_1", role: "admin" };
    callers.member = { orgId: org.id, userId: member.id, keyId: "key_2", role: "member" };
    callers.outsider = { orgId: other.id, userId: outsider.id, keyId: "key_3", role: "admin" };
    app = createApp({
      auth: { authenticate: async (key) => callers[key] ?? null },
      sessions: {} as never,
      store: {} as never,
      bus: {} as never,
      log: () => undefined,
    });
    registerSandboxRoutes(app, {
      policies: new PostgresSandboxPolicyStore(database.pool),
      defaults: { pids: 1024, coldAfterMs: 900_000, destroyAfterMs: 604_800_000, standbyAfterMs: 100 },
      sessions: {
        sandboxState: async (caller, sessionId) => {
          if (caller.orgId !== org.id || sessionId !== "sesn_known")
            throw new InputError("not_found", "Session not found", 404);
          return { ...foldSandboxState(LOG), policy: { pids: 1024 } };
        },
      },
    });
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  const call = (key: string, method: string, url: string, body?: string) =>
    app.request(url, {
      method,
      headers: { "x-api-key": key, "content-type": "application/json" },
      ...(body === undefined ? {} : { body }),
    });

  it("stores an admin's policy per org and merges it over the defaults", async () => {
    const put = await call(
      "admin",
      "PUT",
      "/v1/sandbox-policy",
      JSON.stringify({ memoryBytes: 64 * MIB, coldAfterMs: 5000 }),
    );
    expect(put.status).toBe(200);
    const got = (await (await call("member", "GET", "/v1/sandbox-policy")).json()) as {
      policy: Record<string, number>;
      effective: Record<string, number>;
    };
    expect(got.policy).toEqual({ memoryBytes: 64 * MIB, coldAfterMs: 5000 });
    expect(got.effective).toMatchObject({
      memoryBytes: 64 * MIB,
      pids: 1024,
      coldAfterMs: 5000,
      standbyAfterMs: 100,
    });
    const other = (await (await call("outsider", "GET", "/v1/sandbox-policy")).json()) as { policy: object };
    expect(other.policy).toEqual({});
  });

  it("lets only admins change the policy", async () => {
    const response = await call("member", "PUT", "/v1/sandbox-policy", JSON.stringify({ pids: 100 }));
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ type: "error", error: { type: "permission_error" } });
  });

  it.each([
    ["a string for a number", JSON.stringify({ pids: "100" })],
    ["an unknown field", JSON.stringify({ pids: 100, gpus: 1 })],
    ["a NUL byte in a key", JSON.stringify({ "pids\u0000": 100 })],
    ["a raw NUL byte", '{"pids": 100\u0000}'],
    ["a negative limit", JSON.stringify({ memoryBytes: -1 })],
    ["a fractional pid count", JSON.stringify({ pids: 10.5 })],
    ["idle times out of order", JSON.stringify({ standbyAfterMs: 5000, coldAfterMs: 1000 })],
    ["an array", "[]"],
    ["malformed JSON", "{"],
  ])("answers 400 for %s", async (_name, body) => {
    const response = await call("admin", "PUT", "/v1/sandbox-policy", body);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
  });

  it("shows the same sandbox lifecycle as API events in the session's event stream", () => {
    const projector = new SessionEventProjector("sesn_known");
    expect(LOG.flatMap((event) => projector.project(event))).toEqual([
      {
        id: "sevt_known_2_0",
        type: "session.sandbox_started",
        sandbox_id: "bwrap-1",
        provider: "bubblewrap",
        duration_ms: 80,
        is_warm: false,
        processed_at: at(1),
      },
      { id: "sevt_known_3_0", type: "session.sandbox_standby", sandbox_id: "bwrap-1", processed_at: at(2) },
    ]);
  });

  it("answers a session's sandbox state, 404 for another org's or a bad id", async () => {
    const response = await call("member", "GET", "/v1/sessions/sesn_known/sandbox");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      state: "standby",
      since: at(2),
      sandboxId: "bwrap-1",
      limits: { pids: 64 },
      latestSnapshot: null,
    });
    const outsider = await call("outsider", "GET", "/v1/sessions/sesn_known/sandbox");
    expect(outsider.status).toBe(404);
    expect(await outsider.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    expect((await call("member", "GET", "/v1/sessions/sesn%00x/sandbox")).status).toBe(404);
  });
});
