import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Long runs (`*.long.test.ts`) have their own script (`npm run long`), which CI runs after the suite.
    exclude: [...configDefaults.exclude, "test/**/*.long.test.ts"],
    reporters: ["default", "./test/harness/summaryReporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: files that start nats-server and child processes compete for them.
    maxWorkers: 2,
  },
});
