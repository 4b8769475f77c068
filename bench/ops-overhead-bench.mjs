/**
 * What operations cost per model+tool round: the loop on an in-memory store with a scripted model, bare,
 * with logs and metrics (tracing off, the default), and with traces exported over OTLP/HTTP to a local
 * receiver. Uses the built packages (dist/). Run: node bench/ops-overhead-bench.mjs [rounds]
 */
import http from "node:http";
import { Writable } from "node:stream";
import { createMountTable, SessionRunner } from "@outrig/core";
import { z } from "zod";
import { createOperations } from "../packages/server/dist/ops/create-operations.js";
import { createLogger } from "../packages/server/dist/ops/logger.js";
import { loadOperationsConfig } from "../packages/server/dist/ops/operations-config.js";
import { stepScope } from "../packages/server/dist/ops/step-scope.js";
// Straight from the files: the package index pulls in vitest.
import { MemorySessionStore } from "../packages/testing/dist/memory-session-store.js";
import { ScriptedModel } from "../packages/testing/dist/scripted-model.js";
import { median, round } from "./stats.mjs";

const rounds = Number(process.argv[2] ?? 2000);
const tool = {
  name: "Echo",
  description: "echo",
  inputSchema: z.strictObject({ text: z.string() }),
  execute: async (input) => ({ output: input.text, isError: false }),
};

/** Runs `count` turns of one tool call and one answer, 10 per session (histories stay short); ms per turn. */
async function run(count, operations) {
  const times = [];
  for (let done = 0; done < count; done += 10) times.push(...(await runSession(10, operations)));
  return times;
}

async function runSession(count, operations) {
  const inner = new MemorySessionStore();
  const store = operations ? operations.observeSessionStore(inner) : inner;
  const session = await inner.createSession({ orgId: "org", userId: "usr", model: "x:y", system: null });
  const scripted = new ScriptedModel([]);
  const model = operations ? operations.observeModelFactory(() => scripted)("x:y") : scripted;
  const runner = new SessionRunner(
    {
      store,
      tools: [tool],
      limits: { maxSteps: 10, maxModelAttempts: 3 },
      sleep: async () => {},
      random: () => 0.5,
      publish: () => {},
    },
    {
      sessionId: session.id,
      model,
      fs: createMountTable([]),
      exec: async () => {
        throw new Error("none");
      },
      systemPrompt: "s",
      cwd: "/",
    },
  );
  const signal = new AbortController().signal;
  const times = [];
  for (let turn = 1; turn <= count; turn++) {
    scripted.enqueue(
      { toolCalls: [{ name: "Echo", input: { text: "hi" }, id: `c${turn}` }] },
      { text: "done" },
    );
    const started = performance.now();
    await store.startTurn("org", session.id, "go");
    await stepScope.run({ sessionId: session.id, turn }, async () => {
      while ((await runner.runStep(signal)).type !== "idle");
    });
    times.push(performance.now() - started);
  }
  return times;
}

const receiver = http.createServer((request, response) => {
  request.resume();
  request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end("{}"));
});
await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const nullStream = new Writable({ write: (_chunk, _encoding, callback) => callback() });
const logger = createLogger({ destination: nullStream, format: "json" });
const off = createOperations(loadOperationsConfig({}), { serviceInstanceId: "bench", logger });
const on = createOperations(
  loadOperationsConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.address().port}` }),
  { serviceInstanceId: "bench", logger },
);
const figures = {};
for (const [name, operations] of [
  ["bare", undefined],
  ["logs+metrics", off],
  ["logs+metrics+traces", on],
  ["bare (again)", undefined],
]) {
  await run(200, operations); // warm-up
  figures[name] = round(median(await run(rounds, operations)) * 1000, 1);
}
await on.flush();
await on.close();
await off.close();
receiver.close();
console.log(JSON.stringify({ rounds, medianMicrosecondsPerRound: figures }));
