/**
 * The Files API streams: an upload goes to the blob store as it arrives and a download comes out of
 * it, so the server's memory stays far below the file's size; an upload over the limit is a 413 that
 * leaves no file and no partial blob behind. One real HTTP server on Postgres for the whole file.
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import Anthropic, { toFile } from "@anthropic-ai/sdk";
import { serve } from "@hono/node-server";
import { createDefaultTools } from "@outrig/core";
import { createLocalDirectoryBlobStore } from "@outrig/sandboxes";
import { createDatabase, type Database, PostgresApiFileStore } from "@outrig/storage";
import {
  createTestDatabase,
  FakeSandboxProvider,
  MemorySessionStore,
  ScriptedModel,
  type TestDatabase,
} from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app.js";
import { InProcessTurnScheduler } from "../src/durable/in-process-turn-scheduler.js";
import { EventBus } from "../src/event-bus.js";
import { registerFilesApiRoutes } from "../src/routes/files-api-routes.js";
import { SessionManager } from "../src/session-manager.js";

const MiB = 1024 * 1024;
const MAX_UPLOAD = 64 * MiB;
/** The streamed upload: most of the limit, far more than the memory the server may grow by. */
const LARGE_BYTES = 60 * MiB;
/**
 * The bound on the server's RSS growth while it takes or serves LARGE_BYTES: half of it. Buffering the
 * body needs at least the whole size (the old reader grew by 136 MiB here); streaming grows by ~10 MiB
 * on a quiet machine and up to ~24 MiB when another test file runs beside this one (the garbage
 * collector runs later under CPU pressure), so half the size tells the two apart without flaking.
 */
const MAX_RSS_GROWTH = LARGE_BYTES / 2;

let testDatabase: TestDatabase;
let database: Database;
let home: string;
let url: string;
let apiKey: string;
let closeServer: () => Promise<void>;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-files-streaming-"));
  const org = await database.auth.createOrg("streaming-org");
  const admin = await database.auth.createUser(org.id, { name: "admin", role: "admin" });
  apiKey = (await database.auth.createApiKey(org.id, admin.id, "a")).key;
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
  const files = new PostgresApiFileStore(database.pool, createLocalDirectoryBlobStore(blobRoot()));
  const app = createApp({
    auth: database.auth,
    sessions,
    store,
    bus,
    log: () => undefined,
    extraRoutes: [(routes) => registerFilesApiRoutes(routes, { files, maxUploadBytes: MAX_UPLOAD })],
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

function blobRoot(): string {
  return path.join(home, "files");
}

/** Every file under the blob store's root (stored blobs and any partial write). */
async function blobFiles(): Promise<string[]> {
  const entries = await fs.readdir(blobRoot(), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

/**
 * A multipart body of `size` bytes of content made on the fly from one reused 1 MiB chunk (so the
 * client holds no copy), sent chunked; `hash` sees the content as it goes.
 */
function streamedUpload(size: number, hash: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(MiB).map((_, index) => (index * 31 + 7) % 251);
  const boundary = "outrig-streaming-boundary";
  let sent = 0;
  let stage: "head" | "content" | "tail" | "done" = "head";
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (stage === "head") {
        controller.enqueue(
          Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="large.bin"\r\n` +
              "Content-Type: application/octet-stream\r\n\r\n",
          ),
        );
        stage = "content";
      } else if (stage === "content") {
        const piece = chunk.subarray(0, Math.min(MiB, size - sent));
        hash.update(piece);
        sent += piece.byteLength;
        controller.enqueue(piece);
        if (sent >= size) stage = "tail";
      } else if (stage === "tail") {
        controller.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
        stage = "done";
      } else {
        controller.close();
      }
    },
  });
}

function postStream(body: ReadableStream<Uint8Array>): Promise<Response> {
  return fetch(`${url}/v1/files`, {
    method: "POST",
    headers: {
      "x-api-key": apiKey,
      "content-type": "multipart/form-data; boundary=outrig-streaming-boundary",
    },
    body,
    duplex: "half",
  } as RequestInit);
}

/** Runs `work` while sampling this process's RSS; returns its result and the peak growth. */
async function peakRssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growth: number }> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 2);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growth: peak - baseline };
  } finally {
    clearInterval(sampler);
  }
}

describe("Files API uploads and downloads stream", () => {
  it("round-trips a file through the SDK byte for byte", async () => {
    const sdk = new Anthropic({ apiKey, baseURL: url, maxRetries: 0 });
    const content = new Uint8Array(3 * MiB + 17).map((_, index) => index % 253);
    const uploaded = await sdk.beta.files.upload({ file: await toFile(content, "sdk.bin") });
    expect(uploaded).toMatchObject({ type: "file", filename: "sdk.bin", size_bytes: content.byteLength });
    const download = await sdk.beta.files.download(uploaded.id);
    expect(download.headers.get("content-length")).toBe(String(content.byteLength));
    expect(Buffer.from(await download.arrayBuffer()).equals(Buffer.from(content))).toBe(true);
    expect(await sdk.beta.files.delete(uploaded.id)).toEqual({ id: uploaded.id, type: "file_deleted" });
  });

  it("takes and serves a large upload with the server's memory growing far less than its size", async () => {
    const sent = createHash("sha256");
    const upload = await peakRssGrowth(async () => {
      const response = await postStream(streamedUpload(LARGE_BYTES, sent));
      return { status: response.status, body: (await response.json()) as { id: string; size_bytes: number } };
    });
    expect(upload.result.status).toBe(200);
    expect(upload.result.body.size_bytes).toBe(LARGE_BYTES);
    console.log(
      `[files] ${LARGE_BYTES / MiB} MiB upload: peak RSS growth ${(upload.growth / MiB).toFixed(1)} MiB`,
    );
    expect(upload.growth).toBeLessThan(MAX_RSS_GROWTH);

    const received = createHash("sha256");
    const download = await peakRssGrowth(async () => {
      const response = await fetch(`${url}/v1/files/${upload.result.body.id}/content`, {
        headers: { "x-api-key": apiKey },
      });
      expect(response.status).toBe(200);
      let size = 0;
      for await (const chunk of response.body ?? []) {
        received.update(chunk);
        size += chunk.byteLength;
      }
      return size;
    });
    expect(download.result).toBe(LARGE_BYTES);
    expect(received.digest("hex")).toBe(sent.digest("hex"));
    console.log(
      `[files] ${LARGE_BYTES / MiB} MiB download: peak RSS growth ${(download.growth / MiB).toFixed(1)} MiB`,
    );
    expect(download.growth).toBeLessThan(MAX_RSS_GROWTH);
  });

  it("answers an upload over the limit with a 413 and leaves no file and no partial blob", async () => {
    const sdk = new Anthropic({ apiKey, baseURL: url, maxRetries: 0 });
    const filesBefore = (await sdk.beta.files.list()).data.map((file) => file.id);
    const blobsBefore = await blobFiles();
    // Chunked, so no Content-Length tells the server in advance: the count while streaming does.
    const response = await postStream(streamedUpload(MAX_UPLOAD + MiB, createHash("sha256")));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({
      type: "error",
      error: { type: "request_too_large", code: "body_too_large" },
    });
    expect((await sdk.beta.files.list()).data.map((file) => file.id)).toEqual(filesBefore);
    expect((await blobFiles()).sort()).toEqual(blobsBefore.sort());
    // The server is still up and takes the next upload.
    const next = await sdk.beta.files.upload({ file: await toFile(Buffer.from("after"), "after.txt") });
    expect(await (await sdk.beta.files.download(next.id)).text()).toBe("after");
  });
});
