import { readFileSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTestDatabase } from "@outrig/testing";
import { describe, expect, it } from "vitest";
import { loadMigrations, resolveDatabase } from "../src/index.js";

function isRunning(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("resolveDatabase", () => {
  it("uses the given database URL and starts no embedded Postgres", async () => {
    const testDatabase = await createTestDatabase();
    const database = await resolveDatabase({
      databaseUrl: testDatabase.url,
      outrigHome: "/nonexistent/outrig",
    });
    try {
      expect(database.embedded).toBeNull();
      const { rows } = await database.pool.query(
        "SELECT current_database() AS name, count(*)::int AS applied FROM schema_migrations",
      );
      expect(rows[0]).toEqual({
        name: new URL(testDatabase.url).pathname.slice(1),
        applied: (await loadMigrations()).length,
      });
    } finally {
      await database.close();
      await testDatabase.drop();
    }
  });

  it("without a URL, runs embedded Postgres under the home with a migrated `outrig` database, and close() stops it", async () => {
    const outrigHome = await mkdtemp(path.join(os.tmpdir(), "outrig-home-"));
    await chmod(outrigHome, 0o711);
    try {
      const database = await resolveDatabase({ outrigHome });
      const pid = database.embedded?.pid ?? -1;
      try {
        expect(database.embedded?.clusterDir).toBe(path.join(outrigHome, "postgres"));
        const { rows } = await database.pool.query(
          "SELECT current_database() AS name, count(*)::int AS applied FROM schema_migrations",
        );
        expect(rows[0]).toEqual({ name: "outrig", applied: (await loadMigrations()).length });
      } finally {
        await database.close();
      }
      expect(isRunning(pid)).toBe(false);

      // Second open of the same home: the database exists already and migrations are a no-op.
      const reopened = await resolveDatabase({ outrigHome });
      await expect(reopened.auth.bootstrap()).resolves.toMatchObject({
        apiKey: expect.stringMatching(/^outrig_/),
      });
      await reopened.close();
    } finally {
      await rm(outrigHome, { recursive: true, force: true });
    }
  });
});
