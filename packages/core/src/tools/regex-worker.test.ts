/** Model-chosen patterns (Grep regular expressions, Glob globs) never block the event loop. */
import { MemoryFileSystem } from "@outrig/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createMountTable } from "../vfs/create-mount-table.js";
import { createFileStateTracker } from "./file-state-tracker.js";
import { createGlobTool } from "./glob-tool.js";
import { createGrepTool } from "./grep-tool.js";
import { RegexBudgetError, RegexWorker } from "./regex-worker.js";
import type { ToolContext } from "./tool.js";

const BUDGET_MS = 1000;

function contextFor(files: Record<string, string>): ToolContext {
  return {
    fs: createMountTable([{ prefix: "/workspace", fileSystem: new MemoryFileSystem(files) }]),
    exec: async () => {
      throw new Error("exec not expected");
    },
    fileState: createFileStateTracker(),
    signal: new AbortController().signal,
    toolCallId: "call-1",
    cwd: "/workspace",
  };
}

/** Measures the longest gap between ticks of a 10 ms interval timer: how long the event loop was blocked. */
function watchEventLoop(): { stop(): number } {
  let last = performance.now();
  let maxDelayMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxDelayMs = Math.max(maxDelayMs, now - last - 10);
    last = now;
  }, 10);
  return {
    stop() {
      clearInterval(timer);
      maxDelayMs = Math.max(maxDelayMs, performance.now() - last - 10);
      return maxDelayMs;
    },
  };
}

let watcher: { stop(): number } | undefined;
afterEach(() => {
  watcher?.stop();
});

describe("catastrophic patterns", () => {
  it("Grep: (a+)+$ over a crafted file is a tool error within the budget and the event loop keeps running", async () => {
    // Each line costs the backtracking engine ~2^23 steps; 60 of them block for seconds.
    const crafted = `${`${"a".repeat(23)}!\n`.repeat(60)}`;
    const context = contextFor({ "/crafted.txt": crafted, "/other.txt": "aaa\n" });
    const grep = createGrepTool({ regexBudgetMs: BUDGET_MS });
    watcher = watchEventLoop();
    const startedAt = performance.now();
    const result = await grep.execute({ pattern: "(a+)+$", path: "/workspace" }, context);
    const elapsedMs = performance.now() - startedAt;
    const maxDelayMs = watcher.stop();
    expect(result.isError).toBe(true);
    expect(result.output).toContain(`budget of ${BUDGET_MS} ms`);
    expect(elapsedMs).toBeLessThan(BUDGET_MS + 2000);
    expect(maxDelayMs).toBeLessThan(200);
    // An ordinary pattern still works, with the same tool instance.
    const ordinary = await grep.execute({ pattern: "^a+$", path: "/workspace" }, context);
    expect(ordinary).toEqual({ output: "Found 1 file\n/workspace/other.txt", isError: false });
  });

  it("Glob: a pattern with many stars over long names is a tool error within the budget", async () => {
    const files: Record<string, string> = {};
    for (let index = 0; index < 30; index++) files[`/${"a".repeat(48)}${index}`] = "";
    files["/ab"] = "";
    const context = contextFor(files);
    const glob = createGlobTool({ regexBudgetMs: BUDGET_MS });
    // Eight stars over a 50-character name take the backtracking engine tens of seconds per name (five
    // took about 0.1 s, so 30 names could finish inside the budget once V8 compiled the pattern).
    watcher = watchEventLoop();
    const startedAt = performance.now();
    const result = await glob.execute({ pattern: "*a*a*a*a*a*a*a*a*b" }, context);
    const elapsedMs = performance.now() - startedAt;
    const maxDelayMs = watcher.stop();
    expect(result.isError).toBe(true);
    expect(result.output).toContain(`budget of ${BUDGET_MS} ms`);
    expect(elapsedMs).toBeLessThan(BUDGET_MS + 2000);
    expect(maxDelayMs).toBeLessThan(200);
    expect(await glob.execute({ pattern: "a*b" }, context)).toEqual({
      output: "/workspace/ab",
      isError: false,
    });
  });

  it("Grep's glob filter is matched off the event loop too", async () => {
    const files: Record<string, string> = { "/ab": "x\n" };
    for (let index = 0; index < 30; index++) files[`/${"a".repeat(48)}${index}`] = "x\n";
    const grep = createGrepTool({ regexBudgetMs: BUDGET_MS });
    watcher = watchEventLoop();
    const result = await grep.execute({ pattern: "x", glob: "*a*a*a*a*a*a*a*a*b" }, contextFor(files));
    expect(watcher.stop()).toBeLessThan(200);
    expect(result.isError).toBe(true);
    expect(result.output).toContain(`budget of ${BUDGET_MS} ms`);
  });

  it("a worker that ran out of budget refuses later jobs instead of starting over", async () => {
    const worker = new RegexWorker(100);
    try {
      await expect(
        worker.testEach({ source: "(a+)+$", flags: "" }, [`${"a".repeat(40)}!`]),
      ).rejects.toBeInstanceOf(RegexBudgetError);
      await expect(worker.testEach({ source: "a", flags: "" }, ["a"])).rejects.toBeInstanceOf(
        RegexBudgetError,
      );
    } finally {
      worker.close();
    }
  });
});
