// A setup file of mutation runs: one fixed fast-check seed. @fast-check/vitest puts the seed in each
// property's test name, and Stryker finds a test again by its name, so a seed drawn afresh in each
// run would leave every property test out of the runs against mutants.
//
// Each property also stops after a second, passing with the cases it ran: every mutant a property
// reaches runs it again, and at full length (about a minute for the retry properties together) a
// run of the machines area would take hours on two cores. A mutant that only a late case would
// catch survives such a run; docs/testing.md says so with the score.
import fc from "fast-check";

export const propertyTimeLimitMs = 1_000;

fc.configureGlobal({
  ...fc.readConfigureGlobal(),
  seed: 20_261_205,
  interruptAfterTimeLimit: propertyTimeLimitMs,
  markInterruptAsFailure: false,
});
