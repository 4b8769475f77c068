/**
 * The bench's window into a server's step timings: with OUTRIG_STEP_TIMINGS_FILE set, `outrig serve`
 * times each loop step's phases, and every SIGUSR2 writes the totals since the last one to that file
 * (written aside, then renamed into place, so a reader never sees half of it) and starts over.
 */
import { rename, writeFile } from "node:fs/promises";
import { stepTimings } from "@outrig/core";

/** Turns the timings on when `env` names a file; returns a function that stops listening. */
export function watchStepTimings(env: NodeJS.ProcessEnv, log: (message: string) => void): () => void {
  const file = env.OUTRIG_STEP_TIMINGS_FILE;
  if (!file) return () => undefined;
  stepTimings.enable();
  const dump = () => {
    const totals = stepTimings.takeTotals();
    const aside = `${file}.${process.pid}.tmp`;
    writeFile(aside, JSON.stringify(totals))
      .then(() => rename(aside, file))
      .catch((error: Error) => log(`step timings: ${error.message}`));
  };
  process.on("SIGUSR2", dump);
  return () => process.off("SIGUSR2", dump);
}
