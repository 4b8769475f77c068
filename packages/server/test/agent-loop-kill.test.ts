/**
 * A killed worker (SIGKILL, nothing drained) loses neither a custom tool wait nor a queued message:
 * the next worker with its id resumes the waiting turn from the durable engine, records the client's
 * result once, runs the queued message as the next turn, and repeats no completed model call.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { SessionEvent } from "@outrig/protocol";
import { createDatabase, type Database } from "@outrig/storage";
import { createTestDatabase, type TestDatabase } from "@outrig/testing";
import { afterAll, beforeAll, expect, it } from "vitest";

const WORKER = path.join(import.meta.dirname, "fixtures", "loop-worker.mjs");

interface Worker {
  readonly child: ChildProcess;
  modelCalls: number;
  call(command: Record<string, unknown>): Promise<unknown>;
  kill(): Promise<void>;
}

let testDatabase: TestDatabase;
let database: Database;
let home: string;
let env: Record<string, string>;
const workers: Worker[] = [];

async function startWorker(): Promise<Worker> {
  // The built packages (dist), not the test run's source conditions.
  const { NODE_OPTIONS: _ignored, ...parentEnv } = process.env;
  const child = fork(WORKER, [], {
    env: { ...parentEnv, ...env },
    execArgv: [],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  const worker: Worker = {
    child,
    modelCalls: 0,
    call(command) {
      nextId += 1;
      const id = nextId;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ ...command, id });
      });
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
  };
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) =>
      reject(new Error(`the worker exited (${code}) before it was ready:\n${output}`)),
    );
    child.on("message", (message: { type: string; id?: number; result?: unknown; error?: string }) => {
      if (message.type === "ready") resolve();
      if (message.type === "model_call") worker.modelCalls += 1;
      if (message.type !== "reply" || message.id === undefined) return;
      const waiter = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(message.error));
      else waiter?.resolve(message.result);
    });
  });
  workers.push(worker);
  return worker;
}

async function waitFor(sessionId: string, until: (log: SessionEvent[]) => boolean): Promise<SessionEvent[]> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const log = await database.sessions.readEvents(sessionId, { afterSeq: 0, limit: 1000 });
    if (until(log)) return log;
    if (Date.now() > deadline)
      throw new Error(`timed out; the log: ${log.map((event) => event.type).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  testDatabase = await createTestDatabase();
  database = await createDatabase({ url: testDatabase.url });
  const org = await database.auth.createOrg("kill");
  const user = await database.auth.createUser(org.id, { name: "owner", role: "admin" });
  home = await mkdtemp(path.join(tmpdir(), "outrig-agent-loop-kill-"));
  env = {
    OUTRIG_TEST_DB: testDatabase.url,
    OUTRIG_TEST_HOME: home,
    OUTRIG_TEST_ORG: org.id,
    OUTRIG_TEST_USER: user.id,
  };
}, 120_000);

afterAll(async () => {
  for (const worker of workers) await worker.kill();
  await database?.close();
  await testDatabase?.drop();
  if (home) await rm(home, { recursive: true, force: true });
});

it("resumes a custom tool wait and the message queue after the worker is killed", async () => {
  const first = await startWorker();
  const sessionId = String(
    await first.call({
      op: "create",
      input: {
        prompt: "where is o-42?",
        agent: {
          agentId: "agent_kill",
          version: 1,
          model: "test:responding",
          system: null,
          toolset: {},
          customTools: [
            { name: "lookup_order", description: "Looks an order up", inputSchema: { type: "object" } },
          ],
          skills: [],
        },
      },
    }),
  );
  await waitFor(sessionId, (log) => log.some((event) => event.type === "custom_tool.request"));
  expect(await first.call({ op: "send", sessionId, text: "and o-43?" })).toBe("queued");
  expect(first.modelCalls).toBe(1);
  await first.kill();

  const second = await startWorker();
  await second.call({
    op: "result",
    sessionId,
    toolCallId: "call_lookup",
    result: { content: [{ type: "text", text: "shipped" }], isError: false },
  });
  const log = await waitFor(
    sessionId,
    (current) => current.filter((event) => event.type === "turn.end").length === 2,
  );
  expect(log.filter((event) => event.type === "custom_tool.result")).toHaveLength(1);
  const answers = log.flatMap((event) =>
    event.type === "message.end"
      ? event.message.content.flatMap((part) => (part.type === "text" ? [part.text] : ["(tool call)"]))
      : [],
  );
  expect(answers).toEqual(["(tool call)", "answer: shipped", "answer to and o-43?"]);
  // The killed worker's model call was not made again: the new worker made exactly the two that remained.
  expect(second.modelCalls).toBe(2);
  expect(
    log
      .filter((event) => event.type === "turn.start")
      .map((event) => event.type === "turn.start" && event.text),
  ).toEqual(["where is o-42?", "and o-43?"]);
}, 180_000);
