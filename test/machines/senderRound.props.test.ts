// Property tests of the retry invariants: the real sender round machine and the real SenderLink,
// over a simulated transport that fails at random (requests dropped, replies lost, chunks
// corrupted, the receiver restarted), against a receiver model that keeps the books.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { createActor, toPromise } from "xstate";
import { refKey, type RoundSummary } from "../../src/machines/senderTypes.js";
import { poisonKey, SimReceiver, simulatedRound, writeSimFiles, type Fault, type SimFile, type Synced } from "./simulatedReceiver.js";

let root: string;
let runs = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "tsync-props-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const fault: fc.Arbitrary<Fault> = fc.oneof(
  { arbitrary: fc.constant<Fault>("ok"), weight: 4 },
  { arbitrary: fc.constantFrom<Fault>("drop", "lostReply", "corrupt", "restart"), weight: 1 },
);

/** A finite list of faults, met one per request in order: transient by construction. */
const plan = fc.array(fault, { maxLength: 60 });
/** TsFile sizes; chunks are 1 KiB, so up to five chunks a file and some empty files. */
const sizes = fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 5 });
const maxRetries = fc.integer({ min: 0, max: 3 });
const windowSize = fc.integer({ min: 1, max: 4 });

interface Round {
  readonly summary: RoundSummary;
  readonly attempts: Map<string, number>;
  /** Files synced before this round began. */
  readonly syncedBefore: ReadonlySet<string>;
}

interface Run {
  readonly files: SimFile[];
  readonly receiver: SimReceiver;
  readonly synced: Synced;
  readonly rounds: Round[];
}

const roundOnce = async (files: SimFile[], receiver: SimReceiver, synced: Synced, retries: number, window: number): Promise<Round> => {
  const attempts = new Map<string, number>();
  const syncedBefore = new Set(synced.keys());
  const actor = createActor(simulatedRound(files, receiver, synced, { attempts }, window), { input: { maxRetries: retries } });
  actor.start();
  return { summary: await toPromise(actor), attempts, syncedBefore };
};

/** Rounds until the faults are spent and one round ran clean (bounded: each round uses up at least one request). */
const runRounds = async (
  s: { sizes: number[]; faults: Fault[]; retries: number; window: number; seed: number },
  prepare?: (files: SimFile[], receiver: SimReceiver) => void,
  afterRound?: (run: Run) => void,
): Promise<Run> => {
  const files = await writeSimFiles(join(root, `run${++runs}`), s.sizes, s.seed);
  const receiver = new SimReceiver([...s.faults]);
  prepare?.(files, receiver);
  const synced: Synced = new Map();
  const rounds: Round[] = [];
  let cleanRounds = 0;
  for (let i = 0; i < s.faults.length + 3; i++) {
    const clean = receiver.faultsLeft === 0;
    const round = await roundOnce(files, receiver, synced, s.retries, s.window);
    rounds.push(round);
    afterRound?.({ files, receiver, synced, rounds });
    cleanRounds = clean && receiver.faultsLeft === 0 ? cleanRounds + 1 : 0;
    // A corrupt chunk the receiver acknowledged is only caught by the digest at commit, possibly in
    // the first round without faults; that round drops the bad copy, so the next one is clean.
    if (cleanRounds >= 2 || (cleanRounds === 1 && round.summary.failed.length === 0)) break;
  }
  return { files, receiver, synced, rounds };
};

const scenario = fc.record({ sizes, faults: plan, retries: maxRetries, window: windowSize, seed: fc.integer({ min: 1, max: 2 ** 30 }) });

/** The receiver's loaded digests per file, as the sender's `synced` records them. */
const loadedDigests = (r: Run, f: SimFile): Record<string, string> | undefined => {
  const digests: Record<string, string> = {};
  for (const p of f.parts) {
    const d = r.receiver.journal.get(`${refKey(f.ref)}:${p.kind}`);
    if (d === undefined) return undefined;
    digests[p.kind] = d;
  }
  return digests;
};

describe("sender round retry invariants under random transport faults", () => {
  test.prop([scenario], { numRuns: 60 })("attempts per file per round <= max_number_of_sync_file_retry + 1", async (s) => {
    const r = await runRounds(s);
    for (const round of r.rounds) {
      for (const [file, n] of round.attempts) expect(n, file).toBeLessThanOrEqual(s.retries + 1);
      for (const f of round.summary.failed) expect(f.attempts, f.file).toBeLessThanOrEqual(s.retries + 1);
    }
  });

  test.prop([scenario], { numRuns: 60 })(
    "synced => loaded with the same digest after every round, and <=> once the faults are spent",
    async (s) => {
      const syncedMeansLoaded = (r: Run) => {
        for (const f of r.files) {
          const digests = r.synced.get(refKey(f.ref));
          if (digests) expect(loadedDigests(r, f), refKey(f.ref)).toEqual(digests);
        }
      };
      const r = await runRounds(s, undefined, syncedMeansLoaded);
      for (const f of r.files) expect(r.synced.get(refKey(f.ref)), refKey(f.ref)).toEqual(loadedDigests(r, f));
    },
  );

  test.prop([scenario], { numRuns: 60 })("under transient faults every file ends synced, each part loaded exactly once", async (s) => {
    const r = await runRounds(s);
    for (const f of r.files) expect(r.synced.has(refKey(f.ref)), refKey(f.ref)).toBe(true);
    for (const f of r.files)
      for (const p of f.parts) expect(r.receiver.loads.get(`${refKey(f.ref)}:${p.kind}`), `${refKey(f.ref)}:${p.kind}`).toBe(1);
    const last = r.rounds[r.rounds.length - 1]!;
    expect(last.summary.failed).toEqual([]);
  });

  test.prop([scenario, fc.nat(), fc.constantFrom<"retryable" | "fatal">("retryable", "fatal")], { numRuns: 60 })(
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
          if (!round.syncedBefore.has(key)) expect(round.attempts.get(key) ?? 0, `${key} not tried`).toBeGreaterThan(0);
        }
        const q = round.summary.failed.find((f) => f.file === bad);
        expect(q, "the poisoned file is reported with its last error").toBeDefined();
        if (kind === "retryable") expect(q!.attempts).toBe(s.retries + 1);
      }
      for (const f of r.files) expect(r.synced.has(refKey(f.ref)), refKey(f.ref)).toBe(refKey(f.ref) !== bad);
    },
  );

  test.prop([scenario], { numRuns: 60 })("no chunk is acknowledged twice as new data", async (s) => {
    const r = await runRounds(s);
    expect(r.receiver.violations).toEqual([]);
  });
});
