/**
 * PostgresSessionResourceTokens: a github_repository token is sealed, bound to its org, session and
 * resource (a row moved to another resource does not open), rotated in place, read back in the order
 * it was set, scoped by org, and gone with its session.
 */
import { randomBytes } from "node:crypto";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDatabase,
  createSecretKeyring,
  type Database,
  masterKeyFromBase64,
  PostgresSessionResourceTokens,
} from "../src/index.js";

const TOKEN = "ghp_resourceTokenValue_never_in_clear_0042";

describe("session resource tokens", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let tokens: PostgresSessionResourceTokens;
  let orgId: string;
  let otherOrgId: string;
  let sessionId: string;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const org = await database.auth.createOrg("tokens");
    orgId = org.id;
    otherOrgId = (await database.auth.createOrg("tokens-other")).id;
    const userId = (await database.auth.createUser(orgId, { name: "ada", role: "member" })).id;
    sessionId = (await database.sessions.createSession({ orgId, userId, model: "m:x", system: null })).id;
    const key = masterKeyFromBase64(randomBytes(32).toString("base64"), "test");
    tokens = new PostgresSessionResourceTokens(database.pool, createSecretKeyring(key));
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it("seals, rotates, scopes by org and binds each row to its resource", async () => {
    await tokens.set(orgId, sessionId, "sesrsc_b", "first");
    await tokens.set(orgId, sessionId, "sesrsc_a", TOKEN);
    await tokens.set(orgId, sessionId, "sesrsc_b", "rotated");
    expect([...(await tokens.tokensOf(orgId, sessionId))]).toEqual([
      ["sesrsc_a", TOKEN],
      ["sesrsc_b", "rotated"],
    ]);
    const { rows } = await database.pool.query<{ row: string }>(
      "SELECT row_to_json(t)::text AS row FROM session_resource_tokens t",
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(row.row).not.toContain(TOKEN);
    // Another org sees nothing, and cannot write into this session.
    expect((await tokens.tokensOf(otherOrgId, sessionId)).size).toBe(0);
    await expect(tokens.set(otherOrgId, sessionId, "sesrsc_c", "x")).rejects.toThrow();
    // A row moved to another resource does not open: the binding is authenticated.
    await database.pool.query(
      "UPDATE session_resource_tokens SET resource_id = 'sesrsc_moved' WHERE resource_id = 'sesrsc_a'",
    );
    await expect(tokens.tokensOf(orgId, sessionId)).rejects.toMatchObject({ code: "secret_undecryptable" });
    expect(await tokens.delete(orgId, sessionId, "sesrsc_moved")).toBe(true);
    // Gone with the session.
    await database.pool.query("DELETE FROM sessions WHERE id = $1", [sessionId]);
    const left = await database.pool.query("SELECT 1 FROM session_resource_tokens");
    expect(left.rowCount).toBe(0);
  });
});
