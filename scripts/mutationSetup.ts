// A setup file of mutation runs: one fixed fast-check seed. @fast-check/vitest puts the seed in each
// property's test name, and Stryker finds a test again by its name, so a seed drawn afresh in each
// run would leave every property test out of the runs against mutants.
import fc from "fast-check";

fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: 20_261_205 });
