import os from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["@outrig/source"] },
  ssr: { resolve: { conditions: ["@outrig/source"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    pool: "forks",
    // Vitest's default is one worker per core less one: a single worker on a 2-core CI machine, where
    // most test time is spent waiting on Postgres, sandboxes and servers. Two files at a time overlap
    // those waits.
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
    globalSetup: ["./vitest.global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
