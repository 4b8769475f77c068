/**
 * What the toolset's persistent `bash` costs per call next to the old, stateless `Bash`: both run
 * `echo hi` on one bubblewrap sandbox, one call of each in turn; reported is the median per call of each,
 * with an empty shell state and with a state of a virtualenv-sized shell (a dozen exports, functions).
 * Run: `npx tsc -b && node bench/toolset-bash-bench.mjs [calls per round] [rounds]` (root, bubblewrap).
 */

import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import {
  createBashTool,
  createFileStateTracker,
  createMountTable,
  createToolsetBashTool,
  SandboxFileSystem,
} from "@outrig/core";
import { createBubblewrapSandboxProvider } from "@outrig/sandboxes";
import { median, round } from "./stats.mjs";

const callsPerRound = Number(process.argv[2] ?? 20);
const rounds = Number(process.argv[3] ?? 5);

const root = await fs.mkdtemp(path.join(os.tmpdir(), "outrig-bench-toolset-bash-"));
const provider = createBubblewrapSandboxProvider();
const handle = await provider.create({
  sessionId: "bench",
  orgId: "bench",
  workspaceDir: path.join(root, "ws"),
});
const getSandbox = async () => handle.sandbox;
const context = {
  fs: createMountTable([
    { prefix: "/workspace", fileSystem: new SandboxFileSystem(getSandbox, "/workspace") },
  ]),
  exec: (request, signal) => handle.sandbox.exec(request, signal),
  fileState: createFileStateTracker(),
  signal: new AbortController().signal,
  toolCallId: "bench",
  cwd: "/workspace",
};

/** Milliseconds of one call; a failed call stops the bench. */
async function timeCall(tool, input) {
  const startedAt = performance.now();
  const result = await tool.execute(input, context);
  const duration = performance.now() - startedAt;
  if (result.isError) throw new Error(`${tool.name} failed: ${result.output}`);
  return duration;
}

try {
  const old = createBashTool();
  const empty = createToolsetBashTool();
  const loaded = createToolsetBashTool();
  await loaded.execute(
    {
      command: [
        "mkdir -p project/src && cd project/src",
        ...Array.from({ length: 12 }, (_, index) => `export VAR_${index}=value-${index}-$RANDOM`),
        "export PATH=/workspace/project/.venv/bin:$PATH VIRTUAL_ENV=/workspace/project/.venv",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: bash parameter expansion
        'deactivate() { export PATH="${PATH#*:}"; unset VIRTUAL_ENV; unset -f deactivate; }',
        "greet() { echo hello; }",
      ].join("\n"),
    },
    context,
  );
  const samples = { old: [], empty: [], loaded: [] };
  // One call of each in turn, so a change in the machine's load falls on all three alike.
  for (let call = 0; call < callsPerRound * rounds; call++) {
    samples.old.push(await timeCall(old, { command: "echo hi" }));
    samples.empty.push(await timeCall(empty, { command: "echo hi" }));
    samples.loaded.push(await timeCall(loaded, { command: "echo hi" }));
  }
  const figures = {
    calls: callsPerRound * rounds,
    bashOldP50Ms: round(median(samples.old)),
    bashToolsetEmptyStateP50Ms: round(median(samples.empty)),
    bashToolsetLoadedStateP50Ms: round(median(samples.loaded)),
  };
  console.log(JSON.stringify(figures, null, 2));
} finally {
  await handle.destroy();
  await provider.close();
  await fs.rm(root, { recursive: true, force: true });
}
