/**
 * Memory stores attached to sessions, through the real SessionManager on Postgres with bubblewrap
 * sandboxes: the store at /mnt/memory/<slug>/ for the file tools and bash (read_write and read_only),
 * bash writes committed as versions attributed to the session, a stale bash write kept as a conflict copy
 * and reported, 50 sessions appending to one memory at once through Edit, Write and Bash without losing
 * an update, and a redacted version gone from the mount, grep, blame and history.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createDefaultTools, type LanguageModel, type ModelEvent, type ModelRequest } from "@outrig/core";
import type { AssistantMessage, SessionEvent } from "@outrig/protocol";
import { createBubblewrapSandboxProvider } from "@outrig/sandboxes";
import {
  createDatabase,
  type Database,
  type MemoryStoreRecord,
  PostgresFileStore,
  PostgresMemoryStores,
} from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InProcessTurnScheduler } from "../src/durable/in-process-turn-scheduler.js";
import { EventBus } from "../src/event-bus.js";
import {
  type MemoryStoreResource,
  renderMemoryStoreResource,
  resolveMemoryStoreResources,
} from "../src/memory-store-mounts.js";
import { type Caller, SessionManager } from "../src/session-manager.js";

/** The next tool call (or final text) from the transcript so far: a model that reacts to tool results. */
type Decide = (request: ModelRequest) => { text: string } | { name: string; input: unknown };

class ReactiveModel implements LanguageModel {
  readonly provider = "reactive";
  readonly modelId: string;
  /** Replaced between turns of one session (the session manager keeps one model per session's spec). */
  decide: Decide;
  readonly systems: string[] = [];
  #calls = 0;

  constructor(modelId: string, decide: Decide) {
    this.modelId = modelId;
    this.decide = decide;
  }

  async *stream(request: ModelRequest): AsyncIterable<ModelEvent> {
    this.#calls += 1;
    this.systems.push(request.system);
    const next = this.decide(request);
    const content: AssistantMessage["content"] =
      "text" in next
        ? [{ type: "text", text: next.text }]
        : [{ type: "tool_call", toolCallId: `call_${this.#calls}`, name: next.name, input: next.input }];
    yield {
      type: "end",
      message: { role: "assistant", content },
      stopReason: "text" in next ? "end_turn" : "tool_use",
      usage: { inputTokens: 1, outputTokens: 1 },
    };
  }
}

/** The tool results of the current turn (after the last user message), oldest first. */
function toolResults(request: ModelRequest) {
  const start = request.messages.findLastIndex((message) => message.role === "user");
  return request.messages
    .slice(start + 1)
    .flatMap((message) => (message.role === "tool" ? message.content : []));
}

/** The file text of a Read tool result (its `N\t<text>` lines). */
function readText(output: string): string {
  return output
    .split("\n")
    .flatMap((line) => {
      const match = /^(\d+)\t(.*)$/.exec(line);
      return match ? [match[2] ?? ""] : [];
    })
    .join("\n");
}

let testDatabase: TestDatabase;
let database: Database;
let memoryStores: PostgresMemoryStores;
let manager: SessionManager;
let scheduler: InProcessTurnScheduler;
let home: string;
let caller: Caller;
const provider = createBubblewrapSandboxProvider();
const models = new Map<string, LanguageModel>();
const resources = new Map<string, MemoryStoreResource[]>();

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-memory-sessions-"));
  const org = await database.auth.createOrg("memory-sessions");
  const user = await database.auth.createUser(org.id, { name: "owner", role: "member" });
  caller = { orgId: org.id, userId: user.id, role: "member" };
  memoryStores = new PostgresMemoryStores(database.pool, new PostgresFileStore(database.pool));
  scheduler = new InProcessTurnScheduler();
  manager = new SessionManager({
    store: database.sessions,
    modelFactory: (spec) => {
      const model = models.get(spec);
      if (!model) throw new Error(`no model ${spec}`);
      return model;
    },
    sandboxProvider: provider,
    tools: createDefaultTools(),
    bus: new EventBus(),
    scheduler,
    home,
    limits: { maxSteps: 400, maxModelAttempts: 1 },
    sandboxIdleMs: 600_000,
    log: () => {},
    memoryStores: {
      stores: memoryStores,
      resourcesOf: async (session) => resources.get(session.id) ?? [],
    },
  });
  await manager.start();
}, 120_000);

afterAll(async () => {
  await manager?.close();
  await provider.close();
  await database?.close();
  await testDatabase?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

let sessionCount = 0;

/** Creates a session through the SessionManager API with these resources (no turn yet). */
async function createSession(attached: MemoryStoreResource[]): Promise<string> {
  sessionCount += 1;
  const spec = `reactive:session-${sessionCount}`;
  models.set(spec, new ReactiveModel(spec, () => ({ text: "done" })));
  const session = await manager.create(caller, { model: spec });
  resources.set(session.id, attached);
  return session.id;
}

/** Runs one turn of the session with `decide` as its model; resolves the session's events. */
async function runTurn(sessionId: string, decide: Decide): Promise<SessionEvent[]> {
  const session = await manager.get(caller, sessionId);
  (models.get(session.model) as ReactiveModel).decide = decide;
  await manager.postMessage(caller, sessionId, "go");
  await scheduler.idle(sessionId);
  return database.sessions.readEvents(sessionId, { afterSeq: 0, limit: 10_000 });
}

/** Creates a session with these resources and runs one turn to its end. */
async function runSession(
  attached: MemoryStoreResource[],
  decide: Decide,
  options: { onStart?: (sessionId: string) => void } = {},
): Promise<{ sessionId: string; events: SessionEvent[] }> {
  const sessionId = await createSession(attached);
  options.onStart?.(sessionId);
  return { sessionId, events: await runTurn(sessionId, decide) };
}

function toolEnds(events: SessionEvent[]) {
  return events.flatMap((event) => (event.type === "tool.end" ? [event] : []));
}

/** A model that makes the given calls one after another, then stops. */
function sequence(calls: { name: string; input: unknown }[]): Decide {
  return (request) => calls[toolResults(request).length] ?? { text: "done" };
}

async function createStore(name: string, files: Record<string, string>): Promise<MemoryStoreRecord> {
  const store = await memoryStores.createStore(caller.orgId, { name });
  for (const [filePath, content] of Object.entries(files)) {
    await memoryStores.createMemory(caller.orgId, store.id, filePath, content, { userId: caller.userId });
  }
  return store;
}

async function headContent(store: MemoryStoreRecord, filePath: string): Promise<string> {
  const file = await memoryStores.files.read(memoryStores.scopeOf(caller.orgId, store.id), filePath);
  return Buffer.from(file.content).toString("utf8");
}

describe("memory stores mounted in sessions", () => {
  it("shows a read_write store to the file tools and bash alike, commits bash writes as the session's versions, and keeps a read_only store read-only", async () => {
    const notes = await createStore("Team Notes", { "/notes.md": "first\n" });
    const rules = await createStore("Rules", { "/rules.md": "be kind\n" });
    const { sessionId, events } = await runSession(
      [
        {
          type: "memory_store",
          memory_store_id: notes.id,
          access: "read_write",
          instructions: "Keep notes here.",
        },
        { type: "memory_store", memory_store_id: rules.id, access: "read_only" },
      ],
      sequence([
        {
          name: "Bash",
          input: { command: "cat /mnt/memory/team-notes/notes.md /mnt/memory/rules/rules.md" },
        },
        {
          name: "Bash",
          input: {
            command:
              "echo 'from bash' >> /mnt/memory/team-notes/notes.md && mkdir -p /mnt/memory/team-notes/sub && echo new > /mnt/memory/team-notes/sub/new.md",
          },
        },
        { name: "Read", input: { file_path: "/mnt/memory/team-notes/notes.md" } },
        {
          name: "Edit",
          input: {
            file_path: "/mnt/memory/team-notes/notes.md",
            old_string: "from bash",
            new_string: "from bash, edited",
          },
        },
        { name: "Bash", input: { command: "cat /mnt/memory/team-notes/notes.md" } },
        { name: "Bash", input: { command: "echo nope >> /mnt/memory/rules/rules.md" } },
        { name: "Read", input: { file_path: "/mnt/memory/rules/rules.md" } },
        { name: "Write", input: { file_path: "/mnt/memory/rules/rules.md", content: "nope" } },
        { name: "Bash", input: { command: "rm /mnt/memory/team-notes/sub/new.md" } },
      ]),
    );
    const ends = toolEnds(events);
    expect(ends).toHaveLength(9);
    expect(ends[0]?.output).toContain("first");
    expect(ends[0]?.output).toContain("be kind");
    expect(ends[1]?.isError).toBe(false);
    // The file tool reads what bash wrote; bash reads what the file tool wrote.
    expect(ends[2]?.output).toContain("from bash");
    expect(ends[3]?.isError).toBe(false);
    expect(ends[4]?.output).toContain("first\nfrom bash, edited");
    // read_only: bash gets a read-only file system and the reason; the Write tool is refused.
    expect(ends[5]?.output).toMatch(/Read-only file system/);
    expect(ends[5]?.output).toContain("/mnt/memory/rules is attached read-only");
    expect(ends[7]?.isError).toBe(true);
    expect(ends[7]?.output).toContain("attached read-only");
    expect(await headContent(rules, "/rules.md")).toBe("be kind\n");
    expect(await headContent(notes, "/notes.md")).toBe("first\nfrom bash, edited\n");

    // Versions: bash's and the Edit's are the session's; the bash rm is a delete by the session.
    const versions = await memoryStores.listVersions(caller.orgId, notes.id, { limit: 100 });
    const bySession = versions.filter((version) => version.sessionId === sessionId);
    expect(bySession.map((version) => `${version.operation} ${version.path}`).sort()).toEqual([
      "created /sub/new.md",
      "deleted /sub/new.md",
      "modified /notes.md",
      "modified /notes.md",
    ]);
    const rulesVersions = await memoryStores.listVersions(caller.orgId, rules.id, { limit: 100 });
    expect(rulesVersions).toHaveLength(1);
    // The system prompt names the stores, their access and instructions.
    const model = models.get(`reactive:session-${sessionCount}`) as ReactiveModel;
    expect(model.systems[0]).toContain("/mnt/memory/team-notes/ (read-write): Team Notes");
    expect(model.systems[0]).toContain("Instructions: Keep notes here.");
    expect(model.systems[0]).toContain("/mnt/memory/rules/ (read-only): Rules");
  }, 120_000);

  it("refuses another org's store, an unknown, archived or twice-attached one when a session is created", async () => {
    const other = await database.auth.createOrg("memory-sessions-other");
    const theirs = await memoryStores.createStore(other.id, { name: "theirs" });
    const mine = await memoryStores.createStore(caller.orgId, { name: "mine" });
    const archived = await memoryStores.createStore(caller.orgId, { name: "old" });
    await memoryStores.archiveStore(caller.orgId, archived.id);
    const resolve = (ids: string[]) =>
      resolveMemoryStoreResources({
        memoryStores,
        orgId: caller.orgId,
        resources: ids.map((id) => ({ type: "memory_store" as const, memory_store_id: id })),
        isNewSession: true,
      });
    await expect(resolve([theirs.id])).rejects.toMatchObject({ code: "not_found", status: 404 });
    await expect(resolve(["memstore_missing"])).rejects.toMatchObject({ status: 404 });
    await expect(resolve(["bad\u0000id"])).rejects.toMatchObject({ status: 404 });
    await expect(resolve([archived.id])).rejects.toMatchObject({
      code: "memory_store_archived",
      status: 409,
    });
    await expect(resolve([mine.id, mine.id])).rejects.toMatchObject({ status: 400 });
    expect((await resolve([mine.id])).map(renderMemoryStoreResource)).toEqual([
      {
        type: "memory_store",
        memory_store_id: mine.id,
        name: "mine",
        description: "",
        access: "read_write",
        instructions: null,
        mount_path: "/mnt/memory/mine",
      },
    ]);
    // A store deleted after the session was created is left out of its mounts, not an error.
    await memoryStores.deleteStore(caller.orgId, mine.id);
    const { events } = await runSession(
      [{ type: "memory_store", memory_store_id: mine.id }],
      sequence([{ name: "Bash", input: { command: "ls /mnt/memory 2>&1; echo ok" } }]),
    );
    expect(toolEnds(events)[0]?.output).toContain("ok");
  }, 60_000);

  it("keeps a bash write whose base changed meanwhile as a conflict copy and tells the model", async () => {
    const store = await createStore("race", { "/shared.md": "base\n" });
    let workspace = "";
    let raceSessionId = "";
    const race = runSession(
      [{ type: "memory_store", memory_store_id: store.id }],
      sequence([
        {
          name: "Bash",
          input: {
            command:
              "for i in $(seq 1 1200); do [ -e /workspace/go ] && break; sleep 0.05; done; echo mine >> /mnt/memory/race/shared.md",
          },
        },
        { name: "Bash", input: { command: "cat /mnt/memory/race/shared.md; ls /mnt/memory/race" } },
      ]),
      {
        onStart: (sessionId) => {
          raceSessionId = sessionId;
          workspace = path.join(home, "workspaces", sessionId);
        },
      },
    );
    // While the command waits, another writer (the API) changes the memory; then the command goes on.
    const memory = (await memoryStores.listMemories(caller.orgId, store.id, { limit: 10 }))[0];
    if (!memory || "kind" in memory) throw new Error("no memory");
    for (let attempt = 0; attempt < 600; attempt++) {
      const events = await database.sessions.readEvents(raceSessionId, {
        afterSeq: 0,
        limit: 100,
      });
      if (events.some((event) => event.type === "tool.start")) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await memoryStores.updateMemory(
      caller.orgId,
      store.id,
      memory.id,
      { content: "base\ntheirs\n" },
      { userId: caller.userId },
    );
    await fs.mkdir(workspace, { recursive: true });
    await fs.writeFile(path.join(workspace, "go"), "");
    const { sessionId, events } = await race;
    const ends = toolEnds(events);
    expect(ends[0]?.output).toContain("was changed by another session while this command ran");
    expect(ends[0]?.output).toContain(`/mnt/memory/race/shared.md.conflict-${sessionId}`);
    // The other write stays current; this one is the conflict copy; both are versions.
    expect(await headContent(store, "/shared.md")).toBe("base\ntheirs\n");
    expect(await headContent(store, `/shared.md.conflict-${sessionId}`)).toBe("base\nmine\n");
    expect(ends[1]?.output).toContain("base\ntheirs\n");
    expect(ends[1]?.output).toContain(`shared.md.conflict-${sessionId}`);
  }, 120_000);
});

describe("a store archived while a session runs", () => {
  it("takes no more bash writes from it and says so", async () => {
    const store = await createStore("soon archived", { "/a.md": "one\n" });
    const sessionId = await createSession([{ type: "memory_store", memory_store_id: store.id }]);
    const first = await runTurn(
      sessionId,
      sequence([{ name: "Bash", input: { command: "echo two >> /mnt/memory/soon-archived/a.md" } }]),
    );
    expect(toolEnds(first).at(-1)?.output).not.toContain("outrig:");
    expect(await headContent(store, "/a.md")).toBe("one\ntwo\n");
    await memoryStores.archiveStore(caller.orgId, store.id);
    const second = await runTurn(
      sessionId,
      sequence([
        { name: "Bash", input: { command: "echo three >> /mnt/memory/soon-archived/a.md" } },
        { name: "Bash", input: { command: "true" } },
      ]),
    );
    const ends = toolEnds(second);
    expect(ends.at(-2)?.output).toContain("/mnt/memory/soon-archived was archived while this session ran");
    expect(await headContent(store, "/a.md")).toBe("one\ntwo\n");
  }, 120_000);
});

describe("redaction", () => {
  it("removes a redacted version's content from the mount, bash, grep, Read, blame and version reads", async () => {
    const secret = "token=SECRET-7f3a9c";
    const store = await createStore("vault notes", { "/creds.md": `${secret}\nkeep this line\n` });
    const memory = (await memoryStores.listMemories(caller.orgId, store.id, { limit: 10 }))[0];
    if (!memory || "kind" in memory) throw new Error("no memory");
    await memoryStores.updateMemory(
      caller.orgId,
      store.id,
      memory.id,
      { content: "rotated\nkeep this line\n" },
      { userId: caller.userId },
    );
    await memoryStores.redactVersion(caller.orgId, store.id, memory.versionId, { userId: caller.userId });

    const { events } = await runSession(
      [{ type: "memory_store", memory_store_id: store.id }],
      sequence([
        {
          name: "Bash",
          input: {
            command:
              "grep -r SECRET /mnt/memory/ ; cat /mnt/memory/vault-notes/creds.md; ls -a /mnt/memory/vault-notes",
          },
        },
        { name: "Grep", input: { pattern: "SECRET", path: "/mnt/memory/vault-notes" } },
        { name: "Read", input: { file_path: "/mnt/memory/vault-notes/creds.md" } },
      ]),
    );
    const outputs = toolEnds(events).map((end) => end.output);
    expect(outputs).toHaveLength(3);
    expect(outputs[0]).toContain("rotated");
    expect(outputs[2]).toContain("rotated");
    for (const output of outputs) expect(output).not.toContain("SECRET");
    const scope = memoryStores.scopeOf(caller.orgId, store.id);
    await expect(memoryStores.files.read(scope, "/creds.md", { version: 1 })).rejects.toMatchObject({
      code: "not_found",
    });
    const blame = await memoryStores.files.blame(scope, "/creds.md");
    expect(JSON.stringify(blame)).not.toContain("SECRET");
    const history = await memoryStores.files.history(scope, "/creds.md");
    expect(history[0]?.sha256).toBeNull();
    const versions = await memoryStores.listVersions(caller.orgId, store.id, {
      limit: 10,
      withContent: true,
    });
    expect(JSON.stringify(versions)).not.toContain("SECRET");
    const { rows } = await database.pool.query<{ found: number }>(
      "SELECT count(*)::int AS found FROM file_versions WHERE namespace = $1 AND position($2::bytea IN content) > 0",
      [scope.namespace, Buffer.from("SECRET")],
    );
    expect(rows[0]?.found).toBe(0);
  }, 120_000);
});

describe("50 sessions writing one memory at once", () => {
  it("loses no update through Edit, Write and Bash; every stale write is refused or kept as a conflict copy and reported", async () => {
    const store = await createStore("shared", { "/log.md": "# log\nEND\n" });
    const attached: MemoryStoreResource[] = [{ type: "memory_store", memory_store_id: store.id }];
    const file = "/mnt/memory/shared/log.md";
    const kinds = ["Bash", "Edit", "Write"] as const;
    const conflictsSeen = { Bash: 0, Edit: 0, Write: 0 };
    const decideFor = (kind: (typeof kinds)[number], line: string): Decide => {
      const sed = `sed -i 's/^END$/${line}\\nEND/' ${file} && grep -c '^${line}$' ${file}`;
      return (request) => {
        const last = toolResults(request).at(-1);
        if (kind === "Bash") {
          if (last === undefined) return { name: "Bash", input: { command: sed } };
          const copy = /saved as (\S+) \(memory version/.exec(last.output)?.[1];
          if (last.output.includes("was changed by another session") && copy) {
            conflictsSeen.Bash += 1;
            // Redo the change on the other session's content; the conflict copy is no longer needed.
            return { name: "Bash", input: { command: `rm -f ${copy} && ${sed}` } };
          }
          if (last.isError || last.output.includes("outrig:"))
            return { name: "Bash", input: { command: sed } };
          return { text: "done" };
        }
        if (last === undefined || last.isError) {
          if (last?.isError) conflictsSeen[kind] += 1;
          return { name: "Read", input: { file_path: file } };
        }
        if (last.name === "Read") {
          if (kind === "Edit") {
            return {
              name: "Edit",
              input: { file_path: file, old_string: "\nEND\n", new_string: `\n${line}\nEND\n` },
            };
          }
          const text = readText(last.output).replace(/^END$/m, `${line}\nEND`);
          return {
            name: "Write",
            input: { file_path: file, content: text.endsWith("\n") ? text : `${text}\n` },
          };
        }
        return { text: "done" };
      };
    };
    const sessionIds: string[] = [];
    for (let index = 0; index < 50; index++) sessionIds.push(await createSession(attached));
    // The Bash writers' sandboxes are started one after another first: starting 17 bubblewrap sandboxes
    // at once on a 2-core machine runs past the agent's 15 s start timeout. Then all 50 turns run at once.
    const warmStartedAt = performance.now();
    for (const [index, sessionId] of sessionIds.entries()) {
      if (kinds[index % 3] !== "Bash") continue;
      const warm = await runTurn(sessionId, sequence([{ name: "Bash", input: { command: "true" } }]));
      expect(toolEnds(warm).at(-1)?.isError).toBe(false);
    }
    const warmMs = performance.now() - warmStartedAt;
    const startedAt = performance.now();
    const results = await Promise.all(
      sessionIds.map(async (sessionId, index) => {
        const kind = kinds[index % 3] ?? "Bash";
        return { sessionId, events: await runTurn(sessionId, decideFor(kind, `writer-${index}`)) };
      }),
    );
    const elapsedMs = performance.now() - startedAt;

    const content = await headContent(store, "/log.md");
    const lines = content.split("\n").filter((each) => each !== "");
    expect(lines[0]).toBe("# log");
    expect(lines.at(-1)).toBe("END");
    for (let index = 0; index < 50; index++) {
      expect(lines.filter((each) => each === `writer-${index}`)).toHaveLength(1);
    }
    expect(lines).toHaveLength(52);
    // Each writer's change became exactly one version of the memory; no write replaced another.
    const memory = (await memoryStores.listMemories(caller.orgId, store.id, { limit: 100 })).filter(
      (item) => !("kind" in item),
    );
    expect(memory.map((item) => item.path)).toEqual(["/log.md"]); // every conflict copy was merged and removed
    const logId = memory[0] && !("kind" in memory[0]) ? memory[0].id : "";
    const versions = await memoryStores.listVersions(caller.orgId, store.id, {
      limit: 1000,
      memoryId: logId,
    });
    expect(versions.filter((version) => version.operation === "modified")).toHaveLength(50);
    const writers = new Set(results.map((result) => result.sessionId));
    expect(
      versions.filter((version) => version.sessionId !== null && writers.has(version.sessionId)),
    ).toHaveLength(50);
    // Every bash conflict the model was told of left its content as a conflict-copy version.
    const all = await memoryStores.listVersions(caller.orgId, store.id, { limit: 5000 });
    // One version of `<path>.conflict-<session>` per conflict: created, or modified while the model had
    // not removed its previous copy yet.
    const copies = all.filter(
      (version) => version.operation !== "deleted" && version.path.includes(".conflict-"),
    );
    expect(copies).toHaveLength(conflictsSeen.Bash);
    // Reads and bash see the same content.
    const { events } = await runSession(
      attached,
      sequence([{ name: "Bash", input: { command: `cat ${file}` } }]),
    );
    expect(toolEnds(events)[0]?.output).toBe(content.trimEnd());
    console.log(
      `50 writers at once (17 Bash in 17 live bubblewrap sandboxes, 17 Edit, 16 Write): ${Math.round(elapsedMs)} ms (sandboxes started beforehand, one at a time: ${Math.round(warmMs)} ms); conflicts told: ${JSON.stringify(conflictsSeen)}; versions of the memory: ${versions.length}`,
    );
  }, 600_000);
});
