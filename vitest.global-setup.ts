/**
 * Starts ONE embedded Postgres for the whole test run (or uses OUTRIG_TEST_DATABASE_URL) and provides its
 * admin URL to test files; `createTestDatabase()` from @outrig/testing makes a fresh database per call.
 * A failure to start is provided as an error instead of thrown, so tests that need no database still run.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "@outrig/storage";
import type { TestProject } from "vitest/node";

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const externalUrl = process.env.OUTRIG_TEST_DATABASE_URL;
  if (externalUrl) {
    project.provide("outrigTestDatabaseUrl", externalUrl);
    return async () => {};
  }
  const directory = await mkdtemp(path.join(os.tmpdir(), "outrig-test-postgres-"));
  // mkdtemp makes a 0700 dir; when tests run as root, Postgres runs as the `postgres` user and must reach it.
  await chmod(directory, 0o711);
  try {
    const postgres = await startEmbeddedPostgres({ dataDir: path.join(directory, "postgres") });
    project.provide("outrigTestDatabaseUrl", postgres.url);
    return async () => {
      await postgres.stop();
      await rm(directory, { recursive: true, force: true });
    };
  } catch (error) {
    project.provide(
      "outrigTestDatabaseError",
      `embedded Postgres for tests failed to start: ${(error as Error).message}`,
    );
    await rm(directory, { recursive: true, force: true });
    return async () => {};
  }
}
