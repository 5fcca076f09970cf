// Machines run their Effects through `fromEffect`: leaving the invoking state interrupts the Effect
// (its finalizers run), and a typed failure reaches `onError` as itself.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Data, Effect } from "effect";
import { afterAll, beforeAll, expect, test } from "vitest";
import { assign, createActor, setup, toPromise, waitFor } from "xstate";
import { fromEffect } from "../../src/actors/runtime.js";
import { senderRoundWith } from "../../src/actors/sender/roundActors.js";
import type { SenderLink } from "../../src/actors/sender/link.js";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import type { Source } from "../../src/plugins/source.js";

class Refused extends Data.TaggedError("Refused")<{ readonly message: string }> {}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "tsync-effect-actor-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
};

const machineWith = (work: Effect.Effect<string, Refused>) =>
  setup({
    types: { events: {} as { type: "cancel" }, context: {} as { error: unknown; result: string | undefined } },
    actors: { work: fromEffect<string>(() => work) },
  }).createMachine({
    context: { error: undefined, result: undefined },
    initial: "busy",
    states: {
      busy: {
        invoke: {
          src: "work",
          onDone: { target: "done", actions: assign({ result: ({ event }) => event.output }) },
          onError: { target: "failed", actions: assign({ error: ({ event }) => event.error }) },
        },
        on: { cancel: "idle" },
      },
      idle: {},
      done: {},
      failed: {},
    },
  });

test("leaving the state that invoked an Effect interrupts it and runs its finalizers", async () => {
  const started = gate();
  const released = gate();
  const work = Effect.acquireRelease(
    Effect.sync(() => started.open()),
    () => Effect.sync(() => released.open()),
  ).pipe(
    Effect.flatMap(() => Effect.never),
    Effect.scoped,
  );
  const actor = createActor(machineWith(work)).start();
  await started.opened;
  actor.send({ type: "cancel" });
  expect(actor.getSnapshot().value).toBe("idle");
  await released.opened;
  actor.stop();
});

test("stopping the actor interrupts the Effect too", async () => {
  const started = gate();
  const interrupted = gate();
  const work = Effect.sync(() => started.open()).pipe(
    Effect.flatMap(() => Effect.never),
    Effect.onInterrupt(() => Effect.sync(() => interrupted.open())),
  );
  const actor = createActor(machineWith(work)).start();
  await started.opened;
  actor.stop();
  await interrupted.opened;
});

test("an Effect's value is the actor's output, and its typed failure is onError's error, tag and all", async () => {
  const ok = createActor(machineWith(Effect.succeed("fine"))).start();
  expect((await waitFor(ok, (s) => s.matches("done"))).context.result).toBe("fine");
  const failing = createActor(machineWith(Effect.fail(new Refused({ message: "no" })))).start();
  const error = (await waitFor(failing, (s) => s.matches("failed"))).context.error;
  expect(error).toBeInstanceOf(Refused);
  expect(error).toMatchObject({ _tag: "Refused", message: "no" });
});

test("a sender round stopped mid-scan interrupts its source's listing", async () => {
  const listing = gate();
  const interrupted = gate();
  const source: Source = {
    name: "stuck",
    list: () =>
      Effect.sync(() => listing.open()).pipe(
        Effect.flatMap(() => Effect.never),
        Effect.onInterrupt(() => Effect.sync(() => interrupted.open())),
      ),
  };
  // The round never gets past its scan, so nothing may touch the link.
  const link = new Proxy(
    {},
    {
      get: (_t, name) => {
        throw new Error(`the link was used (${String(name)}) by a round stopped in its scan`);
      },
    },
  ) as SenderLink;
  const work = await WorkDir.open(join(dir, "work"), "edge1", () => undefined);
  try {
    const actor = createActor(senderRoundWith({ link, work, source, storageGroups: [] }), { input: { maxRetries: 3 } }).start();
    await listing.opened;
    expect(JSON.stringify(actor.getSnapshot().value)).toContain("scanning");
    actor.send({ type: "stop" });
    await interrupted.opened;
    const summary = await toPromise(actor);
    expect(summary.roundError).toBe("stopped");
  } finally {
    await work.close();
  }
});
