import { availableParallelism } from "node:os";
import { configDefaults, defineConfig } from "vitest/config";

/**
 * The long tier: crash and ownership scenarios that restart real servers hundreds of times. They stay
 * whole (nothing sampled) and CI runs them after the default suite (`npm run test:long`), so `npm test`
 * stays well under 15 minutes on a 2-core machine.
 */
const LONG_TIER = ["packages/cli/test/chaos.test.ts", "packages/cli/test/server-ownership.test.ts"];

export default defineConfig({
  resolve: { conditions: ["@outrig/source"] },
  ssr: { resolve: { conditions: ["@outrig/source"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    exclude: [...configDefaults.exclude, ...(process.env.OUTRIG_TESTS === "long" ? [] : LONG_TIER)],
    pool: "forks",
    // Two files at a time even on 2 cores (vitest's default there is one): most files wait on servers,
    // sandboxes and Postgres, so a second file overlaps those waits (the suite: ~15 min → ~10 min).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    globalSetup: ["./vitest.global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
