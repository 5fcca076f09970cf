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
    // The files that decide what the receiver does with a sender's requests: admission, sessions,
    // ownership, staging, the journal and the schema. The start-up wiring (receiver.ts,
    // services.ts) and the enrollment and fleet files are left to a run of their own: every test
    // runs them, so each of their mutants costs the whole list below.
    mutate: [
      "src/actors/receiver/core.ts",
      "src/actors/receiver/sessionHost.ts",
      "src/actors/receiver/ownership.ts",
      "src/actors/receiver/staging.ts",
      "src/actors/receiver/stagingHygiene.ts",
      "src/actors/receiver/safeFailure.ts",
      "src/actors/receiver/journal.ts",
      "src/actors/receiver/schemaSync.ts",
      "src/actors/receiver/validateTsFile.ts",
      "src/actors/receiver/catalog.ts",
      "src/actors/receiver/addressOf.ts",
    ],
    // Tests over a real nats-server (each file starts its own) that reach the receiver directly,
    // chosen so that one mutant's tests run in seconds: the whole-pipeline tests (realTransitions,
    // the huge-index attack, many senders) take tens of seconds and would rerun for every mutant
    // they reach.
    tests: [
      "test/faults/staging.test.ts",
      "test/faults/loadJournal.test.ts",
      "test/security/safeFailure.test.ts",
      "test/security/attacks/stagingHygiene.test.ts",
      "test/security/addressOf.test.ts",
      "test/catalog/catalog.test.ts",
      "test/e2e/core.test.ts",
      "test/e2e/receiverLifecycle.test.ts",
      "test/e2e/unreadableJournal.test.ts",
      "test/fleet/ownershipRegistry.test.ts",
      "test/schema/receiverSchema.test.ts",
      "test/schema/schemaSync.test.ts",
      "test/security/hostile.test.ts",
      "test/security/whitelist.test.ts",
      "test/security/attacks/ownership.test.ts",
      "test/security/attacks/replyFuzz.test.ts",
      "test/security/attacks/staging.test.ts",
    ],
    target: 70,
  },
};

export const isAreaName = (s: string): s is AreaName => (areaNames as ReadonlyArray<string>).includes(s);

/** The environment variable that tells the mutation vitest config which area's tests to run. */
export const areaEnv = "TSYNC_MUTATION_AREA";
