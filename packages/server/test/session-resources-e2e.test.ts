/**
 * A session's resources on a real server (startServer on Postgres, the fake LLM, bubblewrap) with the
 * pinned SDK as the client: an uploaded file attached as a `file` resource is in the sandbox, a memory
 * store attached as `memory_store` is mounted at /mnt/memory/<store>/ and a bash write to it becomes a
 * new version, what the agent writes under /mnt/session/outputs/ is downloadable through the Files API,
 * and the agent uses the toolset's own `bash` (its cwd carries over between calls).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Anthropic, { toFile } from "@anthropic-ai/sdk";
import { type FakeLlmServer, startFakeLlmServer } from "@outrig/models";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { type RunningServer, startServer } from "../src/start-server.js";

type ApiEvent = { id: string; type: string; [field: string]: unknown };

let testDatabase: TestDatabase;
let fakeLlm: FakeLlmServer;
let server: RunningServer;
let home: string;
let client: Anthropic;

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  fakeLlm = await startFakeLlmServer({
    script: {
      turns: [
        { toolCalls: [{ name: "bash", input: { command: "cd /mnt/session/outputs && pwd" } }] },
        {
          // The cwd of the call before carries over: `copy.txt` lands in /mnt/session/outputs.
          toolCalls: [
            {
              name: "bash",
              input: {
                command:
                  "cat /mnt/session/uploads/input.txt /mnt/memory/team-notes/notes.md > copy.txt && " +
                  "echo from-bash >> /mnt/memory/team-notes/notes.md && ls",
              },
            },
          ],
        },
        { text: "done" },
      ],
    },
  });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-session-resources-"));
  const config = loadConfig({
    OUTRIG_HOME: home,
    OUTRIG_PORT: "0",
    DATABASE_URL: testDatabase.url,
    ANTHROPIC_API_KEY: "sk-ant-session-resources",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_WORKER_ID: `session-resources-${process.pid}`,
  });
  server = await startServer(config, { log: () => undefined });
  client = new Anthropic({ apiKey: server.bootstrapKey ?? "", baseURL: server.url, maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await server?.close();
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

describe("a session's resources on a real server", () => {
  it("puts files and memory stores into the sandbox and makes its outputs downloadable", async () => {
    const agent = await client.beta.agents.create({
      name: "resources",
      model: "claude-sonnet-4-5",
      tools: [{ type: "agent_toolset_20260401" }],
    });
    const environment = await client.beta.environments.create({ name: "resources" });
    const upload = await client.beta.files.upload({
      file: await toFile(Buffer.from("uploaded line\n"), "input.txt", { type: "text/plain" }),
    });
    const store = await client.beta.memoryStores.create({ name: "Team Notes" });
    const memory = await client.beta.memoryStores.memories.create(store.id, {
      path: "/notes.md",
      content: "memory line\n",
    });

    const session = await client.beta.sessions.create({
      agent: agent.id,
      environment_id: environment.id,
      resources: [
        { type: "file", file_id: upload.id, mount_path: "/mnt/session/uploads/input.txt" },
        { type: "memory_store", memory_store_id: store.id, access: "read_write" },
      ],
    });
    const stream = await client.beta.sessions.events.stream(session.id);
    await client.beta.sessions.events.send(session.id, {
      events: [{ type: "user.message", content: [{ type: "text", text: "copy them" }] }],
    });
    const events = await readUntilIdle(stream);
    const uses = events.filter((event) => event.type === "agent.tool_use");
    expect(uses.map((event) => event.name)).toEqual(["bash", "bash"]);
    const results = events.filter((event) => event.type === "agent.tool_result");
    expect(results.map((event) => event.is_error)).toEqual([false, false]);
    expect(JSON.stringify(results[0]?.content)).toContain("/mnt/session/outputs");
    expect(JSON.stringify(results[1]?.content)).toContain("copy.txt");
    expect(events.at(-1)).toMatchObject({ stop_reason: { type: "end_turn" } });

    // The output is a file of the session, byte for byte.
    const outputs: Anthropic.Beta.FileMetadata[] = [];
    for await (const file of client.beta.files.list({ scope_id: session.id })) outputs.push(file);
    const copy = outputs.find((file) => file.filename.endsWith("copy.txt"));
    expect(copy).toBeDefined();
    const downloaded = await client.beta.files.download(copy?.id ?? "");
    expect(await downloaded.text()).toBe("uploaded line\nmemory line\n");

    // The bash write to the memory store is a new version of the memory.
    const updated = await client.beta.memoryStores.memories.retrieve(memory.id, {
      memory_store_id: store.id,
    });
    expect(updated.content).toBe("memory line\nfrom-bash\n");
    const versions: string[] = [];
    for await (const version of client.beta.memoryStores.memoryVersions.list(store.id, {
      memory_id: memory.id,
    }))
      versions.push(version.id);
    expect(versions).toHaveLength(2);

    // The session shows its resources; deleting it keeps the output file.
    const retrieved = await client.beta.sessions.retrieve(session.id);
    expect(retrieved.resources.map((resource) => resource.type).sort()).toEqual(["file", "memory_store"]);
    // Each resource says where the session sees it.
    expect(retrieved.resources.find((resource) => resource.type === "memory_store")).toMatchObject({
      mount_path: "/mnt/memory/team-notes/",
    });
    expect(retrieved.resources.find((resource) => resource.type === "file")).toMatchObject({
      mount_path: "/mnt/session/uploads/input.txt",
    });
    await client.beta.sessions.delete(session.id);
    expect(await fs.stat(path.join(home, "session-files", session.id)).catch(() => null)).toBeNull();
    expect((await client.beta.files.retrieveMetadata(copy?.id ?? "")).id).toBe(copy?.id);
  }, 180_000);

  it("refuses another org's or a missing store and file at create, with the API's 404", async () => {
    const agent = await client.beta.agents.create({ name: "refusals", model: "claude-sonnet-4-5" });
    const environment = await client.beta.environments.create({ name: "refusals" });
    await expect(
      client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        resources: [{ type: "memory_store", memory_store_id: "memstore_missing" }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(
      client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        resources: [{ type: "file", file_id: "file_missing" }],
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    await expect(
      client.beta.sessions.create({
        agent: agent.id,
        environment_id: environment.id,
        vault_ids: ["vlt_missing"],
      }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  }, 60_000);
});
