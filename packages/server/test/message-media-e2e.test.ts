/**
 * Image and document blocks in `user.message` on a real server (startServer on Postgres, the fake LLM)
 * with the pinned SDK as the client: base64, plain-text, url and Files API sources reach the model in
 * Anthropic's wire shape and the events list shows them as sent; raw HTTP covers what the SDK hides
 * (a bad media type, bad base64, an http url, an oversize file, another org's file, a huge body), each
 * refused before anything is recorded.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic, { toFile } from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createDatabase, type Database } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { MAX_IMAGE_BYTES } from "../src/managed/message-content.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type ApiEvent = { id: string; type: string; [field: string]: unknown };

/** A 1×1 PNG. */
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const PDF = Buffer.from("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");

let testDatabase: TestDatabase;
let database: Database;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
let client: Anthropic;
let outsiderKey: string;
let sessionId: string;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  fakeLlm = await startFakeLlmServer({
    script: { turns: Array.from({ length: 20 }, () => ({ text: "seen" })) },
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-message-media-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-message-media",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `message-media-${process.pid}`,
  });
  server = await startServer(config, { log: () => undefined });
  client = new Anthropic({ apiKey: server.bootstrapKey ?? "", baseURL: server.url, maxRetries: 0 });
  database = await createDatabase({ url: testDatabase.url });
  const other = await database.auth.createOrg("media-other");
  const outsider = await database.auth.createUser(other.id, { name: "outsider", role: "admin" });
  outsiderKey = (await database.auth.createApiKey(other.id, outsider.id, "o")).key;
  const agent = await client.beta.agents.create({ name: "media", model: "claude-sonnet-4-5" });
  const environment = await client.beta.environments.create({ name: "media" });
  sessionId = (await client.beta.sessions.create({ agent: agent.id, environment_id: environment.id })).id;
}, 180_000);

afterAll(async () => {
  await server?.close();
  await database?.close();
  await fakeLlm?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

async function readUntilIdle(stream: AsyncIterable<unknown>): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for await (const item of stream) {
    const event = item as ApiEvent;
    events.push(event);
    if (event.type === "session.status_idle") break;
  }
  return events;
}

async function listEvents(): Promise<ApiEvent[]> {
  const events: ApiEvent[] = [];
  for await (const event of client.beta.sessions.events.list(sessionId)) events.push(event as ApiEvent);
  return events;
}

function send(key: string, content: unknown[]): Promise<Response> {
  return fetch(`${server.url}/v1/sessions/${sessionId}/events`, {
    method: "POST",
    headers: { "x-api-key": key, "content-type": "application/json" },
    body: JSON.stringify({ events: [{ type: "user.message", content }] }),
  });
}

describe("images and documents in user.message", () => {
  it("sends base64, text, url and file sources to the model and lists them as sent", async () => {
    const pdf = await client.beta.files.upload({
      file: await toFile(PDF, "report.pdf", { type: "application/pdf" }),
    });
    const content: Anthropic.Beta.Sessions.BetaManagedAgentsUserMessageEventParams["content"] = [
      { type: "text", text: "what do these show?" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: PNG } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.png" } },
      {
        type: "document",
        source: { type: "text", media_type: "text/plain", data: "plain notes" },
        title: "notes",
        context: "from the team",
      },
      { type: "document", source: { type: "file", file_id: pdf.id } },
    ];
    const requestsBefore = fakeLlm.requests.length;
    const stream = await client.beta.sessions.events.stream(sessionId);
    const sent = await client.beta.sessions.events.send(sessionId, {
      events: [{ type: "user.message", content }],
    });
    expect(sent.data[0]).toMatchObject({ type: "user.message", content });
    const events = await readUntilIdle(stream);
    expect(events.find((event) => event.type === "agent.message")).toMatchObject({
      content: [{ type: "text", text: "seen" }],
    });

    // The model got every block in Anthropic's wire shape; the file's bytes were read on the server.
    const request = fakeLlm.requests
      .slice(requestsBefore)
      .find((entry) => entry.protocol === "anthropic-messages");
    const body = request?.body as { messages?: { role: string; content: unknown[] }[] } | undefined;
    const user = (body?.messages ?? []).filter((message) => message.role === "user").at(-1);
    expect(user?.content).toEqual([
      expect.objectContaining({ type: "text", text: "what do these show?" }),
      expect.objectContaining({
        type: "image",
        source: { type: "base64", media_type: "image/png", data: PNG },
      }),
      expect.objectContaining({ type: "image", source: { type: "url", url: "https://example.com/cat.png" } }),
      expect.objectContaining({
        type: "document",
        source: { type: "text", media_type: "text/plain", data: "plain notes" },
        title: "notes",
        context: "from the team",
      }),
      expect.objectContaining({
        type: "document",
        source: { type: "base64", media_type: "application/pdf", data: PDF.toString("base64") },
      }),
    ]);

    // The list shows the message as it was sent (a file source by its id, not its bytes).
    const listed = (await listEvents()).filter((event) => event.type === "user.message").at(-1);
    expect(listed?.content).toEqual(content);
  });

  it("takes an image in a new session's initial_events", async () => {
    const session = await client.beta.sessions.create({
      agent: (await client.beta.agents.create({ name: "media-initial", model: "claude-sonnet-4-5" })).id,
      environment_id: (await client.beta.environments.create({ name: "media-initial" })).id,
      initial_events: [
        {
          type: "user.message",
          content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: PNG } }],
        },
      ],
    });
    const first: ApiEvent[] = [];
    for await (const event of client.beta.sessions.events.list(session.id)) first.push(event as ApiEvent);
    expect(first[0]).toMatchObject({
      type: "user.message",
      content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: PNG } }],
    });
  });

  it("refuses bad blocks with the API's errors and records nothing", async () => {
    const userMessages = async () => (await listEvents()).filter((event) => event.type === "user.message");
    const before = await userMessages();
    const key = server.bootstrapKey ?? "";
    const image = (source: Record<string, unknown>) => [{ type: "image", source }];

    const badType = await send(key, image({ type: "base64", media_type: "image/bmp", data: PNG }));
    expect(badType.status).toBe(400);
    expect(await badType.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });

    const badBase64 = await send(
      key,
      image({ type: "base64", media_type: "image/png", data: "not base64!" }),
    );
    expect(badBase64.status).toBe(400);
    expect(((await badBase64.json()) as { error: { code: string } }).error.code).toBe("invalid_base64");

    const http = await send(key, image({ type: "url", url: "http://169.254.169.254/latest/meta-data" }));
    expect(http.status).toBe(400);

    const pdfAsImage = await client.beta.files.upload({
      file: await toFile(PDF, "not-an-image.pdf", { type: "application/pdf" }),
    });
    const wrongKind = await send(key, image({ type: "file", file_id: pdfAsImage.id }));
    expect(wrongKind.status).toBe(400);
    expect(((await wrongKind.json()) as { error: { code: string } }).error.code).toBe(
      "unsupported_media_type",
    );

    const big = await client.beta.files.upload({
      file: await toFile(Buffer.alloc(MAX_IMAGE_BYTES + 1), "big.png", { type: "image/png" }),
    });
    const oversize = await send(key, image({ type: "file", file_id: big.id }));
    expect(oversize.status).toBe(400);
    expect(((await oversize.json()) as { error: { code: string } }).error.code).toBe("content_too_large");

    // Each image under its cap, but the message's media together over the total.
    const large = await client.beta.files.upload({
      file: await toFile(Buffer.alloc(MAX_IMAGE_BYTES - 1024), "large.png", { type: "image/png" }),
    });
    const together = await send(key, [
      ...image({ type: "file", file_id: large.id }),
      ...image({ type: "file", file_id: large.id }),
      ...image({ type: "file", file_id: large.id }),
    ]);
    expect(together.status).toBe(413);
    expect(((await together.json()) as { error: { code: string } }).error.code).toBe("content_too_large");

    // Another org's file is a 404, as if it did not exist.
    const outsiderClient = new Anthropic({ apiKey: outsiderKey, baseURL: server.url, maxRetries: 0 });
    const theirs = await outsiderClient.beta.files.upload({
      file: await toFile(Buffer.from(PNG, "base64"), "theirs.png", { type: "image/png" }),
    });
    const foreign = await send(key, image({ type: "file", file_id: theirs.id }));
    expect(foreign.status).toBe(404);
    expect(await foreign.json()).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    const missing = await send(key, image({ type: "file", file_id: "file_doesnotexist" }));
    expect(missing.status).toBe(404);

    const huge = await send(
      key,
      image({ type: "base64", media_type: "image/png", data: "A".repeat(2_000_000) }),
    );
    expect(huge.status).toBe(413);

    const unknownField = await send(key, [
      { type: "document", source: { type: "text", media_type: "text/plain", data: "x" }, citations: {} },
    ]);
    expect(unknownField.status).toBe(400);

    expect(await userMessages()).toEqual(before);
  });
});
