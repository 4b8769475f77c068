/**
 * Every HTTP route of a real server (startServer on Postgres, the fake LLM, bubblewrap sandboxes),
 * taken from the server's own route table: called with no key, a bad key, another org's key and a
 * member key for admin routes; then fuzzed with fast-check (path params, query, body) and hit with
 * malformed raw HTTP. Zero 5xx, nothing of one org visible to another, and the server stays up.
 */
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createDatabase } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { type RunningServer, startServer } from "../../src/start-server.js";
import {
  type ExampleRequest,
  ROUTE_SPECS,
  type RouteSpec,
  type SpecFixture,
  skillForm,
} from "./route-specs.js";

/**
 * The default suite samples the fuzzing: every route still gets its auth, isolation and example
 * checks with every kind of actor, and fast-check cases under a fixed seed (the same ones every run).
 * `npm run test:fuzz` (OUTRIG_FUZZ=full) runs the full matrix: 60 cases per route, a new seed each
 * run outside CI. FC_SEED overrides the seed; fast-check prints it on failure.
 */
const FULL_FUZZ = process.env.OUTRIG_FUZZ === "full";
const FIXED_SEED = 20261204;
const SEED = Number(
  process.env.FC_SEED ?? (FULL_FUZZ && !process.env.CI ? Date.now() % 2 ** 31 : FIXED_SEED),
);
const RUNS_PER_ROUTE = FULL_FUZZ ? 60 : 8;
/** Org A's data that no other org may ever see. */
const ORG_A_MARKER = "orgAMarker_d41d8cd98f00b204";

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
const keys = { admin: "", member: "", member2: "", viewer: "", other: "" };
let fixture: SpecFixture;
let orgAId = "";
let adminUserId = "";
let revocableKeyId = "";
const logged: string[] = [];
const statuses: { route: string; status: number; detail: string }[] = [];
const counts = { auth: 0, crossOrg: 0, fuzz: 0, raw: 0, resets: 0 };

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  // By history: the first answer of every session writes /workspace/owned.txt, later ones just talk.
  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        { toolCalls: [{ name: "write", input: { file_path: "/workspace/owned.txt", content: "own" } }] },
        ...Array.from({ length: 3000 }, () => ({ text: "hello" })),
      ],
    },
    turnSelection: "history",
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-http-security-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-http-security",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `http-security-${process.pid}`,
    OUTRIG_STANDBY_AFTER_MS: "0",
  });
  server = await startServer(config, { log: (line) => logged.push(line) });
  keys.admin = server.bootstrapKey ?? "";
  expect(keys.admin).toMatch(/^outrig_/);

  const database = await createDatabase({ url: testDatabase.url });
  try {
    const org = await database.auth.ensureOrg("default");
    orgAId = org.id;
    const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
    keys.member = (await database.auth.createApiKey(org.id, member.id, "member")).key;
    revocableKeyId = (await database.auth.createApiKey(org.id, member.id, "to-revoke")).id;
    const member2 = await database.auth.createUser(org.id, { name: "member2", role: "member" });
    keys.member2 = (await database.auth.createApiKey(org.id, member2.id, "member2")).key;
    const viewer = await database.auth.createUser(org.id, { name: "viewer", role: "viewer" });
    keys.viewer = (await database.auth.createApiKey(org.id, viewer.id, "viewer")).key;
    adminUserId = (await database.auth.authenticate(keys.admin))?.userId ?? "";
    const other = await database.auth.createOrg("other-org");
    const mallory = await database.auth.createUser(other.id, { name: "mallory", role: "admin" });
    keys.other = (await database.auth.createApiKey(other.id, mallory.id, "mallory")).key;
  } finally {
    await database.close();
  }

  // Org A's data: a session (the member's) with a workspace file, a memory, a secret and a policy, all marked.
  const createdId = async (url: string, key: string, body: unknown) => {
    const response = await call("POST", url, key, { body });
    const text = await response.text();
    expect(response.status, `${url}: ${text}`).toBe(200);
    return (JSON.parse(text) as { id: string }).id;
  };
  const agentBody = (name: string) => ({
    name,
    model: "claude-sonnet-4-5",
    system: `agent ${ORG_A_MARKER}`,
    tools: [{ type: "agent_toolset_20260401" }],
  });
  const agentId = await createdId("/v1/agents", keys.admin, agentBody("orga agent"));
  const updatableAgentId = await createdId("/v1/agents", keys.admin, agentBody("orga updatable"));
  const archivableAgentId = await createdId("/v1/agents", keys.admin, agentBody("orga archivable"));
  const environmentId = await createdId("/v1/environments", keys.admin, { name: `orga env ${ORG_A_MARKER}` });
  const archivableEnvironmentId = await createdId("/v1/environments", keys.admin, {
    name: "orga archivable",
  });
  const deletableEnvironmentId = await createdId("/v1/environments", keys.admin, { name: "orga deletable" });
  const sessionBody = (extra: Record<string, unknown> = {}) => ({
    agent: agentId,
    environment_id: environmentId,
    title: `orga ${ORG_A_MARKER}`,
    ...extra,
  });
  // The memory stores the session attaches (a resource must name a store of the org).
  const attachedStoreIds: string[] = [];
  for (const name of ["orga kept", "orga deletable"]) {
    attachedStoreIds.push(await createdId("/v1/memory_stores", keys.member, { name }));
  }
  const created = await call("POST", "/v1/sessions", keys.member, {
    body: sessionBody({
      initial_events: [
        { type: "user.message", content: [{ type: "text", text: `remember ${ORG_A_MARKER}` }] },
      ],
      resources: [
        { type: "memory_store", memory_store_id: attachedStoreIds[0] },
        { type: "memory_store", memory_store_id: attachedStoreIds[1] },
      ],
    }),
  });
  expect(created.status).toBe(200);
  const session = (await created.json()) as { id: string; resources: { id: string }[] };
  const sessionId = session.id;
  const archivableSessionId = await createdId("/v1/sessions", keys.member, sessionBody());
  const deletableSessionId = await createdId("/v1/sessions", keys.member, sessionBody());
  const memoryPath = "/memories/org/orga-notes.md";
  const memory = await call("PUT", "/v1/file_store/content", keys.admin, {
    body: { path: memoryPath, content: `notes ${ORG_A_MARKER}` },
  });
  expect(memory.status).toBe(200);
  const scratchPath = "/memories/org/orga-scratch.md";
  const scratch = await call("PUT", "/v1/file_store/content", keys.admin, {
    body: { path: scratchPath, content: `scratch ${ORG_A_MARKER}` },
  });
  expect(scratch.status).toBe(200);
  // An org vault named with the marker, its credentials, and vaults the archive and delete examples take.
  const createVault = async (name: string) => {
    const response = await call("POST", "/v1/vaults", keys.admin, {
      body: { display_name: name, scope: "org" },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { id: string }).id;
  };
  const vaultId = await createVault(`vault ${ORG_A_MARKER}`);
  const archiveVaultId = await createVault("to archive");
  const deleteVaultId = await createVault("to delete");
  const createCredential = async (url: string) => {
    const response = await call("POST", `/v1/vaults/${vaultId}/credentials`, keys.admin, {
      body: { auth: { type: "static_bearer", token: `value-${ORG_A_MARKER}`, mcp_server_url: url } },
    });
    expect(response.status).toBe(200);
    return ((await response.json()) as { id: string }).id;
  };
  const credentialId = await createCredential("https://mcp.example.com/a");
  const archiveCredentialId = await createCredential("https://mcp.example.com/b");
  const deleteCredentialId = await createCredential("https://mcp.example.com/c");
  const egressSecretName = await createCredential("https://mcp.example.com/egress");
  const policy = await call("PUT", "/v1/policy", keys.admin, {
    body: { rules: [{ tool: "Bash", match: `*${ORG_A_MARKER}*`, action: "deny" }] },
  });
  expect(policy.status).toBe(200);
  // Files and skills of org A (the Files and Skills APIs take multipart uploads).
  const upload = async (name: string) => {
    const form = new FormData();
    form.append("file", new File([`file ${ORG_A_MARKER}`], name, { type: "text/plain" }));
    const response = await call("POST", "/v1/files", keys.member, { form });
    expect(response.status).toBe(200);
    return ((await response.json()) as { id: string }).id;
  };
  const fileId = await upload("orga.txt");
  const deletableFileId = await upload("orga-scratch.txt");
  const createSkill = async (name: string) => {
    const response = await call("POST", "/v1/skills", keys.admin, { form: skillForm(name, ORG_A_MARKER) });
    expect(response.status).toBe(200);
    return (await response.json()) as { id: string; latest_version_id: string };
  };
  const skill = await createSkill("orga-skill");
  const second = await call("POST", `/v1/skills/${skill.id}/versions`, keys.admin, {
    form: skillForm("orga-skill", `${ORG_A_MARKER} v2`),
  });
  expect(second.status).toBe(200);
  const deletableSkillVersionId = ((await second.json()) as { id: string }).id;
  const deletableSkill = await createSkill("orga-scratch-skill");
  fixture = {
    sessionId,
    archivableSessionId,
    deletableSessionId,
    resourceId: session.resources[0]?.id ?? "",
    deletableResourceId: session.resources[1]?.id ?? "",
    agentId,
    updatableAgentId,
    archivableAgentId,
    environmentId,
    archivableEnvironmentId,
    deletableEnvironmentId,
    memoryPath,
    scratchPath,
    vaultId,
    credentialId,
    archiveVaultId,
    deleteVaultId,
    archiveCredentialId,
    deleteCredentialId,
    egressSecretName,
    model: "anthropic:claude-sonnet-4-5",
    adminUserId,
    revocableKeyId,
    fileId,
    deletableFileId,
    skillId: skill.id,
    skillVersionId: skill.latest_version_id,
    deletableSkillVersionId,
    deletableSkillId: deletableSkill.id,
    memoryStore: await createMemoryStoreFixture(),
  };
  await waitForIdle(sessionId);
}, 180_000);

afterAll(async () => {
  console.log(
    `[security] http routes (${FULL_FUZZ ? "full" : "sampled"} fuzz, seed ${SEED}): ${server?.routes.length ?? 0} covered, ${counts.auth} auth cases, ` +
      `${counts.crossOrg} cross-org checks, ${counts.fuzz} fuzz cases, ${counts.raw} raw requests (${counts.resets} retried after a closed connection), ` +
      `${statuses.filter((entry) => entry.status >= 500).length} 5xx`,
  );
  await server?.close();
  await fakeLlm?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** Org A's memory store: a memory with two versions (the first one redactable), a scratch memory and store. */
async function createMemoryStoreFixture(): Promise<SpecFixture["memoryStore"]> {
  const json = async (response: Response) => {
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as { id: string; memory_version_id: string };
  };
  const store = await json(
    await call("POST", "/v1/memory_stores", keys.member, { body: { name: `store ${ORG_A_MARKER}` } }),
  );
  const memory = await json(
    await call("POST", `/v1/memory_stores/${store.id}/memories`, keys.member, {
      body: { path: "/notes.md", content: `notes ${ORG_A_MARKER}` },
    }),
  );
  await json(
    await call("POST", `/v1/memory_stores/${store.id}/memories/${memory.id}`, keys.member, {
      body: { content: `notes 2 ${ORG_A_MARKER}` },
    }),
  );
  const scratch = await json(
    await call("POST", `/v1/memory_stores/${store.id}/memories`, keys.member, {
      body: { path: "/scratch.md", content: `scratch ${ORG_A_MARKER}` },
    }),
  );
  const scratchStore = await json(
    await call("POST", "/v1/memory_stores", keys.member, { body: { name: `scratch ${ORG_A_MARKER}` } }),
  );
  return {
    storeId: store.id,
    memoryId: memory.id,
    oldVersionId: memory.memory_version_id,
    scratchMemoryId: scratch.id,
    scratchStoreId: scratchStore.id,
  };
}

async function waitForIdle(sessionId: string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    const response = await call("GET", `/v1/sessions/${sessionId}`, keys.admin);
    const body = (await response.json()) as { status: string };
    if (body.status !== "running") return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`session ${sessionId} is still running`);
}

function buildUrl(spec: RouteSpec, request: ExampleRequest): string {
  const route = spec.path.replace(/:(\w+)/g, (_, name: string) =>
    // Lone surrogates cannot be percent-encoded; a client would send U+FFFD.
    encodeURIComponent(Buffer.from(request.params?.[name] ?? "x", "utf8").toString("utf8")),
  );
  const query = new URLSearchParams(request.query ?? {}).toString();
  return `${server.url}${route}${query ? `?${query}` : ""}`;
}

/** One request; records its status for the zero-5xx check. Streams are cancelled after the status. */
async function call(
  method: string,
  route: string,
  key: string | null,
  options: {
    body?: unknown;
    rawBody?: string;
    form?: FormData;
    isStream?: boolean;
    headers?: Record<string, string>;
  } = {},
): Promise<Response> {
  const hasBody = options.body !== undefined || options.rawBody !== undefined;
  const payload =
    options.form ??
    options.rawBody ??
    (options.body === undefined ? undefined : JSON.stringify(options.body));
  const send = () =>
    fetch(route.startsWith("http") ? route : `${server.url}${route}`, {
      method,
      headers: {
        ...(key === null ? {} : { authorization: `Bearer ${key}` }),
        ...(hasBody ? { "content-type": "application/json" } : {}),
        ...options.headers,
      },
      ...(payload === undefined ? {} : { body: payload }),
      signal: AbortSignal.timeout(60_000),
    });
  const response = await send().catch(async (error: unknown) => {
    if ((error as Error).name === "TimeoutError") throw error;
    // A pooled connection the server closed (after a 413, say) can fail the next request: retry once.
    counts.resets += 1;
    return send();
  });
  statuses.push({ route: `${method} ${route.slice(0, 200)}`, status: response.status, detail: "" });
  if (options.isStream && response.ok) await response.body?.cancel();
  return response;
}

async function send(spec: RouteSpec, key: string | null, request: ExampleRequest): Promise<Response> {
  return call(spec.method, buildUrl(spec, request), key, {
    ...(request.body === undefined ? {} : { body: request.body }),
    ...(request.form === undefined ? {} : { form: request.form() }),
    ...(spec.isStream ? { isStream: true } : {}),
  });
}

async function bodyText(response: Response, spec: RouteSpec): Promise<string> {
  if (spec.isStream && response.ok) return "";
  return response.text();
}

const specKey = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

/** SEED mixed with the route's method and path (FNV-1a), stable when routes are added. */
function routeSeed(route: { method: string; path: string }): number {
  let hash = 0x811c9dc5 ^ SEED;
  for (const char of specKey(route)) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193);
  return hash | 0;
}

describe("the route table", () => {
  it("has a spec for every route the server registers, and no spec for a route it lacks", () => {
    const registered = server.routes.map(specKey).sort();
    const specified = ROUTE_SPECS.map(specKey).sort();
    expect(registered.length).toBeGreaterThanOrEqual(20);
    expect(registered.filter((route) => !specified.includes(route))).toEqual([]);
    expect(specified.filter((route) => !registered.includes(route))).toEqual([]);
  });
});

describe("authentication and isolation, route by route", () => {
  it("refuses a missing or bad key on every /v1 route", async () => {
    for (const spec of ROUTE_SPECS) {
      const request = spec.example(fixture);
      for (const key of [null, "outrig_not-a-real-key", "Basic abc", keys.admin.slice(0, -2)]) {
        counts.auth += 1;
        const response = await send(spec, key, request);
        const text = await bodyText(response, spec);
        if (spec.auth === "public") expect(response.status, specKey(spec)).toBe(200);
        else {
          expect([specKey(spec), response.status]).toEqual([specKey(spec), 401]);
          expect(text).not.toContain(ORG_A_MARKER);
        }
      }
    }
  });

  it("refuses a member on admin routes", async () => {
    for (const spec of ROUTE_SPECS.filter((each) => each.auth === "admin")) {
      counts.auth += 1;
      const response = await send(spec, keys.member, spec.example(fixture));
      expect([specKey(spec), response.status]).toEqual([specKey(spec), 403]);
    }
  });

  it("hides a session from a member of the same org it is not shared with (404 on every session route)", async () => {
    for (const spec of ROUTE_SPECS.filter((each) => each.path.startsWith("/v1/sessions/:id"))) {
      counts.auth += 1;
      const response = await send(spec, keys.member2, spec.example(fixture));
      const text = await bodyText(response, spec);
      expect([specKey(spec), response.status, text.slice(0, 200)]).toEqual([
        specKey(spec),
        404,
        text.slice(0, 200),
      ]);
      expect(text).not.toContain(ORG_A_MARKER);
    }
    const listed = await (await call("GET", "/v1/sessions", keys.member2)).text();
    expect(listed).not.toContain(fixture.sessionId);
    expect(await (await call("GET", "/v1/sessions", keys.admin)).text()).toContain(fixture.sessionId);
  });

  it("refuses a viewer on every route that writes (revoking one's own key aside)", async () => {
    const writes = ROUTE_SPECS.filter(
      (each) => each.method !== "GET" && specKey(each) !== "DELETE /v1/keys/:id",
    );
    expect(writes.length).toBeGreaterThanOrEqual(15);
    for (const spec of writes) {
      counts.auth += 1;
      const response = await send(spec, keys.viewer, spec.example(fixture));
      expect([specKey(spec), response.status]).toEqual([specKey(spec), 403]);
    }
    // Reads still work for a viewer.
    expect((await call("GET", "/v1/me", keys.viewer)).status).toBe(200);
    expect((await call("GET", "/v1/policy", keys.viewer)).status).toBe(200);
  });

  it("shows another org nothing of the first one", async () => {
    // Lookups of org A's resources first: the other org's own writes (same names) come after.
    const ordered = [...ROUTE_SPECS].sort(
      (a, b) => Number(a.crossOrg === "own") - Number(b.crossOrg === "own"),
    );
    for (const spec of ordered.filter((each) => each.auth !== "public")) {
      counts.crossOrg += 1;
      const response = await send(spec, keys.other, spec.example(fixture));
      const text = await bodyText(response, spec);
      const label = `${specKey(spec)} with another org's key: HTTP ${response.status} ${text.slice(0, 300)}`;
      if (spec.crossOrg === "not_found") expect([403, 404], label).toContain(response.status);
      else expect(response.status, label).toBeLessThan(500);
      expect(text, label).not.toContain(ORG_A_MARKER);
      expect(text, label).not.toContain(orgAId);
      expect(text, label).not.toContain(fixture.sessionId);
    }
    // The other org's writes landed in its own org: org A's policy, vault and memory are unchanged.
    const policy = await (await call("GET", "/v1/policy", keys.admin)).text();
    expect(policy).toContain(ORG_A_MARKER);
    const vault = await (await call("GET", `/v1/vaults/${fixture.vaultId}`, keys.admin)).text();
    expect(vault).toContain(ORG_A_MARKER);
    const memory = await (
      await call("GET", `/v1/file_store/content?path=${fixture.memoryPath}`, keys.admin)
    ).text();
    expect(memory).toContain(ORG_A_MARKER);
  });

  it("answers the owner's valid example with a 2xx (so the specs stay meaningful)", async () => {
    for (const spec of ROUTE_SPECS) {
      const key = spec.auth === "member" ? keys.member : keys.admin;
      const request = spec.example(fixture);
      const response = await send(spec, key, request);
      const text = await bodyText(response, spec);
      if (spec.exampleStatus !== undefined)
        expect(response.status, `${specKey(spec)}: ${text.slice(0, 300)}`).toBe(spec.exampleStatus);
      else expect(response.status, `${specKey(spec)}: ${text.slice(0, 300)}`).toBeLessThan(300);
      if (spec.method === "POST" && spec.path.startsWith("/v1/sessions"))
        await waitForIdle(fixture.sessionId);
    }
  });
});

// ---- fuzzing

const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("\u0000", "a\u0000b", "..", "../../etc/passwd", "%00", "%", "\uD800", "\uFFFF", " ", ""),
  fc.constantFrom("x".repeat(5000), "é".repeat(3000), "/".repeat(2000), `${"../".repeat(500)}etc/shadow`),
  fc.integer().map(String),
  fc.constantFrom("-1", "1e309", "NaN", "0x10", "9".repeat(400), "true", "null", "[]", "{}"),
);

const deepJson = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

const bodyArbitrary = (spec: RouteSpec) => {
  const example = spec.example(fixture).body;
  const mutatedExample =
    example && typeof example === "object" && !Array.isArray(example)
      ? fc
          .tuple(
            fc.constantFrom(...Object.keys(example), "extra"),
            fc.oneof(fc.jsonValue({ maxDepth: 3 }), nasty),
          )
          .map(([field, value]) => JSON.stringify({ ...(example as object), [field]: value }))
      : fc.constant(JSON.stringify(example ?? {}));
  // Huge bodies (deep nesting, over the 1 MiB limit) are rarer: each costs a megabyte on the wire.
  return fc.oneof(
    { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)), weight: 3 },
    { arbitrary: mutatedExample, weight: 4 },
    {
      arbitrary: nasty.map((value) =>
        JSON.stringify({ text: value, model: value, prompt: value, path: value }),
      ),
      weight: 3,
    },
    {
      arbitrary: fc.constantFrom("{", "[1,", '{"a":}', "\u0000", '"\\u0000"', "", "null", deepJson(10)),
      weight: 2,
    },
    {
      arbitrary: fc.constantFrom(deepJson(5000), deepJson(200_000), `{"x":"${"y".repeat(1_100_000)}"}`),
      weight: 1,
    },
  );
};

const queryArbitrary = (spec: RouteSpec) =>
  fc.dictionary(
    fc.oneof(fc.constantFrom(...(spec.queryKeys ?? ["q"])), fc.string({ maxLength: 10 })),
    nasty,
    { maxKeys: 4 },
  );

describe("fuzzing every route", () => {
  for (const spec of ROUTE_SPECS) {
    it(`${specKey(spec)} answers every input with < 500`, async () => {
      const example = spec.example(fixture);
      const key = spec.auth === "member" ? keys.member : keys.admin;
      const params = fc.record(
        Object.fromEntries(
          (spec.fuzz.params ?? []).map((name) => [
            name,
            fc.oneof(nasty, fc.constant(example.params?.[name] ?? "x")),
          ]),
        ) as Record<string, fc.Arbitrary<string>>,
      );
      const property = fc.asyncProperty(
        params,
        spec.fuzz.query ? fc.option(queryArbitrary(spec), { nil: undefined }) : fc.constant(undefined),
        spec.fuzz.body ? bodyArbitrary(spec) : fc.constant(undefined),
        async (fuzzedParams, fuzzedQuery, rawBody) => {
          counts.fuzz += 1;
          const url = buildUrl(spec, {
            params: { ...example.params, ...fuzzedParams },
            query: fuzzedQuery ?? example.query ?? {},
          });
          const response = await call(spec.method, url, key, {
            ...(rawBody === undefined ? {} : { rawBody }),
            ...(spec.isStream ? { isStream: true } : {}),
          });
          const text = spec.isStream && response.ok ? "" : await response.text();
          if (response.status >= 500)
            throw new Error(
              `HTTP ${response.status} for ${spec.method} ${url.slice(0, 300)}: ${text.slice(0, 300)}`,
            );
        },
      );
      // A seed of its own per route, so the sampled cases differ from route to route (huge bodies on some).
      await fc.assert(property, { numRuns: RUNS_PER_ROUTE, seed: routeSeed(spec), endOnFailure: true });
      // Fuzzed messages may have started turns: let them finish before the next route.
      if (spec.path.startsWith("/v1/sessions/:id")) await waitForIdle(fixture.sessionId);
    }, 180_000);
  }
});

// ---- raw HTTP

/** Sends raw bytes and returns the status of the first response line (0 when the server just closed). */
function rawRequest(payload: string | Buffer, options: { endAfterMs?: number } = {}): Promise<number> {
  const { port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1");
    let received = "";
    const timer = setTimeout(() => socket.destroy(), 15_000);
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      resolve(match ? Number(match[1]) : 0);
    });
    socket.on("connect", () => {
      socket.write(payload);
      if (options.endAfterMs !== undefined) setTimeout(() => socket.destroy(), options.endAfterMs);
      else socket.end();
    });
    socket.setTimeout(20_000, () => reject(new Error("raw request timed out")));
  });
}

describe("malformed raw HTTP", () => {
  it("never gets a 5xx, logs no failure for client aborts, and leaves the server up", async () => {
    const auth = `Authorization: Bearer ${keys.admin}\r\n`;
    const host = "Host: 127.0.0.1\r\n";
    const cases: { name: string; payload: string | Buffer; endAfterMs?: number }[] = [
      { name: "garbage request line", payload: "HELLO\r\n\r\n" },
      { name: "bad method", payload: `BREW /v1/sessions HTTP/1.1\r\n${host}\r\n` },
      { name: "HTTP/9", payload: `GET /healthz HTTP/9.9\r\n${host}\r\n` },
      { name: "NUL in the path", payload: `GET /v1/sessions/a\u0000b HTTP/1.1\r\n${host}${auth}\r\n` },
      {
        name: "huge header",
        payload: `GET /healthz HTTP/1.1\r\n${host}X-Big: ${"a".repeat(100_000)}\r\n\r\n`,
      },
      { name: "many headers", payload: `GET /healthz HTTP/1.1\r\n${host}${"X-A: b\r\n".repeat(3000)}\r\n` },
      {
        name: "bad JSON",
        payload: `POST /v1/sessions HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{"a":`,
      },
      {
        name: "wrong content type",
        payload: `POST /v1/sessions HTTP/1.1\r\n${host}${auth}Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      },
      {
        name: "content-length larger than the body, then the client goes away",
        payload: `POST /v1/sessions HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`,
        endAfterMs: 300,
      },
      {
        name: "truncated chunked body, then the client goes away",
        payload: `PUT /v1/policy HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"rules":`,
        endAfterMs: 300,
      },
      {
        name: "invalid chunk size",
        payload: `PUT /v1/policy HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      },
      {
        name: "both content-length and chunked",
        payload: `PUT /v1/policy HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      },
      {
        name: "body over the limit",
        payload: `POST /v1/sessions HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n${"x".repeat(2_000_000)}`,
      },
      {
        name: "invalid UTF-8 body",
        payload: Buffer.concat([
          Buffer.from(
            `POST /v1/sessions HTTP/1.1\r\n${host}${auth}Content-Type: application/json\r\nContent-Length: 20\r\nConnection: close\r\n\r\n`,
          ),
          Buffer.from('{"model":"\xff\xfe\xfd"}'.padEnd(20, " "), "latin1"),
        ]),
      },
      { name: "header without colon", payload: `GET /healthz HTTP/1.1\r\n${host}NoColonHere\r\n\r\n` },
      {
        name: "a client that goes away mid-stream of the events",
        payload: `GET /v1/sessions/${fixture?.sessionId ?? "x"}/events/stream HTTP/1.1\r\n${host}${auth}\r\n`,
        endAfterMs: 500,
      },
      { name: "nothing at all", payload: "", endAfterMs: 200 },
    ];
    const failuresBefore = logged.filter((line) => / failed: /.test(line)).length;
    for (const testCase of cases) {
      counts.raw += 1;
      const payload =
        testCase.name === "a client that goes away mid-stream of the events"
          ? `GET /v1/sessions/${fixture.sessionId}/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\n`
          : testCase.payload;
      const status = await rawRequest(
        payload,
        testCase.endAfterMs === undefined ? {} : { endAfterMs: testCase.endAfterMs },
      );
      statuses.push({ route: `raw: ${testCase.name}`, status, detail: "" });
      expect(status, testCase.name).toBeLessThan(500);
      if (testCase.name === "body over the limit") expect(status).toBe(413);
    }
    // Let the server notice the aborted requests, then check it logged no failure for them.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const failures = logged.filter((line) => / failed: /.test(line)).slice(failuresBefore);
    expect(failures).toEqual([]);
    expect((await call("GET", "/healthz", null)).status).toBe(200);
  });
});

describe("after everything", () => {
  it("saw zero 5xx and the server is healthy", async () => {
    const errors = statuses.filter((entry) => entry.status >= 500);
    expect(errors).toEqual([]);
    expect(logged.filter((line) => / failed: /.test(line))).toEqual([]);
    const health = await call("GET", "/healthz", null);
    expect(health.status).toBe(200);
    const own = await call("GET", `/v1/sessions/${fixture.sessionId}`, keys.admin);
    expect(own.status).toBe(200);
  });
});
