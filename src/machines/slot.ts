// Named, typed actor slots that machines declare and src/actors fills with `provide`.
import { fromPromise } from "xstate";

/**
 * A named, typed place for an actor whose body lives in `src/actors` and arrives through
 * `machine.provide({ actors })`. Running a machine without providing it fails loudly.
 */
export const needs = <Output, Input>(name: string) =>
  fromPromise<Output, Input>(async () => {
    throw new Error(`actor "${name}" was not provided`);
  });
