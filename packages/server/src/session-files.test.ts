/**
 * Files as session resources on a real bubblewrap sandbox through SessionSandbox: uploads appear at
 * their mount paths (read-only under /mnt/session/uploads), and what the agent writes under
 * /mnt/session/outputs becomes Files API files scoped to the session, once per content.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { serve } from "@hono/node-server";
import { InputError } from "@outrig/core";
import { createBubblewrapSandboxProvider, createLocalDirectoryBlobStore } from "@outrig/sandboxes";
import { createDatabase, type Database, PostgresApiFileStore } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toErrorResponse } from "./http-error.js";
import { type FilesApiRoutesEnv, registerFilesApiRoutes } from "./routes/files-api-routes.js";
import { fileMountPath, SessionFiles } from "./session-files.js";
import { SessionSandbox } from "./session-sandbox.js";

const provider = createBubblewrapSandboxProvider();
let root: string;
let testDatabase: TestDatabase;
let database: Database;
let files: PostgresApiFileStore;
let orgId: string;
let otherOrgId: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), "outrig-session-files-"));
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  orgId = (await database.auth.createOrg("session-files")).id;
  otherOrgId = (await database.auth.createOrg("session-files-other")).id;
  files = new PostgresApiFileStore(database.pool, createLocalDirectoryBlobStore(path.join(root, "blobs")));
});
afterAll(async () => {
  await provider.close();
  await database?.close();
  await testDatabase?.drop();
  await rm(root, { recursive: true, force: true });
});

const sh = async (sandbox: SessionSandbox, command: string) => {
  const result = await sandbox.proxy.exec({ command, timeoutMs: 30_000 }, new AbortController().signal);
  return { code: result.exitCode, out: result.stdout.trim(), err: result.stderr.trim() };
};

describe("session files", () => {
  it("mounts uploaded files in the sandbox and collects its outputs as files scoped to the session", async () => {
    const sessionId = "sesn_files1";
    const binary = new Uint8Array(randomBytes(70_000));
    const data = await files.create({
      orgId,
      filename: "data.bin",
      mimeType: "application/octet-stream",
      content: binary,
    });
    const table = await files.create({
      orgId,
      filename: "t.csv",
      mimeType: "text/csv",
      content: Buffer.from("a,b\n1,2\n"),
    });
    const sessionFiles = new SessionFiles({
      files,
      orgId,
      sessionId,
      directory: path.join(root, "session-files", sessionId),
    });
    const sandbox = new SessionSandbox({
      provider,
      sessionId,
      orgId,
      workspaceDir: path.join(root, "workspace-1"),
      stateDir: path.join(root, "state-1"),
      setup: () => sessionFiles.sandboxMounts(),
      policy: async () => ({ coldAfterMs: 600_000, destroyAfterMs: 600_000 }),
      emit: async () => undefined,
    });
    try {
      const mounted = await sessionFiles.mountFiles(
        [
          { file_id: data.id },
          { file_id: table.id, mount_path: "/workspace/input/t.csv" },
          { file_id: data.id, mount_path: "/mnt/session/uploads/nested/copy.bin" },
        ],
        sandbox.proxy,
      );
      expect(mounted.map((file) => file.mount_path)).toEqual([
        `/mnt/session/uploads/${data.id}`,
        "/workspace/input/t.csv",
        "/mnt/session/uploads/nested/copy.bin",
      ]);
      const expected = createHash("sha256").update(binary).digest("hex");
      const sums = await sh(
        sandbox,
        `sha256sum /mnt/session/uploads/${data.id} /mnt/session/uploads/nested/copy.bin | cut -d' ' -f1; cat /workspace/input/t.csv`,
      );
      expect(sums).toMatchObject({ code: 0, out: `${expected}\n${expected}\na,b\n1,2` });
      // The uploads are read-only copies: the agent cannot change them.
      const write = await sh(sandbox, `echo x > /mnt/session/uploads/${data.id}`);
      expect(write.code).not.toBe(0);

      // The agent writes outputs, and plants a symlink and a FIFO that must not be followed or read.
      const made = await sh(
        sandbox,
        [
          "mkdir -p /mnt/session/outputs/charts",
          "printf '# Report\\n' > /mnt/session/outputs/report.md",
          "head -c 5000 /dev/urandom > /mnt/session/outputs/charts/plot.png",
          "ln -s /etc/passwd /mnt/session/outputs/passwd-link",
          "mkfifo /mnt/session/outputs/pipe",
        ].join(" && "),
      );
      expect(made.code, made.err).toBe(0);
      const collected = await sessionFiles.collectOutputs(sandbox.proxy);
      expect(collected.map((file) => [file.filename, file.mimeType, file.scope]).sort()).toEqual([
        ["plot.png", "image/png", { type: "session", id: sessionId }],
        ["report.md", "text/markdown", { type: "session", id: sessionId }],
      ]);
      const plot = collected.find((file) => file.filename === "plot.png");
      const plotBytes = await sandbox.proxy.readFile("/mnt/session/outputs/charts/plot.png");
      expect(
        Buffer.from((await files.read(orgId, plot?.id ?? ""))?.content ?? []).equals(Buffer.from(plotBytes)),
      ).toBe(true);

      // Unchanged outputs are not stored again; a changed one is a new file.
      expect(await sessionFiles.collectOutputs(sandbox.proxy)).toEqual([]);
      await sh(sandbox, "printf '# Report v2\\n' > /mnt/session/outputs/report.md");
      const second = await sessionFiles.collectOutputs(sandbox.proxy);
      expect(second.map((file) => file.filename)).toEqual(["report.md"]);
      expect(Buffer.from((await files.read(orgId, second[0]?.id ?? ""))?.content ?? []).toString()).toBe(
        "# Report v2\n",
      );
      const scoped = await files.list(orgId, { limit: 100, scopeId: sessionId });
      expect(scoped).toHaveLength(3);

      // Downloadable afterwards through the Files API, with the SDK as the client.
      const app = new Hono<FilesApiRoutesEnv>();
      app.onError((error, c) => {
        const { status, body } = toErrorResponse(error);
        return c.json(body, status as 400);
      });
      app.use("/v1/*", async (c, next) => {
        c.set("caller", { orgId, userId: "usr_files" });
        await next();
      });
      registerFilesApiRoutes(app, { files });
      const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
      await new Promise<void>((resolve) => server.once("listening", () => resolve()));
      try {
        const sdk = new Anthropic({
          apiKey: "unused",
          baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          maxRetries: 0,
        });
        const outputs = await sdk.beta.files.list({ scope_id: sessionId });
        expect(outputs.data.map((file) => file.filename).sort()).toEqual([
          "plot.png",
          "report.md",
          "report.md",
        ]);
        expect(
          outputs.data.every((file) => file.scope?.type === "session" && file.scope.id === sessionId),
        ).toBe(true);
        // Newest first: the second collection's report.
        expect(outputs.data[0]?.id).toBe(second[0]?.id);
        const downloaded = await sdk.beta.files.download(plot?.id ?? "");
        expect(downloaded.headers.get("content-type")).toBe("image/png");
        expect(Buffer.from(await downloaded.arrayBuffer()).equals(Buffer.from(plotBytes))).toBe(true);
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      expect(await files.list(otherOrgId, { limit: 100, scopeId: sessionId })).toEqual([]);
    } finally {
      await sandbox.destroy();
      await sessionFiles.destroy();
    }
  }, 120_000);

  it("refuses another org's file and bad mount paths before writing anything", async () => {
    const theirs = await files.create({
      orgId: otherOrgId,
      filename: "secret.txt",
      mimeType: "text/plain",
      content: Buffer.from("secret"),
    });
    const mine = await files.create({
      orgId,
      filename: "a.txt",
      mimeType: "text/plain",
      content: Buffer.from("a"),
    });
    const sessionFiles = new SessionFiles({
      files,
      orgId,
      sessionId: "sesn_files2",
      directory: path.join(root, "session-files", "sesn_files2"),
    });
    const writes: string[] = [];
    const recording = {
      writeFile: async (filePath: string) => {
        writes.push(filePath);
      },
    } as unknown as SessionSandbox["proxy"];
    const error = await sessionFiles
      .mountFiles([{ file_id: mine.id, mount_path: "/workspace/a.txt" }, { file_id: theirs.id }], recording)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({ status: 404 });
    expect(writes).toEqual([]);
    for (const mountPath of [
      "relative/path",
      "/etc/passwd",
      "/mnt/session/uploads/../../etc/x",
      "/mnt/session/uploads/",
      "/mnt/session/uploads",
      "/mnt/session/outputs/x",
      "/workspace/./x",
      "/workspace/a\u0000b",
      `/workspace/${"x".repeat(5000)}`,
    ]) {
      expect(() => fileMountPath({ file_id: mine.id, mount_path: mountPath }), mountPath).toThrow(
        expect.objectContaining({ status: 400, code: "invalid_mount_path" }),
      );
    }
    await expect(
      sessionFiles.mountFiles(
        [
          { file_id: mine.id, mount_path: "/workspace/same" },
          { file_id: mine.id, mount_path: "/workspace/same" },
        ],
        recording,
      ),
    ).rejects.toMatchObject({ status: 400 });
    expect(writes).toEqual([]);
  });
});
