/** `node packages/sandboxes/dist/bench/run-lifecycle-bench.js [cycles] [standbyCount]`: prints the figures as JSON. */
import { runLifecycleBench } from "./lifecycle-bench.js";

const [cycles, standbyCount] = process.argv.slice(2).map(Number);
const result = await runLifecycleBench({
  cycles: cycles || undefined,
  standbyCount: standbyCount || undefined,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
