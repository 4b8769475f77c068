import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import Anthropic, { toFile } from "@anthropic-ai/sdk";
import { serve } from "@hono/node-server";
import { createDefaultTools } from "@outrig/core";
import { createLocalDirectoryBlobStore } from "@outrig/sandboxes";
import {
  createDatabase,
  type Database,
  PostgresApiFileStore,
  PostgresFileStore,
  PostgresSkillStore,
} from "@outrig/storage";
import {
  createTestDatabase,
  FakeSandboxProvider,
  MemorySessionStore,
  ScriptedModel,
  type TestDatabase,
} from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, MAX_BODY_BYTES } from "../src/app.js";
import { InProcessTurnScheduler } from "../src/durable/in-process-turn-scheduler.js";
import { EventBus } from "../src/event-bus.js";
import { registerFileStoreRoutes } from "../src/routes/file-store-routes.js";
import { registerFilesApiRoutes } from "../src/routes/files-api-routes.js";
import { registerSkillsApiRoutes } from "../src/routes/skills-api-routes.js";
import { SessionManager } from "../src/session-manager.js";

const FIXTURES = path.join(import.meta.dirname, "__fixtures__", "skills");
const MAX_UPLOAD = 4 * 1024 * 1024;
const MAX_SKILL_UPLOAD = 256 * 1024;

let testDatabase: TestDatabase;
let database: Database;
let home: string;
let url: string;
let closeServer: () => Promise<void>;
const keys: Record<"admin" | "member" | "outsider", string> = { admin: "", member: "", outsider: "" };
let apiFiles: PostgresApiFileStore;

function client(who: keyof typeof keys = "admin"): Anthropic {
  return new Anthropic({ apiKey: keys[who], baseURL: url, maxRetries: 0 });
}

function raw(
  method: string,
  route: string,
  init: { who?: keyof typeof keys; body?: BodyInit; headers?: Record<string, string> } = {},
) {
  return fetch(`${url}${route}`, {
    method,
    headers: { "x-api-key": keys[init.who ?? "admin"], ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
}

async function skillFolder(name: string, prefix = name): Promise<File[]> {
  const files: File[] = [];
  const walk = async (directory: string, relative: string) => {
    for (const entry of await fs.readdir(directory, { withFileTypes: true })) {
      const full = path.join(directory, entry.name);
      const inner = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) await walk(full, inner);
      else files.push(await toFile(await fs.readFile(full), `${prefix}/${inner}`));
    }
  };
  await walk(path.join(FIXTURES, name), "");
  return files;
}

const skillMd = (name: string, description: string, body = "Body.\n") =>
  `---\nname: ${name}\ndescription: ${description}\n---\n${body}`;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-skills-files-"));
  const org = await database.auth.createOrg("files-org");
  const other = await database.auth.createOrg("files-other");
  const admin = await database.auth.createUser(org.id, { name: "admin", role: "admin" });
  const member = await database.auth.createUser(org.id, { name: "member", role: "member" });
  const outsider = await database.auth.createUser(other.id, { name: "outsider", role: "admin" });
  keys.admin = (await database.auth.createApiKey(org.id, admin.id, "a")).key;
  keys.member = (await database.auth.createApiKey(org.id, member.id, "m")).key;
  keys.outsider = (await database.auth.createApiKey(other.id, outsider.id, "o")).key;
  const store = new MemorySessionStore();
  const bus = new EventBus();
  const sessions = new SessionManager({
    scheduler: new InProcessTurnScheduler(),
    store,
    bus,
    modelFactory: () => new ScriptedModel([]),
    sandboxProvider: new FakeSandboxProvider(),
    tools: createDefaultTools(),
    home,
    limits: { maxSteps: 10, maxModelAttempts: 2 },
    sandboxIdleMs: 60_000,
    log: () => undefined,
  });
  const fileStore = new PostgresFileStore(database.pool);
  apiFiles = new PostgresApiFileStore(database.pool, createLocalDirectoryBlobStore(path.join(home, "files")));
  const app = createApp({
    auth: database.auth,
    sessions,
    store,
    bus,
    log: () => undefined,
    extraRoutes: [
      (routes) => registerFileStoreRoutes(routes, { files: fileStore }),
      (routes) => registerFilesApiRoutes(routes, { files: apiFiles, maxUploadBytes: MAX_UPLOAD }),
      (routes) =>
        registerSkillsApiRoutes(routes, {
          skills: new PostgresSkillStore(database.pool, fileStore),
          maxUploadBytes: MAX_SKILL_UPLOAD,
        }),
    ],
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeServer = () => new Promise((resolve) => server.close(() => resolve()));
});

afterAll(async () => {
  await closeServer?.();
  await database?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

describe("Files API through the SDK", () => {
  it("uploads, lists, retrieves, downloads the exact bytes and deletes", async () => {
    const sdk = client();
    const binary = new Uint8Array(randomBytes(300_000));
    binary[0] = 0;
    binary[1] = 0xff;
    const uploaded = await sdk.beta.files.upload({
      file: await toFile(binary, "dir/data.bin", { type: "application/octet-stream" }),
      betas: ["files-api-2025-04-14"],
    });
    expect(uploaded).toMatchObject({
      type: "file",
      filename: "data.bin",
      mime_type: "application/octet-stream",
      size_bytes: binary.byteLength,
      downloadable: true,
      scope: null,
      expires_at: null,
    });
    expect(uploaded.id).toMatch(/^file_/);
    expect(Number.isNaN(Date.parse(uploaded.created_at))).toBe(false);
    const csv = await sdk.beta.files.upload({
      file: await toFile(Buffer.from("a,b\n1,2\n"), "table.csv", { type: "text/csv" }),
      expires_in_seconds: 3600,
    });
    expect(csv.mime_type).toBe("text/csv");
    expect(Date.parse(csv.expires_at ?? "") - Date.parse(csv.created_at)).toBeGreaterThan(3590_000);

    expect(await sdk.beta.files.retrieveMetadata(uploaded.id)).toEqual(uploaded);
    const download = await sdk.beta.files.download(uploaded.id);
    expect(download.headers.get("content-type")).toBe("application/octet-stream");
    expect(Buffer.from(await download.arrayBuffer()).equals(Buffer.from(binary))).toBe(true);
    const csvDownload = await sdk.beta.files.download(csv.id);
    expect(csvDownload.headers.get("content-type")).toBe("text/csv");
    expect(await csvDownload.text()).toBe("a,b\n1,2\n");

    // Pages of one: the SDK follows next_page through every file, newest first.
    const listed: string[] = [];
    for await (const file of sdk.beta.files.list({ limit: 1 })) listed.push(file.id);
    expect(listed.slice(0, 2)).toEqual([csv.id, uploaded.id]);
    const byIds = await sdk.beta.files.list({ ids: [uploaded.id, "file_missing"] });
    expect(byIds.data.map((file) => file.id)).toEqual([uploaded.id]);
    expect(byIds.next_page).toBeNull();

    expect(await sdk.beta.files.delete(uploaded.id)).toEqual({ id: uploaded.id, type: "file_deleted" });
    await expect(sdk.beta.files.retrieveMetadata(uploaded.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(sdk.beta.files.download(uploaded.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(sdk.beta.files.delete(uploaded.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("lists a session's output files by scope_id", async () => {
    const sdk = client();
    const orgId = (await orgOf(keys.admin)) as string;
    const output = await apiFiles.create({
      orgId,
      filename: "report.md",
      mimeType: "text/markdown",
      content: Buffer.from("# done\n"),
      scope: { type: "session", id: "sesn_scope1" },
    });
    const scoped = await sdk.beta.files.list({ scope_id: "sesn_scope1" });
    expect(scoped.data).toEqual([
      expect.objectContaining({
        id: output.id,
        filename: "report.md",
        scope: { type: "session", id: "sesn_scope1" },
      }),
    ]);
    expect(await (await sdk.beta.files.download(output.id)).text()).toBe("# done\n");
  });

  it("keeps files to their org: another org's id is a 404 on every route", async () => {
    const mine = await client().beta.files.upload({ file: await toFile(Buffer.from("private"), "p.txt") });
    const theirs = client("outsider");
    await expect(theirs.beta.files.retrieveMetadata(mine.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(theirs.beta.files.download(mine.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(theirs.beta.files.delete(mine.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    const listed = await theirs.beta.files.list();
    expect(listed.data.map((file) => file.id)).not.toContain(mine.id);
    const response = await raw("GET", `/v1/files/${mine.id}`, { who: "outsider" });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    expect(await client().beta.files.retrieveMetadata(mine.id)).toMatchObject({ id: mine.id });
  });

  it("answers bad uploads, oversize uploads and bad cursors with the API's error shape", async () => {
    // Bigger than the JSON body limit but within the upload limit: accepted.
    const large = new Uint8Array(MAX_BODY_BYTES * 2).fill(7);
    const accepted = await client().beta.files.upload({ file: await toFile(large, "large.bin") });
    expect(accepted.size_bytes).toBe(large.byteLength);

    const tooLarge = new FormData();
    tooLarge.append("file", new File([new Uint8Array(MAX_UPLOAD + 1)], "huge.bin"));
    const huge = await raw("POST", "/v1/files", { body: tooLarge });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ type: "error", error: { type: "request_too_large" } });
    await expect(
      client().beta.files.upload({ file: await toFile(new Uint8Array(MAX_UPLOAD + 1), "huge.bin") }),
    ).rejects.toMatchObject({ status: 413 });

    const cases: [string, BodyInit, Record<string, string>, number][] = [
      ["no multipart", JSON.stringify({ file: "x" }), { "content-type": "application/json" }, 415],
      ["broken multipart", "--x\r\nnot a part", { "content-type": "multipart/form-data; boundary=x" }, 400],
    ];
    for (const [, body, headers, status] of cases) {
      const response = await raw("POST", "/v1/files", { body, headers });
      expect(response.status).toBe(status);
      expect(await response.json()).toMatchObject({ type: "error", error: { type: expect.any(String) } });
    }
    const noFile = new FormData();
    noFile.append("other", "x");
    expect((await raw("POST", "/v1/files", { body: noFile })).status).toBe(400);
    const textFile = new FormData();
    textFile.append("file", "not a file part");
    expect((await raw("POST", "/v1/files", { body: textFile })).status).toBe(400);
    const twoFiles = new FormData();
    twoFiles.append("file", new File(["a"], "a.txt"));
    twoFiles.append("file", new File(["b"], "b.txt"));
    expect((await raw("POST", "/v1/files", { body: twoFiles })).status).toBe(400);
    const badExpiry = new FormData();
    badExpiry.append("file", new File(["a"], "a.txt"));
    badExpiry.append("expires_in_seconds", "10");
    const expiry = await raw("POST", "/v1/files", { body: badExpiry });
    expect(expiry.status).toBe(400);
    expect(await expiry.json()).toMatchObject({ error: { type: "invalid_request_error" } });

    for (const query of ["page=garbage", "limit=0", "limit=abc", "unknown=1"]) {
      const response = await raw("GET", `/v1/files?${query}`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({
        type: "error",
        error: { type: "invalid_request_error" },
      });
    }
    // The server is still up.
    expect((await client().beta.files.list()).data.length).toBeGreaterThan(0);
  });
});

describe("Skills API through the SDK", () => {
  it("creates a skill from uploaded files, adds versions, lists, downloads and deletes them", async () => {
    const sdk = client();
    const files = await skillFolder("internal-comms");
    const skill = await sdk.beta.skills.create({ files, betas: ["skills-2025-10-02"] });
    expect(skill).toMatchObject({
      type: "skill",
      display_name: "internal-comms",
      source: { type: "custom" },
    });
    expect(skill.id).toMatch(/^skill_/);
    expect(skill.latest_version_id).toMatch(/^[0-9]{16}$/);
    expect(await sdk.beta.skills.retrieve(skill.id)).toEqual(skill);

    const first = await sdk.beta.skills.versions.retrieve(skill.latest_version_id, { skill_id: skill.id });
    expect(first).toMatchObject({ type: "skill_version", skill_id: skill.id, name: "internal-comms" });
    expect(first.description).toContain("internal communications");

    // The latest version is what sessions see: the org's /skills folder.
    const folder = await raw(
      "GET",
      "/v1/file_store/content?path=/skills/internal-comms/examples/faq-answers.md",
    );
    expect(folder.status).toBe(200);

    const second = await sdk.beta.skills.versions.create(skill.id, {
      files: [
        await toFile(Buffer.from(skillMd("internal-comms", "Second version.")), "internal-comms/SKILL.md"),
      ],
    });
    expect(second).toMatchObject({ type: "skill_version", description: "Second version." });
    expect(BigInt(second.id) > BigInt(first.id)).toBe(true);
    expect((await sdk.beta.skills.retrieve(skill.id)).latest_version_id).toBe(second.id);
    expect(
      (await raw("GET", "/v1/file_store/content?path=/skills/internal-comms/examples/faq-answers.md")).status,
    ).toBe(404);

    const versions: string[] = [];
    for await (const version of sdk.beta.skills.versions.list(skill.id, { limit: 1 }))
      versions.push(version.id);
    expect(versions).toEqual([second.id, first.id]);

    // The first version's files are still there, byte for byte, as a ZIP archive.
    const archive = Buffer.from(
      await (await sdk.beta.skills.versions.download(first.id, { skill_id: skill.id })).arrayBuffer(),
    );
    const faq = await fs.readFile(path.join(FIXTURES, "internal-comms", "examples", "faq-answers.md"));
    expect(archive.subarray(0, 4).toString("hex")).toBe("504b0304");
    expect(archive.includes(Buffer.from("internal-comms/examples/faq-answers.md"))).toBe(true);
    expect(archive.includes(faq)).toBe(true);

    // Deleting the latest version puts the folder back to the one before.
    expect(await sdk.beta.skills.versions.delete(second.id, { skill_id: skill.id })).toEqual({
      id: second.id,
      type: "skill_version_deleted",
    });
    expect((await sdk.beta.skills.retrieve(skill.id)).latest_version_id).toBe(first.id);
    const restored = await raw(
      "GET",
      "/v1/file_store/content?path=/skills/internal-comms/examples/faq-answers.md",
    );
    expect(Buffer.from(await restored.arrayBuffer()).equals(faq)).toBe(true);
    // The only version stays: a skill holds at least one.
    await expect(sdk.beta.skills.versions.delete(first.id, { skill_id: skill.id })).rejects.toBeInstanceOf(
      Anthropic.BadRequestError,
    );

    const named = await sdk.beta.skills.create({
      display_name: "Greeter",
      files: [await toFile(Buffer.from(skillMd("greeter", "Greets.")), "SKILL.md")],
    });
    expect(named.display_name).toBe("Greeter");
    const listed: string[] = [];
    for await (const item of sdk.beta.skills.list({ limit: 1 })) listed.push(item.id);
    expect(listed).toEqual([named.id, skill.id]);
    expect((await sdk.beta.skills.list({ source: "anthropic" })).data).toEqual([]);

    expect(await sdk.beta.skills.delete(skill.id)).toEqual({ id: skill.id, type: "skill_deleted" });
    await expect(sdk.beta.skills.retrieve(skill.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    expect((await raw("GET", "/v1/file_store/content?path=/skills/internal-comms/SKILL.md")).status).toBe(
      404,
    );
    // The name is free again.
    const again = await sdk.beta.skills.create({ files: await skillFolder("internal-comms") });
    expect(again.id).not.toBe(skill.id);
  });

  it("refuses bad skills with 400 and the reason, and writes nothing", async () => {
    const sdk = client();
    const bad: [string, File[]][] = [
      ["no SKILL.md", [await toFile(Buffer.from("x"), "thing/README.md")]],
      ["bad front matter", [await toFile(Buffer.from("# no front matter\n"), "thing/SKILL.md")]],
      ["bad name", [await toFile(Buffer.from(skillMd("Bad_Name", "d")), "thing/SKILL.md")]],
      [
        "path traversal",
        [
          await toFile(Buffer.from(skillMd("thing", "d")), "thing/SKILL.md"),
          await toFile(Buffer.from("x"), "thing/../../etc/passwd"),
        ],
      ],
      [
        "two top-level folders",
        [
          await toFile(Buffer.from(skillMd("thing", "d")), "thing/SKILL.md"),
          await toFile(Buffer.from("x"), "other/a.md"),
        ],
      ],
    ];
    for (const [, files] of bad) {
      const error = await sdk.beta.skills.create({ files }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(Anthropic.BadRequestError);
      expect((error as { error: unknown }).error).toMatchObject({
        type: "error",
        error: { type: "invalid_request_error", message: expect.stringContaining("Invalid skill") },
      });
    }
    expect((await sdk.beta.skills.list()).data.map((skill) => skill.display_name)).not.toContain("thing");
    expect((await raw("GET", "/v1/file_store/list?path=/skills/thing")).status).toBe(404);

    const empty = new FormData();
    empty.append("display_name", "x");
    expect((await raw("POST", "/v1/skills", { body: empty })).status).toBe(400);
    const huge = new FormData();
    huge.append("files[]", new File([skillMd("huge", "d")], "huge/SKILL.md"));
    huge.append("files[]", new File([new Uint8Array(MAX_SKILL_UPLOAD)], "huge/blob.bin"));
    const tooLarge = await raw("POST", "/v1/skills", { body: huge });
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ type: "error", error: { type: "request_too_large" } });

    // A new version must keep the skill's name.
    const skill = await sdk.beta.skills.create({
      files: [await toFile(Buffer.from(skillMd("renamer", "d")), "renamer/SKILL.md")],
    });
    await expect(
      sdk.beta.skills.versions.create(skill.id, {
        files: [await toFile(Buffer.from(skillMd("other-name", "d")), "other-name/SKILL.md")],
      }),
    ).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    // The same name twice is a conflict.
    await expect(
      sdk.beta.skills.create({ files: [await toFile(Buffer.from(skillMd("renamer", "d")), "SKILL.md")] }),
    ).rejects.toBeInstanceOf(Anthropic.ConflictError);
  });

  it("serializes concurrent changes: versions get distinct increasing ids, the folder is the newest, one create per name wins", async () => {
    const sdk = client();
    const skill = await sdk.beta.skills.create({
      files: [await toFile(Buffer.from(skillMd("racer", "v0")), "racer/SKILL.md")],
    });
    const created = await Promise.all(
      [1, 2, 3, 4].map(async (round) =>
        sdk.beta.skills.versions.create(skill.id, {
          files: [await toFile(Buffer.from(skillMd("racer", `v${round}`)), "racer/SKILL.md")],
        }),
      ),
    );
    expect(new Set(created.map((version) => version.id)).size).toBe(4);
    const listed = (await sdk.beta.skills.versions.list(skill.id, { limit: 10 })).data;
    expect(listed).toHaveLength(5);
    const newest = listed[0];
    expect((await sdk.beta.skills.retrieve(skill.id)).latest_version_id).toBe(newest?.id);
    const folder = await (await raw("GET", "/v1/file_store/content?path=/skills/racer/SKILL.md")).text();
    expect(folder).toContain(`description: ${newest?.description}`);

    const races = await Promise.allSettled(
      [1, 2, 3].map(async () =>
        sdk.beta.skills.create({ files: [await toFile(Buffer.from(skillMd("one-name", "d")), "SKILL.md")] }),
      ),
    );
    expect(races.filter((race) => race.status === "fulfilled")).toHaveLength(1);
    for (const race of races.filter((each) => each.status === "rejected")) {
      expect((race as PromiseRejectedResult).reason).toBeInstanceOf(Anthropic.ConflictError);
    }
  });

  it("keeps executable bits: Outrig's executable_files[] decides, else scripts/ and #! files are executable", async () => {
    const isExecutable = async (path: string) =>
      (await raw("GET", `/v1/file_store/content?path=${path}`)).headers.get("x-file-executable");
    const form = (name: string, executable?: string[]) => {
      const body = new FormData();
      body.append("files[]", new File([skillMd(name, "d")], `${name}/SKILL.md`));
      body.append("files[]", new File(["#!/bin/sh\necho run\n"], `${name}/run.sh`));
      body.append("files[]", new File(["\u007fELF"], `${name}/bin/helper`));
      body.append("files[]", new File(["print(1)\n"], `${name}/scripts/tool.py`));
      for (const file of executable ?? []) body.append("executable_files[]", file);
      return body;
    };
    expect(
      (await raw("POST", "/v1/skills", { body: form("modes-listed", ["modes-listed/bin/helper"]) })).status,
    ).toBe(200);
    expect(
      await Promise.all(
        ["run.sh", "bin/helper", "scripts/tool.py", "SKILL.md"].map((file) =>
          isExecutable(`/skills/modes-listed/${file}`),
        ),
      ),
    ).toEqual(["false", "true", "false", "false"]);
    expect((await raw("POST", "/v1/skills", { body: form("modes-guessed") })).status).toBe(200);
    expect(
      await Promise.all(
        ["run.sh", "bin/helper", "scripts/tool.py", "SKILL.md"].map((file) =>
          isExecutable(`/skills/modes-guessed/${file}`),
        ),
      ),
    ).toEqual(["true", "false", "true", "false"]);
  });

  it("lets members read skills and only admins change them; another org sees nothing", async () => {
    const skill = await client().beta.skills.create({
      files: [await toFile(Buffer.from(skillMd("shared-one", "d")), "shared-one/SKILL.md")],
    });
    const member = client("member");
    expect((await member.beta.skills.retrieve(skill.id)).id).toBe(skill.id);
    await expect(
      member.beta.skills.create({ files: [await toFile(Buffer.from(skillMd("mine", "d")), "SKILL.md")] }),
    ).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);
    await expect(member.beta.skills.delete(skill.id)).rejects.toBeInstanceOf(Anthropic.PermissionDeniedError);

    const outsider = client("outsider");
    await expect(outsider.beta.skills.retrieve(skill.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(outsider.beta.skills.delete(skill.id)).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(
      outsider.beta.skills.versions.retrieve(skill.latest_version_id, { skill_id: skill.id }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(
      outsider.beta.skills.versions.download(skill.latest_version_id, { skill_id: skill.id }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(outsider.beta.skills.versions.list(skill.id)).rejects.toBeInstanceOf(
      Anthropic.NotFoundError,
    );
    await expect(
      outsider.beta.skills.versions.create(skill.id, {
        files: [await toFile(Buffer.from(skillMd("shared-one", "d")), "SKILL.md")],
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    expect((await outsider.beta.skills.list()).data).toEqual([]);
    const garbage = await raw("GET", "/v1/skills?page=garbage");
    expect(garbage.status).toBe(400);
    expect((await raw("GET", `/v1/skills/${skill.id}/versions/latest`)).status).toBe(200);
    expect((await raw("GET", `/v1/skills/${skill.id}/versions/not-a-version`)).status).toBe(404);
    // Ids that cannot name anything (NUL bytes, wrong prefix) are 404s, not database errors.
    for (const route of [
      "/v1/skills/a%00b",
      `/v1/skills/a%00b/versions/${skill.latest_version_id}`,
      `/v1/skills/${skill.id}/versions/1%002`,
      "/v1/files/file_a%00b",
      "/v1/files/a%00b/content",
    ]) {
      const response = await raw("GET", route);
      expect([route, response.status]).toEqual([route, 404]);
      expect(await response.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    }
    for (const query of ["scope_id=a%00b", "source=a%00b"]) {
      const response = await raw("GET", `/v1/${query.startsWith("scope") ? "files" : "skills"}?${query}`);
      expect(response.status).toBe(400);
    }
    const badName = new FormData();
    badName.append("display_name", "two\u0000parts");
    badName.append("files[]", new File([skillMd("nul-name", "d")], "nul-name/SKILL.md"));
    expect((await raw("POST", "/v1/skills", { body: badName })).status).toBe(400);
  });
});

async function orgOf(key: string): Promise<string | undefined> {
  return (await database.auth.authenticate(key))?.orgId;
}
