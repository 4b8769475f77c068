import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["@outrig/source"] },
  ssr: { resolve: { conditions: ["@outrig/source"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    pool: "forks",
    globalSetup: ["./vitest.global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
