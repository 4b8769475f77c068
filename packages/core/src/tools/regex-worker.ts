/**
 * Runs regular expressions chosen by the model (Grep patterns, Glob patterns) in a worker thread under a
 * time budget. A pattern with catastrophic backtracking, such as `(a+)+$`, then costs its own tool call an
 * error instead of blocking the server's event loop (every session) for seconds.
 */
import { Worker } from "node:worker_threads";

/** Matching time one Grep or Glob call may spend, in milliseconds, unless its tool was built with another. */
export const DEFAULT_REGEX_BUDGET_MS = 5000;

/** Thrown when the worker used up its budget; it has been terminated. */
export class RegexBudgetError extends Error {
  readonly budgetMs: number;
  constructor(budgetMs: number) {
    super(
      `Matching stopped after its budget of ${budgetMs} ms. The pattern likely backtracks catastrophically ` +
        "(nested quantifiers such as (a+)+); simplify it or search fewer files.",
    );
    this.name = "RegexBudgetError";
    this.budgetMs = budgetMs;
  }
}

export interface RegexSpec {
  readonly source: string;
  readonly flags: string;
}

// Plain JavaScript, run with `eval`: the worker needs no file on disk and no TypeScript loader. It compiles
// each pattern once and answers one message per job, in order.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const compiled = new Map();
function regexFor(spec) {
  const key = spec.flags + "/" + spec.source;
  let regex = compiled.get(key);
  if (!regex) {
    regex = new RegExp(spec.source, spec.flags);
    compiled.set(key, regex);
  }
  return regex;
}
function splitLines(text) {
  const lines = text.split("\\n");
  if (lines.length > 1 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}
function matchingLines(regex, text, multiline) {
  if (!multiline) {
    const found = [];
    splitLines(text).forEach((line, index) => {
      regex.lastIndex = 0;
      if (regex.test(line)) found.push(index);
    });
    return found;
  }
  const lineStarts = [0];
  for (let index = 0; index < text.length; index++) if (text[index] === "\\n") lineStarts.push(index + 1);
  const lineOf = (offset) => {
    let low = 0;
    let high = lineStarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (lineStarts[middle] <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  };
  const found = new Set();
  regex.lastIndex = 0;
  for (const match of text.matchAll(regex)) {
    const start = match.index;
    const end = start + Math.max(match[0].length - 1, 0);
    for (let line = lineOf(start); line <= lineOf(end); line++) found.add(line);
    if (found.size > 1000000) break;
  }
  return [...found].sort((a, b) => a - b);
}
parentPort.on("message", (job) => {
  try {
    const regex = regexFor(job.spec);
    if (job.kind === "lines") parentPort.postMessage({ result: matchingLines(regex, job.text, job.multiline) });
    else
      parentPort.postMessage({
        result: job.subjects.map((subject) => {
          regex.lastIndex = 0;
          return regex.test(subject);
        }),
      });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message ? error.message : error) });
  }
});
`;

type Job =
  | { readonly kind: "lines"; readonly spec: RegexSpec; readonly text: string; readonly multiline: boolean }
  | { readonly kind: "test"; readonly spec: RegexSpec; readonly subjects: readonly string[] };

/**
 * One worker for one tool call. Jobs run one at a time; the time they spend in the worker counts against
 * `budgetMs`, and when it runs out the worker is terminated and the pending job rejects with
 * RegexBudgetError (so do every later one). Call `close()` when done (idempotent). Not thread-safe:
 * await each job before starting the next.
 */
export class RegexWorker {
  readonly #budgetMs: number;
  #remainingMs: number;
  #worker: Worker | undefined;
  #isExhausted = false;

  constructor(budgetMs: number = DEFAULT_REGEX_BUDGET_MS) {
    this.#budgetMs = budgetMs;
    this.#remainingMs = budgetMs;
  }

  /** 0-based indices of the lines of `text` (split on `\n`, a trailing empty line dropped) that hold a match. */
  matchLines(spec: RegexSpec, text: string, multiline: boolean): Promise<number[]> {
    return this.#run({ kind: "lines", spec, text, multiline }) as Promise<number[]>;
  }

  /** For each subject, whether the pattern matches it. */
  testEach(spec: RegexSpec, subjects: readonly string[]): Promise<boolean[]> {
    if (subjects.length === 0) return Promise.resolve([]);
    return this.#run({ kind: "test", spec, subjects }) as Promise<boolean[]>;
  }

  close(): void {
    void this.#worker?.terminate();
    this.#worker = undefined;
  }

  #run(job: Job): Promise<unknown> {
    if (this.#isExhausted) return Promise.reject(new RegexBudgetError(this.#budgetMs));
    this.#worker ??= new Worker(WORKER_SOURCE, {
      eval: true,
      // A pattern's match arrays are the only large allocations; keep a runaway one from growing the server.
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    const worker = this.#worker;
    return new Promise((resolve, reject) => {
      const startedAt = performance.now();
      const settle = () => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        this.#remainingMs -= performance.now() - startedAt;
      };
      const timer = setTimeout(
        () => {
          settle();
          this.#isExhausted = true;
          this.close();
          reject(new RegexBudgetError(this.#budgetMs));
        },
        Math.max(0, this.#remainingMs),
      );
      const onMessage = (message: { result?: unknown; error?: string }) => {
        settle();
        if (message.error !== undefined) reject(new Error(message.error));
        else resolve(message.result);
      };
      const onError = (error: Error) => {
        settle();
        this.#worker = undefined;
        reject(error);
      };
      const onExit = () => {
        settle();
        this.#worker = undefined;
        reject(new Error("the regular-expression worker stopped"));
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage(job);
    });
  }
}
