/**
 * MemoryDirectorySync on Postgres: a session's host copy of a memory store, pulled before and pushed
 * after each command. New, changed and removed files become versions attributed to the session; a stale
 * change becomes a conflict copy with a notice; symlinks and oversized files are reported, not stored.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDatabase,
  type Database,
  MemoryDirectorySync,
  PostgresFileStore,
  PostgresMemoryStores,
} from "../src/index.js";

let testDatabase: TestDatabase;
let database: Database;
let stores: PostgresMemoryStores;
let orgId = "";
let root = "";
let count = 0;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  orgId = (await database.auth.createOrg("memory-sync")).id;
  stores = new PostgresMemoryStores(database.pool, new PostgresFileStore(database.pool));
  root = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-memory-sync-"));
});
afterAll(async () => {
  await database?.close();
  await testDatabase?.drop();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function copyOf(storeId: string, sessionId: string, maxFileBytes = 1000) {
  count += 1;
  return MemoryDirectorySync.create({
    store: stores.files,
    scope: stores.scopeOf(orgId, storeId),
    directory: path.join(root, `copy-${count}`),
    displayPrefix: "/mnt/memory/s",
    sessionId,
    author: () => ({ sessionId }),
    maxFileBytes,
  });
}

const text = async (storeId: string, filePath: string) =>
  Buffer.from((await stores.files.read(stores.scopeOf(orgId, storeId), filePath)).content).toString("utf8");

describe("MemoryDirectorySync", () => {
  it("commits new, changed and removed files as the session's versions and pulls others' changes", async () => {
    const store = await stores.createStore(orgId, { name: "s" });
    await stores.createMemory(orgId, store.id, "/a.md", "a\n", {});
    await stores.createMemory(orgId, store.id, "/gone.md", "x\n", {});
    const copy = await copyOf(store.id, "sesn_one");
    expect(await fs.readFile(path.join(copy.directory, "a.md"), "utf8")).toBe("a\n");
    await fs.appendFile(path.join(copy.directory, "a.md"), "b\n");
    await fs.mkdir(path.join(copy.directory, "dir"));
    await fs.writeFile(path.join(copy.directory, "dir/new.md"), "new\n");
    await fs.rm(path.join(copy.directory, "gone.md"));
    const pushed = await copy.push();
    expect(pushed.notices).toEqual([]);
    expect(pushed.committed.map((change) => change.path).sort()).toEqual([
      "/a.md",
      "/dir/new.md",
      "/gone.md",
    ]);
    expect(await text(store.id, "/a.md")).toBe("a\nb\n");
    const versions = await stores.listVersions(orgId, store.id, { limit: 10 });
    expect(
      versions
        .filter((version) => version.sessionId === "sesn_one")
        .map((version) => version.operation)
        .sort(),
    ).toEqual(["created", "deleted", "modified"]);
    // Another session's change arrives at the next pull; nothing unchanged is committed again.
    const other = await copyOf(store.id, "sesn_two");
    await fs.writeFile(path.join(other.directory, "a.md"), "from two\n");
    await other.push();
    await copy.pull();
    expect(await fs.readFile(path.join(copy.directory, "a.md"), "utf8")).toBe("from two\n");
    expect((await copy.push()).committed).toEqual([]);
  });

  it("keeps a stale change as a conflict copy, restores the current version and says so", async () => {
    const store = await stores.createStore(orgId, { name: "s" });
    await stores.createMemory(orgId, store.id, "/shared.md", "base\n", {});
    const mine = await copyOf(store.id, "sesn_mine");
    const theirs = await copyOf(store.id, "sesn_theirs");
    await fs.writeFile(path.join(theirs.directory, "shared.md"), "theirs\n");
    await fs.writeFile(path.join(mine.directory, "shared.md"), "mine\n");
    expect((await theirs.push()).notices).toEqual([]);
    const pushed = await mine.push();
    expect(pushed.notices).toHaveLength(1);
    expect(pushed.notices[0]).toContain("/mnt/memory/s/shared.md was changed by another session");
    expect(pushed.notices[0]).toContain("/mnt/memory/s/shared.md.conflict-sesn_mine");
    expect(await text(store.id, "/shared.md")).toBe("theirs\n");
    expect(await text(store.id, "/shared.md.conflict-sesn_mine")).toBe("mine\n");
    expect(await fs.readFile(path.join(mine.directory, "shared.md"), "utf8")).toBe("theirs\n");
    expect(await fs.readFile(path.join(mine.directory, "shared.md.conflict-sesn_mine"), "utf8")).toBe(
      "mine\n",
    );
    // A stale delete is not applied: the other session's content comes back.
    await fs.writeFile(path.join(theirs.directory, "shared.md"), "theirs 2\n");
    await theirs.push();
    await fs.rm(path.join(mine.directory, "shared.md"));
    const deleted = await mine.push();
    expect(deleted.notices[0]).toContain("was not deleted");
    expect(await text(store.id, "/shared.md")).toBe("theirs 2\n");
    expect(await fs.readFile(path.join(mine.directory, "shared.md"), "utf8")).toBe("theirs 2\n");
  });

  it("reports symlinks and oversized files instead of storing them", async () => {
    const store = await stores.createStore(orgId, { name: "s" });
    const copy = await copyOf(store.id, "sesn_odd", 10);
    await fs.symlink("/etc/passwd", path.join(copy.directory, "link.md"));
    await fs.writeFile(path.join(copy.directory, "big.md"), "x".repeat(11));
    const pushed = await copy.push();
    expect(pushed.committed).toEqual([]);
    expect(pushed.notices.join("\n")).toContain("link.md is not a regular file");
    expect(pushed.notices.join("\n")).toContain("big.md was not saved: it is 11 bytes, the limit is 10");
    expect(await stores.listMemories(orgId, store.id, { limit: 10 })).toEqual([]);
  });

  it("measures pull + push around a command that changes one file of a 100-memory store", async () => {
    const store = await stores.createStore(orgId, { name: "s" });
    for (let index = 0; index < 100; index++) {
      await stores.createMemory(orgId, store.id, `/notes/${index}.md`, `note ${index}\n`, {});
    }
    const copy = await copyOf(store.id, "sesn_bench");
    const samples: number[] = [];
    for (let round = 0; round < 30; round++) {
      const startedAt = performance.now();
      await copy.pull();
      await fs.appendFile(path.join(copy.directory, "notes/7.md"), `${round}\n`);
      const pushed = await copy.push();
      samples.push(performance.now() - startedAt);
      expect(pushed.committed).toHaveLength(1);
    }
    samples.sort((a, b) => a - b);
    const p50 = samples[Math.floor(samples.length / 2)] ?? 0;
    console.log(
      `memory copy pull + push (100 memories, 1 changed): p50 ${p50.toFixed(1)} ms, max ${samples.at(-1)?.toFixed(1)} ms`,
    );
    expect(await text(store.id, "/notes/7.md")).toContain("29\n");
  });
});
