/**
 * `npm run bench`: runs every benchmark and prints a markdown table. `--write-readme` also replaces the
 * table between the bench markers in README.md. `--runs N` repeats and reports the median of medians.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { formatSpine, sandboxFigures, serverFigures } from "./spine-bench.mjs";
import { median } from "./stats.mjs";

const { values } = parseArgs({
  options: { "write-readme": { type: "boolean", default: false }, runs: { type: "string", default: "3" } },
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
  Object.fromEntries(Object.keys(list[0]).map((key) => [key, median(list.map((entry) => entry[key]))]));
const table = `${formatSpine(combine(sandboxRuns), combine(serverRuns))}\n\n_Median over ${runs} runs of \`npm run bench\`, ${new Date().toISOString().slice(0, 10)}, 2-core shared machine._`;
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
