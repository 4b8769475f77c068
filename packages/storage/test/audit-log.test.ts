import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canonicalJson, createDatabase, type Database, hashEntry, PostgresAuditLog } from "../src/index.js";

describe("PostgresAuditLog", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let log: PostgresAuditLog;
  let tick = 0;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    log = new PostgresAuditLog(database.pool, { clock: () => new Date(Date.UTC(2025, 0, 1, 0, 0, tick++)) });
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  /** Runs SQL with triggers off: only a superuser can set session_replication_role. */
  async function asSuperuser(sql: string, values: unknown[] = []): Promise<void> {
    const client = new pg.Client({ connectionString: testDatabase.url });
    await client.connect();
    try {
      await client.query("SET session_replication_role = replica");
      await client.query(sql, values);
    } finally {
      await client.end();
    }
  }

  async function orgWithEntries(name: string, count: number): Promise<string> {
    const org = await database.auth.createOrg(name);
    for (let index = 0; index < count; index += 1) {
      await log.append(org.id, {
        kind: index % 2 === 0 ? "tool_call" : "egress",
        sessionId: "ses_test",
        data: { index, tool: "Bash", nested: { b: 2, a: [1, "x"] } },
      });
    }
    return org.id;
  }

  it("chains each entry to the previous one with sha256 over canonical JSON", async () => {
    const orgId = await orgWithEntries("audit-chain", 3);
    const entries = await log.list(orgId);
    expect(entries.map((entry) => entry.seq)).toEqual([1, 2, 3]);
    expect(entries[0]?.prevHash).toBe("0".repeat(64));
    expect(entries[1]?.prevHash).toBe(entries[0]?.hash);
    expect(entries[2]?.prevHash).toBe(entries[1]?.hash);
    for (const entry of entries) expect(hashEntry(entry)).toBe(entry.hash);
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: null }], c: "é" } })).toBe(
      '{"a":{"c":"é","d":[1,{"y":null,"z":0}]},"b":1}',
    );
    await expect(log.verifyAuditChain(orgId)).resolves.toEqual({
      isValid: true,
      count: 3,
      headHash: entries[2]?.hash,
    });
  });

  it("serializes concurrent appends of one org into a gap-free chain", async () => {
    const org = await database.auth.createOrg("audit-concurrent");
    await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        log.append(org.id, { kind: "secret_use", data: { name: "GITHUB_TOKEN", index } }),
      ),
    );
    const entries = await log.list(org.id, { limit: 100 });
    expect(entries.map((entry) => entry.seq)).toEqual(Array.from({ length: 40 }, (_, index) => index + 1));
    await expect(log.verifyAuditChain(org.id)).resolves.toMatchObject({ isValid: true, count: 40 });
  });

  it("rejects UPDATE, DELETE and TRUNCATE from the application role", async () => {
    const orgId = await orgWithEntries("audit-append-only", 2);
    await expect(
      database.pool.query("UPDATE audit_entries SET data = '{}' WHERE org_id = $1", [orgId]),
    ).rejects.toThrow(/append-only/);
    await expect(database.pool.query("DELETE FROM audit_entries WHERE org_id = $1", [orgId])).rejects.toThrow(
      /append-only/,
    );
    await expect(database.pool.query("TRUNCATE audit_entries")).rejects.toThrow(/append-only/);
    await expect(log.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 2 });
  });

  it("finds an altered entry when a superuser bypasses the trigger", async () => {
    const orgId = await orgWithEntries("audit-altered", 5);
    await asSuperuser(
      `UPDATE audit_entries SET data = jsonb_set(data, '{tool}', '"Read"') WHERE org_id = $1 AND seq = 3`,
      [orgId],
    );
    await expect(log.verifyAuditChain(orgId)).resolves.toMatchObject({
      isValid: false,
      seq: 3,
      problem: "altered",
    });
  });

  it("finds a deleted entry in the middle and a deleted tail", async () => {
    const middle = await orgWithEntries("audit-deleted", 5);
    await asSuperuser("DELETE FROM audit_entries WHERE org_id = $1 AND seq = 2", [middle]);
    await expect(log.verifyAuditChain(middle)).resolves.toMatchObject({
      isValid: false,
      seq: 2,
      problem: "missing",
    });

    const tail = await orgWithEntries("audit-tail", 5);
    await asSuperuser("DELETE FROM audit_entries WHERE org_id = $1 AND seq >= 4", [tail]);
    await expect(log.verifyAuditChain(tail)).resolves.toMatchObject({
      isValid: false,
      seq: 4,
      problem: "head_mismatch",
    });
  });

  it("finds a replaced entry whose own hash was recomputed, and an entry appended behind the log's back", async () => {
    const orgId = await orgWithEntries("audit-inserted", 4);
    const [, second] = await log.list(orgId);
    if (!second) throw new Error("expected entry 2");
    // The forger rewrites entry 2 with a valid hash of its own; entry 3 no longer follows it.
    const forged = { ...second, data: { index: 1, tool: "Innocent" } };
    await asSuperuser("UPDATE audit_entries SET data = $2, hash = $3 WHERE org_id = $1 AND seq = 2", [
      orgId,
      JSON.stringify(forged.data),
      hashEntry(forged),
    ]);
    await expect(log.verifyAuditChain(orgId)).resolves.toMatchObject({
      isValid: false,
      seq: 3,
      problem: "broken_link",
    });

    const appended = await orgWithEntries("audit-appended", 2);
    const [, last] = await log.list(appended);
    if (!last) throw new Error("expected entry 2");
    const extra = { ...last, seq: 3, prevHash: last.hash, data: { forged: true } };
    await database.pool.query(
      `INSERT INTO audit_entries (org_id, seq, kind, at, session_id, user_id, data, prev_hash, hash)
       VALUES ($1, 3, $2, $3, $4, $5, $6, $7, $8)`,
      [
        appended,
        extra.kind,
        extra.at,
        extra.sessionId,
        extra.userId,
        '{"forged":true}',
        extra.prevHash,
        hashEntry(extra),
      ],
    );
    await expect(log.verifyAuditChain(appended)).resolves.toMatchObject({
      isValid: false,
      seq: 3,
      problem: "head_mismatch",
    });
  });

  it("finds an entry inserted in the middle even when the forger renumbers the rest and moves the head", async () => {
    const orgId = await orgWithEntries("audit-inserted-middle", 5);
    const [, second] = await log.list(orgId);
    if (!second) throw new Error("expected entry 2");
    // A valid-looking entry 3 that commits to entry 2; old entries 3..5 become 4..6.
    const forged = { ...second, seq: 3, prevHash: second.hash, data: { index: 99, tool: "Forged" } };
    await asSuperuser(
      `UPDATE audit_entries SET seq = seq + 100 WHERE org_id = $1 AND seq >= 3;
       UPDATE audit_entries SET seq = seq - 99 WHERE org_id = $1 AND seq >= 100;`.replaceAll(
        "$1",
        `'${orgId}'`,
      ),
    );
    await asSuperuser(
      `INSERT INTO audit_entries (org_id, seq, kind, at, session_id, user_id, data, prev_hash, hash)
       VALUES ($1, 3, $2, $3, $4, $5, $6, $7, $8)`,
      [
        orgId,
        forged.kind,
        forged.at,
        forged.sessionId,
        forged.userId,
        JSON.stringify(forged.data),
        forged.prevHash,
        hashEntry(forged),
      ],
    );
    await asSuperuser("UPDATE audit_heads SET last_seq = 6 WHERE org_id = $1", [orgId]);
    await expect(log.verifyAuditChain(orgId)).resolves.toMatchObject({
      isValid: false,
      count: 3,
      seq: 4,
      problem: "broken_link",
    });
  });

  it("rejects data that is not plain JSON", async () => {
    const org = await database.auth.createOrg("audit-invalid");
    await expect(
      log.append(org.id, { kind: "approval", data: { value: Number.POSITIVE_INFINITY } }),
    ).rejects.toMatchObject({ code: "invalid_audit_data" });
    await expect(log.append(org.id, { kind: "approval", data: { when: new Date() } })).rejects.toMatchObject({
      code: "invalid_audit_data",
    });
    const stored = await log.append(org.id, { kind: "memory_write", data: { text: "nul\u0000here" } });
    await expect(log.verifyAuditChain(org.id)).resolves.toMatchObject({ isValid: true, count: 1 });
    expect(stored.data).toEqual({ text: "nul\uFFFDhere" });
  });
});
