import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { createDatabase, loadMigrations, type Migration, runMigrations } from "../src/index.js";

describe("migrations", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function freshPool(): Promise<{ pool: pg.Pool; database: TestDatabase }> {
    const database = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: database.url });
    cleanups.push(() => database.drop());
    cleanups.push(() => pool.end());
    return { pool, database };
  }

  it("applies every migration once, records its checksum, and is a no-op the second time", async () => {
    const { pool } = await freshPool();
    const migrations = await loadMigrations();
    const versions = migrations.map((migration) => migration.version);
    // Forward-only and numbered without gaps.
    expect(versions).toEqual(versions.map((_, index) => index + 1));
    const latest = versions.length;

    const first = await runMigrations(pool);
    expect(first).toEqual({ applied: versions, version: latest });
    const second = await runMigrations(pool);
    expect(second).toEqual({ applied: [], version: latest });

    const recorded = await pool.query(
      "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
    );
    expect(recorded.rows).toEqual(
      migrations.map((migration) => ({
        version: migration.version,
        name: migration.name,
        checksum: migration.checksum,
      })),
    );
    const tables = await pool.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name",
    );
    expect(tables.rows.map((row) => row.table_name)).toEqual(
      expect.arrayContaining([
        "api_keys",
        "orgs",
        "schema_migrations",
        "session_events",
        "sessions",
        "users",
      ]),
    );
  });

  it("applies each migration exactly once when three pools migrate at the same time", async () => {
    const { database } = await freshPool();
    const pools = [1, 2, 3].map(() => new pg.Pool({ connectionString: database.url, max: 2 }));
    cleanups.push(() => Promise.all(pools.map((pool) => pool.end())).then(() => undefined));

    const results = await Promise.all(pools.map((pool) => runMigrations(pool)));

    const latest = (await loadMigrations()).length;
    expect(results.flatMap((result) => result.applied).sort((a, b) => a - b)).toEqual(
      Array.from({ length: latest }, (_, index) => index + 1),
    );
    expect(results.map((result) => result.version)).toEqual([latest, latest, latest]);
    const count = await pools[0]?.query("SELECT count(*)::int AS count FROM schema_migrations");
    expect(count?.rows[0].count).toBe(latest);
  });

  it("refuses to run when an applied migration's file changed", async () => {
    const { pool } = await freshPool();
    const migrations = await loadMigrations();
    await runMigrations(pool, migrations);
    const edited: Migration[] = migrations.map((migration) => ({ ...migration, checksum: "0".repeat(64) }));

    await expect(runMigrations(pool, edited)).rejects.toMatchObject({
      code: "migration_changed",
      message: "migration 0001_initial was changed after it was applied; add a new migration instead",
    });
  });

  it("refuses a database migrated by a newer build", async () => {
    const { pool } = await freshPool();
    await runMigrations(pool);
    await expect(runMigrations(pool, [])).rejects.toMatchObject({ code: "migration_unknown" });
  });

  it("rolls back a failing migration and records nothing for it", async () => {
    const { pool } = await freshPool();
    const migrations = await loadMigrations();
    const next = migrations.length + 1;
    const broken: Migration = {
      version: next,
      name: "broken",
      sql: "CREATE TABLE half_done (id int); SELECT 1 / 0;",
      checksum: "1".repeat(64),
    };

    await expect(runMigrations(pool, [...migrations, broken])).rejects.toMatchObject({
      code: "migration_failed",
      message: `migration ${String(next).padStart(4, "0")}_broken failed: division by zero`,
    });
    const table = await pool.query("SELECT to_regclass('half_done') AS name");
    expect(table.rows[0].name).toBeNull();
    const versions = await pool.query("SELECT version FROM schema_migrations ORDER BY version");
    expect(versions.rows).toEqual(migrations.map((migration) => ({ version: migration.version })));
  });

  it("runs migrations when a database is opened", async () => {
    const { database: testDatabase } = await freshPool();
    const database = await createDatabase({ url: testDatabase.url });
    cleanups.push(() => database.close());
    const versions = await database.pool.query("SELECT version FROM schema_migrations ORDER BY version");
    expect(versions.rows).toEqual(
      (await loadMigrations()).map((migration) => ({ version: migration.version })),
    );
  });

  it("reports an unreachable database in one line", async () => {
    await expect(createDatabase({ url: "postgresql://nobody:wrong@127.0.0.1:1/none" })).rejects.toMatchObject(
      {
        code: "database_unavailable",
        message: expect.stringMatching(/^cannot open the database: connect ECONNREFUSED 127\.0\.0\.1:1$/),
      },
    );
  });
});
