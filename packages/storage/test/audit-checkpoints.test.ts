import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuditCheckpoints,
  createDatabase,
  type Database,
  hashEntry,
  PostgresAuditLog,
} from "../src/index.js";

describe("AuditCheckpoints", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let log: PostgresAuditLog;
  let directory: string;
  let tick = 0;
  const masterKey = randomBytes(32);
  const reported: string[] = [];

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    log = new PostgresAuditLog(database.pool, { clock: () => new Date(Date.UTC(2025, 0, 1, 0, 0, tick++)) });
    directory = await mkdtemp(path.join(tmpdir(), "outrig-audit-checkpoints-"));
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  const checkpoints = (key = masterKey) =>
    new AuditCheckpoints({ log, directory, masterKey: key, report: (message) => reported.push(message) });

  /** Runs SQL with the append-only trigger off, as someone holding the database credentials could. */
  async function asSuperuser(statements: [string, unknown[]][]): Promise<void> {
    const client = new pg.Client({ connectionString: testDatabase.url });
    await client.connect();
    try {
      await client.query("BEGIN");
      await client.query("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only");
      for (const [sql, values] of statements) await client.query(sql, values);
      await client.query("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only");
      await client.query("COMMIT");
    } finally {
      await client.end();
    }
  }

  async function orgWithEntries(name: string, count: number): Promise<string> {
    const org = await database.auth.createOrg(name);
    for (let index = 0; index < count; index += 1) {
      await log.append(org.id, { kind: "policy_change", data: { index, policy: "tool" } });
    }
    return org.id;
  }

  it("checkpoints every org whose head moved, signed, in an append-only file of its own", async () => {
    const first = await orgWithEntries("checkpoint-first", 3);
    const second = await orgWithEntries("checkpoint-second", 1);
    const anchors = checkpoints();
    await anchors.checkpointAll();
    await anchors.checkpointAll(); // nothing moved: nothing written
    await log.append(first, { kind: "policy_change", data: { index: 3 } });
    await anchors.checkpointAll();
    const lines = (await readFile(path.join(directory, `${first}.jsonl`), "utf8")).trim().split("\n");
    const heads = (await log.list(first)).map((entry) => entry.hash);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({
        orgId: first,
        seq: 3,
        hash: heads[2],
        mac: expect.stringMatching(/^[0-9a-f]{64}$/),
      }),
      expect.objectContaining({ orgId: first, seq: 4, hash: heads[3] }),
    ]);
    expect((await stat(path.join(directory, `${first}.jsonl`))).mode & 0o777).toBe(0o600);
    expect((await anchors.read(second)).checkpoints).toMatchObject([{ seq: 1 }]);
    await expect(anchors.verify(first)).resolves.toMatchObject({
      isValid: true,
      count: 4,
      lastCheckpoint: { seq: 4 },
    });
  });

  it("names the checkpoint when entries were deleted and the head moved back", async () => {
    const orgId = await orgWithEntries("checkpoint-truncated", 5);
    const anchors = checkpoints();
    await anchors.checkpointAll();
    const [, second] = await log.list(orgId);
    await asSuperuser([
      ["DELETE FROM audit_entries WHERE org_id = $1 AND seq > 2", [orgId]],
      ["UPDATE audit_heads SET last_seq = 2, last_hash = $2 WHERE org_id = $1", [orgId, second?.hash]],
    ]);
    // The database alone cannot tell: the shortened chain is consistent with its head.
    await expect(log.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 2 });
    const at = (await anchors.read(orgId)).checkpoints[0]?.at;
    const report = await anchors.verify(orgId);
    expect(report).toMatchObject({ isValid: false, count: 2, seq: 3, problem: "truncated" });
    expect(!report.isValid && report.message).toBe(
      `the log ends at entry 2 but the checkpoint of ${at} recorded entry 5 (hash ${(await anchors.read(orgId)).checkpoints[0]?.hash.slice(0, 16)}…): entries from 3 on were deleted and the head moved back`,
    );
    // A fresh worker (no cached checkpoint) does not anchor the shortened head either.
    const fresh = checkpoints();
    await fresh.checkpointAll();
    expect((await fresh.read(orgId)).checkpoints.map((mark) => mark.seq)).toEqual([5]);
    expect(reported.some((message) => message.includes(orgId) && message.includes("behind"))).toBe(true);
  });

  it("names the checkpoint when the history below it was rewritten with valid hashes", async () => {
    const orgId = await orgWithEntries("checkpoint-rewritten", 4);
    const anchors = checkpoints();
    await expect(anchors.verify(orgId)).resolves.toMatchObject({ isValid: true, lastCheckpoint: { seq: 4 } });
    // The forger rewrites entries 2..4 and recomputes every hash and the head: a consistent chain.
    const entries = await log.list(orgId);
    let previous = entries[0]?.hash ?? "";
    const statements: [string, unknown[]][] = [];
    for (const entry of entries.slice(1)) {
      const forged = { ...entry, data: { index: entry.seq, policy: "innocent" }, prevHash: previous };
      previous = hashEntry(forged);
      statements.push([
        "UPDATE audit_entries SET data = $3, prev_hash = $4, hash = $5 WHERE org_id = $1 AND seq = $2",
        [orgId, entry.seq, JSON.stringify(forged.data), forged.prevHash, previous],
      ]);
    }
    statements.push(["UPDATE audit_heads SET last_hash = $2 WHERE org_id = $1", [orgId, previous]]);
    await asSuperuser(statements);
    await expect(log.verifyAuditChain(orgId)).resolves.toMatchObject({ isValid: true, count: 4 });
    await expect(anchors.verify(orgId)).resolves.toMatchObject({
      isValid: false,
      seq: 4,
      problem: "checkpoint_mismatch",
      message: expect.stringMatching(/^entry 4 is not the entry the checkpoint of \S+ recorded/),
    });
    // The periodic pass does not anchor it either, and says why.
    await log.append(orgId, { kind: "policy_change", data: { index: 5 } });
    await checkpoints().checkpointAll();
    expect((await anchors.read(orgId)).checkpoints.map((mark) => mark.seq)).toEqual([4]);
    expect(
      reported.some(
        (message) =>
          message.includes(orgId) &&
          message.includes("fails verification after its last checkpoint") &&
          message.includes("entry 5 does not commit to entry 4"),
      ),
    ).toBe(true);
  });

  it("refuses a checkpoint file that was edited or signed with another key", async () => {
    const orgId = await orgWithEntries("checkpoint-edited", 3);
    const anchors = checkpoints();
    await anchors.checkpointAll();
    const file = path.join(directory, `${orgId}.jsonl`);
    const original = await readFile(file, "utf8");
    // Moving the checkpoint back (to hide a truncation) breaks its signature.
    await writeFile(file, original.replace('"seq":3', '"seq":1'));
    await expect(anchors.verify(orgId)).resolves.toMatchObject({
      isValid: false,
      problem: "checkpoint_invalid",
      message: expect.stringContaining("line 1 of the checkpoint file"),
    });
    await writeFile(file, original);
    await new AuditCheckpoints({ log, directory, masterKey: randomBytes(32) }).checkpointAll();
    await log.append(orgId, { kind: "policy_change", data: { index: 3 } });
    await new AuditCheckpoints({ log, directory, masterKey: randomBytes(32) }).checkpointAll();
    await expect(anchors.verify(orgId)).resolves.toMatchObject({ problem: "checkpoint_invalid" });
    // A line cut short by a crash is not a forgery.
    await writeFile(file, original);
    await appendFile(file, '{"v":1,"orgId":');
    await expect(anchors.verify(orgId)).resolves.toMatchObject({ isValid: true, count: 4 });
  });
});
