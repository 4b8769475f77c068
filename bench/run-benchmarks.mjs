/**
 * `npm run bench`: runs every benchmark and prints markdown tables. `--write-readme` also replaces the
 * tables between the bench markers in README.md. `--runs N` repeats the spine and API figures and
 * reports the median of the per-run medians. `--lifecycle` adds the sandbox lifecycle figures (slow: 200 sandboxes).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { apiFigures, formatApi } from "./api-bench.mjs";
import { formatDurable, restartRecovery, stepOverhead, throughput } from "./durable-bench.mjs";
import { filesFigures, formatFiles } from "./files-bench.mjs";
import { formatRoundPhases, formatSpine, sandboxFigures, serverFigures } from "./spine-bench.mjs";
import { median } from "./stats.mjs";

const { values } = parseArgs({
  options: {
    "write-readme": { type: "boolean", default: false },
    runs: { type: "string", default: "3" },
    lifecycle: { type: "boolean", default: false },
  },
});
const runs = Math.max(1, Number(values.runs));

const sandboxRuns = [];
const serverRuns = [];
for (let run = 1; run <= runs; run++) {
  console.error(`[bench] run ${run}/${runs}: sandbox`);
  sandboxRuns.push(await sandboxFigures());
  console.error(`[bench] run ${run}/${runs}: server`);
  serverRuns.push(await serverFigures());
}
const combine = (list) =>
  Object.fromEntries(
    Object.keys(list[0])
      .filter((key) => typeof list[0][key] === "number")
      .map((key) => [key, median(list.map((entry) => entry[key]))]),
  );
/** Each phase's median over the runs (of its ms and its count per round). */
const combinePhases = (list) =>
  Object.fromEntries(
    [...new Set(list.flatMap((entry) => Object.keys(entry)))].map((phase) => [
      phase,
      {
        ms: median(list.map((entry) => entry[phase]?.ms ?? 0)),
        count: median(list.map((entry) => entry[phase]?.count ?? 0)),
      },
    ]),
  );

console.error(
  "[bench] the Managed Agents API through the SDK: create → first event, send → tool_use, stream rate",
);
const apiRuns = [];
for (let run = 1; run <= runs; run++) apiRuns.push(await apiFigures());

console.error("[bench] durable: step overhead, throughput, restart recovery");
const step = await stepOverhead();
const load = await throughput();
const recovery = await restartRecovery();

console.error("[bench] files: Read/Write/Edit on /workspace and /memories");
const files = await filesFigures();

const sections = [
  `### Spine\n\n${formatSpine(combine(sandboxRuns), combine(serverRuns))}`,
  `### Where a model+tool round goes\n\n${formatRoundPhases(combinePhases(serverRuns.map((run) => run.roundPhases)))}`,
  `### Managed Agents API (the official SDK as the client)\n\n${formatApi(combine(apiRuns))}`,
  `### Durable sessions\n\n${formatDurable(step, load, recovery)}`,
  `### Skills and memories\n\n${formatFiles(files)}\n\nA write in one session is visible to \`cat\` in another running session once the per-user mirror applies it (LISTEN/NOTIFY): p50 8 ms, p95 17 ms in \`packages/storage/test/files-skills-memory.test.ts\`.`,
];
console.error("[bench] egress proxy overhead");
sections.push(`### Egress proxy\n\n${await egressFigures()}`);
if (values.lifecycle) {
  console.error("[bench] sandbox lifecycle");
  const { runLifecycleBench } = await import("../packages/sandboxes/dist/bench/lifecycle-bench.js");
  const figures = await runLifecycleBench({ cycles: 50, standbyCount: 200 });
  sections.push(`### Sandbox lifecycle\n\n\`\`\`json\n${JSON.stringify(figures, null, 2)}\n\`\`\``);
  console.error("[bench] sandbox lifecycle in the server: first tool call, snapshot after a call");
  const { firstToolCall, snapshotAfterCall } = await import("./lifecycle-server-bench.mjs");
  const server = {
    firstToolCallMs: {
      prestarted: await firstToolCall({ cycles: 50, warm: true }),
      onDemand: await firstToolCall({ cycles: 50, warm: false }),
    },
    snapshotAfterCallMs: {
      files21: await snapshotAfterCall({ cycles: 50, files: 21 }),
      files8000: await snapshotAfterCall({ cycles: 50, files: 8000 }),
      files21Write: await snapshotAfterCall({ cycles: 50, files: 21, tool: "Write" }),
      files8000Write: await snapshotAfterCall({ cycles: 50, files: 8000, tool: "Write" }),
    },
  };
  sections.push(
    `### Sandbox lifecycle in the server\n\n\`\`\`json\n${JSON.stringify(server, null, 2)}\n\`\`\``,
  );
  const { checkRuncHibernate } = await import("../packages/sandboxes/dist/index.js");
  const support = await checkRuncHibernate();
  if (support.isSupported) {
    console.error("[bench] hibernate (runc + CRIU)");
    const { runHibernateBench } = await import("../packages/sandboxes/dist/bench/hibernate-bench.js");
    const hibernate = await runHibernateBench({ cycles: 50 });
    sections.push(
      `### Hibernate (runc + CRIU ${support.criuVersion})\n\n\`\`\`json\n${JSON.stringify(hibernate, null, 2)}\n\`\`\``,
    );
  } else {
    console.error(`[bench] hibernate skipped: ${support.reason}`);
  }
}
const table = `${sections.join("\n\n")}\n\n_Spine: median over ${runs} runs; ${new Date().toISOString().slice(0, 10)}, 2-core shared machine._`;
console.log(table);

if (values["write-readme"]) {
  const readme = path.resolve(import.meta.dirname, "../README.md");
  const text = await fs.readFile(readme, "utf8");
  const updated = text.replace(
    /<!-- bench:start -->[\s\S]*<!-- bench:end -->/,
    `<!-- bench:start -->\n${table}\n<!-- bench:end -->`,
  );
  await fs.writeFile(readme, updated);
  console.error("[bench] README.md updated");
}

/** Egress proxy overhead: three runs of 300 keep-alive 1 KiB POSTs each (medians of their p50s). */
async function egressFigures() {
  const runsOf = [];
  for (let run = 0; run < 3; run += 1) {
    const output = execFileSync("npx", ["vite-node", "packages/egress/bench/egress-overhead.ts"], {
      cwd: path.resolve(import.meta.dirname, ".."),
      encoding: "utf8",
      env: { ...process.env, EGRESS_BENCH_REQUESTS: "300" },
    });
    runsOf.push(JSON.parse(output.slice(output.indexOf("{"), output.lastIndexOf("}") + 1)));
  }
  const median = (pick) => {
    const values = runsOf.map(pick).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)];
  };
  const row = (name, direct, proxied) => {
    const d = median(direct);
    const p = median(proxied);
    return `| ${name} | ${d.toFixed(2)} ms | ${p.toFixed(2)} ms | +${(p - d).toFixed(2)} ms |`;
  };
  return [
    "| request (1 KiB keep-alive POST, loopback upstream) | direct p50 | through egress p50 | overhead |",
    "| --- | --- | --- | --- |",
    row(
      "HTTP",
      (r) => r.httpDirectMs.p50,
      (r) => r.httpProxiedMs.p50,
    ),
    row(
      "HTTPS (TLS terminated, credential injected, body scanned)",
      (r) => r.httpsDirectMs.p50,
      (r) => r.httpsInterceptedMs.p50,
    ),
  ].join("\n");
}
