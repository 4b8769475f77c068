/**
 * The audit chain's anchor outside the database, end to end: a real `outrig serve` process on the
 * test run's Postgres (so the test can act as a superuser holding the database credentials). After
 * entries are deleted and the chain head is moved back, the chain alone is consistent, but
 * `outrig audit verify` exits 1 naming the checkpoint in OUTRIG_HOME that the log no longer reaches.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOutrigHome, runCli, type ServerProcess, startServerProcess } from "./server-process.js";

let database: TestDatabase;
let home: string;
let server: ServerProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  home = await createOutrigHome();
  server = await startServerProcess({
    home,
    env: {
      DATABASE_URL: database.url,
      ANTHROPIC_API_KEY: "audit-checkpoints",
      OUTRIG_AUDIT_CHECKPOINT_MS: "200",
    },
  });
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await database?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

const cliEnv = () => ({ OUTRIG_HOME: home, OUTRIG_SERVER: server.url });

/** Four audited policy changes: entries 1 to 4. */
async function changePolicy(times: number): Promise<void> {
  for (let index = 0; index < times; index += 1) {
    const response = await fetch(`${server.url}/v1/policy`, {
      method: "PUT",
      headers: { authorization: `Bearer ${server.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ rules: [{ tool: "Bash", match: `*change-${index}*`, action: "deny" }] }),
    });
    expect(response.status).toBe(200);
  }
}

async function superuser(work: (client: pg.Client) => Promise<void>): Promise<void> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query("BEGIN");
    await client.query("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only");
    await work(client);
    await client.query("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only");
    await client.query("COMMIT");
  } finally {
    await client.end();
  }
}

describe("outrig audit verify against the checkpoints", () => {
  it("fails naming the checkpoint after entries were deleted and the head moved back", async () => {
    await changePolicy(4);
    const valid = await runCli(["audit", "verify"], cliEnv());
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toMatch(/^OK: 4 entries, the chain is intact; head [0-9a-f]{64}\n/);

    // With the database credentials: drop entries 3 and 4 and point the head at entry 2.
    await superuser(async (client) => {
      const org = "(SELECT id FROM orgs WHERE name = 'default')";
      const deleted = await client.query(`DELETE FROM audit_entries WHERE org_id = ${org} AND seq > 2`);
      expect(deleted.rowCount).toBe(2);
      await client.query(
        `UPDATE audit_heads SET last_seq = 2,
           last_hash = (SELECT hash FROM audit_entries WHERE org_id = ${org} AND seq = 2)
         WHERE org_id = ${org}`,
      );
    });

    const tampered = await runCli(["audit", "verify"], cliEnv());
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(
      /^TAMPERED at seq 3 \(truncated\): the log ends at entry 2 but the checkpoint of \S+ recorded entry 4 \(hash [0-9a-f]{16}…\): entries from 3 on were deleted and the head moved back\n/,
    );
    const json = await runCli(["audit", "verify", "--json"], cliEnv());
    expect(JSON.parse(json.stdout)).toMatchObject({
      isValid: false,
      problem: "truncated",
      lastCheckpoint: { seq: 4 },
    });
  }, 120_000);

  it("checkpoints a moved head periodically, signed, under OUTRIG_HOME", async () => {
    const files = await fs.readdir(path.join(home, "audit-checkpoints"));
    expect(files).toEqual([expect.stringMatching(/^org_\S+\.jsonl$/)]);
    const file = path.join(home, "audit-checkpoints", files[0] ?? "");
    const lines = (await fs.readFile(file, "utf8")).trim().split("\n");
    expect(lines.map((line) => JSON.parse(line))).toContainEqual(
      expect.objectContaining({ seq: 4, mac: expect.stringMatching(/^[0-9a-f]{64}$/) }),
    );
    // The truncated chain is never anchored, however often the periodic pass runs.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await fs.readFile(file, "utf8")).trim().split("\n")).toEqual(lines);
    expect(lines.map((line) => (JSON.parse(line) as { seq: number }).seq).every((seq) => seq <= 4)).toBe(
      true,
    );
    expect(server.output()).toContain("is behind or beside the checkpoint");
  });
});
