import { describe, expect, test } from "vitest";
import { createActor, fromPromise, SimulatedClock, waitFor } from "xstate";
import { senderRound, type SchemaSyncOutput } from "../../src/machines/senderRound.js";
import {
  emptySummary,
  roundSucceeded,
  type DeleteOutput,
  type LoadInput,
  type ScanResult,
  type SentPart,
  type SessionInfo,
  type StepFailure,
  type TransferInput,
  type VerifyInput,
} from "../../src/machines/senderTypes.js";
import type { SyncUnit } from "../../src/protocol/parts.js";
import { replyFailure } from "../../src/protocol/failures.js";
import type { FileRef } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";

const unit = (sg: string, n: number): SyncUnit => ({
  ref: { sg, vg: "0", tp: "0", name: `${n}-${n}-0-0.tsfile` },
  parts: [
    { kind: "resource", path: `/r${n}`, size: 10, mtimeMs: 0 },
    { kind: "tsfile", path: `/t${n}`, size: 100, mtimeMs: 0 },
  ],
});
const session: SessionInfo = { prefix: "p", sessionId: "s", chunkBytes: 1024, filesInFlight: 0 };
// The receiver's answer of each behaviour; the code is any of that behaviour's (the machine reads only `kind`).
const fail = (kind: StepFailure["kind"], message: string = kind, owner?: string): StepFailure =>
  replyFailure(kind, { code: kind === "conflict" ? Code.conflict : Code.internal, message, owner });

interface Script {
  /** Failure of the n-th transfer call (0-based), if any. */
  readonly transfer?: (call: number, input: TransferInput) => StepFailure | undefined;
  readonly handshake?: (call: number) => StepFailure | undefined;
  /** Failure of the n-th load call (0-based), if any. */
  readonly load?: (call: number) => StepFailure | undefined;
  /** Whether the receiver already holds a part when the n-th transfer call offers it. */
  readonly had?: (call: number) => boolean;
}

/** The round machine with scripted actors; records the calls it made. */
const scripted = (units: SyncUnit[], script: Script = {}) => {
  const calls = { transfer: [] as string[], handshake: 0, load: 0, confirmed: [] as string[] };
  const machine = senderRound.provide({
    actors: {
      recover: fromPromise<void, void>(async () => undefined),
      scan: fromPromise<ScanResult, void>(async () => ({ units, deletions: [], ignored: 0 })),
      handshake: fromPromise<SessionInfo, void>(async () => {
        const f = script.handshake?.(calls.handshake);
        calls.handshake++;
        if (f) throw f;
        return session;
      }),
      syncSchema: fromPromise<SchemaSyncOutput | undefined, { session: SessionInfo }>(async () => undefined),
      transfer: fromPromise<SentPart, TransferInput>(async ({ input }) => {
        const n = calls.transfer.length;
        const part = input.unit.parts[input.partIndex]!;
        calls.transfer.push(`${input.unit.ref.name}:${part.kind}`);
        const f = script.transfer?.(n, input);
        if (f) throw f;
        const had = script.had?.(n) ?? false;
        return {
          kind: part.kind,
          fileId: "f",
          size: part.size,
          sha256: "a".repeat(64),
          had,
          bytesSent: had ? 0 : part.size,
          resumedFrom: 0,
        };
      }),
      verify: fromPromise<void, VerifyInput>(async () => undefined),
      load: fromPromise<void, LoadInput>(async () => {
        const f = script.load?.(calls.load++);
        if (f) throw f;
      }),
      confirm: fromPromise<void, LoadInput>(async ({ input }) => {
        calls.confirmed.push(input.unit.ref.name);
      }),
      deleteFiles: fromPromise<DeleteOutput, { session: SessionInfo; deletions: ReadonlyArray<FileRef> }>(async () => ({
        deleted: [],
        failed: [],
      })),
      bye: fromPromise<void, { session: SessionInfo | undefined }>(async () => undefined),
    },
  });
  return { machine, calls };
};

describe("sender round machine", () => {
  test("every file goes transfer → verify per part, then load and confirm; the round ends done", async () => {
    const { machine, calls } = scripted([unit("root.a", 1), unit("root.a", 2)]);
    const a = createActor(machine, { input: { maxRetries: 2 } }).start();
    const s = await waitFor(a, (x) => x.status === "done");
    expect(s.value).toBe("done");
    expect(calls.transfer).toEqual([
      "1-1-0-0.tsfile:resource",
      "1-1-0-0.tsfile:tsfile",
      "2-2-0-0.tsfile:resource",
      "2-2-0-0.tsfile:tsfile",
    ]);
    expect(calls.confirmed).toEqual(["1-1-0-0.tsfile", "2-2-0-0.tsfile"]);
    expect(s.output?.sent.map((x) => x.bytes)).toEqual([110, 110]);
    expect(s.output && roundSucceeded(s.output)).toBe(true);
  });

  test("a round succeeds only with no round error, no failed file and no conflict", () => {
    expect(roundSucceeded(emptySummary)).toBe(true);
    expect(roundSucceeded({ ...emptySummary, roundError: "refused" })).toBe(false);
    expect(roundSucceeded({ ...emptySummary, failed: [{ file: "f", reason: "r", attempts: 1 }] })).toBe(false);
    expect(roundSucceeded({ ...emptySummary, conflicts: [{ sg: "root.a", message: "m" }] })).toBe(false);
    expect(roundSucceeded({ ...emptySummary, skipped: [{ file: "f", reason: "have" }] })).toBe(true);
  });

  test("the schema log's piece is reported as sent (resumed from its offset) or, with nothing new, skipped with its note; a failed one, failed", async () => {
    const run = async (syncSchema: () => Promise<SchemaSyncOutput | undefined>) => {
      const { machine } = scripted([]);
      const a = createActor(machine.provide({ actors: { syncSchema: fromPromise(syncSchema) } }), { input: { maxRetries: 0 } }).start();
      return (await waitFor(a, (x) => x.status === "done")).output!;
    };
    const sent = await run(async () => ({ file: "mlog.bin", bytesSent: 40, fromOffset: 100 }));
    expect(sent.sent).toEqual([{ file: "schema mlog.bin", bytes: 40, resumedFrom: 100 }]);
    expect(sent.bytesSent).toBe(40);
    expect(sent.skipped).toEqual([]);
    const idle = await run(async () => ({ file: "mlog.txt", bytesSent: 0, fromOffset: 7, note: "nothing new" }));
    expect(idle.sent).toEqual([]);
    expect(idle.skipped).toEqual([{ file: "schema mlog.txt", reason: "nothing new" }]);
    const quiet = await run(async () => ({ file: "mlog.txt", bytesSent: 0, fromOffset: 7 }));
    expect(quiet.skipped).toEqual([]);
    const none = await run(async () => undefined);
    expect(none).toEqual(emptySummary);
    const failed = await run(async () => {
      throw fail("retryable", "schema batch refused");
    });
    expect(failed.failed).toEqual([{ file: "schema log", reason: "schema batch refused", attempts: 1 }]);
    expect(failed.roundError).toBeUndefined();
    const refused = await run(async () => {
      throw fail("refused", "sync is disabled");
    });
    expect(refused.roundError).toBe("sync is disabled");
  });

  test("a retryable failure waits the machine's backoff (200 ms, then 400 ms) on the clock, then starts the file over", async () => {
    const clock = new SimulatedClock();
    const { machine, calls } = scripted([unit("root.a", 1)], {
      transfer: (n) => (n === 1 || n === 2 ? fail("retryable", "timed out") : undefined),
    });
    const a = createActor(machine, { input: { maxRetries: 3 }, clock }).start();
    await waitFor(a, (x) => x.matches("retryBackoff"));
    clock.increment(199);
    expect(a.getSnapshot().value).toBe("retryBackoff");
    clock.increment(1);
    await waitFor(a, (x) => x.matches("retryBackoff") && x.context.attempts === 2);
    clock.increment(399);
    expect(a.getSnapshot().context.attempts).toBe(2);
    clock.increment(1);
    const s = await waitFor(a, (x) => x.status === "done");
    expect(calls.transfer).toEqual([
      "1-1-0-0.tsfile:resource",
      "1-1-0-0.tsfile:tsfile",
      "1-1-0-0.tsfile:resource",
      "1-1-0-0.tsfile:resource",
      "1-1-0-0.tsfile:tsfile",
    ]);
    expect(s.output?.failed).toEqual([]);
    expect(s.output?.sent).toHaveLength(1);
  });

  test("a file the receiver holds at its first offer is skipped as already there; one it holds after this round's lost load reply counts as sent", async () => {
    const { machine, calls } = scripted([unit("root.a", 1), unit("root.a", 2)], {
      // File 1 is there from an earlier round. File 2's first load is placed but its reply is lost.
      had: (n) => n === 0 || n === 1 || n >= 4,
      load: (n) => (n === 1 ? fail("retryable", "load reply timed out") : undefined),
    });
    const a = createActor(machine, { input: { maxRetries: 2 } }).start();
    const s = await waitFor(a, (x) => x.status === "done", { timeout: 10_000 });
    expect(calls.transfer).toHaveLength(6);
    expect(s.output?.skipped).toEqual([{ file: "root.a/0/0/1-1-0-0.tsfile", reason: "receiver already has it" }]);
    expect(s.output?.sent).toEqual([{ file: "root.a/0/0/2-2-0-0.tsfile", bytes: 0, resumedFrom: 110 }]);
  });

  test("a file that keeps failing is quarantined after max + 1 attempts with its last error; the next file goes on", async () => {
    const { machine, calls } = scripted([unit("root.a", 1), unit("root.a", 2)], {
      transfer: (n, input) => (input.unit.ref.name.startsWith("1-") ? fail("retryable", `attempt ${n} failed`) : undefined),
    });
    const a = createActor(machine.provide({ delays: { backoff: 0 } }), { input: { maxRetries: 2 } }).start();
    const s = await waitFor(a, (x) => x.status === "done");
    expect(calls.transfer.filter((c) => c.startsWith("1-"))).toHaveLength(3);
    expect(s.output?.failed).toEqual([{ file: "root.a/0/0/1-1-0-0.tsfile", reason: "attempt 2 failed", attempts: 3 }]);
    expect(calls.confirmed).toEqual(["2-2-0-0.tsfile"]);
  });

  test("a fatal failure quarantines at once; a conflict skips the rest of that storage group only", async () => {
    const { machine, calls } = scripted([unit("root.a", 1), unit("root.b", 2), unit("root.b", 3), unit("root.c", 4)], {
      transfer: (_n, input) =>
        input.unit.ref.name.startsWith("1-")
          ? fail("fatal", "not a TsFile")
          : input.unit.ref.sg === "root.b"
            ? fail("conflict", "root.b belongs to s9", "s9")
            : undefined,
    });
    const a = createActor(machine.provide({ delays: { backoff: 0 } }), { input: { maxRetries: 5 } }).start();
    const s = await waitFor(a, (x) => x.status === "done");
    expect(s.output?.failed).toEqual([{ file: "root.a/0/0/1-1-0-0.tsfile", reason: "not a TsFile", attempts: 1 }]);
    expect(s.output?.conflicts).toEqual([{ sg: "root.b", message: "root.b belongs to s9" }]);
    expect(calls.transfer.filter((c) => c.startsWith("3-"))).toEqual([]);
    expect(s.output?.skipped).toEqual([
      { file: "root.b/0/0/2-2-0-0.tsfile", reason: "root.b belongs to s9" },
      { file: "root.b/0/0/3-3-0-0.tsfile", reason: "root.b belongs to s9" },
    ]);
    expect(roundSucceeded(s.output!)).toBe(false);
    expect(calls.confirmed).toEqual(["4-4-0-0.tsfile"]);
  });

  test("a lost session says hello again before the retry; a refusal ends the round", async () => {
    const lost = scripted([unit("root.a", 1)], {
      transfer: (n) => (n === 0 ? fail("sessionLost", "no receiver answered offer") : undefined),
    });
    const a = createActor(lost.machine.provide({ delays: { backoff: 0 } }), { input: { maxRetries: 1 } }).start();
    await waitFor(a, (x) => x.status === "done");
    expect(lost.calls.handshake).toBe(2);
    expect(lost.calls.confirmed).toEqual(["1-1-0-0.tsfile"]);

    const refused = scripted([unit("root.a", 1)], { handshake: () => fail("refused", "sync is disabled") });
    const b = createActor(refused.machine, { input: { maxRetries: 1 } }).start();
    const s = await waitFor(b, (x) => x.status === "done");
    expect(s.value).toBe("failed");
    expect(s.output?.roundError).toBe("sync is disabled");
    expect(refused.calls.handshake).toBe(1);
  });

  test("stop ends the round in stopped from any state, reporting it", async () => {
    const clock = new SimulatedClock();
    const { machine } = scripted([unit("root.a", 1)], { transfer: () => fail("retryable") });
    const a = createActor(machine, { input: { maxRetries: 3 }, clock }).start();
    await waitFor(a, (x) => x.matches("retryBackoff"));
    a.send({ type: "stop" });
    const s = a.getSnapshot();
    expect(s.value).toBe("stopped");
    expect(s.output?.roundError).toBe("stopped");
  });
});
