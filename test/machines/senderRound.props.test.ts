// Property tests of the retry invariants: the real sender round machine with its real actors and
// SenderLink, over a simulated transport whose fault plan hits requests anywhere in the run (by
// request index, several per case, of every kind), against a receiver model whose load journal is
// the real one. The round's waits are the real jittered backoff, run on a SimulatedClock.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createActor, waitFor } from "xstate";
import { backoffDelay, fileRetry, handshakeRetry, jitterFloor } from "../../src/machines/backoff.js";
import { refKey, type RoundSummary } from "../../src/machines/senderTypes.js";
import {
  faultKinds,
  poisonKey,
  RecordingClock,
  requestsPerRound,
  seededRandom,
  SimReceiver,
  simulatedRound,
  writeSimFiles,
  type FaultKind,
  type SimFile,
  type Synced,
} from "./simulatedReceiver.js";

let root: string;
let runs = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tsync-props-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * Cases per property: 700 simulated runs in all (each up to seven rounds on disk), and with the
 * backoff properties' runs of the round machine on a SimulatedClock, over 1,000 retry cases per run.
 */
const numRuns = 140;

/** TsFile sizes: small ones go as puts (one message), larger ones the offer way in 1 KiB chunks. */
const size = fc.oneof(fc.integer({ min: 0, max: 990 }), fc.integer({ min: 1000, max: 5000 }));
const base = fc.record({
  sizes: fc.array(size, { minLength: 1, maxLength: 5 }),
  retries: fc.integer({ min: 0, max: 3 }),
  maxHandshakes: fc.integer({ min: 1, max: 4 }),
  window: fc.integer({ min: 1, max: 4 }),
  filesInFlight: fc.integer({ min: 1, max: 4 }),
  seed: fc.integer({ min: 1, max: 2 ** 30 }),
});

/**
 * Two to eight faults per case at distinct request indices spread over about two fault-free rounds
 * of requests (a few pinned to the first requests, where the hellos are), each of any kind.
 */
const scenario = base.chain((s) => {
  const span = 2 * requestsPerRound(s.sizes);
  const at = fc.oneof({ weight: 1, arbitrary: fc.nat(3) }, { weight: 4, arbitrary: fc.nat(span) });
  return fc
    .uniqueArray(fc.tuple(at, fc.constantFrom(...faultKinds)), { minLength: 2, maxLength: 8, selector: ([i]) => i })
    .map((faults) => ({ ...s, faults: new Map<number, FaultKind>(faults) }));
});
type Scenario = typeof scenario extends fc.Arbitrary<infer S> ? S : never;

/** A wait the round took on the clock: which policy, the retry it preceded, how long. */
interface Wait {
  readonly policy: "file" | "hello";
  readonly n: number;
  readonly ms: number;
  /** The round was still waiting one millisecond before the delay ran out. */
  readonly heldToTheEnd: boolean;
}

interface Round {
  readonly summary: RoundSummary;
  readonly attempts: Map<string, number>;
  readonly puts: Map<string, number>;
  readonly waits: Wait[];
  readonly longestHelloStreak: number;
  /** Files synced before this round began. */
  readonly syncedBefore: ReadonlySet<string>;
}

interface Run {
  readonly files: SimFile[];
  readonly receiver: SimReceiver;
  readonly synced: Synced;
  readonly rounds: Round[];
}

/** One round on a SimulatedClock: each time the round waits, the clock is moved through the wait and no further. */
const roundOnce = async (files: SimFile[], receiver: SimReceiver, synced: Synced, s: Scenario, round: number): Promise<Round> => {
  const attempts = new Map<string, number>();
  const syncedBefore = new Set(synced.keys());
  receiver.newRound();
  const clock = new RecordingClock();
  const machine = simulatedRound(
    files,
    receiver,
    synced,
    { attempts },
    {
      window: s.window,
      filesInFlight: s.filesInFlight,
      random: seededRandom(s.seed + round),
    },
  );
  const actor = createActor(machine, { input: { maxRetries: s.retries, maxHandshakes: s.maxHandshakes }, clock });
  const waits: Wait[] = [];
  actor.start();
  for (let timers = 0; ; ) {
    const snap = await waitFor(actor, (x) => x.status !== "active" || x.matches("retryBackoff") || x.matches("handshakeBackoff"), {
      timeout: 20_000,
    });
    if (snap.status !== "active") break;
    // Still the wait just taken: the clock's float sum fell a hair short of its end.
    if (clock.scheduled.length === timers) {
      clock.increment(1e-6);
      continue;
    }
    timers = clock.scheduled.length;
    const policy = snap.matches("retryBackoff") ? "file" : "hello";
    const ms = clock.scheduled[timers - 1]!;
    clock.increment(Math.max(0, ms - 1));
    const heldToTheEnd = ms < 1 || actor.getSnapshot().matches(policy === "file" ? "retryBackoff" : "handshakeBackoff");
    clock.increment(1);
    waits.push({ policy, n: policy === "file" ? snap.context.attempts : snap.context.handshakes, ms, heldToTheEnd });
  }
  return {
    summary: actor.getSnapshot().output!,
    attempts,
    puts: receiver.putsThisRound,
    waits,
    longestHelloStreak: receiver.longestHelloStreak,
    syncedBefore,
  };
};

/** Rounds until the faults are spent and a round ran clean (bounded: a round that meets no fault syncs everything). */
const runRounds = async (
  s: Scenario,
  prepare?: (files: SimFile[], receiver: SimReceiver) => void,
  afterRound?: (run: Run) => void,
  replayJournal = false,
) => {
  const dir = join(root, `run${++runs}`);
  const files = await writeSimFiles(dir, s.sizes, s.seed);
  const receiver = await SimReceiver.open(s.faults, dir);
  prepare?.(files, receiver);
  const synced: Synced = new Map();
  const rounds: Round[] = [];
  try {
    let cleanRounds = 0;
    for (let i = 0; i < s.faults.size + 4; i++) {
      const clean = receiver.faultsLeft === 0;
      const round = await roundOnce(files, receiver, synced, s, i);
      rounds.push(round);
      afterRound?.({ files, receiver, synced, rounds });
      cleanRounds = clean && receiver.faultsLeft === 0 ? cleanRounds + 1 : 0;
      // A corrupt chunk the receiver acknowledged is only caught by the digest at commit, possibly in
      // the first round without faults; that round drops the bad copy, so the next one is clean.
      if (cleanRounds >= 2 || (cleanRounds === 1 && round.summary.failed.length === 0)) break;
    }
    return { files, receiver, synced, rounds, journal: replayJournal ? await receiver.journalOnDisk() : new Map<string, string>() };
  } finally {
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  }
};

/** The loaded digests of a file's parts, as the journal on disk has them. */
const loadedDigests = (journal: ReadonlyMap<string, string>, f: SimFile): Record<string, string> | undefined => {
  const digests: Record<string, string> = {};
  for (const p of f.parts) {
    const d = journal.get(`${refKey(f.ref)}:${p.kind}`);
    if (d === undefined) return undefined;
    digests[p.kind] = d;
  }
  return digests;
};

describe("sender round retry invariants under faults anywhere in the round", () => {
  test.prop([scenario], { numRuns })(
    "per round: offer-way attempts per file <= max_number_of_sync_file_retry + 1, at most one put per file, hellos in a row <= maxHandshakes",
    async (s) => {
      const r = await runRounds(s);
      for (const round of r.rounds) {
        for (const [file, n] of round.attempts) expect(n, file).toBeLessThanOrEqual(s.retries + 1);
        for (const f of round.summary.failed) expect(f.attempts, f.file).toBeLessThanOrEqual(s.retries + 1);
        for (const [file, n] of round.puts) expect(n, `${file} put`).toBeLessThanOrEqual(1);
        expect(round.longestHelloStreak).toBeLessThanOrEqual(s.maxHandshakes);
        // A round that gave up on the receiver said hello exactly maxHandshakes times in a row.
        if (round.summary.roundError !== undefined) expect(round.longestHelloStreak).toBe(s.maxHandshakes);
      }
    },
  );

  test.prop([scenario], { numRuns })(
    "every wait is the real jittered backoff: within [jitterFloor x d, d] of its policy's capped delay d for that retry, never over the cap, and held to the last millisecond",
    async (s) => {
      const r = await runRounds(s);
      for (const w of r.rounds.flatMap((round) => round.waits)) {
        const policy = w.policy === "file" ? fileRetry : handshakeRetry;
        const d = backoffDelay(policy, w.n);
        expect(w.ms, JSON.stringify(w)).toBeGreaterThanOrEqual(jitterFloor * d);
        expect(w.ms, JSON.stringify(w)).toBeLessThanOrEqual(d);
        expect(w.ms).toBeLessThanOrEqual(policy.capMs);
        expect(w.heldToTheEnd, JSON.stringify(w)).toBe(true);
        if (w.policy === "hello") expect(w.n).toBeLessThan(s.maxHandshakes);
        else expect(w.n).toBeLessThanOrEqual(s.retries);
      }
    },
  );

  test.prop([scenario], { numRuns })(
    "synced => loaded with the same digest after every round; at the end synced <=> in the journal on disk, every part placed exactly once",
    async (s) => {
      const r = await runRounds(
        s,
        undefined,
        (run) => {
          for (const f of run.files) {
            const digests = run.synced.get(refKey(f.ref));
            if (!digests) continue;
            for (const p of f.parts)
              expect(run.receiver.loads.get(`${refKey(f.ref)}:${p.kind}`), `${refKey(f.ref)}:${p.kind} synced, not loaded`).toBe(1);
          }
        },
        true,
      );
      for (const f of r.files) {
        expect(r.synced.get(refKey(f.ref)), refKey(f.ref)).toEqual(loadedDigests(r.journal, f));
        expect(r.synced.get(refKey(f.ref)), refKey(f.ref)).toEqual(Object.fromEntries(f.parts.map((p) => [p.kind, p.sha256])));
        for (const p of f.parts) expect(r.receiver.loads.get(`${refKey(f.ref)}:${p.kind}`), `${refKey(f.ref)}:${p.kind}`).toBe(1);
      }
      expect(r.rounds[r.rounds.length - 1]!.summary.failed).toEqual([]);
    },
  );

  test.prop([scenario, fc.nat(), fc.constantFrom<"retryable" | "fatal">("retryable", "fatal")], { numRuns })(
    "a quarantined file never blocks the others: each round tries every unsynced file, and all but the poisoned one end synced",
    async (s, pick, kind) => {
      let poisoned: SimFile | undefined;
      const r = await runRounds(s, (files, receiver) => {
        poisoned = files[pick % files.length]!;
        receiver.poison.set(poisonKey(poisoned), kind);
      });
      const bad = refKey(poisoned!.ref);
      for (const round of r.rounds) {
        // A round that could not run at all (no hello) blocks everything alike; the rule is about quarantine.
        if (round.summary.roundError !== undefined) continue;
        for (const f of r.files) {
          const key = refKey(f.ref);
          if (!round.syncedBefore.has(key))
            expect((round.attempts.get(key) ?? 0) + (round.puts.get(key) ?? 0), `${key} not tried`).toBeGreaterThan(0);
        }
        const q = round.summary.failed.find((f) => f.file === bad);
        expect(q, "the poisoned file is reported with its last error").toBeDefined();
        if (kind === "retryable") expect(q!.attempts).toBe(s.retries + 1);
      }
      for (const f of r.files) expect(r.synced.has(refKey(f.ref)), refKey(f.ref)).toBe(refKey(f.ref) !== bad);
    },
  );

  test.prop([scenario], { numRuns })("no chunk is acknowledged twice as new data", async (s) => {
    const r = await runRounds(s);
    expect(r.receiver.violations).toEqual([]);
  });
});
