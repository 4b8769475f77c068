/**
 * Server-side sandbox lifecycle figures, on a real server process with the fake LLM:
 * - the first tool call of a session (`true`) with its sandbox pre-started while the first model call
 *   runs (OUTRIG_WARM_POOL_SIZE > 0) vs started by the call (OUTRIG_WARM_POOL_SIZE=0): from its
 *   `agent.tool_use` to its `agent.tool_result` (`processed_at`), which includes acquiring the sandbox;
 * - the snapshot after a call that changed one file, in a workspace of 21 vs 8,000 files
 *   (`session.sandbox_snapshotted` duration_ms: scan + incremental tar + zstd + store, off the call's path).
 * Sessions are driven through the Managed Agents API with the official SDK.
 * Run: `npx tsc -b && node bench/lifecycle-server-bench.mjs [--cycles 50]`.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { startFakeLlmServer } from "@outrig/models";
import { benchClient, TOOLS } from "./api-client.mjs";
import { percentile, round, spawnServer } from "./stats.mjs";

/** The session's events once its turn ended and at least `minSnapshots` snapshots were logged. */
async function eventsAfterTurn(api, sessionId, minSnapshots = 0) {
  for (;;) {
    const events = [];
    for await (const event of api.client.beta.sessions.events.list(sessionId, { order: "asc", limit: 100 }))
      events.push(event);
    const isIdle = events.some((event) => event.type === "session.status_idle");
    const snapshots = events.filter((event) => event.type === "session.sandbox_snapshotted").length;
    if (isIdle && snapshots >= minSnapshots) return events;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Milliseconds from a call's agent.tool_use to its agent.tool_result. */
function callMs(events, result) {
  const use = events.find((event) => event.id === result.tool_use_id);
  return Date.parse(result.processed_at) - Date.parse(use.processed_at);
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
    // Idle sandboxes go cold quickly, so a long run does not pile up sandboxes (Outrig's own route).
    const response = await fetch(`${server.url}/v1/sandbox-policy`, {
      method: "PUT",
      headers: { "x-api-key": server.apiKey, "content-type": "application/json" },
      body: JSON.stringify({ coldAfterMs: 1500, destroyAfterMs: 3_600_000 }),
    });
    if (!response.ok) throw new Error(`sandbox-policy: ${response.status} ${await response.text()}`);
    return await work(await benchClient(server));
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
      { delayMs: modelMs, toolCalls: [{ name: TOOLS.bash, input: { command: "true" } }] },
      { text: "done" },
    ],
  };
  return withServer({ OUTRIG_WARM_POOL_SIZE: warm ? "4" : "0" }, script, async (api) => {
    const samples = [];
    let warmStarts = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const session = await api.startSession("go");
      const events = await eventsAfterTurn(api, session.id);
      const result = events.find((event) => event.type === "agent.tool_result");
      if (!result || result.is_error) throw new Error(`first tool call failed: ${JSON.stringify(result)}`);
      samples.push(callMs(events, result));
      if (events.some((event) => event.type === "session.sandbox_started" && event.is_warm)) warmStarts += 1;
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
      { toolCalls: [{ name: TOOLS.bash, input: { command: setup } }] },
      ...Array.from({ length: cycles }, (_, index) => ({
        toolCalls: [
          tool === "Write"
            ? { name: TOOLS.write, input: { file_path: "/workspace/changed.txt", content: `${index}\n` } }
            : { name: TOOLS.bash, input: { command: `echo ${index} > changed.txt` } },
        ],
      })),
      { text: "done" },
    ],
  };
  return withServer({}, script, async (api) => {
    const session = await api.startSession("go");
    const events = await Promise.race([
      eventsAfterTurn(api, session.id, cycles + 1),
      new Promise((_, reject) =>
        setTimeout(
          () => reject(new Error(`fewer than ${cycles + 1} snapshots after 120 s`)),
          120_000,
        ).unref(),
      ),
    ]);
    const snapshots = events.filter((event) => event.type === "session.sandbox_snapshotted");
    // The first snapshot is the full layer of the new tree; the rest are the one-file increments.
    if (snapshots.length !== cycles + 1)
      throw new Error(`expected ${cycles + 1} snapshots, got ${snapshots.length}`);
    const increments = snapshots.slice(1);
    return {
      files: snapshots.at(-1)?.entry_count,
      fullMs: round(snapshots[0]?.duration_ms ?? Number.NaN),
      fullBytes: snapshots[0]?.size_bytes,
      ...stats(increments.map((event) => event.duration_ms)),
      incrementBytesP50: percentile(
        increments.map((event) => event.size_bytes),
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
