/**
 * Server-side sandbox lifecycle figures, on a real server process with the fake LLM:
 * - the first tool call of a session (`true`) with its sandbox pre-started while the first model call
 *   runs (OUTRIG_WARM_POOL_SIZE > 0) vs started by the call (OUTRIG_WARM_POOL_SIZE=0): tool.end's
 *   durationMs, which includes acquiring the sandbox;
 * - the snapshot after a call that changed one file, in a workspace of 21 vs 8,000 files
 *   (`sandbox.snapshot` durationMs: scan + incremental tar + zstd + store, off the call's path).
 * Run: `npx tsc -b && node bench/lifecycle-server-bench.mjs [--cycles 50]`.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startFakeLlmServer } from "@outrig/models";
import { percentile, round, spawnServer } from "./stats.mjs";

async function api(server, method, route, body) {
  const response = await fetch(`${server.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${server.apiKey}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!response.ok) throw new Error(`${route}: ${response.status} ${await response.text()}`);
  return response.json();
}

/**
 * Stored events of a session once its turn `turn` ended and at least `minSnapshots` sandbox.snapshot
 * events arrived (a snapshot is stored and logged after its call, so the last ones may follow the
 * turn's end).
 */
async function eventsAfterTurn(server, sessionId, turn = 1, minSnapshots = 0) {
  for (;;) {
    const session = await api(server, "GET", `/v1/sessions/${sessionId}`);
    if (session.status !== "running" && session.turns >= turn) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const response = await fetch(`${server.url}/v1/sessions/${sessionId}/events`, {
    headers: { authorization: `Bearer ${server.apiKey}` },
  });
  const reader = response.body.getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
    const hasEnded = text.includes('"type":"turn.end"') || text.includes('"type":"turn.error"');
    if (hasEnded && text.split('"type":"sandbox.snapshot"').length - 1 >= minSnapshots) break;
  }
  await reader.cancel();
  return text
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => JSON.parse(line.slice(5)));
}

const stats = (samples) => ({
  p50: round(percentile(samples, 50)),
  p99: round(percentile(samples, 99)),
  samples: samples.length,
});

async function withServer(env, script, work) {
  const fakeLlm = await startFakeLlmServer({ script, turnSelection: "history" });
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-lifecycle-"));
  const process_ = spawnServer(home, {
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    ...env,
  });
  try {
    const server = await process_.ready();
    // Idle sandboxes go cold quickly, so a long run does not pile up sandboxes.
    await api(server, "PUT", "/v1/sandbox-policy", { coldAfterMs: 1500, destroyAfterMs: 3_600_000 });
    return await work(server);
  } finally {
    await process_.stop();
    await fakeLlm.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

/** First tool call of `cycles` sessions; the first model call takes `modelMs`. */
export async function firstToolCall({ cycles = 50, warm, modelMs = 400 }) {
  const script = {
    turns: [
      { delayMs: modelMs, toolCalls: [{ name: "Bash", input: { command: "true" } }] },
      { text: "done" },
    ],
  };
  return withServer({ OUTRIG_WARM_POOL_SIZE: warm ? "4" : "0" }, script, async (server) => {
    const samples = [];
    let warmStarts = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const session = await api(server, "POST", "/v1/sessions", { model: "anthropic:bench", prompt: "go" });
      const events = await eventsAfterTurn(server, session.id);
      const toolEnd = events.find((event) => event.type === "tool.end");
      if (!toolEnd || toolEnd.isError) throw new Error(`first tool call failed: ${JSON.stringify(toolEnd)}`);
      samples.push(toolEnd.durationMs);
      if (events.some((event) => event.type === "sandbox.start" && event.isWarm)) warmStarts += 1;
    }
    return { ...stats(samples), warmStarts };
  });
}

/**
 * Snapshot cost after a call changing one file, in a workspace of `files` files: a Bash call (the
 * capture scans the workspace) or a Write call (it names its path, so the capture skips the scan).
 */
export async function snapshotAfterCall({ cycles = 50, files, tool = "Bash" }) {
  const setup = `mkdir -p tree && cd tree && for i in $(seq 1 ${files - 1}); do echo "file $i" > f$i.txt; done`;
  const script = {
    turns: [
      { toolCalls: [{ name: "Bash", input: { command: setup } }] },
      ...Array.from({ length: cycles }, (_, index) => ({
        toolCalls: [
          tool === "Write"
            ? { name: "Write", input: { file_path: "/workspace/changed.txt", content: `${index}\n` } }
            : { name: "Bash", input: { command: `echo ${index} > changed.txt` } },
        ],
      })),
      { text: "done" },
    ],
  };
  return withServer({}, script, async (server) => {
    const session = await api(server, "POST", "/v1/sessions", { model: "anthropic:bench", prompt: "go" });
    const events = await Promise.race([
      eventsAfterTurn(server, session.id, 1, cycles + 1),
      new Promise((_, reject) =>
        setTimeout(
          () => reject(new Error(`fewer than ${cycles + 1} snapshots after 120 s`)),
          120_000,
        ).unref(),
      ),
    ]);
    const snapshots = events.filter((event) => event.type === "sandbox.snapshot");
    // The first snapshot is the full layer of the new tree; the rest are the one-file increments.
    if (snapshots.length !== cycles + 1)
      throw new Error(`expected ${cycles + 1} snapshots, got ${snapshots.length}`);
    const increments = snapshots.slice(1);
    return {
      files: snapshots.at(-1)?.entryCount,
      fullMs: round(snapshots[0]?.durationMs ?? Number.NaN),
      fullBytes: snapshots[0]?.sizeBytes,
      ...stats(increments.map((event) => event.durationMs)),
      // What the next call waited for: the scan and the read of the change.
      capture: stats(increments.map((event) => event.captureMs)),
      incrementBytesP50: percentile(
        increments.map((event) => event.sizeBytes),
        50,
      ),
    };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { cycles: { type: "string", default: "50" } } });
  const cycles = Number(values.cycles);
  console.error("[bench] first tool call, pre-started sandbox");
  const prestarted = await firstToolCall({ cycles, warm: true });
  console.error("[bench] first tool call, sandbox started by the call");
  const onDemand = await firstToolCall({ cycles, warm: false });
  console.error("[bench] snapshot after a call, 21 files");
  const small = await snapshotAfterCall({ cycles, files: 21 });
  console.error("[bench] snapshot after a call, 8,000 files");
  const large = await snapshotAfterCall({ cycles, files: 8000 });
  console.log(
    JSON.stringify(
      { firstToolCallMs: { prestarted, onDemand }, snapshotAfterCallMs: { small, large } },
      null,
      2,
    ),
  );
}
