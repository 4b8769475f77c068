/** A fresh, uniquely named database per call on the test run's Postgres (see vitest.global-setup.ts). */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** Superuser URL of the Postgres the global setup started or was given. */
    outrigTestDatabaseUrl?: string;
    /** Why the global setup could not provide a Postgres. */
    outrigTestDatabaseError?: string;
  }
}

export interface TestDatabase {
  /** URL of the new, empty database (no migrations applied). */
  readonly url: string;
  /** Drops the database, disconnecting any client still on it. */
  drop(): Promise<void>;
}

/** Throws when the test run has no Postgres (the message says why). Call `drop()` in afterAll/afterEach. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = testDatabaseAdminUrl();
  const name = `outrig_test_${randomBytes(8).toString("hex")}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      withAdmin(adminUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
      ).then(() => undefined),
  };
}

/** The superuser URL of the test run's Postgres (for tests that manage databases themselves). */
export function testDatabaseAdminUrl(): string {
  const url = inject("outrigTestDatabaseUrl") ?? process.env.OUTRIG_TEST_DATABASE_URL;
  if (url) return url;
  throw new Error(
    inject("outrigTestDatabaseError") ??
      "no test Postgres: run through the root vitest.config.ts (its globalSetup starts one) or set OUTRIG_TEST_DATABASE_URL",
  );
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
