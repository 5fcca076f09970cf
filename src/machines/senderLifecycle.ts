// The sender process machine: a round, then a wait of the period (or until a new file is sealed).
import { assign, setup, type AnyActorLogic } from "xstate";
import type { RoundSummary } from "./senderTypes.js";
import { needs } from "./slot.js";

export interface LifecycleInput {
  readonly periodMs: number;
  readonly maxRetries: number;
}

export interface LifecycleContext extends LifecycleInput {
  readonly rounds: number;
  /** A file was sealed after this round's scan: the next round starts as soon as this one ends. */
  readonly sealedDuringRound: boolean;
  readonly lastSummary: RoundSummary | undefined;
}

/** `syncNow`: an operator asked for a round now (SIGUSR1 to `tsync sender`). */
export type LifecycleEvent = { type: "stop" } | { type: "sealed" } | { type: "syncNow" };

/**
 * The sender process: a round, then a wait of `sync_period_in_second` counted from the end of the
 * round (rounds never overlap), or less when a new sealed file is seen and `sync_on_seal` is on.
 */
export const senderLifecycle = setup({
  types: {
    context: {} as LifecycleContext,
    input: {} as LifecycleInput,
    events: {} as LifecycleEvent,
  },
  actors: {
    // The round machine with its actors provided; typed loosely so any provided version fits.
    round: needs<RoundSummary, void>("round") as unknown as AnyActorLogic,
  },
  guards: {
    sealedDuringRound: ({ context }) => context.sealedDuringRound,
  },
  delays: {
    period: ({ context }) => context.periodMs,
  },
}).createMachine({
  id: "sender",
  initial: "syncing",
  context: ({ input }) => ({ ...input, rounds: 0, lastSummary: undefined, sealedDuringRound: false }),
  on: { stop: ".stopped" },
  states: {
    syncing: {
      entry: assign({ sealedDuringRound: false }),
      // This round scanned before the file (or the operator's request) came: one more round follows at once.
      on: { sealed: { actions: assign({ sealedDuringRound: true }) }, syncNow: { actions: assign({ sealedDuringRound: true }) } },
      invoke: {
        src: "round",
        input: ({ context }: { context: LifecycleContext }) => ({ maxRetries: context.maxRetries }),
        onDone: {
          target: "waiting",
          actions: assign({
            rounds: ({ context }) => context.rounds + 1,
            lastSummary: ({ event }) => event.output as RoundSummary,
          }),
        },
        onError: { target: "waiting", actions: assign({ rounds: ({ context }) => context.rounds + 1 }) },
      },
    },
    waiting: {
      always: { guard: "sealedDuringRound", target: "syncing" },
      after: { period: "syncing" },
      on: { sealed: "syncing", syncNow: "syncing" },
    },
    stopped: { type: "final" },
  },
});
