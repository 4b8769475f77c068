/**
 * Durable-execution figures: checkpointed step overhead, restart → 1,000 live sessions running again,
 * concurrent-session throughput on one worker, worker RSS. Real server processes, DBOS on embedded Postgres.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startFakeLlmServer } from "@outrig/models";
import { benchClient, TOOLS } from "./api-client.mjs";
import { median, round, rssMiB, spawnServer } from "./stats.mjs";

/** True once `count` sessions exist, each has called the model, and none is running any more. */
async function allIdle(client, fakeLlm, count) {
  if (fakeLlm.requests.length < count) return false;
  const page = await client.beta.sessions.list({ limit: Math.min(count, 100) });
  const sessions = [];
  for await (const session of page) {
    sessions.push(session);
    if (sessions.length >= count) break;
  }
  return sessions.length >= count && sessions.every((session) => session.status === "idle");
}

/** Per-step cost of a checkpointed loop step: turns of 20 tool rounds at zero model latency. */
export async function stepOverhead({ turns = 5, rounds = 20 } = {}) {
  const script = {
    turns: [
      ...Array.from({ length: rounds }, (_, index) => ({
        toolCalls: [{ name: TOOLS.bash, input: { command: `true ${index}` } }],
      })),
      { text: "done" },
    ],
  };
  const fakeLlm = await startFakeLlmServer({ script, turnSelection: "history" });
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-durable-"));
  const process_ = spawnServer(home, { ANTHROPIC_API_KEY: "bench", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` });
  try {
    const api = await benchClient(await process_.ready());
    const perStep = [];
    for (let turn = 0; turn < turns; turn++) {
      const started = performance.now();
      await api.runSession("go");
      // Steps: one model call per round plus the final one, one tool call per round, and the turn end.
      perStep.push((performance.now() - started) / (2 * rounds + 2));
    }
    return { stepP50: median(perStep), rss: await rssMiB(process_.child.pid) };
  } finally {
    await process_.stop();
    await fakeLlm.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

/** Sessions per second on one worker at 1 s per model call, and the worker's RSS meanwhile. */
export async function throughput({ sessions = 200 } = {}) {
  const fakeLlm = await startFakeLlmServer({
    script: { turns: [{ delayMs: 1000, text: "ok" }] },
    turnSelection: "history",
  });
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-throughput-"));
  const process_ = spawnServer(home, { ANTHROPIC_API_KEY: "bench", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` });
  try {
    const api = await benchClient(await process_.ready());
    const started = performance.now();
    await Promise.all(Array.from({ length: sessions }, () => api.startSession("hi")));
    let peakRss = 0;
    while (!(await allIdle(api.client, fakeLlm, sessions))) {
      peakRss = Math.max(peakRss, await rssMiB(process_.child.pid));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seconds = (performance.now() - started) / 1000;
    return { sessions, seconds, perSecond: sessions / seconds, peakRss };
  } finally {
    await process_.stop();
    await fakeLlm.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

/** 1,000 sessions parked in a long model call; SIGKILL; time from restart until all are running again. */
export async function restartRecovery({ sessions = 1000 } = {}) {
  const fakeLlm = await startFakeLlmServer({
    script: { turns: [{ delayMs: 600_000, text: "late" }] },
    turnSelection: "history",
  });
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-recovery-"));
  const env = { ANTHROPIC_API_KEY: "bench", ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1` };
  let process_ = spawnServer(home, env);
  try {
    let server = await process_.ready();
    const api = await benchClient(server);
    for (let index = 0; index < sessions; index += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, sessions - index) }, () => api.startSession("wait")),
      );
    }
    await fakeLlm.waitForRequests(sessions);
    const liveRss = await rssMiB(process_.child.pid);
    await process_.stop("SIGKILL");
    const before = fakeLlm.requests.length;
    process_ = spawnServer(home, env);
    const restartedAt = process_.startedAt;
    await fakeLlm.waitForRequests(before + sessions);
    const seconds = (performance.now() - restartedAt) / 1000;
    server = await process_.ready();
    return { sessions, seconds, liveRss, rssAfter: await rssMiB(process_.child.pid), server };
  } finally {
    await process_.stop("SIGKILL");
    // A graceful start and stop also stops the embedded Postgres the killed server left running.
    const cleanup = spawnServer(home, env);
    await cleanup.ready().catch(() => undefined);
    await cleanup.stop();
    await fakeLlm.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

export function formatDurable(step, load, recovery) {
  return [
    "| figure | value |",
    "| --- | --- |",
    `| checkpointed loop step (model or tool call, fake LLM at zero latency, \`true\` in the sandbox) | p50 ${round(step.stepP50, 1)} ms per step |`,
    `| ${load.sessions} concurrent sessions at 1 s per model call, one worker | all done in ${round(load.seconds, 1)} s (${round(load.perSecond, 1)} sessions/s; serial: ${load.sessions} s); peak worker RSS ${round(load.peakRss, 0)} MiB |`,
    `| restart until all ${recovery.sessions} live sessions are running again (SIGKILL, then spawn → every parked model call re-issued) | ${round(recovery.seconds, 1)} s |`,
    `| worker RSS with ${recovery.sessions} live sessions | ${round(recovery.liveRss, 0)} MiB before the kill, ${round(recovery.rssAfter, 0)} MiB after recovery |`,
  ].join("\n");
}
