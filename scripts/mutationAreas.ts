// The areas of the mutation score: which source files each mutates, which tests may kill its
// mutants, and the score it is held to. Read by scripts/mutate.ts (which runs Stryker once per
// area), by vitest.mutation.config.ts (the tests of the area being run) and by
// scripts/mutationReport.ts (which writes the scores into docs/testing.md).

export interface MutationArea {
  /** How the docs name the area. */
  readonly title: string;
  /** Stryker `mutate` globs. */
  readonly mutate: ReadonlyArray<string>;
  /** The test files run against the area's mutants: fast ones, that exercise the area directly. */
  readonly tests: ReadonlyArray<string>;
  /** The lowest acceptable score, in percent; none for an area that is measured only. */
  readonly target?: number;
}

export const areaNames = ["machines", "protocol", "config", "receiver"] as const;
export type AreaName = (typeof areaNames)[number];

const machineTests = ["test/machines/**/*.test.ts"];

export const areas: { readonly [K in AreaName]: MutationArea } = {
  machines: {
    title: "machines (`src/machines`)",
    mutate: ["src/machines/**/*.ts"],
    tests: machineTests,
    target: 80,
  },
  protocol: {
    title: "protocol (`src/protocol`)",
    mutate: ["src/protocol/**/*.ts"],
    tests: ["test/protocol/**/*.test.ts", ...machineTests],
    target: 80,
  },
  config: {
    title: "config (`src/config`)",
    mutate: ["src/config/**/*.ts"],
    tests: ["test/config/**/*.test.ts"],
  },
  receiver: {
    title: "receiver actors (`src/actors/receiver`)",
    mutate: ["src/actors/receiver/**/*.ts"],
    tests: [
      "test/faults/staging.test.ts",
      "test/security/attacks/stagingHygiene.test.ts",
      "test/security/addressOf.test.ts",
      "test/machines/senderRound.props.test.ts",
    ],
    target: 70,
  },
};

export const isAreaName = (s: string): s is AreaName => (areaNames as ReadonlyArray<string>).includes(s);

/** The environment variable that tells the mutation vitest config which area's tests to run. */
export const areaEnv = "TSYNC_MUTATION_AREA";
