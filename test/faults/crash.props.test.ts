// Exactly-once across crashes, as a property: fast-check draws where to kill -9 (which side, which
// state, which time it is entered, or the receiver right after its n-th placement) and the shape of
// the data (a big file sent in chunks or not, several small files put at once), runs a real sender
// and receiver as child processes against a real nats-server, kills there, recovers as an operator
// would, and checks that every part is on the receiver byte for byte, loaded once, and marked synced.
// The suite draws a few cases; TSYNC_CRASH_RUNS=N draws N (scripts/faults.ts is the fixed matrix).
import { fc } from "@fast-check/vitest";
import { afterAll, expect, test } from "vitest";
import { receiverSession } from "../../src/machines/receiverSession.js";
import { checkExit, checkRecovered, senderRestingStates, withRig } from "./cells.js";
import { freezeAfterLoadVariable } from "./countingStorage.js";
import { armed, type Proc } from "./rig.js";

const runs = Number(process.env["TSYNC_CRASH_RUNS"] ?? "3");

/** Receiver session states it rests in (an invoked step or a timer), where a kill can land. */
const receiverRestingStates = (): string[] =>
  Object.entries(receiverSession.states)
    .filter(([, n]) => n.type !== "final" && (n.invoke.length > 0 || n.after.length > 0))
    .map(([k]) => k);

type KillPoint =
  | { readonly side: "sender"; readonly state: string; readonly nth: number }
  | { readonly side: "receiver"; readonly state: string; readonly nth: number }
  | { readonly side: "receiver"; readonly afterLoad: number };

const killPoint: fc.Arbitrary<KillPoint> = fc.oneof(
  fc.record({
    side: fc.constant("sender" as const),
    state: fc.constantFrom(...senderRestingStates()),
    nth: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    side: fc.constant("receiver" as const),
    state: fc.constantFrom(...receiverRestingStates()),
    nth: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ side: fc.constant("receiver" as const), afterLoad: fc.integer({ min: 1, max: 6 }) }),
);

const data = fc.record({ big: fc.boolean(), small: fc.integer({ min: 3, max: 10 }) });

const label = (k: KillPoint): string =>
  "afterLoad" in k
    ? `receiver after its load #${k.afterLoad}`
    : `${k.side} in ${k.side === "sender" ? "senderRound" : "receiverSession"}.${k.state} #${k.nth}`;

/** What each case saw: printed at the end, so a run shows which kill points it reached. */
const seen: Array<{ kill: string; files: number; reached: boolean; sentAfter: number; problems: number }> = [];
afterAll(() => {
  const reached = seen.filter((s) => s.reached).length;
  console.log(
    `exactly-once across crashes: ${seen.length} cases, ${reached} reached their kill point\n` +
      seen
        .map(
          (s) =>
            `  ${s.reached ? "killed" : "not reached"}  ${s.kill}, ${s.files} files, ${s.sentAfter} bytes sent by the round after, ${s.problems} problems`,
        )
        .join("\n"),
  );
});

test("every file is loaded exactly once and marked synced, wherever either side is killed -9 (several files in flight)", async () => {
  await fc.assert(
    fc.asyncProperty(killPoint, data, async (kill, shape) => {
      const result = await withRig({ big: shape.big ? [3_000_000] : [], small: shape.small }, async (rig) => {
        const hook =
          "afterLoad" in kill
            ? { [freezeAfterLoadVariable]: String(kill.afterLoad) }
            : armed({ freezeIn: `${kill.side === "sender" ? "senderRound" : "receiverSession"}.${kill.state}#${kill.nth}` });
        const receiver = await rig.startReceiver(kill.side === "receiver" ? hook : {});
        const first = rig.startSender(kill.side === "sender" ? hook : {});
        const victim: Proc = kill.side === "sender" ? first : receiver;
        // A kill point the flow never reaches (a state entered fewer times) lets the round end as usual.
        const reached = await Promise.race([
          victim.waitStopped(90_000).then(
            () => true,
            () => false,
          ),
          first.exit.then(() => false),
        ]);
        const problems: string[] = [];
        if (reached) {
          await victim.kill9();
          if (kill.side === "receiver") {
            // Its sender waits on answers that will not come: stopped as an operator would, then the receiver restarts.
            first.signal("SIGTERM");
            problems.push(...checkExit("sender stopped with SIGTERM", (await first.exit).code));
            await rig.startReceiver();
          }
        } else {
          await first.exit;
        }
        const countedBefore = (await rig.loads()).length;
        const again = await rig.runSender();
        problems.push(...checkExit("sender after the crash", again.exit.code));
        // A receiver killed between placing a part and counting it leaves it unwitnessed: it must still be there, once.
        problems.push(...(await checkRecovered(rig, rig.files, { unwitnessedOk: reached && kill.side === "receiver" })));
        const sentAfter = again.summary.sent.reduce((n, s) => n + s.bytes, 0);
        seen.push({ kill: label(kill), files: rig.files.length, reached, sentAfter, problems: problems.length });
        return { outcome: `${countedBefore} parts counted before the round after`, resumes: [], problems };
      });
      expect(result.problems, `${label(kill)}, ${JSON.stringify(shape)}`).toEqual([]);
    }),
    { numRuns: runs, endOnFailure: true },
  );
}, 900_000);
