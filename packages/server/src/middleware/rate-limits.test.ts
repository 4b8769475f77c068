import { ConfigError, type SessionRecord } from "@outrig/core";
import { describe, expect, it } from "vitest";
import { type AuthenticatedCaller, createApp } from "../app.js";
import { EventBus } from "../event-bus.js";
import { loadRateLimits, type RateLimits } from "./rate-limits.js";

const callers: Record<string, AuthenticatedCaller> = {
  a1: { orgId: "org_a", userId: "usr_1", keyId: "key_a1", role: "member" },
  a2: { orgId: "org_a", userId: "usr_2", keyId: "key_a2", role: "member" },
  a3: { orgId: "org_a", userId: "usr_3", keyId: "key_a3", role: "member" },
  b: { orgId: "org_b", userId: "usr_4", keyId: "key_b", role: "member" },
};

const UNLIMITED = 1_000_000;

function createLimitedApp(limits: Partial<RateLimits>) {
  const session = (caller: AuthenticatedCaller, id: string): SessionRecord => ({
    id,
    orgId: caller.orgId,
    userId: caller.userId,
    model: "fake:m",
    system: null,
    status: "idle",
    turns: 0,
    lastSeq: 0,
    createdAt: new Date(0),
    updatedAt: new Date(0),
  });
  const bus = new EventBus();
  const app = createApp({
    auth: { authenticate: async (key) => callers[key] ?? null },
    sessions: { get: async (caller: AuthenticatedCaller, id: string) => session(caller, id) } as never,
    store: {
      readEvents: async () => [],
      listSessions: async () => [],
      getSession: async () => null,
    } as never,
    bus,
    log: () => undefined,
    rateLimits: {
      keyRequestsPerSecond: UNLIMITED,
      keyBurst: UNLIMITED,
      orgRequestsPerSecond: UNLIMITED,
      orgBurst: UNLIMITED,
      keyStreams: UNLIMITED,
      orgStreams: UNLIMITED,
      ...limits,
    },
  });
  const request = (key: string, path: string) =>
    Promise.resolve(app.request(path, { headers: { authorization: `Bearer ${key}` } }));
  return { app, bus, request };
}

async function expectRateLimited(response: Response) {
  expect(response.status).toBe(429);
  expect(Number(response.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  const body = (await response.json()) as {
    type: string;
    error: { type: string; code: string; message: string };
    request_id?: string;
  };
  expect(body.type).toBe("error");
  expect(body.error.type).toBe("rate_limit_error");
  expect(body.error.code).toBe("rate_limited");
  expect(body.request_id).toEqual(expect.any(String));
  return body.error.message;
}

describe("stream limits", () => {
  it("refuses a key's streams past its limit with 429 while other keys still stream, and frees a slot on close", async () => {
    const { request, bus } = createLimitedApp({ keyStreams: 3, orgStreams: 5 });
    const open: Response[] = [];
    for (let index = 0; index < 3; index++) {
      const response = await request("a1", `/v1/sessions/sesn_${index}/events/stream`);
      expect(response.status).toBe(200);
      open.push(response);
    }
    expect(await expectRateLimited(await request("a1", "/v1/sessions/sesn_9/events/stream"))).toContain(
      "API key",
    );
    // Another key of the same org, and another org, are not affected by this key's streams.
    const second = await request("a2", "/v1/sessions/sesn_1/events/stream");
    expect(second.status).toBe(200);
    expect((await request("b", "/v1/sessions/sesn_1/events/stream")).status).toBe(200);
    // Other routes of the same key still answer.
    expect((await request("a1", "/v1/sessions")).status).toBe(200);
    // The org holds 4 of its 5: one more, then the org limit.
    expect((await request("a3", "/v1/sessions/sesn_1/events/stream")).status).toBe(200);
    expect(await expectRateLimited(await request("a3", "/v1/sessions/sesn_2/events/stream"))).toContain(
      "org",
    );
    // A client closing its stream frees the slot at once.
    await open[0]?.body?.cancel();
    await second.body?.cancel();
    expect(bus.subscriberCount("ses_0")).toBe(0);
    expect((await request("a1", "/v1/sessions/sesn_0/events/stream")).status).toBe(200);
  });
});

describe("request rate limits", () => {
  it("answers 429 with Retry-After once a key's burst is spent, without slowing another key", async () => {
    const { request } = createLimitedApp({ keyRequestsPerSecond: 1, keyBurst: 5 });
    for (let index = 0; index < 5; index++) expect((await request("a1", "/v1/sessions")).status).toBe(200);
    expect(await expectRateLimited(await request("a1", "/v1/sessions"))).toContain("API key");
    expect((await request("a2", "/v1/sessions")).status).toBe(200);
    expect((await request("b", "/v1/sessions")).status).toBe(200);
  });

  it("limits all keys of an org together", async () => {
    const { request } = createLimitedApp({ orgRequestsPerSecond: 1, orgBurst: 6 });
    for (let index = 0; index < 3; index++) {
      expect((await request("a1", "/v1/sessions")).status).toBe(200);
      expect((await request("a2", "/v1/sessions")).status).toBe(200);
    }
    expect(await expectRateLimited(await request("a3", "/v1/sessions"))).toContain("org");
    expect((await request("b", "/v1/sessions")).status).toBe(200);
  });

  it("leaves unauthenticated requests to authentication (401, not 429)", async () => {
    const { app } = createLimitedApp({ keyRequestsPerSecond: 1, keyBurst: 1 });
    for (let index = 0; index < 3; index++) expect((await app.request("/v1/sessions")).status).toBe(401);
  });
});

describe("loadRateLimits", () => {
  it("has defaults, reads OUTRIG_RATE_* and names a bad key", () => {
    expect(loadRateLimits({})).toEqual({
      keyRequestsPerSecond: 50,
      keyBurst: 200,
      orgRequestsPerSecond: 200,
      orgBurst: 1000,
      keyStreams: 64,
      orgStreams: 256,
    });
    expect(loadRateLimits({ OUTRIG_RATE_KEY_STREAMS: "8", OUTRIG_RATE_KEY_RPS: "2.5" })).toMatchObject({
      keyStreams: 8,
      keyRequestsPerSecond: 2.5,
    });
    expect(() => loadRateLimits({ OUTRIG_RATE_ORG_STREAMS: "0" })).toThrow(ConfigError);
    expect(() => loadRateLimits({ OUTRIG_RATE_KEY_BURST: "lots" })).toThrow(/OUTRIG_RATE_KEY_BURST/);
  });
});
