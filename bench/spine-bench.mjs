/**
 * Spine figures: sandbox start and exec round trip, harness overhead per model+tool round, server RSS.
 * Uses the built packages (dist/), real bubblewrap, embedded Postgres and the fake LLM over HTTP.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startFakeLlmServer } from "@outrig/models";
import { createBubblewrapSandboxProvider } from "@outrig/sandboxes";
import { benchClient, TOOLS } from "./api-client.mjs";
import {
  median,
  percentile,
  processesMatching,
  round,
  rssMiB,
  spawnServer,
  takeStepTimings,
  time,
} from "./stats.mjs";

export async function sandboxFigures({ starts = 30, execs = 200 } = {}) {
  const provider = createBubblewrapSandboxProvider();
  const workspaces = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-ws-"));
  const signal = new AbortController().signal;
  const firstExec = [];
  try {
    for (let index = 0; index < starts; index++) {
      const started = performance.now();
      const handle = await provider.create({
        sessionId: `bench-${index}`,
        orgId: "bench",
        workspaceDir: path.join(workspaces, String(index)),
      });
      await handle.sandbox.exec({ command: "true", timeoutMs: 10_000 }, signal);
      firstExec.push(performance.now() - started);
      await handle.destroy();
    }
    const handle = await provider.create({
      sessionId: "bench-rtt",
      orgId: "bench",
      workspaceDir: path.join(workspaces, "rtt"),
    });
    for (let index = 0; index < 10; index++)
      await handle.sandbox.exec({ command: "true", timeoutMs: 10_000 }, signal);
    const sandboxExec = [];
    for (let index = 0; index < execs; index++) {
      sandboxExec.push(await time(() => handle.sandbox.exec({ command: "true", timeoutMs: 10_000 }, signal)));
    }
    await handle.destroy();
    const localSpawn = [];
    for (let index = 0; index < execs; index++) {
      localSpawn.push(
        await time(
          () =>
            new Promise((resolve, reject) => {
              const child = spawn("bash", ["-c", "true"], { stdio: "ignore" });
              child.once("error", reject);
              child.once("exit", resolve);
            }),
        ),
      );
    }
    return {
      firstExecP50: median(firstExec),
      firstExecP99: percentile(firstExec, 99),
      execP50: median(sandboxExec),
      spawnP50: median(localSpawn),
      ratio: median(sandboxExec) / median(localSpawn),
    };
  } finally {
    await provider.close();
    await fs.rm(workspaces, { recursive: true, force: true });
  }
}

async function startServerProcess(home, env) {
  const process_ = spawnServer(home, env);
  return { ...(await process_.ready()), child: process_.child, stop: () => process_.stop() };
}

/** Harness overhead per model+tool round (fake LLM at zero latency) and server RSS idle / with 100 sessions. */
export async function serverFigures({ rounds = 20, turns = 5, sessions = 100 } = {}) {
  const roundTurn = [
    ...Array.from({ length: rounds }, (_, index) => ({
      toolCalls: [
        { name: TOOLS.write, input: { file_path: `/workspace/f${index}.txt`, content: `round ${index}\n` } },
      ],
    })),
    { text: "done" },
  ];
  const fakeLlm = await startFakeLlmServer({ script: { turns: [] } });
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-home-"));
  const timingsFile = path.join(home, "step-timings.json");
  const server = await startServerProcess(home, {
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
    OUTRIG_STEP_TIMINGS_FILE: timingsFile,
  });
  try {
    // Baseline: the fake LLM round trip alone, as the adapter sees it, is measured by the server's own
    // timings (message.end at) — we report whole rounds and the model share separately.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRss = await rssMiB(server.child.pid);

    const api = await benchClient(server);
    await takeStepTimings(server.child, timingsFile); // only the rounds below count
    const perRound = [];
    for (let turn = 0; turn < turns; turn++) {
      fakeLlm.setScript({ turns: roundTurn });
      const started = performance.now();
      await api.runSession("go");
      const elapsed = performance.now() - started;
      perRound.push(elapsed / (rounds + 1));
    }
    // Where a round's time goes: each phase's wall-clock time per round, summed over the turns above.
    const roundCount = turns * (rounds + 1);
    const phases = await takeStepTimings(server.child, timingsFile);
    const roundPhases = Object.fromEntries(
      Object.entries(phases).map(([phase, { totalMs, count }]) => [
        phase,
        { ms: totalMs / roundCount, count: count / roundCount },
      ]),
    );

    const script = { turns: [] };
    for (let index = 0; index < sessions; index++) {
      script.turns.push({
        toolCalls: [{ name: TOOLS.write, input: { file_path: "/workspace/a.txt", content: "x\n" } }],
      });
      script.turns.push({ text: "ok" });
    }
    // Sessions are created one after another so the one-cursor fake LLM answers each in order.
    fakeLlm.setScript(script);
    for (let index = 0; index < sessions; index++) await api.runSession("write");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const busyRss = await rssMiB(server.child.pid);
    // Only this server's agents: their node runs with the sandbox's fixed agent path and a home-specific cwd is
    // not visible, so count agents started after the server (the benchmark runs alone).
    const agents = await processesMatching("sandbox-agent.mjs", "bwrap");
    return {
      perRoundP50: median(perRound),
      roundPhases,
      idleRss,
      busyRss,
      sandboxes: agents.length,
      agentRssTotal: agents.reduce((sum, agent) => sum + agent.rss, 0),
    };
  } finally {
    await server.stop();
    await fakeLlm.close();
    await fs.rm(home, { recursive: true, force: true });
  }
}

/** What each phase of a model+tool round is, for the breakdown table (phases nest; see step-timings.ts). */
const PHASES = {
  step: "a loop step on the worker (a round is a model step and a tool step)",
  "step.between": "between two steps of a turn: the durable checkpoint of the step and the start of the next",
  "step.prepare": "before a step acts: the session, the log caught up, policy, file resources",
  "loop.state": "log catch-up reads (SessionRunner.state)",
  "loop.model": "model request out → stream parsed (HTTP to the fake LLM, AI SDK)",
  "loop.append": "events appended to the log (tool.start, tool.end, message.end; one transaction each)",
  "loop.publish": "events published to the bus (and to the open streams)",
  "loop.tool": "the tool call, input validation to result",
  "sandbox.wait": "a sandbox call waiting for the previous snapshot's capture (and a start or resume)",
  "sandbox.call": "the sandbox call itself (exec, write)",
  "snapshot.capture": "snapshot scan and tar until it has read the workspace (off the step's path)",
  "snapshot.stored": "snapshot capture through stored and logged (off the step's path)",
  "step.outputs": "/mnt/session/outputs collected after the step",
  "stream.write": "events projected to the API's and written to the SSE stream",
};

/** The per-round breakdown: each phase's wall-clock ms and occurrences per model+tool round. */
export function formatRoundPhases(roundPhases) {
  const known = Object.keys(PHASES).filter((phase) => roundPhases[phase]);
  const other = Object.keys(roundPhases).filter((phase) => !(phase in PHASES));
  return [
    "| phase | ms per round | times per round | what |",
    "| --- | --- | --- | --- |",
    ...[...known, ...other].map(
      (phase) =>
        `| ${phase} | ${round(roundPhases[phase].ms, 2)} | ${round(roundPhases[phase].count, 2)} | ${PHASES[phase] ?? ""} |`,
    ),
  ].join("\n");
}

export function formatSpine(sandbox, server) {
  return [
    "| figure | value |",
    "| --- | --- |",
    `| fresh sandbox → first exec result | p50 ${round(sandbox.firstExecP50, 1)} ms, p99 ${round(sandbox.firstExecP99, 1)} ms |`,
    `| exec \`true\` round trip vs direct local spawn | ${round(sandbox.execP50, 2)} ms vs ${round(sandbox.spawnP50, 2)} ms (ratio ${round(sandbox.ratio, 2)}) |`,
    `| harness overhead per model+tool round (fake LLM, zero latency; includes HTTP to the fake, AI SDK parsing, 3 Postgres appends, one sandbox Write) | p50 ${round(server.perRoundP50, 1)} ms |`,
    `| server RSS idle | ${round(server.idleRss, 0)} MiB |`,
    `| server RSS with 100 sessions open (each ran a turn with a tool call) | ${round(server.busyRss, 0)} MiB (+ ${server.sandboxes} live sandboxes, ${round(server.agentRssTotal, 0)} MiB RSS in their agents, mostly shared node pages) |`,
  ].join("\n");
}
