/**
 * What the audit log costs a tool step: p50/p95 of appending a `tool.start` event through the session
 * store without the audit log and with it (the event and its hash-chained entry in one transaction).
 * Runs on a throwaway embedded Postgres, or on DATABASE_URL (a database it may create tables in).
 * Usage: npx tsc -b && node bench/audit-bench.mjs [--iterations 500]
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createDatabase, PostgresSessionStore, startEmbeddedPostgres } from "@outrig/storage";
import { percentile, round } from "./stats.mjs";

const { values } = parseArgs({ options: { iterations: { type: "string", default: "500" } } });
const iterations = Math.max(10, Number(values.iterations));

export async function auditFigures({ iterations: count = 500, databaseUrl = process.env.DATABASE_URL } = {}) {
  let embedded;
  let dataDir;
  if (!databaseUrl) {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-audit-"));
    embedded = await startEmbeddedPostgres({ dataDir });
  }
  const database = await createDatabase({ url: databaseUrl ?? embedded.url });
  try {
    const org = await database.auth.createOrg(`bench-audit-${Date.now()}`);
    const user = await database.auth.createUser(org.id, { name: "bench", role: "admin" });
    const session = await database.sessions.createSession({
      orgId: org.id,
      userId: user.id,
      model: "fake:bench",
      system: null,
    });
    const { turn } = await database.sessions.startTurn(org.id, session.id, "go");
    const plain = new PostgresSessionStore(database.pool);
    const audited = database.sessions;
    const input = { command: "git status && npm test -- --run packages/storage/test/audit-log.test.ts" };
    const samples = { plain: [], audited: [] };
    // Alternate the two so drift on a shared machine hits both alike; the first rounds warm up.
    for (let index = -20; index < count; index++) {
      for (const [name, store] of index % 2 === 0
        ? [
            ["plain", plain],
            ["audited", audited],
          ]
        : [
            ["audited", audited],
            ["plain", plain],
          ]) {
        const event = { type: "tool.start", turn, toolCallId: `call_${name}_${index}`, name: "bash", input };
        const started = performance.now();
        await store.appendEvents(session.id, [event], { turn });
        const elapsed = performance.now() - started;
        if (index >= 0) samples[name].push(elapsed);
      }
    }
    const report = await database.audit.verifyAuditChain(org.id);
    if (!report.isValid || report.count !== count + 20)
      throw new Error(`unexpected chain: ${JSON.stringify(report)}`);
    const figures = (list) => ({ p50: round(percentile(list, 50), 3), p95: round(percentile(list, 95), 3) });
    return { iterations: count, withoutAudit: figures(samples.plain), withAudit: figures(samples.audited) };
  } finally {
    await database.close();
    await embedded?.stop();
    if (dataDir) {
      // The embedded cluster keeps its password and log beside its data directory.
      for (const leftover of [dataDir, `${dataDir}.json`, `${dataDir}.log`]) {
        await fs.rm(leftover, { recursive: true, force: true });
      }
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await auditFigures({ iterations });
  console.log(JSON.stringify(figures, null, 2));
  console.log(
    `tool.start append p50: ${figures.withoutAudit.p50} ms without the audit entry, ${figures.withAudit.p50} ms with it (+${round(figures.withAudit.p50 - figures.withoutAudit.p50, 3)} ms); p95 ${figures.withoutAudit.p95} / ${figures.withAudit.p95} ms`,
  );
}
