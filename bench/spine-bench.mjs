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
import { median, percentile, processesMatching, round, rssMiB, spawnServer, time } from "./stats.mjs";

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
  const server = await startServerProcess(home, {
    ANTHROPIC_API_KEY: "bench",
    ANTHROPIC_BASE_URL: `${fakeLlm.url}/v1`,
  });
  try {
    // Baseline: the fake LLM round trip alone, as the adapter sees it, is measured by the server's own
    // timings (message.end at) — we report whole rounds and the model share separately.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRss = await rssMiB(server.child.pid);

    const api = await benchClient(server);
    const perRound = [];
    for (let turn = 0; turn < turns; turn++) {
      fakeLlm.setScript({ turns: roundTurn });
      const started = performance.now();
      await api.runSession("go");
      const elapsed = performance.now() - started;
      perRound.push(elapsed / (rounds + 1));
    }

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
