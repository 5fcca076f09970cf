import { createActor, fromPromise, SimulatedClock, waitFor } from "xstate";
import { expect, test } from "vitest";
import { senderLifecycle } from "../../src/machines/senderLifecycle.js";
import { emptySummary, type RoundSummary } from "../../src/machines/senderTypes.js";

/** A round that ends when the test says so, counting how many started. */
const controlledRounds = () => {
  const finishers: Array<() => void> = [];
  const round = fromPromise<RoundSummary, { maxRetries: number }>(
    () => new Promise((resolve) => finishers.push(() => resolve(emptySummary))),
  );
  return { round, finishers };
};

test("a file sealed during a round starts the next round when it ends, not after the period", async () => {
  const { round, finishers } = controlledRounds();
  const clock = new SimulatedClock();
  const a = createActor(senderLifecycle.provide({ actors: { round } }), { input: { periodMs: 3_600_000, maxRetries: 1 }, clock }).start();
  await waitFor(a, () => finishers.length === 1);
  a.send({ type: "sealed" });
  finishers[0]!();
  await waitFor(a, () => finishers.length === 2);
  expect(a.getSnapshot().value).toBe("syncing");
  expect(a.getSnapshot().context.rounds).toBe(1);
  finishers[1]!();
  const waiting = await waitFor(a, (s) => s.matches("waiting"));
  expect(waiting.context.rounds).toBe(2);
  clock.increment(3_600_000);
  await waitFor(a, () => finishers.length === 3);
  a.send({ type: "stop" });
  expect(a.getSnapshot().status).toBe("done");
});

test("without a seal the next round waits for the period", async () => {
  const { round, finishers } = controlledRounds();
  const clock = new SimulatedClock();
  const a = createActor(senderLifecycle.provide({ actors: { round } }), { input: { periodMs: 1000, maxRetries: 1 }, clock }).start();
  await waitFor(a, () => finishers.length === 1);
  finishers[0]!();
  await waitFor(a, (s) => s.matches("waiting"));
  clock.increment(999);
  expect(a.getSnapshot().value).toBe("waiting");
  clock.increment(1);
  await waitFor(a, () => finishers.length === 2);
  a.stop();
});

test("a round that fails outright still counts, and the next waits for the period; the round gets the retry limit", async () => {
  const inputs: unknown[] = [];
  const round = fromPromise<RoundSummary, { maxRetries: number }>(async ({ input }) => {
    inputs.push(input);
    throw new Error("defect");
  });
  const clock = new SimulatedClock();
  const a = createActor(senderLifecycle.provide({ actors: { round } }), { input: { periodMs: 1000, maxRetries: 4 }, clock }).start();
  expect(a.getSnapshot().context.sealedDuringRound).toBe(false);
  const waiting = await waitFor(a, (s) => s.matches("waiting"));
  expect(waiting.context.rounds).toBe(1);
  expect(inputs).toEqual([{ maxRetries: 4 }]);
  clock.increment(1000);
  await waitFor(a, (s) => s.matches("waiting") && s.context.rounds === 2);
  a.send({ type: "stop" });
});
