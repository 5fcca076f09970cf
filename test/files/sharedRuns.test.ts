// Group commit: callers of one moment share a run, and no caller is answered by a run that began before it called.
import { fc, test } from "@fast-check/vitest";
import { expect } from "vitest";
import { sharedRuns } from "../../src/files/durableFile.js";

const tick = () => new Promise<void>((r) => setImmediate(r));

test.prop([fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 40 })])(
  "property: every caller settles after a run that started after its call, and callers of one moment share a run",
  async (gaps) => {
    const starts: number[] = [];
    let clock = 0;
    const shared = sharedRuns(async () => {
      starts.push(clock);
      await tick();
      await tick();
    });
    const waits: Array<Promise<number>> = [];
    for (const gap of gaps) {
      for (let i = 0; i < gap; i++) {
        await tick();
        clock++;
      }
      const calledAt = clock;
      clock++;
      // The run that answers this caller is the last one started when it settles.
      waits.push(shared().then(() => starts[starts.length - 1]! - calledAt));
    }
    for (const lag of await Promise.all(waits)) expect(lag).toBeGreaterThan(0);
    // Twenty-odd callers in a burst share a handful of runs, never one each.
    if (gaps.length >= 10 && gaps.every((g) => g === 0)) expect(starts.length).toBeLessThanOrEqual(2);
  },
);

test("a failed run fails its callers; the next call starts a fresh run", async () => {
  let n = 0;
  const shared = sharedRuns(async () => {
    n++;
    if (n === 1) throw new Error("fsync failed");
  });
  await expect(shared()).rejects.toThrow("fsync failed");
  await expect(shared()).resolves.toBeUndefined();
  expect(n).toBe(2);
});
