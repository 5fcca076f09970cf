// The fault matrix: one cell per (fault, state). Each cell builds its own rig, injects the fault,
// recovers the way an operator would (restart what died, run the sender again) and reports what
// it found. The suite runs the cells marked `quick`; `npx tsx scripts/faults.ts` runs them all.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { receiverSession } from "../../src/machines/receiverSession.js";
import { senderRound } from "../../src/machines/senderRound.js";
import type { RoundSummary } from "../../src/machines/senderTypes.js";
import { freezeAfterLoadVariable } from "./countingStorage.js";
import { armed, Rig, sentFor, type EdgeFile, type Proc } from "./rig.js";

const exec = promisify(execFile);

/** One resume after a fault: what the receiver held, where the transfer went on, what it sent. */
export interface Resume {
  readonly file: string;
  /** Bytes of the TsFile. */
  readonly size: number;
  /** Bytes of it the receiver had received when the fault hit. */
  readonly held: number;
  /** Where the next transfer of it started (the receiver's answer to the offer). */
  readonly resumedFrom: number;
  /** Bytes of the file sent after the fault (TsFile and .resource). */
  readonly sent: number;
  /** held − resumedFrom: bytes the receiver already had that went over the wire again. */
  readonly resent: number;
}

export interface CellResult {
  readonly outcome: string;
  readonly resumes: ReadonlyArray<Resume>;
  /** Broken promises; empty when the cell passed. */
  readonly problems: ReadonlyArray<string>;
}

export type Group = "sender" | "receiver" | "network" | "disk" | "stop";

export interface Cell {
  readonly group: Group;
  readonly fault: string;
  readonly state: string;
  readonly quick: boolean;
  readonly run: () => Promise<CellResult>;
}

export const bigBytes = 16_000_000;
/** Slow enough that a test can act mid-file, fast enough to keep cells short. */
const pacedEnv = { TSYNC_MAX_BANDWIDTH_BYTES_PER_SECOND: "6000000" };
const midFile = 4_000_000;

const describeRound = (s: RoundSummary): string =>
  s.roundError
    ? `round failed: ${s.roundError}`
    : `${s.sent.length} sent, ${s.skipped.length} skipped, ${s.failed.length} quarantined${s.deleted.length ? `, ${s.deleted.length} deleted` : ""}`;

/**
 * The promises every cell ends with, as a list of what was broken. The counting storage writes its
 * line after a placement, so a kill between the two leaves a placed part unwitnessed: with several
 * loads in flight that happens to the loads the kill caught (`unwitnessedOk`), and then a part counts
 * as loaded once when it is byte-identical on the receiver, and only more than one line is a problem.
 */
export const checkRecovered = async (
  rig: Rig,
  files: ReadonlyArray<EdgeFile> = rig.files,
  { unwitnessedOk = false } = {},
): Promise<string[]> => {
  const v = await rig.verdict(files);
  const problems: string[] = [];
  if (v.mismatched.length) problems.push(`not byte-identical on the receiver: ${v.mismatched.join(", ")}`);
  for (const [part, expected] of Object.entries(rig.onceEach(files))) {
    const n = v.loadCounts[part] ?? 0;
    if (n !== expected && !(unwitnessedOk && n === 0)) problems.push(`${part} loaded ${n} times`);
  }
  if (v.syncedNotLoaded.length && !unwitnessedOk) problems.push(`marked synced but never loaded: ${v.syncedNotLoaded.join(", ")}`);
  if (v.notSynced.length) problems.push(`not marked synced: ${v.notSynced.join(", ")}`);
  return problems;
};

/** A file deleted on the edge is gone from the receiver and from the sender's synced list. */
const checkDeleted = async (rig: Rig, f: EdgeFile): Promise<string[]> => {
  const problems: string[] = [];
  if (
    await stat(join(rig.centre, "sequence", ...f.key.split("/"))).then(
      () => true,
      () => false,
    )
  )
    problems.push(`${f.key}, deleted on the edge, is still on the receiver`);
  if ((await rig.confirmed()).has(f.key)) problems.push(`${f.key}, deleted on the edge, is still marked synced`);
  return problems;
};

export const checkExit = (what: string, code: number | null, expected = 0): string[] =>
  code === expected ? [] : [`${what} exited ${code}, expected ${expected}`];

const resumeOf = (summary: RoundSummary, f: EdgeFile, held: number, size: number): Resume => {
  const s = sentFor(summary, f);
  const resumedFrom = s?.resumedFrom ?? 0;
  return { file: f.key, size, held, resumedFrom, sent: s?.bytes ?? 0, resent: Math.max(0, held - resumedFrom) };
};

/** A resume that kept what the receiver held and sent less than the file. */
const checkResume = (r: Resume, { mustResume = true } = {}): string[] => {
  const problems: string[] = [];
  if (mustResume && !(r.resumedFrom > 0)) problems.push(`${r.file} did not resume (held ${r.held}, resumed from ${r.resumedFrom})`);
  if (mustResume && !(r.sent < r.size))
    problems.push(`${r.file}: resumed transfer sent ${r.sent} bytes, not fewer than the file's ${r.size}`);
  if (r.resent > 0) problems.push(`${r.file}: ${r.resent} bytes the receiver held were sent again`);
  return problems;
};

export const withRig = async (options: Parameters<typeof Rig.create>[0], body: (rig: Rig) => Promise<CellResult>): Promise<CellResult> => {
  const rig = await Rig.create(options);
  try {
    return await body(rig);
  } finally {
    await rig.cleanup();
  }
};

const tsfileSize = async (f: EdgeFile): Promise<number> => (await stat(f.tsfile)).size;

// ── sender killed ────────────────────────────────────────────────────────────────────────────────

/** Where the default flow enters each sender state the n-th time worth testing (the big file's TsFile, not its .resource). */
const senderNth: Readonly<Record<string, number>> = { verifying: 2 };

const senderKilledIn =
  (state: string): Cell["run"] =>
  () =>
    withRig({ big: [bigBytes], small: 2 }, async (rig) => {
      const big = rig.files[0]!;
      const problems: string[] = [];
      let env: Record<string, string> = armed({ freezeIn: `senderRound.${state}#${senderNth[state] ?? 1}` });
      let files = rig.files;
      let receiver: Proc | undefined;
      if (state === "deleting") {
        receiver = await rig.startReceiver();
        const first = await rig.runSender();
        problems.push(...checkExit("first sender", first.exit.code));
        const gone = rig.files[rig.files.length - 1]!;
        await rm(gone.tsfile);
        await rm(`${gone.tsfile}.resource`);
        files = rig.files.slice(0, -1);
      } else if (state === "retryBackoff") {
        env = armed({ freezeIn: `senderRound.${state}#1`, corruptChunk: `${midFile}x1` });
      }
      if (state !== "handshakeBackoff") receiver ??= await rig.startReceiver();
      const s1 = rig.startSender(env);
      await s1.waitStopped();
      await s1.kill9();
      const held = await rig.partSize(big);
      receiver ??= await rig.startReceiver();
      const again = await rig.runSender();
      problems.push(...checkExit("sender after the kill", again.exit.code));
      problems.push(...(await checkRecovered(rig, files)));
      const resumes: Resume[] = [];
      if (held > 0) {
        const r = resumeOf(again.summary, big, held, await tsfileSize(big));
        resumes.push(r);
        // A corrupted partial must be dropped, not resumed: the digest mismatch restarts the file.
        problems.push(...checkResume(r, { mustResume: state !== "retryBackoff" }));
      }
      if (state === "deleting") problems.push(...(await checkDeleted(rig, rig.files[rig.files.length - 1]!)));
      return { outcome: `stopped on entry, killed -9; next run: ${describeRound(again.summary)}`, resumes, problems };
    });

/** Small files enough to keep several puts in flight. */
const putFiles = 12;

/**
 * The receiver stops itself after its third load with other puts in flight; the sender is killed -9
 * while it waits for their answers; the receiver goes on (its answers go nowhere), the sender runs again.
 */
const senderKilledWithPutsInFlight: Cell["run"] = () =>
  withRig({ small: putFiles }, async (rig) => {
    const receiver = await rig.startReceiver({ [freezeAfterLoadVariable]: "3" });
    const s1 = rig.startSender();
    await receiver.waitStopped();
    await s1.kill9();
    receiver.signal("SIGCONT");
    const again = await rig.runSender();
    return {
      outcome: `killed -9 with puts in flight; next run: ${describeRound(again.summary)}`,
      resumes: [],
      problems: [
        ...checkExit("sender after the kill", again.exit.code),
        ...(await checkRecovered(rig, rig.files, { unwitnessedOk: true })),
      ],
    };
  });

const senderKilledMidFile: Cell["run"] = () =>
  withRig({ big: [bigBytes], small: 2 }, async (rig) => {
    const big = rig.files[0]!;
    await rig.startReceiver();
    const s1 = rig.startSender(pacedEnv);
    await rig.waitForPart(big, midFile);
    await s1.kill9();
    const held = await rig.settledPartSize(big);
    const again = await rig.runSender();
    const r = resumeOf(again.summary, big, held, await tsfileSize(big));
    return {
      outcome: `killed -9 with ${held} of ${r.size} bytes received; next run resumed at ${r.resumedFrom}`,
      resumes: [r],
      problems: [...checkExit("sender after the kill", again.exit.code), ...(await checkRecovered(rig)), ...checkResume(r)],
    };
  });

/** States a sender round rests in (an invoked step or a timer); the others are passed through in one step. */
export const senderRestingStates = (): string[] =>
  Object.entries(senderRound.states)
    .filter(([, n]) => n.type !== "final" && (n.invoke.length > 0 || n.after.length > 0))
    .map(([k]) => k);

export const senderTransientStates = (): string[] =>
  Object.entries(senderRound.states)
    .filter(([, n]) => n.type !== "final" && n.invoke.length === 0 && n.after.length === 0)
    .map(([k]) => k);

const quickSenderStates = new Set(["verifying", "confirming", "retryBackoff"]);

const senderCells = (): Cell[] => [
  { group: "sender", fault: "kill -9 sender", state: "senderRound.transferring (mid-file)", quick: true, run: senderKilledMidFile },
  {
    group: "sender",
    fault: "kill -9 sender",
    state: "senderRound.putting (puts in flight)",
    quick: true,
    run: senderKilledWithPutsInFlight,
  },
  ...senderRestingStates().map(
    (state): Cell => ({
      group: "sender",
      fault: "kill -9 sender",
      state: `senderRound.${state}${senderNth[state] ? ` #${senderNth[state]}` : ""}`,
      quick: quickSenderStates.has(state),
      run: senderKilledIn(state),
    }),
  ),
];

// ── receiver killed ──────────────────────────────────────────────────────────────────────────────

const receiverKilledMidFile: Cell["run"] = () =>
  withRig({ big: [bigBytes], small: 2 }, async (rig) => {
    const big = rig.files[0]!;
    const receiver = await rig.startReceiver();
    const s1 = rig.startSender(pacedEnv);
    await rig.waitForPart(big, midFile);
    await receiver.kill9();
    const held = await rig.partSize(big);
    // The sender notices (no responders), retries its hello, gives the round up.
    const first = await s1.exit;
    await rig.startReceiver();
    const again = await rig.runSender();
    const r = resumeOf(again.summary, big, held, await tsfileSize(big));
    return {
      outcome: `killed -9 with ${held} of ${r.size} bytes received (sender's round: exit ${first.code}); after restart resumed at ${r.resumedFrom}`,
      resumes: [r],
      problems: [...checkExit("sender after the restart", again.exit.code), ...(await checkRecovered(rig)), ...checkResume(r)],
    };
  });

/**
 * The receiver stops itself at `freeze` and is killed there. Its sender waits for a reply that will
 * not come (until its request timeout), so it is stopped with SIGTERM, which must end it with 0
 * within 10 s; then the receiver restarts and the sender runs again.
 */
const receiverKilledAt =
  (
    freeze: Record<string, string>,
    label: string,
    options: { deletion?: boolean; rig?: Parameters<typeof Rig.create>[0]; unwitnessedOk?: boolean } = {},
  ): Cell["run"] =>
  () =>
    withRig(options.rig ?? { big: [bigBytes], small: 2 }, async (rig) => {
      const big = rig.files[0]!;
      const problems: string[] = [];
      let files = rig.files;
      if (options.deletion) {
        const r0 = await rig.startReceiver();
        problems.push(...checkExit("first sender", (await rig.runSender()).exit.code));
        r0.signal("SIGTERM");
        await r0.exit;
        const gone = rig.files[rig.files.length - 1]!;
        await rm(gone.tsfile);
        await rm(`${gone.tsfile}.resource`);
        files = rig.files.slice(0, -1);
      }
      const receiver = await rig.startReceiver(freeze);
      const s1 = rig.startSender();
      await receiver.waitStopped();
      await receiver.kill9();
      const held = await rig.partSize(big);
      const stopAsked = Date.now();
      s1.signal("SIGTERM");
      const stopped = await s1.exit;
      const stopMs = Date.now() - stopAsked;
      problems.push(...checkExit("sender stopped with SIGTERM", stopped.code));
      if (stopMs > 10_000) problems.push(`sender took ${stopMs} ms to stop`);
      await rig.startReceiver();
      const again = await rig.runSender();
      problems.push(
        ...checkExit("sender after the restart", again.exit.code),
        ...(await checkRecovered(rig, files, { unwitnessedOk: options.unwitnessedOk === true })),
      );
      const resumes: Resume[] = [];
      if (held > 0) {
        const r = resumeOf(again.summary, big, held, await tsfileSize(big));
        resumes.push(r);
        problems.push(...checkResume(r));
      }
      if (options.deletion) problems.push(...(await checkDeleted(rig, rig.files[rig.files.length - 1]!)));
      return {
        outcome: `${label}; sender stopped (exit ${stopped.code}, ${stopMs} ms); after restart: ${describeRound(again.summary)}`,
        resumes,
        problems,
      };
    });

const receiverCells = (): Cell[] => {
  const known = new Set(Object.keys(receiverSession.states));
  const at = (state: string, nth: number) => armed({ freezeIn: `receiverSession.${state}#${nth}` });
  const cells: Cell[] = [
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.receiving (mid-file)",
      quick: true,
      run: receiverKilledMidFile,
    },
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.handshaking (admitting)",
      quick: false,
      run: receiverKilledAt(at("handshaking", 1), "killed while admitting the sender"),
    },
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.offering",
      quick: false,
      run: receiverKilledAt(at("offering", 1), "killed while answering the first offer"),
    },
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.verifying #2",
      quick: true,
      run: receiverKilledAt(at("verifying", 2), "killed on entry to verifying the big TsFile"),
    },
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.loading",
      quick: false,
      run: receiverKilledAt(at("loading", 1), "killed on entry to loading"),
    },
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.loading (placed, not journaled)",
      quick: true,
      run: receiverKilledAt({ [freezeAfterLoadVariable]: "1" }, "killed after the storage placed the file, before the journal recorded it"),
    },
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.ready (puts in flight)",
      quick: true,
      run: receiverKilledAt({ [freezeAfterLoadVariable]: "3" }, "killed with small files put several at once, after the third load", {
        rig: { small: putFiles },
        unwitnessedOk: true,
      }),
    },
    {
      group: "receiver",
      fault: "kill -9 receiver",
      state: "receiverSession.deleting",
      quick: false,
      run: receiverKilledAt(at("deleting", 1), "killed while deleting", { deletion: true }),
    },
  ];
  return cells.filter((c) => known.has(c.state.split(/[. ]/)[1] ?? ""));
};

// ── network: nats-server, the wire ───────────────────────────────────────────────────────────────

const natsRestartedMidFile =
  (downUntilRoundFails: boolean): Cell["run"] =>
  () =>
    withRig({ big: [bigBytes], small: 2 }, async (rig) => {
      const big = rig.files[0]!;
      await rig.startReceiver();
      const s1 = rig.startSender(pacedEnv);
      await rig.waitForPart(big, midFile);
      await rig.killNats();
      const held = await rig.settledPartSize(big);
      const problems: string[] = [];
      let summary: RoundSummary;
      if (downUntilRoundFails) {
        // The sender keeps reconnecting; its chunks time out, its round gives up; then the server returns.
        s1.signal("SIGTERM");
        problems.push(...checkExit("sender stopped while the server was down", (await s1.exit).code));
        await rig.startNats();
        const again = await rig.runSender();
        problems.push(...checkExit("sender after the server returned", again.exit.code));
        summary = again.summary;
      } else {
        await rig.startNats();
        const exit = await s1.exit;
        problems.push(...checkExit("sender across the restart", exit.code));
        summary =
          s1.summary() ??
          (() => {
            throw new Error(`no summary:\n${s1.output}`);
          })();
      }
      const r = resumeOf(summary, big, held, await tsfileSize(big));
      problems.push(...(await checkRecovered(rig)), ...checkResume(r));
      return {
        outcome: downUntilRoundFails
          ? `server down with ${held} bytes received; sender stopped; next run resumed at ${r.resumedFrom}`
          : `server killed -9 with ${held} bytes received and restarted (same port and store); the same round resumed at ${r.resumedFrom}`,
        resumes: [r],
        problems,
      };
    });

const corruptChunk =
  (times: number): Cell["run"] =>
  () =>
    withRig({ big: [bigBytes], small: 2 }, async (rig) => {
      const big = rig.files[0]!;
      await rig.startReceiver();
      const problems: string[] = [];
      const first = await rig.runSender(armed({ corruptChunk: `${midFile}x${times}` }));
      const size = await tsfileSize(big);
      const quarantined = first.summary.failed.find((f) => f.file === big.key);
      let outcome: string;
      if (times === 1) {
        problems.push(...checkExit("sender with one corrupted chunk", first.exit.code));
        const s = sentFor(first.summary, big);
        if (!s || s.resumedFrom !== 0) problems.push("after a digest mismatch the file must start over, not resume");
        outcome = `digest mismatch at commit, partial dropped, retried in the same round: ${describeRound(first.summary)}`;
      } else {
        if (!quarantined) problems.push("a file corrupted on every attempt was not quarantined");
        else if (!/digestMismatch/.test(quarantined.reason))
          problems.push(`quarantined with "${quarantined.reason}", not the digest mismatch`);
        if (quarantined && quarantined.attempts !== 4)
          problems.push(`quarantined after ${quarantined.attempts} attempts, expected max_number_of_sync_file_retry + 1 = 4`);
        const others = rig.files.slice(1).filter((f) => !sentFor(first.summary, f));
        if (others.length) problems.push(`the quarantined file blocked ${others.map((f) => f.key).join(", ")}`);
        problems.push(...checkExit("sender with a quarantined file", first.exit.code, 1));
        const again = await rig.runSender();
        problems.push(...checkExit("next run without corruption", again.exit.code));
        outcome = `quarantined after ${quarantined?.attempts ?? "?"} attempts ("${quarantined?.reason.slice(0, 60) ?? ""}…"), the other files synced; next run: ${describeRound(again.summary)}`;
      }
      problems.push(...(await checkRecovered(rig)));
      return { outcome, resumes: [{ file: big.key, size, held: size, resumedFrom: 0, sent: size, resent: size }], problems };
    });

const networkCells = (): Cell[] => [
  {
    group: "network",
    fault: "nats-server kill -9 + restart",
    state: "senderRound.transferring (mid-file)",
    quick: true,
    run: natsRestartedMidFile(false),
  },
  {
    group: "network",
    fault: "nats-server down, sender stopped",
    state: "senderRound.transferring (mid-file)",
    quick: false,
    run: natsRestartedMidFile(true),
  },
  {
    group: "network",
    fault: "chunk corrupted on the wire (once)",
    state: "senderRound.transferring → verifying",
    quick: true,
    run: corruptChunk(1),
  },
  {
    group: "network",
    fault: "chunk corrupted on every attempt",
    state: "senderRound.fileFailed → quarantine",
    quick: false,
    run: corruptChunk(99),
  },
];

// ── disk full ────────────────────────────────────────────────────────────────────────────────────

let mountAllowed: Promise<boolean> | undefined;
/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, not in a locked-down container). */
export const canMountTmpfs = (scratch: string): Promise<boolean> =>
  (mountAllowed ??= (async () => {
    const dir = await mkdtemp(join(scratch, "tsync-mount-probe-"));
    try {
      await exec("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
      await exec("umount", [dir]);
      return true;
    } catch {
      return false;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })());

/**
 * Staging fills up mid-file: ENOSPC on a write. The receiver drops that partial copy (so other files
 * still fit), answers the retries "staging full" before any byte is sent, the file is quarantined
 * with that reason and the small files sync; once space is back the next run syncs it, once.
 */
const diskFull =
  (how: "tmpfs" | "emulated"): Cell["run"] =>
  () =>
    withRig({ big: [bigBytes], small: 2, senderProps: { max_number_of_sync_file_retry: "1" } }, async (rig) => {
      const big = rig.files[0]!;
      // Room for the big file alone; a filler written mid-file takes half of it.
      const capacity = 24 * 1024 * 1024;
      const fillerBytes = 12 * 1024 * 1024;
      let receiverEnv: Record<string, string> = {};
      let fill: () => Promise<void>;
      let free: () => Promise<void>;
      const filler = join(rig.stagingDir, "filler");
      if (how === "tmpfs") {
        await mkdir(rig.stagingDir, { recursive: true });
        await exec("mount", ["-t", "tmpfs", "-o", `size=${capacity}`, "tmpfs", rig.stagingDir]);
        rig.onCleanup(() => exec("umount", ["-l", rig.stagingDir]).then(() => undefined));
        fill = () => writeFile(filler, Buffer.alloc(fillerBytes));
        free = () => rm(filler, { force: true });
      } else {
        receiverEnv = armed({ stagingCapacity: String(capacity) });
        fill = () => writeFile(filler, Buffer.alloc(fillerBytes));
        free = () => rm(filler, { force: true });
      }
      const receiver = await rig.startReceiver(receiverEnv);
      const s1 = rig.startSender(pacedEnv);
      await rig.waitForPart(big, 3_000_000);
      await fill();
      // The most the receiver held before the full disk made it drop the partial copy.
      let held = 0;
      let watching = true;
      const watch = (async () => {
        while (watching) {
          held = Math.max(held, await rig.partSize(big));
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      const first = await s1.exit;
      watching = false;
      await watch;
      const summary = s1.summary();
      const problems: string[] = [...checkExit("sender with staging full", first.code, 1)];
      const quarantined = summary?.failed.find((f) => f.file === big.key);
      if (!quarantined) problems.push(`the file that does not fit was not quarantined: ${JSON.stringify(summary)}`);
      else if (!/staging disk is full/.test(quarantined.reason))
        problems.push(`quarantined with "${quarantined.reason}", not "staging disk is full"`);
      const blocked = rig.files.slice(1).filter((f) => !summary || !sentFor(summary, f));
      if (blocked.length) problems.push(`the full disk blocked ${blocked.map((f) => f.key).join(", ")}`);
      if (!receiver.output.includes("staging disk is full")) problems.push("the receiver did not log the full disk");
      await free();
      const again = await rig.runSender();
      problems.push(...checkExit("sender once space is back", again.exit.code), ...(await checkRecovered(rig)));
      const size = await tsfileSize(big);
      return {
        outcome: `ENOSPC mid-file (${how === "tmpfs" ? "24 MiB tmpfs" : "emulated 24 MiB capacity"}): partial dropped, quarantined "${quarantined?.reason.slice(0, 70) ?? "?"}…", small files synced; after freeing space: ${describeRound(again.summary)}`,
        resumes: [
          {
            file: big.key,
            size,
            held,
            resumedFrom: sentFor(again.summary, big)?.resumedFrom ?? 0,
            sent: sentFor(again.summary, big)?.bytes ?? 0,
            resent: held,
          },
        ],
        problems,
      };
    });

const diskCells = (): Cell[] => [
  { group: "disk", fault: "staging ENOSPC (size-limited tmpfs)", state: "receiverSession.receiving", quick: true, run: diskFull("tmpfs") },
  {
    group: "disk",
    fault: "staging ENOSPC (emulated at the file layer)",
    state: "receiverSession.receiving",
    quick: false,
    run: diskFull("emulated"),
  },
];

// ── graceful stop ────────────────────────────────────────────────────────────────────────────────

const sigterm =
  (twice: boolean): Cell["run"] =>
  () =>
    withRig({ big: [bigBytes], small: 2 }, async (rig) => {
      const big = rig.files[0]!;
      await rig.startReceiver();
      const s1 = rig.startSender(pacedEnv);
      await rig.waitForPart(big, midFile);
      const asked = Date.now();
      // Two different signals: the kernel merges a second SIGTERM into a first one still pending.
      s1.signal(twice ? "SIGINT" : "SIGTERM");
      if (twice) s1.signal("SIGTERM");
      const exit = await s1.exit;
      const ms = Date.now() - asked;
      const held = await rig.settledPartSize(big);
      const problems: string[] = [];
      if (twice) {
        // Both may be pending at once; whichever the process handles second makes it exit, with 128 + its number.
        const second = /(SIGINT|SIGTERM) again: exiting now/.exec(s1.output)?.[1];
        if (!second) problems.push("the second signal did not stop the sender at once");
        else problems.push(...checkExit("sender after SIGINT and SIGTERM", exit.code, second === "SIGINT" ? 130 : 143));
      } else {
        problems.push(...checkExit("sender after SIGTERM", exit.code));
        if (ms > 10_000) problems.push(`SIGTERM took ${ms} ms to stop the sender`);
        if (!/SIGTERM: stopping/.test(s1.output)) problems.push("the sender did not say it was stopping");
      }
      const again = await rig.runSender();
      const r = resumeOf(again.summary, big, held, await tsfileSize(big));
      problems.push(...checkExit("sender after the stop", again.exit.code), ...(await checkRecovered(rig)), ...checkResume(r));
      return {
        outcome: `${twice ? "SIGINT and SIGTERM at once: exit" : "SIGTERM: exit"} ${exit.code} after ${ms} ms with ${held} bytes received; next run resumed at ${r.resumedFrom}`,
        resumes: [r],
        problems,
      };
    });

const sigtermPeriodic: Cell["run"] = () =>
  withRig({ small: 2 }, async (rig) => {
    await rig.startReceiver();
    const s = rig.startSender({}, false);
    await s.waitFor(/^state sender waiting$/m);
    const asked = Date.now();
    s.signal("SIGTERM");
    const exit = await s.exit;
    const ms = Date.now() - asked;
    const problems = [...checkExit("periodic sender after SIGTERM", exit.code), ...(await checkRecovered(rig))];
    if (ms > 10_000) problems.push(`SIGTERM took ${ms} ms`);
    return { outcome: `periodic sender waiting for its next round: exit ${exit.code} after ${ms} ms`, resumes: [], problems };
  });

const receiverSigterm: Cell["run"] = () =>
  withRig({ big: [bigBytes], small: 2 }, async (rig) => {
    const big = rig.files[0]!;
    const receiver = await rig.startReceiver();
    const s1 = rig.startSender(pacedEnv);
    await rig.waitForPart(big, midFile);
    const asked = Date.now();
    receiver.signal("SIGTERM");
    const exit = await receiver.exit;
    const ms = Date.now() - asked;
    const held = await rig.partSize(big);
    await s1.exit;
    await rig.startReceiver();
    const again = await rig.runSender();
    const r = resumeOf(again.summary, big, held, await tsfileSize(big));
    const problems = [
      ...checkExit("receiver after SIGTERM", exit.code),
      ...checkExit("sender after the restart", again.exit.code),
      ...(await checkRecovered(rig)),
      ...checkResume(r),
    ];
    if (ms > 10_000) problems.push(`SIGTERM took ${ms} ms to stop the receiver`);
    return {
      outcome: `receiver SIGTERM mid-file: exit ${exit.code} after ${ms} ms; after restart resumed at ${r.resumedFrom}`,
      resumes: [r],
      problems,
    };
  });

const stopCells = (): Cell[] => [
  { group: "stop", fault: "SIGTERM sender --once", state: "senderRound.transferring (mid-file)", quick: true, run: sigterm(false) },
  {
    group: "stop",
    fault: "second signal (SIGINT, SIGTERM)",
    state: "senderRound.transferring (mid-file)",
    quick: true,
    run: sigterm(true),
  },
  { group: "stop", fault: "SIGTERM periodic sender", state: "sender.waiting", quick: false, run: sigtermPeriodic },
  { group: "stop", fault: "SIGTERM receiver", state: "receiverSession.receiving (mid-file)", quick: false, run: receiverSigterm },
];

export const allCells = (): Cell[] => [...senderCells(), ...receiverCells(), ...networkCells(), ...diskCells(), ...stopCells()];

export const cellName = (c: Cell): string => `${c.fault} in ${c.state}`;
