// Property tests of the retry backoff (src/machines/backoff.ts): bounds, growth, cap, jitter, and the
// round's use of it: the real round machine, run on a SimulatedClock with the jittered delays the
// runtime provides, waits exactly those delays and says hello at most `maxHandshakes` times.
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { createActor, fromPromise, waitFor } from "xstate";
import { backoffDelay, fileRetry, handshakeRetry, jitterFloor, type Backoff } from "../../src/machines/backoff.js";
import { roundDelays, senderRound, type SchemaSyncOutput, type SenderRoundContext } from "../../src/machines/senderRound.js";
import type {
  DeleteOutput,
  LoadInput,
  ScanResult,
  SentPart,
  SessionInfo,
  TransferInput,
  VerifyInput,
} from "../../src/machines/senderTypes.js";
import { Retryable } from "../../src/protocol/failures.js";
import type { FileRef } from "../../src/protocol/messages.js";
import type { SyncUnit } from "../../src/protocol/parts.js";
import { Code } from "../../src/protocol/status.js";
import { RecordingClock, seededRandom } from "./simulatedReceiver.js";

/** Any sensible policy: the cap may even be below the base (then every wait is the cap). */
const policy: fc.Arbitrary<Backoff> = fc.record({
  baseMs: fc.integer({ min: 1, max: 10_000 }),
  capMs: fc.integer({ min: 1, max: 300_000 }),
});
const attempt = fc.integer({ min: -2, max: 60 });
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
/** A random source that yields the given numbers in turn: what a real one might draw. */
const source = fc.array(unit, { minLength: 1, maxLength: 8 }).map((xs) => {
  let i = 0;
  return () => xs[i++ % xs.length]!;
});

/** Steps from base to cap: enough for the exponential to pass the cap, plus one. */
const stepsToCap = (b: Backoff) => Math.max(1, Math.ceil(Math.log2(b.capMs / b.baseMs)) + 2);

describe("backoff", () => {
  test.prop([policy, attempt, fc.option(source, { nil: undefined })])(
    "every delay, jittered or not, lies within [0, cap]",
    (b, n, random) => {
      const d = backoffDelay(b, n, random);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(b.capMs);
    },
  );

  test.prop([policy])("without jitter the delays start at min(base, cap), never decrease, and reach the cap and stay there", (b) => {
    const ds = Array.from({ length: stepsToCap(b) + 3 }, (_, i) => backoffDelay(b, i + 1));
    expect(ds[0]).toBe(Math.min(b.baseMs, b.capMs));
    for (let i = 1; i < ds.length; i++) expect(ds[i]!).toBeGreaterThanOrEqual(ds[i - 1]!);
    expect(ds.slice(-4)).toEqual([b.capMs, b.capMs, b.capMs, b.capMs]);
  });

  test.prop([policy, attempt, source])(
    "a jittered delay for retry n lies in [jitterFloor × d, d] of the unjittered delay d for retry n",
    (b, n, random) => {
      const d = backoffDelay(b, n);
      const j = backoffDelay(b, n, random);
      expect(j).toBeGreaterThanOrEqual(jitterFloor * d);
      expect(j).toBeLessThanOrEqual(d);
    },
  );

  test.prop([policy, attempt, unit])("the jitter uses the whole range: r = 0 gives jitterFloor × d, and it grows with r", (b, n, r) => {
    const d = backoffDelay(b, n);
    expect(backoffDelay(b, n, () => 0)).toBeCloseTo(jitterFloor * d, 6);
    expect(backoffDelay(b, n, () => r)).toBeCloseTo(d * (jitterFloor + (1 - jitterFloor) * r), 6);
  });

  test("the shipped policies: files 200 ms doubling to 30 s, hellos 500 ms doubling to 30 s", () => {
    expect(Array.from({ length: 10 }, (_, i) => backoffDelay(fileRetry, i + 1))).toEqual([
      200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000,
    ]);
    expect(Array.from({ length: 8 }, (_, i) => backoffDelay(handshakeRetry, i + 1))).toEqual([
      500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
  });

  test.prop([fc.integer({ min: 1, max: 40 }), fc.option(unit, { nil: undefined })])(
    "the round waits the file policy's delay before retry n of a file and the hello policy's after hello n fails",
    (n, r) => {
      const random = r === undefined ? undefined : () => r;
      const context = { attempts: n, handshakes: n } as SenderRoundContext;
      expect(roundDelays(random).backoff({ context })).toBe(backoffDelay(fileRetry, n, random));
      expect(roundDelays(random).handshakeBackoff({ context })).toBe(backoffDelay(handshakeRetry, n, random));
    },
  );
});

/** A file that needs two parts; the scripted actors fail its transfers and the hellos as told. */
const twoPartFile = (n: number): SyncUnit => ({
  ref: { sg: "root.a", vg: "0", tp: "0", name: `${n}-${n}-0-0.tsfile` },
  parts: [
    { kind: "resource", path: `/r${n}`, size: 10, mtimeMs: 0 },
    { kind: "tsfile", path: `/t${n}`, size: 5000, mtimeMs: 0 },
  ],
});

interface Script {
  /** Hellos that fail before one succeeds. */
  readonly helloFailures: number;
  readonly maxHandshakes: number;
  readonly maxRetries: number;
  /** Per file, transfers that fail before one succeeds. */
  readonly transferFailures: ReadonlyArray<number>;
  readonly seed: number;
}

/** Runs the round on a SimulatedClock, moving the clock through each wait it takes; returns the waits and what was asked of the actors. */
const scriptedRound = async (s: Script) => {
  const retryable = () => new Retryable({ code: Code.internal, message: "try again" });
  let hellos = 0;
  const transfers = new Map<string, number>();
  const session: SessionInfo = { prefix: "p", sessionId: "s", chunkBytes: 1024, filesInFlight: 0 };
  const machine = senderRound.provide({
    actors: {
      recover: fromPromise<void, void>(async () => undefined),
      scan: fromPromise<ScanResult, void>(async () => ({
        units: s.transferFailures.map((_, i) => twoPartFile(i + 1)),
        deletions: [],
        ignored: 0,
      })),
      handshake: fromPromise<SessionInfo, void>(async () => {
        if (++hellos <= s.helloFailures) throw retryable();
        return session;
      }),
      syncSchema: fromPromise<SchemaSyncOutput | undefined, { session: SessionInfo }>(async () => undefined),
      transfer: fromPromise<SentPart, TransferInput>(async ({ input }) => {
        const name = input.unit.ref.name;
        const n = (transfers.get(name) ?? 0) + 1;
        transfers.set(name, n);
        if (n <= s.transferFailures[Number(name.split("-")[0]) - 1]!) throw retryable();
        const part = input.unit.parts[input.partIndex]!;
        return { kind: part.kind, fileId: "f", size: part.size, sha256: "a".repeat(64), had: false, bytesSent: part.size, resumedFrom: 0 };
      }),
      verify: fromPromise<void, VerifyInput>(async () => undefined),
      load: fromPromise<void, LoadInput>(async () => undefined),
      confirm: fromPromise<void, LoadInput>(async () => undefined),
      deleteFiles: fromPromise<DeleteOutput, { session: SessionInfo; deletions: ReadonlyArray<FileRef> }>(async () => ({
        deleted: [],
        failed: [],
      })),
      bye: fromPromise<void, { session: SessionInfo | undefined }>(async () => undefined),
    },
    delays: roundDelays(seededRandom(s.seed)),
  });
  const clock = new RecordingClock();
  const actor = createActor(machine, { input: { maxRetries: s.maxRetries, maxHandshakes: s.maxHandshakes }, clock });
  const waits: Array<{ policy: Backoff; n: number; ms: number; early: boolean }> = [];
  actor.start();
  for (let timers = 0; ; ) {
    const snap = await waitFor(actor, (x) => x.status !== "active" || x.matches("retryBackoff") || x.matches("handshakeBackoff"));
    if (snap.status !== "active") break;
    if (clock.scheduled.length === timers) {
      clock.increment(1e-6);
      continue;
    }
    timers = clock.scheduled.length;
    const file = snap.matches("retryBackoff");
    const ms = clock.scheduled[timers - 1]!;
    clock.increment(Math.max(0, ms - 1));
    const early = ms >= 1 && !actor.getSnapshot().matches(file ? "retryBackoff" : "handshakeBackoff");
    clock.increment(1);
    waits.push({ policy: file ? fileRetry : handshakeRetry, n: file ? snap.context.attempts : snap.context.handshakes, ms, early });
  }
  return { summary: actor.getSnapshot().output!, waits, hellos, transfers, elapsed: clock.now() };
};

const script: fc.Arbitrary<Script> = fc.record({
  helloFailures: fc.integer({ min: 0, max: 6 }),
  maxHandshakes: fc.integer({ min: 1, max: 5 }),
  maxRetries: fc.integer({ min: 0, max: 6 }),
  transferFailures: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: 1, maxLength: 4 }),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
});

describe("the round's waits on a SimulatedClock", () => {
  test.prop([script], { numRuns: 400 })(
    "each wait is exactly the next jittered delay roundDelays(random) gives, within [jitterFloor x d, d] <= cap, and the round holds it to the last millisecond",
    async (s) => {
      const { waits, elapsed } = await scriptedRound(s);
      // The same random sequence, drawn in the same order, gives the same delays.
      const replay = seededRandom(s.seed);
      for (const w of waits) {
        expect(w.ms, JSON.stringify(w)).toBe(backoffDelay(w.policy, w.n, replay));
        expect(w.ms).toBeGreaterThanOrEqual(jitterFloor * backoffDelay(w.policy, w.n));
        expect(w.ms).toBeLessThanOrEqual(backoffDelay(w.policy, w.n));
        expect(w.ms).toBeLessThanOrEqual(w.policy.capMs);
        expect(w.early, JSON.stringify(w)).toBe(false);
      }
      expect(elapsed).toBeCloseTo(
        waits.reduce((t, w) => t + w.ms, 0),
        3,
      );
    },
  );

  test.prop([script], { numRuns: 400 })(
    "the handshake cap: at most maxHandshakes hellos, maxHandshakes - 1 waits between them; past the cap the round fails and sends no file",
    async (s) => {
      const { summary, waits, hellos, transfers } = await scriptedRound(s);
      const helloWaits = waits.filter((w) => w.policy === handshakeRetry);
      expect(hellos).toBe(Math.min(s.helloFailures + 1, s.maxHandshakes));
      expect(helloWaits.map((w) => w.n)).toEqual(Array.from({ length: hellos - 1 }, (_, i) => i + 1));
      if (s.helloFailures >= s.maxHandshakes) {
        expect(summary.roundError).toBe("try again");
        expect(transfers.size).toBe(0);
      } else {
        expect(summary.roundError).toBeUndefined();
        // Each file: its failed transfers, up to maxRetries + 1 attempts, with a wait after each but the last.
        for (const [i, f] of s.transferFailures.entries()) {
          const name = twoPartFile(i + 1).ref.name;
          const attempts = Math.min(f + 1, s.maxRetries + 1);
          expect(transfers.get(name), name).toBe(attempts + (f < attempts ? 1 : 0));
        }
        expect(summary.failed.map((x) => x.attempts)).toEqual(
          s.transferFailures.filter((f) => f > s.maxRetries).map(() => s.maxRetries + 1),
        );
      }
    },
  );
});
