import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    reporters: ["default", "./test/harness/summaryReporter.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: files that start nats-server and child processes compete for them.
    maxWorkers: 2,
  },
});
