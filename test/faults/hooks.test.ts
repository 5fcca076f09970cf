import { describe, expect, test } from "vitest";
import { assign, createActor, fromPromise, setup, type InspectionEvent } from "xstate";
import {
  chunkCorrupter,
  faultArmingValue,
  faultVariables,
  parseFreezePoint,
  readFaultHooks,
  stateTracer,
} from "../../src/cli/faultHooks.js";

const collect = () => {
  const lines: string[] = [];
  return { lines, warn: (l: string) => lines.push(l) };
};

describe("fault injection switches", () => {
  test("off unless TSYNC_FAULT_INJECTION holds exactly the arming value; a hook without it is ignored out loud", () => {
    const quiet = collect();
    expect(readFaultHooks({}, quiet.warn)).toEqual({ freezeIn: undefined, corruptChunk: undefined, stagingCapacity: undefined });
    expect(quiet.lines).toEqual([]);

    for (const arming of [undefined, "", "1", "true", "yes", `${faultArmingValue} `]) {
      const w = collect();
      const env = {
        [faultVariables.corruptChunk]: "100",
        [faultVariables.stagingCapacity]: "1000",
        [faultVariables.freezeIn]: "senderRound.loading",
        TSYNC_FAULT_INJECTION: arming,
      };
      expect(readFaultHooks(env, w.warn), `arming ${JSON.stringify(arming)}`).toEqual({
        freezeIn: undefined,
        corruptChunk: undefined,
        stagingCapacity: undefined,
      });
      expect(w.lines.join("\n")).toMatch(/ignoring .*not armed/);
    }

    const loud = collect();
    const hooks = readFaultHooks(
      { TSYNC_FAULT_INJECTION: faultArmingValue, [faultVariables.corruptChunk]: "100x2", [faultVariables.stagingCapacity]: "4096" },
      loud.warn,
    );
    expect(hooks.corruptChunk).toBeTypeOf("function");
    expect(hooks.stagingCapacity).toBe(4096);
    expect(loud.lines.join("\n")).toMatch(/FAULT INJECTION ARMED/);
  });

  test("a malformed hook stops start-up with the variable and the value", () => {
    const armed = { TSYNC_FAULT_INJECTION: faultArmingValue };
    expect(() => readFaultHooks({ ...armed, [faultVariables.freezeIn]: "verifying" }, () => undefined)).toThrow(
      /TSYNC_FAULT_FREEZE_IN="verifying"/,
    );
    expect(() => readFaultHooks({ ...armed, [faultVariables.corruptChunk]: "-5" }, () => undefined)).toThrow(/TSYNC_FAULT_CORRUPT_CHUNK/);
    expect(() => readFaultHooks({ ...armed, [faultVariables.stagingCapacity]: "8m" }, () => undefined)).toThrow(
      /TSYNC_FAULT_STAGING_CAPACITY/,
    );
    expect(parseFreezePoint("senderRound.verifying#2")).toEqual({ machine: "senderRound", state: "verifying", nth: 2 });
    expect(parseFreezePoint("receiverSession.loading")).toEqual({ machine: "receiverSession", state: "loading", nth: 1 });
  });

  test("the corrupter flips one byte of the chunk carrying the offset, as many times as asked, never the sender's buffer", () => {
    const corrupt = chunkCorrupter("10x2");
    const chunk = Buffer.alloc(8, 7);
    expect(corrupt(chunk, 0)).toBe(chunk);
    const first = corrupt(chunk, 8);
    expect(first).not.toBe(chunk);
    expect([...first]).toEqual([7, 7, 7 ^ 0xff, 7, 7, 7, 7, 7]);
    expect([...chunk]).toEqual(Array(8).fill(7));
    expect(corrupt(chunk, 8)).not.toBe(chunk);
    expect(corrupt(chunk, 8)).toBe(chunk);
  });

  test("the tracer prints each state entered once (a new part or request counts), and freezes on the n-th entry", async () => {
    const machine = setup({
      types: { context: {} as { index: number } },
      actors: { work: fromPromise(async () => undefined) },
    }).createMachine({
      id: "demo",
      initial: "a",
      context: { index: 0 },
      states: {
        a: { invoke: { src: "work", onDone: "b" } },
        b: {
          invoke: {
            src: "work",
            onDone: [
              {
                guard: ({ context }) => context.index < 2,
                target: "b",
                reenter: true,
                actions: assign({ index: ({ context }) => context.index + 1 }),
              },
              { target: "c" },
            ],
          },
        },
        c: { type: "final" },
      },
    });
    const lines: string[] = [];
    let frozen = 0;
    const inspect = stateTracer(
      (l) => lines.push(l),
      { machine: "demo", state: "b", nth: 2 },
      () => frozen++,
    );
    const actor = createActor(machine, { inspect: (e: InspectionEvent) => inspect(e) });
    const done = new Promise<void>((resolve) => actor.subscribe({ complete: () => resolve() }));
    actor.start();
    await done;
    expect(lines).toEqual(["state demo a", "state demo b", "state demo b", "state demo b", "state demo c"]);
    expect(frozen).toBe(1);
  });
});
