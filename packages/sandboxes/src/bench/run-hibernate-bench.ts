/** `node packages/sandboxes/dist/bench/run-hibernate-bench.js [cycles] [ballastMiB]`: prints the figures as JSON. */
import { runHibernateBench } from "./hibernate-bench.js";

const [cycles, ballastMiB] = process.argv.slice(2).map(Number);
const result = await runHibernateBench({
  cycles: cycles || undefined,
  ballastMiB: ballastMiB || undefined,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
