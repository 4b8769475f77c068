import type { AgentConfig, ManagedSessionFields } from "@outrig/core";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, type Database, PostgresSessionStore } from "../src/index.js";

const config = (agentId: string, version: number): AgentConfig => ({
  agentId,
  version,
  model: "anthropic:claude-sonnet-4-5",
  system: "be brief",
  toolset: { bash: { enabled: true, permission: "always_ask" } },
  customTools: [],
  skills: [],
});
const managed = (
  agentId: string,
  version = 1,
  extra: Partial<ManagedSessionFields> = {},
): ManagedSessionFields => ({
  agent: { type: "agent", id: agentId, version, name: "a" },
  agentConfig: config(agentId, version),
  environmentId: "env_1",
  title: null,
  metadata: {},
  vaultIds: [],
  resources: [],
  ...extra,
});

describe("PostgresSessionStore: sessions of the Managed Agents API", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let orgId: string;
  let userId: string;
  let otherOrgId: string;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    orgId = (await database.auth.createOrg("managed-org")).id;
    userId = (await database.auth.createUser(orgId, { name: "ada", role: "member" })).id;
    otherOrgId = (await database.auth.createOrg("managed-other")).id;
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it("stores the pinned agent and the client's fields, updates them and archives once", async () => {
    const created = await database.sessions.createSession({
      orgId,
      userId,
      model: "anthropic:claude-sonnet-4-5",
      system: "be brief",
      managed: managed("agent_a", 2, {
        title: "t",
        metadata: { k: "v" },
        vaultIds: ["vlt_1"],
        resources: [{ id: "sesrsc_1", type: "memory_store", memory_store_id: "memstore_1" }],
      }),
    });
    expect(created.id).toMatch(/^sesn_/);
    expect(created).toMatchObject({
      archivedAt: null,
      usage: { inputTokens: 0, outputTokens: 0 },
      managed: { agentConfig: config("agent_a", 2), title: "t", metadata: { k: "v" }, vaultIds: ["vlt_1"] },
    });
    await expect(database.sessions.getSession(orgId, created.id)).resolves.toEqual(created);

    const renamed = await database.sessions.updateManagedSession(orgId, created.id, { title: null });
    expect(renamed?.managed).toMatchObject({ title: null, metadata: { k: "v" } });
    await expect(
      database.sessions.updateManagedSession(otherOrgId, created.id, { title: "stolen" }),
    ).resolves.toBeNull();
    const first = new Date("2026-12-06T00:00:00Z");
    const archived = await database.sessions.updateManagedSession(orgId, created.id, { archivedAt: first });
    expect(archived?.archivedAt).toEqual(first);
    const again = await database.sessions.updateManagedSession(orgId, created.id, {
      archivedAt: new Date("2027-01-01T00:00:00Z"),
    });
    expect(again?.archivedAt).toEqual(first);
  });

  it("keeps usage totals with every append and deletes a session with its events", async () => {
    const session = await database.sessions.createSession({ orgId, userId, model: "m:x", system: null });
    const { turn } = await database.sessions.startTurn(orgId, session.id, "hi");
    const message = { role: "assistant" as const, content: [{ type: "text" as const, text: "a" }] };
    for (const step of [1, 2])
      await database.sessions.appendEvents(
        session.id,
        [
          {
            type: "message.end",
            turn,
            step,
            message,
            stopReason: "end_turn",
            usage: { inputTokens: 10, outputTokens: step },
          },
        ],
        { turn },
      );
    expect((await database.sessions.getSession(orgId, session.id))?.usage).toEqual({
      inputTokens: 20,
      outputTokens: 3,
    });

    await expect(database.sessions.deleteSession(otherOrgId, session.id)).resolves.toBe(false);
    await expect(database.sessions.deleteSession(orgId, session.id)).resolves.toBe(true);
    await expect(database.sessions.getSession(orgId, session.id)).resolves.toBeNull();
    await expect(database.sessions.readEvents(session.id, { afterSeq: 0, limit: 10 })).resolves.toEqual([]);
    await expect(database.sessions.deleteSession(orgId, session.id)).resolves.toBe(false);
  });

  it("lists with cursors both ways and filters by agent, status, archive and creation time", async () => {
    let ticks = 0;
    const store = new PostgresSessionStore(database.pool, {
      clock: () => new Date(Date.UTC(2030, 0, 1, 0, 0, ticks++)),
    });
    const org = (await database.auth.createOrg("managed-list")).id;
    const user = (await database.auth.createUser(org, { name: "bo", role: "member" })).id;
    const ids: string[] = [];
    for (const [index, agentId] of ["agent_x", "agent_y", "agent_x", "agent_x", "agent_y"].entries()) {
      const session = await store.createSession({
        orgId: org,
        userId: user,
        model: "m:x",
        system: null,
        managed: managed(agentId, index % 2 === 0 ? 1 : 2),
      });
      ids.push(session.id);
    }
    await store.updateManagedSession(org, ids[1] ?? "", { archivedAt: new Date() });
    const list = async (options: Parameters<PostgresSessionStore["listSessions"]>[1]) =>
      (await store.listSessions(org, options)).map((session) => session.id);

    expect(await list({ limit: 10 })).toEqual([...ids].reverse());
    expect(await list({ limit: 10, order: "asc", excludeArchived: true })).toEqual(
      ids.filter((_, index) => index !== 1),
    );
    expect(await list({ limit: 10, agentId: "agent_x" })).toEqual([ids[3], ids[2], ids[0]]);
    expect(await list({ limit: 10, agentId: "agent_x", agentVersion: 2 })).toEqual([ids[3]]);
    expect(await list({ limit: 10, statuses: ["running"] })).toEqual([]);
    await store.updateManagedSession(org, ids[3] ?? "", {
      resources: [{ id: "sesrsc_m", type: "memory_store", memory_store_id: "memstore_find" }],
    });
    expect(await list({ limit: 10, memoryStoreId: "memstore_find" })).toEqual([ids[3]]);
    expect(await list({ limit: 10, memoryStoreId: "memstore_other" })).toEqual([]);
    // Concurrent appends all land; a removal takes out exactly one.
    const target = ids[4] ?? "";
    await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        store.updateManagedSession(org, target, { addResource: { id: `sesrsc_${index}`, type: "file" } }),
      ),
    );
    await store.updateManagedSession(org, target, { removeResourceId: "sesrsc_7" });
    const resources = (await store.getSession(org, target))?.managed?.resources ?? [];
    expect(resources.map((resource) => resource.id).sort()).toEqual(
      Array.from({ length: 20 }, (_, index) => `sesrsc_${index}`)
        .filter((id) => id !== "sesrsc_7")
        .sort(),
    );
    const third = (await store.getSession(org, ids[2] ?? ""))?.createdAt ?? new Date();
    expect(await list({ limit: 10, order: "asc", createdAt: { gte: third } })).toEqual(ids.slice(2));
    expect(await list({ limit: 10, order: "asc", createdAt: { gt: third } })).toEqual(ids.slice(3));

    const rows = await store.listSessions(org, { limit: 10, order: "asc" });
    const position = (index: number) => ({
      createdAt: rows[index]?.createdAt ?? new Date(),
      id: rows[index]?.id ?? "",
    });
    expect(await list({ limit: 2, order: "asc", after: position(1) })).toEqual([ids[2], ids[3]]);
    expect(await list({ limit: 2, order: "asc", before: position(3) })).toEqual([ids[1], ids[2]]);
    expect(await list({ limit: 2, order: "desc", after: position(3) })).toEqual([ids[2], ids[1]]);
    expect(await list({ limit: 2, order: "desc", before: position(1) })).toEqual([ids[3], ids[2]]);
  });
});
