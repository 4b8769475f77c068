/**
 * The agents and environments resources through the pinned official SDK against a real server
 * (startServer on Postgres, real HTTP), plus raw HTTP for what the SDK hides: error bodies, unknown
 * fields, wrong types, huge bodies, garbage cursors and another org's ids.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { createDatabase } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type RunningServer, startServer } from "../src/start-server.js";

let testDatabase: TestDatabase;
let server: RunningServer;
let home: string;
const keys = { admin: "", member: "", other: "" };
let client: Anthropic;
let memberClient: Anthropic;
let otherClient: Anthropic;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-agents-api-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    OUTRIG_WORKER_ID: `agents-api-${process.pid}`,
  });
  server = await startServer(config, { log: () => undefined });
  keys.admin = server.bootstrapKey ?? "";
  const database = await createDatabase({ url: testDatabase.url });
  try {
    const org = await database.auth.ensureOrg("default");
    const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
    keys.member = (await database.auth.createApiKey(org.id, member.id, "member")).key;
    const other = await database.auth.createOrg("other-org");
    const mallory = await database.auth.createUser(other.id, { name: "mallory", role: "admin" });
    keys.other = (await database.auth.createApiKey(other.id, mallory.id, "mallory")).key;
  } finally {
    await database.close();
  }
  client = new Anthropic({ apiKey: keys.admin, baseURL: server.url, maxRetries: 0 });
  memberClient = new Anthropic({ apiKey: keys.member, baseURL: server.url, maxRetries: 0 });
  otherClient = new Anthropic({ apiKey: keys.other, baseURL: server.url, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

/** A raw request with the admin's key unless another is given; the body is JSON unless `raw`. */
async function call(
  method: string,
  route: string,
  options: { key?: string; body?: unknown; raw?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const response = await fetch(`${server.url}${route}`, {
    method,
    headers: {
      "x-api-key": options.key ?? keys.admin,
      ...(payload === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(payload === undefined ? {} : { body: payload }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Asserts the API's error shape and returns its message. */
function expectApiError(
  response: { status: number; body: Record<string, unknown> },
  status: number,
  type: string,
): string {
  expect(response.status, JSON.stringify(response.body)).toBe(status);
  expect(response.body).toMatchObject({ type: "error", error: { type } });
  expect(typeof response.body.request_id).toBe("string");
  return (response.body.error as { message: string }).message;
}

describe("agents through the SDK", () => {
  it("creates an agent with every default filled in, as the SDK's types show it", async () => {
    const agent = await client.beta.agents.create({
      name: "Coder",
      model: "claude-sonnet-4-5",
      system: "You write code.",
      description: "writes code",
      metadata: { team: "core" },
      tools: [
        {
          type: "agent_toolset_20260401",
          configs: [
            { name: "bash", permission_policy: { type: "always_ask" } },
            { name: "web_search", enabled: false },
            { name: "web_fetch", allowed_domains: ["docs.example.com"], url_sources: { user_input: "none" } },
          ],
        },
        {
          type: "custom",
          name: "lookup_order",
          description: "Looks up an order",
          input_schema: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
        },
      ],
      skills: [{ type: "custom", skill_id: "skill_abc123", version: "3" }],
    });
    expect(agent).toMatchObject({
      type: "agent",
      name: "Coder",
      version: 1,
      model: { id: "claude-sonnet-4-5", speed: "standard" },
      system: "You write code.",
      description: "writes code",
      metadata: { team: "core" },
      archived_at: null,
      mcp_servers: [],
      multiagent: null,
      execution_identity: { type: "service_account" },
      skills: [{ type: "custom", skill_id: "skill_abc123", version: "3" }],
    });
    expect(agent.id).toMatch(/^agent_[A-Za-z0-9]{20}$/);
    expect(new Date(agent.created_at).toISOString()).toBe(agent.created_at);
    const toolset = agent.tools[0];
    if (toolset?.type !== "agent_toolset_20260401") throw new Error("expected the toolset first");
    expect(toolset.default_config).toEqual({ enabled: true, permission_policy: { type: "always_allow" } });
    expect(toolset.configs.map((config) => config.name)).toEqual([
      "bash",
      "read",
      "write",
      "edit",
      "glob",
      "grep",
      "web_fetch",
      "web_search",
    ]);
    expect(toolset.configs[0]).toEqual({
      name: "bash",
      type: "bash",
      enabled: true,
      permission_policy: { type: "always_ask" },
    });
    expect(toolset.configs.find((config) => config.name === "web_search")?.enabled).toBe(false);
    expect(toolset.configs.find((config) => config.name === "web_fetch")).toEqual({
      name: "web_fetch",
      type: "web_fetch",
      enabled: true,
      permission_policy: { type: "always_allow" },
      allowed_domains: ["docs.example.com"],
      url_sources: { client_tool_results: null, server_tool_results: null, user_input: { type: "none" } },
    });
    expect(agent.tools[1]).toEqual({
      type: "custom",
      name: "lookup_order",
      description: "Looks up an order",
      input_schema: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
    });
    const fetched = await client.beta.agents.retrieve(agent.id);
    expect(fetched).toEqual(agent);
  });

  it("takes provider-qualified models and model objects, and refuses a model that names no provider", async () => {
    const openai = await client.beta.agents.create({ name: "o", model: "openai:gpt-5" });
    expect(openai.model).toEqual({ id: "openai:gpt-5", speed: "standard" });
    const object = await client.beta.agents.create({
      name: "c",
      model: { id: "claude-opus-4-5", speed: "fast", effort: "high" },
    });
    expect(object.model).toEqual({ id: "claude-opus-4-5", speed: "fast", effort: { type: "high" } });
    await expect(client.beta.agents.create({ name: "x", model: "gpt-5" })).rejects.toBeInstanceOf(
      Anthropic.BadRequestError,
    );
    const refused = await call("POST", "/v1/agents", { body: { name: "x", model: "gpt-5" } });
    expect(expectApiError(refused, 400, "invalid_request_error")).toMatch(/openai:gpt-5/);
  });

  it("updates into a new immutable version, keeps unchanged fields, and refuses a stale version with ConflictError", async () => {
    const agent = await client.beta.agents.create({
      name: "Versioned",
      model: "claude-sonnet-4-5",
      system: "v1 system",
      metadata: { a: "1", b: "2" },
    });
    const updated = await client.beta.agents.update(agent.id, {
      version: 1,
      description: "now described",
      metadata: { a: null, c: "3" },
    });
    expect(updated).toMatchObject({
      id: agent.id,
      version: 2,
      name: "Versioned",
      system: "v1 system",
      description: "now described",
      metadata: { b: "2", c: "3" },
      created_at: agent.created_at,
    });
    await expect(client.beta.agents.update(agent.id, { version: 1, name: "stale" })).rejects.toBeInstanceOf(
      Anthropic.ConflictError,
    );
    const stale = await call("POST", `/v1/agents/${agent.id}`, { body: { version: 1, name: "stale" } });
    expectApiError(stale, 409, "conflict_error");
    // The old version is still there, unchanged, and the current one did not move.
    const first = await client.beta.agents.retrieve(agent.id, { version: 1 });
    expect(first).toMatchObject({ version: 1, description: null, metadata: { a: "1", b: "2" } });
    expect((await client.beta.agents.retrieve(agent.id)).version).toBe(2);
    // Without `version` the update applies to whatever is current; one that changes nothing makes no version.
    const same = await client.beta.agents.update(agent.id, { name: "Versioned" });
    expect(same.version).toBe(2);
    const third = await client.beta.agents.update(agent.id, { system: null });
    expect(third).toMatchObject({ version: 3, system: null });
    await expect(client.beta.agents.retrieve(agent.id, { version: 9 })).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
  });

  it("lets exactly one of several concurrent updates from the same version win; version rows never change", async () => {
    const agent = await client.beta.agents.create({ name: "Raced", model: "claude-sonnet-4-5" });
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, index) =>
        client.beta.agents.update(agent.id, { version: 1, system: `writer ${index}` }),
      ),
    );
    const won = results.filter((result) => result.status === "fulfilled");
    const lost = results.filter((result) => result.status === "rejected");
    expect(won).toHaveLength(1);
    for (const result of lost) expect(result.reason).toBeInstanceOf(Anthropic.ConflictError);
    const current = await client.beta.agents.retrieve(agent.id);
    expect(current.version).toBe(2);
    expect(current.system).toBe((won[0] as PromiseFulfilledResult<{ system: string | null }>).value.system);
    const database = await createDatabase({ url: testDatabase.url });
    try {
      await expect(
        database.pool.query("UPDATE agent_versions SET definition = '{}' WHERE agent_id = $1", [agent.id]),
      ).rejects.toThrow(/immutable/);
    } finally {
      await database.close();
    }
    expect((await client.beta.agents.retrieve(agent.id, { version: 1 })).system).toBeNull();
  });

  it("pages the versions list newest first over more than one page", async () => {
    const agent = await client.beta.agents.create({ name: "Many", model: "claude-sonnet-4-5" });
    for (let version = 1; version < 7; version += 1)
      await client.beta.agents.update(agent.id, { version, system: `system ${version + 1}` });
    const first = await client.beta.agents.versions.list(agent.id, { limit: 3 });
    expect(first.data.map((entry) => entry.version)).toEqual([7, 6, 5]);
    expect(first.hasNextPage()).toBe(true);
    const seen: number[] = [];
    for await (const entry of client.beta.agents.versions.list(agent.id, { limit: 3 }))
      seen.push(entry.version);
    expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1]);
    const garbage = await call("GET", `/v1/agents/${agent.id}/versions?page=not-a-cursor`);
    expectApiError(garbage, 400, "invalid_request_error");
  });

  it("archives an agent, lists it only with include_archived, and filters by created_at", async () => {
    const before = new Date();
    const kept = await client.beta.agents.create({ name: "Kept", model: "claude-sonnet-4-5" });
    const gone = await client.beta.agents.create({ name: "Gone", model: "claude-sonnet-4-5" });
    const archived = await client.beta.agents.archive(gone.id);
    expect(archived.archived_at).not.toBeNull();
    expect((await client.beta.agents.archive(gone.id)).archived_at).toBe(archived.archived_at);
    const listed: string[] = [];
    for await (const agent of client.beta.agents.list({ limit: 2 })) listed.push(agent.id);
    expect(listed).toContain(kept.id);
    expect(listed).not.toContain(gone.id);
    expect(new Set(listed).size).toBe(listed.length);
    const all: string[] = [];
    for await (const agent of client.beta.agents.list({ include_archived: true, limit: 2 }))
      all.push(agent.id);
    expect(all).toContain(gone.id);
    const recent = await client.beta.agents.list({
      "created_at[gte]": kept.created_at,
      include_archived: true,
    });
    expect(recent.data.map((agent) => agent.id)).toEqual([gone.id, kept.id]);
    const older = await client.beta.agents.list({
      "created_at[lte]": new Date(before.getTime() - 1).toISOString(),
    });
    expect(older.data.map((agent) => agent.id)).not.toContain(kept.id);
    await expect(client.beta.agents.update(gone.id, { name: "again" })).rejects.toBeInstanceOf(
      Anthropic.BadRequestError,
    );
  });

  it("answers another org's agent with NotFoundError on every route, and lists none of it", async () => {
    const agent = await client.beta.agents.create({ name: "Private", model: "claude-sonnet-4-5" });
    await expect(otherClient.beta.agents.retrieve(agent.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(otherClient.beta.agents.update(agent.id, { name: "mine" })).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(otherClient.beta.agents.archive(agent.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(otherClient.beta.agents.versions.list(agent.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    const theirs = await otherClient.beta.agents.list({ include_archived: true });
    expect(theirs.data.map((each) => each.id)).not.toContain(agent.id);
    expect((await client.beta.agents.retrieve(agent.id)).name).toBe("Private");
    // A member of the same org sees it.
    expect((await memberClient.beta.agents.retrieve(agent.id)).id).toBe(agent.id);
  });

  it("refuses bad input with a 4xx in the API's error shape", async () => {
    const valid = { name: "ok", model: "claude-sonnet-4-5" };
    const cases: { body?: unknown; raw?: string; status: number; type: string; message?: RegExp }[] = [
      { body: { ...valid, colour: "blue" }, status: 400, type: "invalid_request_error", message: /colour/ },
      { body: { ...valid, name: 5 }, status: 400, type: "invalid_request_error", message: /name/ },
      { body: { model: "claude-sonnet-4-5" }, status: 400, type: "invalid_request_error", message: /name/ },
      { body: { ...valid, name: "" }, status: 400, type: "invalid_request_error" },
      { body: { ...valid, tools: "bash" }, status: 400, type: "invalid_request_error" },
      {
        body: { ...valid, tools: [{ type: "agent_toolset_20260401", configs: [{ name: "teleport" }] }] },
        status: 400,
        type: "invalid_request_error",
      },
      {
        body: {
          ...valid,
          tools: [
            { type: "agent_toolset_20260401", default_config: { permission_policy: { type: "auto" } } },
          ],
        },
        status: 400,
        type: "invalid_request_error",
        message: /auto.*not supported/,
      },
      {
        body: {
          ...valid,
          tools: [{ type: "agent_toolset_20260401", configs: [{ name: "bash", type: "read" }] }],
        },
        status: 400,
        type: "invalid_request_error",
      },
      {
        body: {
          ...valid,
          tools: [
            { type: "agent_toolset_20260401", configs: [{ name: "bash" }, { name: "bash", enabled: false }] },
          ],
        },
        status: 400,
        type: "invalid_request_error",
        message: /twice/,
      },
      {
        body: {
          ...valid,
          tools: [
            { type: "agent_toolset_20260401", configs: [{ name: "read", allowed_domains: ["a.com"] }] },
          ],
        },
        status: 400,
        type: "invalid_request_error",
        message: /allowed_domains/,
      },
      {
        body: {
          ...valid,
          tools: [
            { type: "custom", name: "dup", description: "a", input_schema: { type: "object" } },
            { type: "custom", name: "dup", description: "b", input_schema: { type: "object" } },
          ],
        },
        status: 400,
        type: "invalid_request_error",
        message: /already named dup/,
      },
      {
        body: {
          ...valid,
          tools: [{ type: "custom", name: "bad name!", description: "a", input_schema: { type: "object" } }],
        },
        status: 400,
        type: "invalid_request_error",
      },
      {
        body: {
          ...valid,
          tools: [{ type: "custom", name: "s", description: "a", input_schema: { type: "string" } }],
        },
        status: 400,
        type: "invalid_request_error",
      },
      {
        body: { ...valid, tools: [{ type: "mcp_toolset", mcp_server_name: "nowhere" }] },
        status: 400,
        type: "invalid_request_error",
        message: /nowhere/,
      },
      {
        body: { ...valid, mcp_servers: [{ type: "url", name: "gh", url: "https://mcp.example.com" }] },
        status: 400,
        type: "invalid_request_error",
        message: /not used by any mcp_toolset/,
      },
      {
        body: {
          ...valid,
          metadata: Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, "v"])),
        },
        status: 400,
        type: "invalid_request_error",
      },
      { body: { ...valid, metadata: { key: 5 } }, status: 400, type: "invalid_request_error" },
      {
        body: { ...valid, execution_identity: { type: "aws_role", role_arn: "arn:x" } },
        status: 400,
        type: "invalid_request_error",
      },
      { raw: "{not json", status: 400, type: "invalid_request_error" },
      {
        raw: JSON.stringify({ ...valid, system: "x".repeat(2 * 1024 * 1024) }),
        status: 413,
        type: "request_too_large",
      },
    ];
    for (const entry of cases) {
      const response = await call("POST", "/v1/agents", {
        ...(entry.raw === undefined ? { body: entry.body } : { raw: entry.raw }),
      });
      const message = expectApiError(response, entry.status, entry.type);
      if (entry.message) expect(message).toMatch(entry.message);
    }
    // MCP toolsets validate and store; their default is always_ask.
    const mcp = await client.beta.agents.create({
      ...valid,
      mcp_servers: [{ type: "url", name: "gh", url: "https://mcp.example.com/github" }],
      tools: [
        { type: "mcp_toolset", mcp_server_name: "gh", configs: [{ name: "create_issue", enabled: false }] },
      ],
    });
    expect(mcp.tools[0]).toEqual({
      type: "mcp_toolset",
      mcp_server_name: "gh",
      default_config: { enabled: true, permission_policy: { type: "always_ask" } },
      configs: [{ name: "create_issue", enabled: false, permission_policy: { type: "always_ask" } }],
    });
    const update = await call("POST", `/v1/agents/${mcp.id}`, { body: { version: "1" } });
    expectApiError(update, 400, "invalid_request_error");
    const badQuery = await call("GET", "/v1/agents?include_archived=maybe");
    expectApiError(badQuery, 400, "invalid_request_error");
    const badId = await call("GET", "/v1/agents/not-an-agent");
    expectApiError(badId, 404, "not_found_error");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});

describe("environments through the SDK", () => {
  it("creates a cloud environment with every default filled in, retrieves, updates and lists it", async () => {
    const environment = await client.beta.environments.create({
      name: "python-dev",
      description: "data work",
      metadata: { team: "data" },
      config: {
        type: "cloud",
        networking: {
          type: "limited",
          allowed_hosts: ["PyPI.org", "api.github.com"],
          allow_package_managers: true,
        },
        packages: { pip: ["pandas==2.2.0", "numpy"], npm: ["express@4"] },
      },
    });
    expect(environment).toMatchObject({
      type: "environment",
      name: "python-dev",
      description: "data work",
      metadata: { team: "data" },
      scope: "organization",
      archived_at: null,
      config: {
        type: "cloud",
        networking: {
          type: "limited",
          allowed_hosts: ["pypi.org", "api.github.com"],
          allow_package_managers: true,
          allow_mcp_servers: false,
        },
        packages: {
          type: "packages",
          apt: [],
          cargo: [],
          gem: [],
          go: [],
          npm: ["express@4"],
          pip: ["pandas==2.2.0", "numpy"],
        },
      },
    });
    expect(environment.id).toMatch(/^env_[A-Za-z0-9]{20}$/);
    expect(await client.beta.environments.retrieve(environment.id)).toEqual(environment);

    const bare = await client.beta.environments.create({ name: "bare" });
    expect(bare.config).toEqual({
      type: "cloud",
      networking: {
        type: "limited",
        allowed_hosts: [],
        allow_package_managers: false,
        allow_mcp_servers: false,
      },
      packages: { type: "packages", apt: [], cargo: [], gem: [], go: [], npm: [], pip: [] },
    });

    // networking replaces, packages carry over, metadata is a patch.
    const updated = await client.beta.environments.update(environment.id, {
      name: "python-dev-2",
      metadata: { team: null, owner: "ana" },
      config: { type: "cloud", networking: { type: "limited", allowed_hosts: ["api.github.com"] } },
    });
    expect(updated).toMatchObject({
      id: environment.id,
      name: "python-dev-2",
      metadata: { owner: "ana" },
      created_at: environment.created_at,
      config: {
        networking: { type: "limited", allowed_hosts: ["api.github.com"], allow_package_managers: false },
        packages: { pip: ["pandas==2.2.0", "numpy"] },
      },
    });
    await expect(
      client.beta.environments.update(environment.id, { config: { type: "self_hosted" } }),
    ).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    const typeChange = await call("POST", `/v1/environments/${environment.id}`, {
      body: { config: { type: "self_hosted" } },
    });
    expect(expectApiError(typeChange, 400, "invalid_request_error")).toMatch(/cannot change/);
    expect((typeChange.body.error as { code: string }).code).toBe("invalid_config_type_change");

    const seen: string[] = [];
    for await (const each of client.beta.environments.list({ limit: 1 })) seen.push(each.id);
    expect(seen).toEqual(expect.arrayContaining([environment.id, bare.id]));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("accepts a self_hosted environment in shape", async () => {
    const environment = await client.beta.environments.create({
      name: "on-prem",
      config: { type: "self_hosted" },
    });
    expect(environment.config).toEqual({ type: "self_hosted" });
  });

  it("allows unrestricted networking only where the org's egress policy allows it (403 otherwise)", async () => {
    const open = {
      name: "open",
      config: { type: "cloud" as const, networking: { type: "unrestricted" as const } },
    };
    await expect(client.beta.environments.create(open)).rejects.toBeInstanceOf(
      Anthropic.PermissionDeniedError,
    );
    const refused = await call("POST", "/v1/environments", { body: open });
    expect(expectApiError(refused, 403, "permission_error")).toMatch(/allowUnrestrictedEnvironments/);
    const limited = await client.beta.environments.create({ name: "narrow" });
    await expect(
      client.beta.environments.update(limited.id, {
        config: { type: "cloud", networking: { type: "unrestricted" } },
      }),
    ).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
    // A member cannot change the org's policy; an admin can.
    const memberPut = await call("PUT", "/v1/egress-policy", {
      key: keys.member,
      body: { allowedHosts: [], allowUnrestrictedEnvironments: true },
    });
    expectApiError(memberPut, 403, "permission_error");
    const put = await call("PUT", "/v1/egress-policy", {
      body: { allowedHosts: ["api.github.com"], allowUnrestrictedEnvironments: true },
    });
    expect(put.status).toBe(200);
    try {
      const created = await memberClient.beta.environments.create(open);
      expect(created.config).toMatchObject({ type: "cloud", networking: { type: "unrestricted" } });
      const widened = await client.beta.environments.update(limited.id, {
        config: { type: "cloud", networking: { type: "unrestricted" } },
      });
      expect(widened.config).toMatchObject({ networking: { type: "unrestricted" } });
    } finally {
      await call("DELETE", "/v1/egress-policy");
    }
  });

  it("archives and deletes environments, scoped by org", async () => {
    const environment = await client.beta.environments.create({ name: "short-lived" });
    await expect(otherClient.beta.environments.retrieve(environment.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(otherClient.beta.environments.update(environment.id, { name: "x" })).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(otherClient.beta.environments.archive(environment.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(otherClient.beta.environments.delete(environment.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    const theirs = await otherClient.beta.environments.list({ include_archived: true });
    expect(theirs.data.map((each) => each.id)).not.toContain(environment.id);

    const archived = await client.beta.environments.archive(environment.id);
    expect(archived.archived_at).not.toBeNull();
    const listed = await client.beta.environments.list({ limit: 1000 });
    expect(listed.data.map((each) => each.id)).not.toContain(environment.id);
    const withArchived = await client.beta.environments.list({ include_archived: true, limit: 1000 });
    expect(withArchived.data.map((each) => each.id)).toContain(environment.id);
    await expect(client.beta.environments.update(environment.id, { name: "again" })).rejects.toBeInstanceOf(
      Anthropic.BadRequestError,
    );

    const deleted = await client.beta.environments.delete(environment.id);
    expect(deleted).toEqual({ id: environment.id, type: "environment_deleted" });
    await expect(client.beta.environments.retrieve(environment.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(client.beta.environments.delete(environment.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
  });

  it("refuses bad environment input with a 4xx in the API's error shape", async () => {
    const cases: { body?: unknown; raw?: string; status: number; type: string; message?: RegExp }[] = [
      { body: { name: "x", colour: "blue" }, status: 400, type: "invalid_request_error", message: /colour/ },
      { body: { name: 7 }, status: 400, type: "invalid_request_error" },
      { body: {}, status: 400, type: "invalid_request_error", message: /name/ },
      { body: { name: "x", config: { type: "moon" } }, status: 400, type: "invalid_request_error" },
      {
        body: {
          name: "x",
          config: { type: "cloud", networking: { type: "limited", allowed_hosts: ["https://x.com/path"] } },
        },
        status: 400,
        type: "invalid_request_error",
        message: /host name/,
      },
      {
        body: {
          name: "x",
          config: { type: "cloud", networking: { type: "limited", allowed_hosts: ["10.0.0.1"] } },
        },
        status: 400,
        type: "invalid_request_error",
      },
      {
        body: { name: "x", config: { type: "cloud", packages: { pip: ["pandas; rm -rf /"] } } },
        status: 400,
        type: "invalid_request_error",
      },
      {
        body: { name: "x", config: { type: "cloud", packages: { brew: ["wget"] } } },
        status: 400,
        type: "invalid_request_error",
      },
      {
        body: { name: "x", config: { type: "self_hosted", networking: { type: "unrestricted" } } },
        status: 400,
        type: "invalid_request_error",
      },
      { body: { name: "x", scope: "galaxy" }, status: 400, type: "invalid_request_error" },
      {
        raw: JSON.stringify({ name: "x", description: "y".repeat(2 * 1024 * 1024) }),
        status: 413,
        type: "request_too_large",
      },
    ];
    for (const entry of cases) {
      const response = await call("POST", "/v1/environments", {
        ...(entry.raw === undefined ? { body: entry.body } : { raw: entry.raw }),
      });
      const message = expectApiError(response, entry.status, entry.type);
      if (entry.message) expect(message).toMatch(entry.message);
    }
    expectApiError(await call("GET", "/v1/environments?page=garbage"), 400, "invalid_request_error");
    expectApiError(await call("GET", "/v1/environments/env_doesnotexist"), 404, "not_found_error");
    expectApiError(await call("DELETE", "/v1/environments/nope"), 404, "not_found_error");
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
