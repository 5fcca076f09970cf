import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { bandwidthPacer, burstSeconds, type PacerClock } from "../../src/actors/sender/pacer.js";

/** A clock that only moves when someone sleeps or the test says so: no real time passes. */
const fakeClock = () => {
  let t = 0;
  const clock: PacerClock = {
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
  };
  return { clock, advance: (ms: number) => (t += ms), at: () => t };
};

describe("bandwidthPacer", () => {
  test("0 means unlimited: no pacer at all", () => {
    expect(bandwidthPacer(0)).toBeUndefined();
  });

  test("back to back 1 MiB chunks at 10 MB/s leave 10 MB per second of clock", async () => {
    const { clock, at } = fakeClock();
    const pace = bandwidthPacer(10_000_000, clock)!;
    for (let i = 0; i < 100; i++) await pace(1 << 20);
    // 100 MiB at 10 MB/s is 10.49 s: the limit is met, not undershot.
    expect(at()).toBeCloseTo((100 * (1 << 20) * 1000) / 10_000_000, 6);
  });

  test("after an idle minute it lets at most a quarter second through without waiting", async () => {
    const { clock, advance, at } = fakeClock();
    const pace = bandwidthPacer(1_000_000, clock)!;
    advance(60_000);
    const before = at();
    let free = 0;
    while (at() === before) {
      await pace(10_000);
      if (at() === before) free += 10_000;
    }
    expect(free).toBe(1_000_000 * burstSeconds);
  });

  test.prop({
    rate: fc.integer({ min: 1_000, max: 1_000_000_000 }),
    sends: fc.array(
      fc.record({
        bytes: fc.integer({ min: 1, max: 8 << 20 }),
        gapMs: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 5_000, noNaN: true })),
      }),
      { minLength: 1, maxLength: 60 },
    ),
  })("never releases more than rate × elapsed + a quarter second of bytes, counting from the first send", async ({ rate, sends }) => {
    const { clock, advance, at } = fakeClock();
    const pace = bandwidthPacer(rate, clock)!;
    let released = 0;
    for (const s of sends) {
      advance(s.gapMs);
      await pace(s.bytes);
      released += s.bytes;
      expect(released).toBeLessThanOrEqual((rate * at()) / 1000 + rate * burstSeconds + 1e-6 * released + 1);
    }
  });

  test.prop({
    rate: fc.integer({ min: 1_000, max: 1_000_000_000 }),
    chunks: fc.array(fc.integer({ min: 1, max: 8 << 20 }), { minLength: 1, maxLength: 60 }),
  })("sending without pauses takes exactly bytes ÷ rate: the pacer never holds back more than the limit asks", async ({ rate, chunks }) => {
    const { clock, at } = fakeClock();
    const pace = bandwidthPacer(rate, clock)!;
    for (const c of chunks) await pace(c);
    const total = chunks.reduce((a, b) => a + b, 0);
    expect(at()).toBeCloseTo((total * 1000) / rate, 3);
  });

  test("concurrent callers queue behind each other instead of each taking the full rate", async () => {
    // All four ask at the same instant; each is told to wait for its own bytes and those before it.
    const waits: number[] = [];
    const pace = bandwidthPacer(1_000_000, { now: () => 0, sleep: async (ms) => void waits.push(ms) })!;
    await Promise.all([pace(500_000), pace(500_000), pace(500_000), pace(500_000)]);
    expect(waits).toEqual([500, 1000, 1500, 2000]);
  });
});
