/**
 * Memory stores through the pinned official SDK against a real server (startServer on Postgres): every
 * method of `client.beta.memoryStores` (stores, memories, memory versions) with its typed responses; the
 * content_sha256 precondition (409 memory_precondition_failed_error), path conflicts, redaction gone from
 * every read path, and raw HTTP for what the SDK hides (error bodies, strict bodies, cursors, other orgs).
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { createDatabase, type Database, memoryStoreNamespace } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type RunningServer, startServer } from "../src/start-server.js";

let testDatabase: TestDatabase;
let database: Database;
let server: RunningServer;
let home: string;
let client: Anthropic;
let otherClient: Anthropic;
let apiKey = "";
let otherKey = "";
let orgId = "";
let keyId = "";

const sha = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-memory-stores-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-memory-stores",
    OUTRIG_WORKER_ID: `memory-stores-${process.pid}`,
  });
  server = await startServer(config, { log: () => {} });
  apiKey = server.bootstrapKey ?? "";
  database = await createDatabase({ url: testDatabase.url });
  const principal = await database.auth.authenticate(apiKey);
  orgId = principal?.orgId ?? "";
  keyId = principal?.keyId ?? "";
  const other = await database.auth.createOrg("memory-other-org");
  const mallory = await database.auth.createUser(other.id, { name: "mallory", role: "admin" });
  otherKey = (await database.auth.createApiKey(other.id, mallory.id, "mallory")).key;
  client = new Anthropic({ apiKey, baseURL: server.url, maxRetries: 0 });
  otherClient = new Anthropic({ apiKey: otherKey, baseURL: server.url, maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await server?.close();
  await database?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

const raw = (method: string, url: string, options: { body?: string; key?: string } = {}) =>
  fetch(`${server.url}${url}`, {
    method,
    headers: {
      "x-api-key": options.key ?? apiKey,
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(options.body === undefined ? {} : { body: options.body }),
  });

describe("memory stores through the SDK", () => {
  it("creates, retrieves, updates, lists, archives and deletes stores", async () => {
    const created = await client.beta.memoryStores.create({
      name: "Team Notes",
      description: "What the team learned",
      metadata: { owner: "ada" },
    });
    expect(created).toMatchObject({
      type: "memory_store",
      name: "Team Notes",
      description: "What the team learned",
      metadata: { owner: "ada" },
      archived_at: null,
    });
    expect(created.id).toMatch(/^memstore_/);
    expect(Number.isNaN(Date.parse(created.created_at))).toBe(false);

    const retrieved = await client.beta.memoryStores.retrieve(created.id);
    expect(retrieved).toEqual(created);

    const updated = await client.beta.memoryStores.update(created.id, {
      name: "Team notes v2",
      metadata: { owner: null, team: "core" },
    });
    expect(updated.name).toBe("Team notes v2");
    expect(updated.metadata).toEqual({ team: "core" });
    expect(updated.description).toBe("What the team learned");

    const second = await client.beta.memoryStores.create({ name: "second" });
    expect(second.description).toBe("");
    const third = await client.beta.memoryStores.create({ name: "third" });
    const archived = await client.beta.memoryStores.archive(third.id);
    expect(archived.archived_at).not.toBeNull();

    // Two per page: the SDK follows next_page until it is null.
    const listed: string[] = [];
    for await (const store of client.beta.memoryStores.list({ limit: 1 })) listed.push(store.id);
    expect(listed).toEqual([second.id, created.id]);
    const withArchived: string[] = [];
    for await (const store of client.beta.memoryStores.list({ include_archived: true, limit: 2 }))
      withArchived.push(store.id);
    expect(withArchived).toEqual([third.id, second.id, created.id]);

    // An archived store's memories cannot be created; the store can still be deleted.
    await expect(
      client.beta.memoryStores.memories.create(third.id, { path: "/x.md", content: "x" }),
    ).rejects.toBeInstanceOf(Anthropic.ConflictError);
    const deleted = await client.beta.memoryStores.delete(third.id);
    expect(deleted).toEqual({ id: third.id, type: "memory_store_deleted" });
    await expect(client.beta.memoryStores.retrieve(third.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("creates, retrieves, updates (with the content_sha256 precondition), lists and deletes memories", async () => {
    const store = await client.beta.memoryStores.create({ name: "memories" });
    const memories = client.beta.memoryStores.memories;
    const created = await memories.create(store.id, { path: "/projects/foo/notes.md", content: "one\n" });
    expect(created).toMatchObject({
      type: "memory",
      memory_store_id: store.id,
      path: "/projects/foo/notes.md",
      content: null, // view=basic by default on create
      content_sha256: sha("one\n"),
      content_size_bytes: 4,
    });
    expect(created.id).toMatch(/^mem_/);
    expect(created.memory_version_id).toMatch(/^memver_/);
    const full = await memories.create(store.id, { path: "/top.md", content: "top", view: "full" });
    expect(full.content).toBe("top");

    const retrieved = await memories.retrieve(created.id, { memory_store_id: store.id });
    expect(retrieved.content).toBe("one\n");
    const basic = await memories.retrieve(created.id, { memory_store_id: store.id, view: "basic" });
    expect(basic.content).toBeNull();

    // A fresh precondition applies; a stale one is a 409 with the API's error type.
    const second = await memories.update(created.id, {
      memory_store_id: store.id,
      content: "one\ntwo\n",
      precondition: { type: "content_sha256", content_sha256: sha("one\n") },
    });
    expect(second.content_sha256).toBe(sha("one\ntwo\n"));
    expect(second.memory_version_id).not.toBe(created.memory_version_id);
    const stale = await memories
      .update(created.id, {
        memory_store_id: store.id,
        content: "lost",
        precondition: { type: "content_sha256", content_sha256: sha("one\n") },
      })
      .catch((error: unknown) => error);
    expect(stale).toBeInstanceOf(Anthropic.ConflictError);
    expect((stale as InstanceType<typeof Anthropic.ConflictError>).error).toMatchObject({
      type: "error",
      error: { type: "memory_precondition_failed_error", code: "memory_precondition_failed" },
    });
    expect((await memories.retrieve(created.id, { memory_store_id: store.id })).content).toBe("one\ntwo\n");
    // The same content with a stale hash succeeds and writes no version.
    const same = await memories.update(created.id, {
      memory_store_id: store.id,
      content: "one\ntwo\n",
      precondition: { type: "content_sha256", content_sha256: sha("old") },
    });
    expect(same.memory_version_id).toBe(second.memory_version_id);

    // Rename keeps the id; a path taken by another memory, or overlapping one, is a path conflict.
    const renamed = await memories.update(created.id, {
      memory_store_id: store.id,
      path: "/projects/notes.md",
    });
    expect(renamed.id).toBe(created.id);
    expect(renamed.path).toBe("/projects/notes.md");
    const clash = await memories
      .create(store.id, { path: "/projects/notes.md", content: "dup" })
      .catch((error: unknown) => error);
    expect(clash).toBeInstanceOf(Anthropic.ConflictError);
    expect((clash as InstanceType<typeof Anthropic.ConflictError>).error).toMatchObject({
      error: { type: "memory_path_conflict_error" },
    });
    const overlap = await memories
      .create(store.id, { path: "/top.md/child.md", content: "x" })
      .catch((error: unknown) => error);
    expect((overlap as InstanceType<typeof Anthropic.ConflictError>).error).toMatchObject({
      error: { type: "memory_path_conflict_error" },
    });

    await memories.create(store.id, { path: "/projects/deep/a/b.md", content: "b" });
    const all: string[] = [];
    for await (const item of memories.list(store.id, { limit: 1 })) all.push(item.path);
    expect(all).toEqual(["/projects/deep/a/b.md", "/projects/notes.md", "/top.md"]);
    const shallow: { type: string; path: string }[] = [];
    for await (const item of memories.list(store.id, { path_prefix: "/projects/", depth: 1, limit: 1 }))
      shallow.push({ type: item.type, path: item.path });
    expect(shallow).toEqual([
      { type: "memory_prefix", path: "/projects/deep/" },
      { type: "memory", path: "/projects/notes.md" },
    ]);
    const fullPage = await memories.list(store.id, { view: "full", limit: 100 });
    expect(fullPage.data.length).toBe(3);
    expect(fullPage.data.every((item) => item.type === "memory" && typeof item.content === "string")).toBe(
      true,
    );

    // Delete with a stale expected hash changes nothing; with the right one the memory goes.
    await expect(
      memories.delete(created.id, { memory_store_id: store.id, expected_content_sha256: sha("nope") }),
    ).rejects.toBeInstanceOf(Anthropic.ConflictError);
    const deleted = await memories.delete(created.id, {
      memory_store_id: store.id,
      expected_content_sha256: sha("one\ntwo\n"),
    });
    expect(deleted).toEqual({ id: created.id, type: "memory_deleted" });
    await expect(memories.retrieve(created.id, { memory_store_id: store.id })).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
  });

  it("lists, retrieves and redacts versions; a redacted version's content is gone from every read path", async () => {
    const store = await client.beta.memoryStores.create({ name: "versions" });
    const memories = client.beta.memoryStores.memories;
    const versions = client.beta.memoryStores.memoryVersions;
    const secret = "password=hunter2-d41d8cd9";
    const memory = await memories.create(store.id, { path: "/creds.md", content: `${secret}\n` });
    const v1 = memory.memory_version_id;
    await memories.update(memory.id, { memory_store_id: store.id, content: "redacted below\n" });
    await memories.update(memory.id, { memory_store_id: store.id, path: "/moved.md" });

    const listed: { id: string; operation: string; path: string | null | undefined }[] = [];
    for await (const version of versions.list(store.id, { limit: 2 }))
      listed.push({ id: version.id, operation: version.operation, path: version.path });
    expect(listed.map((each) => each.operation)).toEqual(["modified", "modified", "created"]);
    expect(listed.at(-1)).toMatchObject({ id: v1, path: "/creds.md" });
    expect(listed[0]?.path).toBe("/moved.md");
    const byMemory = await versions.list(store.id, { memory_id: memory.id, operation: "created" });
    expect(byMemory.data.map((each) => each.id)).toEqual([v1]);

    const first = await versions.retrieve(v1, { memory_store_id: store.id });
    expect(first).toMatchObject({
      type: "memory_version",
      memory_id: memory.id,
      memory_store_id: store.id,
      content: `${secret}\n`,
      content_sha256: sha(`${secret}\n`),
      created_by: { type: "api_actor", api_key_id: keyId },
      redacted_at: null,
    });

    // The current version cannot be redacted; an older one can.
    const current = (await memories.retrieve(memory.id, { memory_store_id: store.id })).memory_version_id;
    await expect(versions.redact(current, { memory_store_id: store.id })).rejects.toBeInstanceOf(
      Anthropic.ConflictError,
    );
    const redacted = await versions.redact(v1, { memory_store_id: store.id });
    expect(redacted).toMatchObject({
      id: v1,
      content: null,
      content_sha256: null,
      content_size_bytes: null,
      path: null,
      redacted_by: { type: "api_actor", api_key_id: keyId },
    });
    expect(redacted.redacted_at).not.toBeNull();

    // Gone from the API (retrieve and list, full view), from the file store's every read, and from the
    // database row itself.
    const again = await versions.retrieve(v1, { memory_store_id: store.id, view: "full" });
    expect(again.content).toBeNull();
    const page = await raw("GET", `/v1/memory_stores/${store.id}/memory_versions?view=full`);
    expect(await page.text()).not.toContain("hunter2");
    const scope = { orgId, namespace: memoryStoreNamespace(store.id) };
    const { rows } = await database.pool.query<{ content: Buffer | null }>(
      "SELECT content FROM file_versions WHERE org_id = $1 AND namespace = $2 AND id = $3",
      [scope.orgId, scope.namespace, v1],
    );
    expect(rows).toEqual([{ content: null }]);
    const allContent = await database.pool.query<{ content: Buffer | null }>(
      "SELECT content FROM file_versions WHERE org_id = $1 AND namespace = $2",
      [scope.orgId, scope.namespace],
    );
    expect(allContent.rows.some((row) => row.content?.toString("utf8").includes("hunter2"))).toBe(false);
  });
});

describe("memory stores over raw HTTP", () => {
  it("answers another org's ids with 404 and never shows its memories", async () => {
    const store = await client.beta.memoryStores.create({ name: "private" });
    const memory = await client.beta.memoryStores.memories.create(store.id, { path: "/a.md", content: "a" });
    await expect(otherClient.beta.memoryStores.retrieve(store.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(
      otherClient.beta.memoryStores.memories.retrieve(memory.id, { memory_store_id: store.id }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(otherClient.beta.memoryStores.delete(store.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(
      otherClient.beta.memoryStores.memoryVersions.redact(memory.memory_version_id, {
        memory_store_id: store.id,
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    const theirs = await otherClient.beta.memoryStores.list();
    expect(theirs.data.map((each) => each.id)).not.toContain(store.id);
    const response = await raw("GET", `/v1/memory_stores/${store.id}`, { key: otherKey });
    const body = (await response.json()) as { type: string; error: { type: string }; request_id: string };
    expect(response.status).toBe(404);
    expect(body).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    expect(body.request_id).toMatch(/^req_/);
    // Still there for its owner.
    expect((await client.beta.memoryStores.retrieve(store.id)).id).toBe(store.id);
  });

  it("refuses bad input with the API's error shape and stays up", async () => {
    const store = await client.beta.memoryStores.create({ name: "input" });
    const forged = (position: unknown) => Buffer.from(JSON.stringify(position)).toString("base64url");
    const cases: [string, string, string | undefined, number][] = [
      [
        "GET",
        `/v1/memory_stores?page=${forged({ created_at: "yesterday", id: "memstore_x" })}`,
        undefined,
        400,
      ],
      [
        "GET",
        `/v1/memory_stores?page=${forged({ created_at: "2026-01-01T00:00:00.000000Z", id: "a\u0000" })}`,
        undefined,
        400,
      ],
      [
        "GET",
        `/v1/memory_stores/${store.id}/memories?page=${forged({ after: "/\u0000", is_prefix: false })}`,
        undefined,
        400,
      ],
      ["GET", `/v1/memory_stores/${store.id}/memory_versions?page=${forged({ seq: 1e300 })}`, undefined, 400],
      ["POST", "/v1/memory_stores", JSON.stringify({ name: "" }), 400],
      ["POST", "/v1/memory_stores", JSON.stringify({ name: "x", extra: 1 }), 400],
      ["POST", "/v1/memory_stores", JSON.stringify({ name: 42 }), 400],
      ["POST", "/v1/memory_stores", JSON.stringify({ name: "a\u0007b" }), 400],
      ["POST", "/v1/memory_stores", JSON.stringify({ name: "x", description: "d".repeat(1025) }), 400],
      [
        "POST",
        "/v1/memory_stores",
        JSON.stringify({
          name: "x",
          metadata: Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, "v"])),
        }),
        400,
      ],
      ["POST", "/v1/memory_stores", "{not json", 400],
      ["POST", "/v1/memory_stores", '{"name":"x","metadata":{"k":"\\ud800"}}', 400],
      ["GET", "/v1/memory_stores?created_at[gte]=0000-01-01T00:00:00Z", undefined, 400],
      ["GET", `/v1/memory_stores/${store.id}/memory_versions?session_id=%00`, undefined, 400],
      ["GET", "/v1/memory_stores?page=garbage", undefined, 400],
      ["GET", "/v1/memory_stores?limit=0", undefined, 400],
      ["GET", "/v1/memory_stores?bogus=1", undefined, 400],
      ["GET", "/v1/memory_stores/memstore_nope", undefined, 404],
      ["GET", "/v1/memory_stores/%00", undefined, 404],
      [
        "POST",
        `/v1/memory_stores/${store.id}/memories`,
        JSON.stringify({ path: "rel.md", content: "x" }),
        400,
      ],
      [
        "POST",
        `/v1/memory_stores/${store.id}/memories`,
        JSON.stringify({ path: "/a//b", content: "x" }),
        400,
      ],
      [
        "POST",
        `/v1/memory_stores/${store.id}/memories`,
        JSON.stringify({ path: "/a/../b", content: "x" }),
        400,
      ],
      [
        "POST",
        `/v1/memory_stores/${store.id}/memories`,
        JSON.stringify({ path: `/${Array.from({ length: 21 }, () => "s").join("/")}`, content: "x" }),
        400,
      ],
      [
        "POST",
        `/v1/memory_stores/${store.id}/memories`,
        JSON.stringify({ path: "/e\u0301.md", content: "x" }),
        400,
      ],
      [
        "POST",
        `/v1/memory_stores/${store.id}/memories`,
        JSON.stringify({ path: "/big.md", content: "x".repeat(102_401) }),
        400,
      ],
      ["POST", `/v1/memory_stores/${store.id}/memories`, JSON.stringify({ path: "/a.md" }), 400],
      ["POST", `/v1/memory_stores/${store.id}/memories`, JSON.stringify({ path: "/a.md", content: 1 }), 400],
      ["GET", `/v1/memory_stores/${store.id}/memories?path_prefix=/no-slash`, undefined, 400],
      ["GET", `/v1/memory_stores/${store.id}/memories?depth=2`, undefined, 400],
      [
        "GET",
        `/v1/memory_stores/${store.id}/memories?page=${Buffer.from("{}").toString("base64url")}`,
        undefined,
        400,
      ],
      ["GET", `/v1/memory_stores/${store.id}/memories/mem_missing`, undefined, 404],
      [
        "DELETE",
        `/v1/memory_stores/${store.id}/memories/mem_missing?expected_content_sha256=xyz`,
        undefined,
        400,
      ],
      ["GET", `/v1/memory_stores/${store.id}/memory_versions?operation=renamed`, undefined, 400],
      ["GET", `/v1/memory_stores/${store.id}/memory_versions?page=%7B%7D`, undefined, 400],
      ["POST", `/v1/memory_stores/${store.id}/memory_versions/memver_missing/redact`, undefined, 404],
      ["POST", `/v1/memory_stores/${store.id}/archive`, JSON.stringify({ now: true }), 400],
      ["POST", "/v1/memory_stores", JSON.stringify({ name: "x".repeat(2 * 1024 * 1024) }), 413],
    ];
    for (const [method, url, body, status] of cases) {
      const response = await raw(method, url, body === undefined ? {} : { body });
      const text = await response.text();
      expect({ method, url: url.slice(0, 120), status: response.status }).toEqual({
        method,
        url: url.slice(0, 120),
        status,
      });
      const parsed = JSON.parse(text) as { type: string; error: { type: string; message: string } };
      expect(parsed.type).toBe("error");
      expect(typeof parsed.error.message).toBe("string");
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    // The stale hash on delete changed nothing and the store still answers.
    expect((await client.beta.memoryStores.retrieve(store.id)).id).toBe(store.id);
  });
});
