import { defineConfig } from "vitest/config";

// The long runs (`*.long.test.ts`: cluster faults), as `npm run long`; the suite (`npm test`) leaves them out.
export default defineConfig({
  test: {
    include: ["test/**/*.long.test.ts"],
    reporters: ["default", "./test/harness/summaryReporter.ts"],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
  },
});
