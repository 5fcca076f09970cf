// Property tests of the retry backoff (src/machines/backoff.ts): bounds, growth, cap, jitter, and the round's use of it.
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { backoffDelay, fileRetry, handshakeRetry, jitterFloor, type Backoff } from "../../src/machines/backoff.js";
import { roundDelays, type SenderRoundContext } from "../../src/machines/senderRound.js";

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
