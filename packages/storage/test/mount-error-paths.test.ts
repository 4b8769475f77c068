/**
 * File errors name the path the model used: a database mount's backend only knows `/conventions.md`,
 * the model wrote `/memories/org/conventions.md`.
 */
import {
  createFileStateTracker,
  createMemoryTool,
  FileError,
  MountTable,
  type ToolContext,
} from "@outrig/core";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatabase, createDatabaseMounts, type Database, PostgresFileStore } from "../src/index.js";

const encode = (text: string) => new TextEncoder().encode(text);

describe("file errors on database mounts", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let store: PostgresFileStore;
  let orgId: string;
  let userId: string;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    store = new PostgresFileStore(database.pool);
    orgId = (await database.auth.createOrg("paths-org")).id;
    userId = (await database.auth.createUser(orgId, { name: "alice", role: "member" })).id;
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  const mounts = (sessionId: string) =>
    new MountTable(createDatabaseMounts({ store, orgId, userId, role: "member", sessionId, turn: 1 }));
  const context = (fs: MountTable): ToolContext => ({
    fs,
    exec: () => Promise.reject(new Error("no sandbox")),
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call_1",
    cwd: "/workspace",
  });

  it("names the mounted path in the error a backend raises", async () => {
    const fs = mounts("ses_a");
    const error = await fs.read("/memories/org/conventions.md").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FileError);
    expect(error).toMatchObject({
      code: "not_found",
      path: "/memories/org/conventions.md",
      message: "No such file: /memories/org/conventions.md",
    });
    const listed = await fs.list("/memories/me/nowhere").catch((caught: unknown) => caught);
    expect(listed).toMatchObject({
      path: "/memories/me/nowhere",
      message: "No such directory: /memories/me/nowhere",
    });
  });

  it("shows the model the path it used in memory tool results", async () => {
    const fs = mounts("ses_b");
    await fs.write("/memories/org/conventions.md", encode("Use tabs.\n"));
    const memory = createMemoryTool();
    const nested = await memory.execute(
      { command: "create", path: "/memories/org/conventions.md/more.md", file_text: "x" },
      context(fs),
    );
    expect(nested).toEqual({ isError: true, output: "Error: Not a directory: /memories/org/conventions.md" });
  });
});
