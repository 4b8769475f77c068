import {
  createDefaultTools,
  createFileStateTracker,
  FileError,
  isFileError,
  MountTable,
  type Tool,
  type ToolContext,
} from "@outrig/core";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDatabase,
  createDatabaseMounts,
  type Database,
  type FileScope,
  PostgresFileStore,
  SKILLS_WRITE_DENIED,
} from "../src/index.js";

const text = (value: string) => new TextEncoder().encode(value);
const decode = (value: Uint8Array) => new TextDecoder().decode(value);

async function errorOf(action: () => Promise<unknown>): Promise<FileError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof FileError) return error;
    throw error;
  }
  throw new Error("expected a FileError");
}

function toolContext(fs: MountTable): ToolContext {
  return {
    fs,
    exec: () => Promise.reject(new Error("no sandbox in this test")),
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call_test",
    cwd: "/workspace",
  };
}

function tool(name: string): Tool {
  const found = createDefaultTools().find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no tool ${name}`);
  return found;
}

describe("PostgresFileStore", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let store: PostgresFileStore;
  let orgId: string;
  let otherOrgId: string;
  let adminId: string;
  let aliceId: string;
  let bobId: string;
  let mallory: string;
  let scope: FileScope;

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url, poolSize: 20 });
    store = new PostgresFileStore(database.pool);
    orgId = (await database.auth.createOrg("files-org")).id;
    otherOrgId = (await database.auth.createOrg("files-other")).id;
    adminId = (await database.auth.createUser(orgId, { name: "admin", role: "admin" })).id;
    aliceId = (await database.auth.createUser(orgId, { name: "alice", role: "member" })).id;
    bobId = (await database.auth.createUser(orgId, { name: "bob", role: "member" })).id;
    mallory = (await database.auth.createUser(otherOrgId, { name: "mallory", role: "admin" })).id;
    scope = { orgId, namespace: "memories/org" };
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  it("writes, reads, stats, lists and removes with implied directories", async () => {
    const first = await store.write(scope, "/crud/notes/a.md", text("one\n"), {
      author: { userId: aliceId, sessionId: "ses_a", turn: 1 },
    });
    expect(first).toMatchObject({ path: "/crud/notes/a.md", version: 1, size: 4 });
    expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);
    await store.write(scope, "/crud/b.md", text("bee"));
    expect(decode((await store.read(scope, "/crud/notes/a.md")).content)).toBe("one\n");
    await expect(store.lookup(scope, "/crud")).resolves.toEqual({ kind: "directory" });
    await expect(store.lookup(scope, "/crud/notes/a.md")).resolves.toMatchObject({
      kind: "file",
      version: 1,
      size: 4,
    });
    await expect(store.lookup(scope, "/crud/missing")).resolves.toEqual({ kind: "absent", version: 0 });
    expect((await store.list(scope, "/crud")).map((entry) => [entry.path, entry.kind])).toEqual([
      ["b.md", "file"],
      ["notes", "directory"],
    ]);
    expect((await store.list(scope, "/crud", { recursive: true })).map((entry) => entry.path)).toEqual([
      "b.md",
      "notes",
      "notes/a.md",
    ]);
    expect((await errorOf(() => store.read(scope, "/crud"))).code).toBe("is_directory");
    expect((await errorOf(() => store.list(scope, "/crud/b.md"))).code).toBe("not_directory");
    expect((await errorOf(() => store.list(scope, "/nothing"))).code).toBe("not_found");
    expect((await errorOf(() => store.write(scope, "/crud/b.md/c", text("x")))).code).toBe("not_directory");
    expect((await errorOf(() => store.write(scope, "/crud/notes", text("x")))).code).toBe("is_directory");

    await store.remove(scope, "/crud/notes/a.md");
    await expect(store.lookup(scope, "/crud/notes/a.md")).resolves.toEqual({ kind: "absent", version: 2 });
    expect((await errorOf(() => store.read(scope, "/crud/notes/a.md"))).code).toBe("not_found");
    await expect(store.lookup(scope, "/crud/notes")).resolves.toEqual({ kind: "absent", version: 0 });
    expect((await errorOf(() => store.remove(scope, "/crud/notes/a.md"))).code).toBe("not_found");
    // The removed file's content stays in history.
    expect(decode((await store.read(scope, "/crud/notes/a.md", { version: 1 })).content)).toBe("one\n");
    await store.write(scope, "/crud/deep/x/y.md", text("y"));
    const removed = await store.remove(scope, "/crud");
    expect(removed.map((result) => result.path)).toEqual(["/crud/b.md", "/crud/deep/x/y.md"]);
    expect((await errorOf(() => store.list(scope, "/crud"))).code).toBe("not_found");
    await expect(store.list(scope, "/")).resolves.toEqual([]);
  });

  it("keeps every version with its author, session and turn, and blames lines", async () => {
    const path = "/history.md";
    await store.write(scope, path, text("alpha\nbeta\n"), {
      author: { userId: aliceId, sessionId: "ses_1", turn: 1 },
    });
    await store.write(scope, path, text("alpha\nBETA\ngamma\n"), {
      author: { userId: bobId, sessionId: "ses_2", turn: 4 },
      expectedVersion: 1,
    });
    await store.write(scope, path, text("zero\nalpha\nBETA\ngamma\n"), {
      author: { userId: aliceId, sessionId: "ses_1", turn: 2 },
    });
    const history = await store.history(scope, path);
    expect(
      history.map((record) => [
        record.version,
        record.authorUserId,
        record.sessionId,
        record.turn,
        record.size,
      ]),
    ).toEqual([
      [1, aliceId, "ses_1", 1, 11],
      [2, bobId, "ses_2", 4, 17],
      [3, aliceId, "ses_1", 2, 22],
    ]);
    const mtimes = history.map((record) => record.mtimeMs);
    expect(mtimes[1]).toBeGreaterThan(mtimes[0] ?? Infinity);
    expect(mtimes[2]).toBeGreaterThan(mtimes[1] ?? Infinity);
    const blame = await store.blame(scope, path);
    expect(blame.map((line) => [line.line, line.text, line.version, line.authorUserId])).toEqual([
      [1, "zero", 3, aliceId],
      [2, "alpha", 1, aliceId],
      [3, "BETA", 2, bobId],
      [4, "gamma", 2, bobId],
    ]);
  });

  it("makes mtimes strictly increasing even when the clock stands still", async () => {
    const frozen = new PostgresFileStore(database.pool, { clock: () => 1_000 });
    const a = await frozen.write(scope, "/frozen.md", text("1"));
    const b = await frozen.write(scope, "/frozen.md", text("2"));
    const c = await frozen.write(scope, "/frozen.md", text("2"));
    expect([a.mtimeMs, b.mtimeMs, c.mtimeMs]).toEqual([1_000, 1_001, 1_002]);
  });

  it("rejects a write whose expected version is stale with a conflict that says to read again", async () => {
    await store.write(scope, "/cas.md", text("v1"));
    await store.write(scope, "/cas.md", text("v2"), { expectedVersion: 1 });
    const error = await errorOf(() => store.write(scope, "/cas.md", text("v3"), { expectedVersion: 1 }));
    expect(error.code).toBe("conflict");
    expect(error.message).toBe(
      "The file has been modified since you last read it (you read version 1; it is now at version 2), probably by another session. Read it again before editing or writing it.",
    );
    expect(
      (await errorOf(() => store.write(scope, "/cas.md", text("new"), { expectedVersion: 0 }))).code,
    ).toBe("conflict");
    expect((await errorOf(() => store.remove(scope, "/cas.md", { expectedVersion: 1 }))).code).toBe(
      "conflict",
    );
    expect(decode((await store.read(scope, "/cas.md")).content)).toBe("v2");
  });

  it.each([
    ["/a/../b", "invalid_path", 'Path must not contain ".." segments: /a/../b'],
    ["/a/./b", "invalid_path", 'Path must not contain "." segments: /a/./b'],
    ["/a\0b", "invalid_path", "Path contains a NUL byte."],
    ["/a\nb", "invalid_path", "Path contains a control character."],
    ["relative.md", "invalid_path", "Path must be absolute: relative.md"],
    ["/a\\..\\b", "invalid_path", "Path must not contain a backslash."],
    [`/${"x".repeat(256)}`, "invalid_path", `A path segment is longer than 255 bytes: ${"x".repeat(40)}…`],
    [`/${"d/".repeat(600)}f`, "invalid_path", "Path is longer than 1024 bytes."],
  ])("refuses the path %j", async (path, code, message) => {
    for (const action of [
      () => store.write(scope, path, text("x")),
      () => store.read(scope, path),
      () => store.lookup(scope, path),
      () => store.list(scope, path),
    ]) {
      const error = await errorOf(action);
      expect([error.code, error.message]).toEqual([code, message]);
    }
  });

  it("refuses files above the size limit", async () => {
    const small = new PostgresFileStore(database.pool, { maxFileBytes: 1024 });
    const error = await errorOf(() => small.write(scope, "/big.bin", new Uint8Array(1025)));
    expect([error.code, error.message]).toEqual([
      "too_large",
      "File is too large: 1025 bytes; the limit is 1024 bytes.",
    ]);
    const huge = await errorOf(() => store.write(scope, "/huge.bin", new Uint8Array(store.maxFileBytes + 1)));
    expect(huge.code).toBe("too_large");
    await expect(store.lookup(scope, "/huge.bin")).resolves.toEqual({ kind: "absent", version: 0 });
  });

  describe("database mounts", () => {
    const session = (userId: string, role: string, sessionId: string, org = orgId) =>
      new MountTable(createDatabaseMounts({ store, orgId: org, userId, role, sessionId, turn: 3 }));

    it("shares /memories/org across the org, keeps /memories/me private and shows another org nothing", async () => {
      const alice = session(aliceId, "member", "ses_alice");
      const bob = session(bobId, "member", "ses_bob");
      const outsider = session(mallory, "admin", "ses_mallory", otherOrgId);
      await alice.write("/memories/org/team.md", text("shared by alice"));
      await alice.write("/memories/me/private.md", text("alice only"));
      expect(decode(await bob.read("/memories/org/team.md"))).toBe("shared by alice");
      await expect(bob.stat("/memories/me/private.md")).resolves.toBeNull();
      expect((await errorOf(() => bob.read("/memories/me/private.md"))).code).toBe("not_found");
      await expect(outsider.stat("/memories/org/team.md")).resolves.toBeNull();
      await expect(outsider.list("/memories/org", { recursive: true })).resolves.toEqual([]);
      const history = await store.history({ orgId, namespace: "memories/org" }, "/team.md");
      expect(history[0]).toMatchObject({ authorUserId: aliceId, sessionId: "ses_alice", turn: 3 });

      const listing = await alice.list("/memories", { recursive: true });
      expect(listing.map((entry) => entry.path)).toEqual(
        expect.arrayContaining(["me", "me/private.md", "org", "org/team.md"]),
      );
      const rootWrite = await errorOf(() => alice.write("/memories/loose.md", text("x")));
      expect(rootWrite.code).toBe("read_only");
      // `..` is resolved by the mount table before routing: it can reach a sibling mount, never leave them.
      expect(decode(await alice.read("/memories/org/../me/private.md"))).toBe("alice only");
      expect((await errorOf(() => bob.read("/memories/me/../../memories/me/private.md"))).code).toBe(
        "not_found",
      );
    });

    it("lets members read /skills but only admins write it", async () => {
      const admin = session(adminId, "admin", "ses_admin");
      const member = session(aliceId, "member", "ses_member");
      await admin.write("/skills/demo/SKILL.md", text("---\nname: demo\n---\n"));
      expect(decode(await member.read("/skills/demo/SKILL.md"))).toContain("name: demo");
      const denied = await errorOf(() => member.write("/skills/demo/SKILL.md", text("hacked")));
      expect([denied.code, denied.message]).toEqual(["permission_denied", SKILLS_WRITE_DENIED]);
      expect((await errorOf(() => member.remove("/skills/demo"))).code).toBe("permission_denied");
    });

    it("fails an Edit based on a stale read with a tool error telling the model to read again", async () => {
      const [read, edit] = [tool("Read"), tool("Edit")];
      const alice = toolContext(session(aliceId, "member", "ses_stale_a"));
      const bob = toolContext(session(bobId, "member", "ses_stale_b"));
      await store.write(scope, "/stale.md", text("color: blue\nsize: 1\n"));
      expect((await read.execute({ file_path: "/memories/org/stale.md" }, alice)).isError).toBe(false);
      expect((await read.execute({ file_path: "/memories/org/stale.md" }, bob)).isError).toBe(false);
      const bobEdit = await edit.execute(
        { file_path: "/memories/org/stale.md", old_string: "size: 1", new_string: "size: 2" },
        bob,
      );
      expect(bobEdit.isError).toBe(false);
      const aliceEdit = await edit.execute(
        { file_path: "/memories/org/stale.md", old_string: "color: blue", new_string: "color: red" },
        alice,
      );
      expect(aliceEdit).toEqual({
        isError: true,
        output:
          "<tool_use_error>File has been modified since read, either by the user or by a linter. Read it again before attempting to write it.</tool_use_error>",
      });
    });

    it("turns a write racing between the tool's check and its write into a conflict error", async () => {
      const alice = session(aliceId, "member", "ses_race_a");
      await store.write(scope, "/race.md", text("start"));
      await alice.stat("/memories/org/race.md");
      await alice.read("/memories/org/race.md");
      await store.write(scope, "/race.md", text("someone else"));
      const error = await errorOf(() => alice.write("/memories/org/race.md", text("mine")));
      expect(error.code).toBe("conflict");
      expect(decode((await store.read(scope, "/race.md")).content)).toBe("someone else");
    });

    it("loses no update when 50 sessions each make 20 Edits of one file through the tools", async () => {
      const sessions = 50;
      const editsPerSession = 20;
      const path = "/memories/org/counters.md";
      const label = (index: number) => `[s${String(index).padStart(2, "0")}]`;
      const initial = Array.from({ length: sessions }, (_, index) => `${label(index)} 0\n`).join("");
      await store.write(scope, "/counters.md", text(initial));
      const [read, edit] = [tool("Read"), tool("Edit")];
      let conflicts = 0;
      let staleRefusals = 0;
      const accepted: { session: number; edit: number }[] = [];
      const started = performance.now();
      await Promise.all(
        Array.from({ length: sessions }, async (_, index) => {
          const context = toolContext(
            session(index % 2 === 0 ? aliceId : bobId, "member", `ses_many_${index}`),
          );
          for (let count = 0; count < editsPerSession; count++) {
            for (let attempt = 0; ; attempt++) {
              const readResult = await read.execute({ file_path: path }, context);
              expect(readResult.isError).toBe(false);
              const result = await edit.execute(
                {
                  file_path: path,
                  old_string: `${label(index)} ${count}\n`,
                  new_string: `${label(index)} ${count + 1}\n`,
                },
                context,
              );
              if (!result.isError) {
                accepted.push({ session: index, edit: count + 1 });
                break;
              }
              if (result.output.includes("The file has been modified since you last read it")) conflicts++;
              else if (result.output.includes("File has been modified since read")) staleRefusals++;
              else throw new Error(`unexpected Edit failure: ${result.output}`);
              // Jittered backoff so 50 writers do not retry in lockstep.
              await new Promise((resolve) =>
                setTimeout(resolve, Math.random() * Math.min(200, 4 * 2 ** attempt)),
              );
            }
          }
        }),
      );
      const elapsedMs = performance.now() - started;
      const final = decode((await store.read(scope, "/counters.md")).content);
      expect(final).toBe(
        Array.from({ length: sessions }, (_, index) => `${label(index)} ${editsPerSession}\n`).join(""),
      );
      expect(accepted).toHaveLength(sessions * editsPerSession);
      // Every accepted edit is one version, and each version differs from the previous by exactly that edit.
      const history = await store.history(scope, "/counters.md");
      expect(history).toHaveLength(1 + sessions * editsPerSession);
      let previous = initial;
      for (const record of history.slice(1)) {
        const content = decode(
          (await store.read(scope, "/counters.md", { version: record.version })).content,
        );
        const before = previous.split("\n");
        const after = content.split("\n");
        const changed = after.filter((line, position) => line !== before[position]);
        expect(changed).toHaveLength(1);
        const [, who, value] = /^\[s(\d\d)\] (\d+)$/.exec(changed[0] ?? "") ?? [];
        const beforeLine = before.find((line) => line.startsWith(`[s${who}] `));
        expect(beforeLine).toBe(`[s${who}] ${Number(value) - 1}`);
        expect(record.sessionId).toBe(`ses_many_${Number(who)}`);
        previous = content;
      }
      console.log(
        `50x20 concurrent Edits: ${elapsedMs.toFixed(0)} ms, ${conflicts} compare-and-swap conflicts, ${staleRefusals} stale-read refusals`,
      );
      expect(isFileError(new FileError("conflict", "/", "x"), "conflict")).toBe(true);
    }, 300_000);
  });
});
