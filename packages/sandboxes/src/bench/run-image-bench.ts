/** `node packages/sandboxes/dist/bench/run-image-bench.js <imageDir> [cycles]`: prints the figures as JSON. */
import { runImageBench } from "./image-bench.js";

const [imageDir, cycles] = process.argv.slice(2);
if (!imageDir) {
  process.stderr.write("usage: node packages/sandboxes/dist/bench/run-image-bench.js <imageDir> [cycles]\n");
  process.exit(1);
}
const result = await runImageBench({
  imageDir,
  cycles: Number(cycles) || undefined,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
