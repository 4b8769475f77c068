import { createDatabase, type Database, PostgresFileStore } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toErrorResponse } from "../http-error.js";
import {
  type FileStoreCaller,
  type FileStoreRoutesEnv,
  registerFileStoreRoutes,
} from "./file-store-routes.js";

describe("file store routes", () => {
  let testDatabase: TestDatabase;
  let database: Database;
  let store: PostgresFileStore;
  let app: Hono<FileStoreRoutesEnv>;
  const callers: Record<string, FileStoreCaller> = {};

  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    database = await createDatabase({ url: testDatabase.url });
    const orgId = (await database.auth.createOrg("routes-org")).id;
    const otherOrgId = (await database.auth.createOrg("routes-other")).id;
    callers.admin = {
      orgId,
      userId: (await database.auth.createUser(orgId, { name: "a", role: "admin" })).id,
      role: "admin",
    };
    callers.member = {
      orgId,
      userId: (await database.auth.createUser(orgId, { name: "m", role: "member" })).id,
      role: "member",
    };
    callers.outsider = {
      orgId: otherOrgId,
      userId: (await database.auth.createUser(otherOrgId, { name: "o", role: "admin" })).id,
      role: "admin",
    };
    app = new Hono<FileStoreRoutesEnv>();
    app.onError((error, c) => {
      const { status, body } = toErrorResponse(error);
      return c.json(body, status as 400);
    });
    app.use("/v1/*", async (c, next) => {
      const caller = callers[c.req.header("x-caller") ?? ""];
      if (!caller) return c.json({ error: { code: "unauthorized", message: "no caller" } }, 401);
      c.set("caller", caller);
      await next();
    });
    store = new PostgresFileStore(database.pool);
    registerFileStoreRoutes(app, { files: store });
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });

  const call = (caller: string, method: string, url: string, body?: unknown) =>
    app.request(url, {
      method,
      headers: { "x-caller": caller, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it("writes, reads, lists, shows history and blame, and deletes, scoped by the caller", async () => {
    const put = await call("member", "PUT", "/v1/file_store/content", {
      path: "/memories/org/team.md",
      content: "a\nb\n",
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ path: "/memories/org/team.md", version: 1, size: 4 });
    const second = await call("admin", "PUT", "/v1/file_store/content", {
      path: "/memories/org/team.md",
      content: "a\nB\n",
      expectedVersion: 1,
    });
    expect(second.status).toBe(200);
    const stale = await call("member", "PUT", "/v1/file_store/content", {
      path: "/memories/org/team.md",
      content: "lost",
      expectedVersion: 1,
    });
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe("conflict");

    const read = await call("member", "GET", "/v1/file_store/content?path=/memories/org/team.md");
    expect([read.status, await read.text(), read.headers.get("x-file-version")]).toEqual([
      200,
      "a\nB\n",
      "2",
    ]);
    const old = await call("member", "GET", "/v1/file_store/content?path=/memories/org/team.md&version=1");
    expect(await old.text()).toBe("a\nb\n");
    const list = await call("member", "GET", "/v1/file_store/list?path=/memories/org");
    expect(
      ((await list.json()) as { entries: { path: string }[] }).entries.map((entry) => entry.path),
    ).toEqual(["team.md"]);
    const history = (await (
      await call("member", "GET", "/v1/file_store/history?path=/memories/org/team.md")
    ).json()) as {
      versions: { version: number; authorUserId: string }[];
    };
    expect(history.versions.map((version) => [version.version, version.authorUserId])).toEqual([
      [1, callers.member?.userId],
      [2, callers.admin?.userId],
    ]);
    const blame = (await (
      await call("member", "GET", "/v1/file_store/blame?path=/memories/org/team.md")
    ).json()) as {
      lines: { text: string; version: number }[];
    };
    expect(blame.lines.map((line) => [line.text, line.version])).toEqual([
      ["a", 1],
      ["B", 2],
    ]);

    // Private memories and another org.
    await call("member", "PUT", "/v1/file_store/content", {
      path: "/memories/me/mine.md",
      content: "secret",
    });
    expect((await call("admin", "GET", "/v1/file_store/content?path=/memories/me/mine.md")).status).toBe(404);
    expect((await call("outsider", "GET", "/v1/file_store/content?path=/memories/org/team.md")).status).toBe(
      404,
    );
    expect((await call("outsider", "GET", "/v1/file_store/history?path=/memories/org/team.md")).status).toBe(
      404,
    );
    const outsiderList = await call(
      "outsider",
      "GET",
      "/v1/file_store/list?path=/memories/org&recursive=true",
    );
    expect(await outsiderList.json()).toEqual({ path: "/memories/org", entries: [] });

    const removed = await call("member", "DELETE", "/v1/file_store/content?path=/memories/org/team.md");
    expect(await removed.json()).toEqual({ removed: [{ path: "/team.md", version: 3 }] });
    expect((await call("member", "GET", "/v1/file_store/content?path=/memories/org/team.md")).status).toBe(
      404,
    );
  });

  it("serves skill folders read-only: skills change only through the Skills API", async () => {
    // A folder the Skills API wrote (here through the store, as PostgresSkillStore does).
    await store.write(
      { orgId: callers.admin?.orgId as string, namespace: "skills" },
      "/greet/SKILL.md",
      new TextEncoder().encode(
        "---\nname: greet\ndescription: Greets people. Use when greeting.\n---\nSay hi.\n",
      ),
    );
    expect(
      await (await call("member", "GET", "/v1/file_store/content?path=/skills/greet/SKILL.md")).text(),
    ).toContain("Say hi.");
    expect((await call("member", "GET", "/v1/file_store/list?path=/skills")).status).toBe(200);
    for (const caller of ["member", "admin"]) {
      const put = await call(caller, "PUT", "/v1/file_store/content", {
        path: "/skills/greet/SKILL.md",
        content: "x",
      });
      expect(put.status).toBe(403);
      expect(await put.json()).toMatchObject({
        type: "error",
        error: {
          type: "permission_error",
          code: "permission_denied",
          message: expect.stringContaining("Skills API"),
        },
      });
      expect(
        (await call(caller, "DELETE", "/v1/file_store/content?path=/skills/greet/SKILL.md")).status,
      ).toBe(403);
    }
    expect(
      await (await call("member", "GET", "/v1/file_store/content?path=/skills/greet/SKILL.md")).text(),
    ).toContain("Say hi.");
    expect((await call("outsider", "GET", "/v1/file_store/content?path=/skills/greet/SKILL.md")).status).toBe(
      404,
    );
  });

  it("no longer answers the old /v1/files/<verb> paths, which the Files API's /v1/files/{file_id} owns", async () => {
    for (const path of ["/v1/files/list?path=/memories/org", "/v1/files/content?path=/memories/org/a"]) {
      expect((await call("member", "GET", path)).status).toBe(404);
    }
  });

  it.each([
    ["/workspace/a.txt", 400, "invalid_path"],
    ["/memories/org/../me/x", 400, "invalid_path"],
    ["/memories/org/a%00b", 400, "invalid_path"],
    [`/memories/org/${"a".repeat(300)}`, 400, "invalid_path"],
  ])("refuses the path %j", async (path, status, code) => {
    const response = await call(
      "member",
      "GET",
      `/v1/file_store/content?path=${encodeURIComponent(decodeURIComponent(path))}`,
    );
    expect(response.status).toBe(status);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
  });

  it("refuses bad bodies and huge files with 4xx", async () => {
    expect((await call("member", "PUT", "/v1/file_store/content", { path: "/memories/me/x" })).status).toBe(
      400,
    );
    const huge = await call("member", "PUT", "/v1/file_store/content", {
      path: "/memories/me/huge",
      content: "x".repeat(1024 * 1024 + 1),
    });
    expect(huge.status).toBe(400);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe("too_large");
  });
});
