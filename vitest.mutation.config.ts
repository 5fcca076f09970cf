// The vitest config of mutation runs (`npm run mutate`, see scripts/mutate.ts): only the tests of
// the area being mutated, named by TSYNC_MUTATION_AREA; without it, the tests of every area.
import { defineConfig } from "vitest/config";
import { areaEnv, areaNames, areas, isAreaName } from "./scripts/mutationAreas.js";

const area = process.env[areaEnv];
const include =
  area !== undefined && isAreaName(area) ? [...areas[area].tests] : [...new Set(areaNames.flatMap((name) => areas[name].tests))];

export default defineConfig({
  test: {
    include,
    setupFiles: ["./scripts/mutationSetup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
