// The one place outside the CLI's main where an Effect becomes a Promise: the library API (Receiver.start,
// Sender.open, their stop and close) and every machine actor whose work is an Effect run here.
import { Effect } from "effect";
import { fromPromise } from "xstate";

/**
 * Runs an Effect to a Promise that settles with its value or rejects with its typed error (the
 * machines' `onError` sees the tagged error itself). An aborted `signal` interrupts the fiber, so
 * its finalizers run: scoped resources are released and `acquireRelease` pairs close.
 */
export const runEffect = <A, E>(effect: Effect.Effect<A, E>, signal?: AbortSignal): Promise<A> =>
  Effect.runPromise(effect, signal ? { signal } : undefined);

/**
 * A machine actor whose work is an Effect. XState aborts a promise actor's signal when the state
 * that invoked it is left (a `stop`, a timeout, a transition out), and that interrupts the Effect:
 * leaving a state stops what the state started instead of letting it run on unobserved.
 */
export const fromEffect = <Out, In = void>(work: (input: In) => Effect.Effect<Out, unknown>) =>
  fromPromise<Out, In>(({ input, signal }) => runEffect(work(input), signal));

/** Lifts Promise-returning work that takes an AbortSignal into an Effect whose interruption aborts it. */
export const abortable = <A>(work: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, unknown> =>
  Effect.tryPromise({ try: work, catch: (e) => e });
