// The scan by partition: an unchanged partition is not read again, and still every change on disk is found.
import { appendFile, mkdir, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Effect } from "effect";
import { fc, test as prop } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { rememberedPartitions, scanForRound } from "../../src/actors/sender/scan.js";
import { runEffect } from "../../src/actors/runtime.js";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import { refKey, type ScanResult } from "../../src/machines/senderTypes.js";
import { openSource } from "../../src/plugins/loadSource.js";
import type { Source, SourcePartition } from "../../src/plugins/source.js";
import { iotdbSource, racyWindowMs, stampOf, type IotdbSourceClock } from "../../src/plugins/sourceIotdb.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await tempRoot("tsync-partition-scan-");
});
afterAll(async () => {
  await removeAll(root);
});

/**
 * Long enough for the file system's clock to move on (a jiffy is at most 10 ms), so a change made
 * after a listing gets another mtime than the one the listing saw: the racy window is 0 here.
 */
const quiet = () => sleep(25);

/** A sealed file as IoTDB makes one: the TsFile and side files, then the .resource renamed in last. */
const seal = async (dir: string, name: string, sides: ReadonlyArray<string> = []) => {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), `TsFile ${name}`);
  for (const s of sides) await writeFile(join(dir, `${name}${s}`), s);
  await writeFile(join(dir, `${name}.resource.temp`), "resource");
  await rename(join(dir, `${name}.resource.temp`), join(dir, `${name}.resource`));
};

/** The iotdb source, and which partitions it was asked to list each round. */
const watched = (dataDir: string, clock: IotdbSourceClock = { racyWindowMs: 0 }) => {
  const source = iotdbSource(dataDir, clock);
  const byPartition = source.byPartition!;
  const listed: string[] = [];
  const stamps: SourcePartition[] = [];
  const wrapped: Source = {
    name: source.name,
    list: source.list,
    byPartition: {
      stamps: (groups) => byPartition.stamps(groups).pipe(Effect.tap((ps) => Effect.sync(() => stamps.splice(0, stamps.length, ...ps)))),
      list: (p) => {
        listed.push(`${p.sg}/${p.vg}/${p.tp}`);
        return byPartition.list(p);
      },
    },
  };
  return {
    source: wrapped,
    /** Partitions listed since the last call. */
    listed: () => listed.splice(0, listed.length),
    stamps,
  };
};

const fresh = async () => {
  const d = join(root, String(n++));
  await mkdir(d, { recursive: true });
  return { dataDir: d, work: await WorkDir.open(join(d, "work"), "edge1", () => undefined) };
};

/** What the receiver's confirmations would record after a round that sent `r.units` and deleted `r.deletions`. */
const settle = async (work: WorkDir, r: ScanResult) => {
  for (const u of r.units)
    await work.confirm({
      ref: u.ref,
      parts: u.parts.map((p) => ({ kind: p.kind, size: p.size, sha256: p.sha256 ?? "0".repeat(64), mtimeMs: p.mtimeMs })),
    });
  for (const ref of r.deletions) await work.forget(ref);
};

const names = (r: ScanResult) => r.units.map((u) => u.ref.name);
const gone = (r: ScanResult) => r.deletions.map(refKey).sort();

const seq = (dataDir: string, tp: string) => join(dataDir, "sequence", "root.sg1", "0", tp);
const ref = (tp: string, i: number) => ({ sg: "root.sg1", vg: "0", tp, name: `${i}-${i}-0-0.tsfile` });

describe("scan by partition", () => {
  test("an unchanged tree lists no partition again; a new sealed file in it is found, in its partition only", async () => {
    const { dataDir, work } = await fresh();
    try {
      for (const tp of ["1", "2"]) for (const i of [1, 2, 3]) await seal(seq(dataDir, tp), `${tp}${i}-${i}-0-0.tsfile`);
      const w = watched(dataDir);
      await quiet();
      const first = await runEffect(scanForRound(w.source, work, []));
      expect(names(first)).toHaveLength(6);
      expect(w.listed()).toEqual(["root.sg1/0/1", "root.sg1/0/2"]);
      await settle(work, first);
      await quiet();

      // The confirmations changed both partitions' confirmed files: each is listed once more, then remembered clean.
      expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });
      expect(w.listed()).toEqual(["root.sg1/0/1", "root.sg1/0/2"]);
      expect(rememberedPartitions(work)).toBe(2);
      for (let i = 0; i < 2; i++) {
        expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });
        expect(w.listed()).toEqual([]);
      }

      await seal(seq(dataDir, "2"), "24-4-0-0.tsfile");
      const r = await runEffect(scanForRound(w.source, work, []));
      expect(names(r)).toEqual(["24-4-0-0.tsfile"]);
      expect(r.deletions).toEqual([]);
      expect(w.listed()).toEqual(["root.sg1/0/2"]);
    } finally {
      await work.close();
    }
  });

  test("a TsFile waiting for its .resource is found once the .resource is renamed into the directory", async () => {
    const { dataDir, work } = await fresh();
    try {
      const dir = seq(dataDir, "7");
      await seal(dir, "1-1-0-0.tsfile");
      await writeFile(join(dir, "2-2-0-0.tsfile"), "still being written");
      await writeFile(join(dataDir, "2-2-0-0.tsfile.resource"), "resource, written elsewhere");
      const w = watched(dataDir);
      await quiet();
      const first = await runEffect(scanForRound(w.source, work, []));
      expect(names(first)).toEqual(["1-1-0-0.tsfile"]);
      expect(first.ignored).toBe(1);
      await settle(work, first);
      await runEffect(scanForRound(w.source, work, []));
      await quiet();
      w.listed();
      // Clean with a file not ready: not listed again, and the file still counts as not ready, not as deleted.
      expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 1 });
      expect(w.listed()).toEqual([]);

      await rename(join(dataDir, "2-2-0-0.tsfile.resource"), join(dir, "2-2-0-0.tsfile.resource"));
      const r = await runEffect(scanForRound(w.source, work, []));
      expect(names(r)).toEqual(["2-2-0-0.tsfile"]);
      expect(r.ignored).toBe(0);
    } finally {
      await work.close();
    }
  });

  test("a deleted file becomes a deletion, a removed partition deletes all its files, compaction's swap is both", async () => {
    const { dataDir, work } = await fresh();
    try {
      for (const i of [1, 2, 3]) await seal(seq(dataDir, "1"), `${i}-${i}-0-0.tsfile`);
      for (const i of [4, 5]) await seal(seq(dataDir, "2"), `${i}-${i}-0-0.tsfile`);
      await seal(seq(dataDir, "3"), "6-6-0-0.tsfile");
      const w = watched(dataDir);
      await quiet();
      await settle(work, await runEffect(scanForRound(w.source, work, [])));
      await runEffect(scanForRound(w.source, work, []));
      await quiet();
      expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });

      await rm(join(seq(dataDir, "1"), "2-2-0-0.tsfile"));
      await rm(join(seq(dataDir, "1"), "2-2-0-0.tsfile.resource"));
      await rm(seq(dataDir, "2"), { recursive: true });
      // Compaction: two files merged into one, the new one sealed before the old ones go.
      await seal(seq(dataDir, "3"), "6-7-1-0.tsfile");
      await rm(join(seq(dataDir, "3"), "6-6-0-0.tsfile"));
      await rm(join(seq(dataDir, "3"), "6-6-0-0.tsfile.resource"));
      const r = await runEffect(scanForRound(w.source, work, []));
      expect(names(r)).toEqual(["6-7-1-0.tsfile"]);
      expect(gone(r)).toEqual([
        "root.sg1/0/1/2-2-0-0.tsfile",
        "root.sg1/0/2/4-4-0-0.tsfile",
        "root.sg1/0/2/5-5-0-0.tsfile",
        "root.sg1/0/3/6-6-0-0.tsfile",
      ]);
      await settle(work, r);
      expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });
    } finally {
      await work.close();
    }
  });

  test("a side file changed in place, its directory untouched, is found: the side files of clean partitions are stat'ed", async () => {
    const { dataDir, work } = await fresh();
    try {
      const dir = seq(dataDir, "1");
      await seal(dir, "1-1-0-0.tsfile", [".mods"]);
      await seal(dir, "2-2-0-0.tsfile");
      await seal(seq(dataDir, "2"), "3-3-0-0.tsfile", [".mods2"]);
      const w = watched(dataDir);
      await quiet();
      await settle(work, await runEffect(scanForRound(w.source, work, [])));
      await runEffect(scanForRound(w.source, work, []));
      await quiet();
      w.listed();
      expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });
      expect(w.listed()).toEqual([]);

      const before = await stat(dir);
      await appendFile(join(dir, "1-1-0-0.tsfile.mods"), "a deletion");
      const after = await stat(dir);
      expect([after.mtimeMs, after.ctimeMs]).toEqual([before.mtimeMs, before.ctimeMs]);
      const r = await runEffect(scanForRound(w.source, work, []));
      expect(r.units.map((u) => [u.ref.name, u.parts.map((p) => p.kind)])).toEqual([["1-1-0-0.tsfile", ["resource", "tsfile", "mods"]]]);
      expect(w.listed()).toEqual(["root.sg1/0/1"]);
      await settle(work, r);

      // Same size, new mtime (rewritten in place) counts too.
      await runEffect(scanForRound(w.source, work, []));
      await quiet();
      await utimes(join(seq(dataDir, "2"), "3-3-0-0.tsfile.mods2"), new Date(), new Date(Date.now() + 60_000));
      expect(names(await runEffect(scanForRound(w.source, work, [])))).toEqual(["3-3-0-0.tsfile"]);
    } finally {
      await work.close();
    }
  });

  test("what a failed round did not send or delete is found again next round, though the directory did not change since", async () => {
    const { dataDir, work } = await fresh();
    try {
      for (const i of [1, 2]) await seal(seq(dataDir, "1"), `${i}-${i}-0-0.tsfile`);
      const w = watched(dataDir);
      await quiet();
      await settle(work, await runEffect(scanForRound(w.source, work, [])));
      await runEffect(scanForRound(w.source, work, []));
      await quiet();
      // Rounds that fail: the receiver never confirms the deletion, then the new file.
      await rm(join(seq(dataDir, "1"), "1-1-0-0.tsfile"));
      await rm(join(seq(dataDir, "1"), "1-1-0-0.tsfile.resource"));
      await quiet();
      for (let i = 0; i < 3; i++)
        expect(await runEffect(scanForRound(w.source, work, []))).toMatchObject({ units: [], deletions: [ref("1", 1)] });
      await work.forget(ref("1", 1));
      await seal(seq(dataDir, "1"), "3-3-0-0.tsfile");
      await quiet();
      for (let i = 0; i < 3; i++) expect(names(await runEffect(scanForRound(w.source, work, [])))).toEqual(["3-3-0-0.tsfile"]);
    } finally {
      await work.close();
    }
  });

  test("files confirmed or forgotten outside the scan's view are diffed again: a forgotten file still on disk is offered", async () => {
    const { dataDir, work } = await fresh();
    try {
      for (const i of [1, 2]) await seal(seq(dataDir, "1"), `${i}-${i}-0-0.tsfile`);
      const w = watched(dataDir);
      await quiet();
      await settle(work, await runEffect(scanForRound(w.source, work, [])));
      await runEffect(scanForRound(w.source, work, []));
      expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });
      w.listed();
      await work.forget(ref("1", 2));
      expect(names(await runEffect(scanForRound(w.source, work, [])))).toEqual(["2-2-0-0.tsfile"]);
      expect(w.listed()).toEqual(["root.sg1/0/1"]);
    } finally {
      await work.close();
    }
  });

  test("0.10/0.11 partitions (right under the group) and one partition in two layouts are remembered and diffed as one", async () => {
    const { dataDir, work } = await fresh();
    try {
      const old = join(dataDir, "sequence", "root.old", "2799");
      await seal(old, "1-1-0-0.tsfile");
      // sequence/root.sg1/0/1 and data/sequence/root.sg1/0/1 both name root.sg1/0/1.
      await seal(seq(dataDir, "1"), "2-2-0-0.tsfile");
      await seal(join(dataDir, "data", "sequence", "root.sg1", "0", "1"), "3-3-0-0.tsfile");
      const w = watched(dataDir);
      await quiet();
      const first = await runEffect(scanForRound(w.source, work, []));
      expect(first.units.map((u) => refKey(u.ref)).sort()).toEqual([
        "root.old/0/2799/1-1-0-0.tsfile",
        "root.sg1/0/1/2-2-0-0.tsfile",
        "root.sg1/0/1/3-3-0-0.tsfile",
      ]);
      await settle(work, first);
      await runEffect(scanForRound(w.source, work, []));
      await quiet();
      w.listed();
      expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });
      expect(w.listed()).toEqual([]);

      await seal(old, "4-4-0-0.tsfile");
      await rm(join(dataDir, "data", "sequence", "root.sg1", "0", "1", "3-3-0-0.tsfile"));
      const r = await runEffect(scanForRound(w.source, work, []));
      expect(names(r)).toEqual(["4-4-0-0.tsfile"]);
      // The file left in the other layout's directory of root.sg1/0/1 is not taken for deleted.
      expect(gone(r)).toEqual(["root.sg1/0/1/3-3-0-0.tsfile"]);
      expect(w.listed().sort()).toEqual(["root.old/0/2799", "root.sg1/0/1"]);
    } finally {
      await work.close();
    }
  });

  test("a directory changed within the racy window of a listing is listed again every round, though nothing visible changed", async () => {
    const { dataDir, work } = await fresh();
    try {
      const dir = seq(dataDir, "1");
      await seal(dir, "1-1-0-0.tsfile");
      const changed = (await stat(dir)).ctimeMs;
      // The listings happen in the same window as the directory's last change: a later change could keep its mtime.
      let now = changed + racyWindowMs / 2;
      const w = watched(dataDir, { now: () => now });
      await settle(work, await runEffect(scanForRound(w.source, work, [])));
      expect(w.listed()).toEqual(["root.sg1/0/1"]);
      for (let i = 0; i < 3; i++) {
        expect(await runEffect(scanForRound(w.source, work, []))).toEqual({ units: [], deletions: [], ignored: 0 });
        expect(w.listed()).toEqual(["root.sg1/0/1"]);
        expect(w.stamps.map((p) => p.stamp)).toEqual([undefined]);
      }
      // Once the window has passed, the stamp vouches for the listing: listed once more, then not.
      now = changed + racyWindowMs + 1;
      await runEffect(scanForRound(w.source, work, []));
      expect(w.listed()).toEqual(["root.sg1/0/1"]);
      await runEffect(scanForRound(w.source, work, []));
      expect(w.listed()).toEqual([]);
    } finally {
      await work.close();
    }
  });

  test("a stamp: none inside the racy window of mtime or ctime, and a new one when either moves", () => {
    const s = { ino: 7, mtimeMs: 1_000_000, ctimeMs: 1_000_000 };
    expect(stampOf(s, 1_000_000 + racyWindowMs)).toBeUndefined();
    expect(stampOf({ ...s, ctimeMs: 1_000_500 }, 1_000_000 + racyWindowMs + 1)).toBeUndefined();
    const stamp = stampOf(s, 1_000_000 + racyWindowMs + 1);
    expect(stamp).toBeDefined();
    expect(stampOf({ ...s, ctimeMs: 1_000_000.5 }, 1_000_000 + racyWindowMs + 1)).not.toBe(stamp);
    expect(stampOf({ ...s, mtimeMs: 999_999 }, 1_000_000 + racyWindowMs + 1)).not.toBe(stamp);
    expect(stampOf({ ...s, ino: 8 }, 1_000_000 + racyWindowMs + 1)).not.toBe(stamp);
  });

  test("the built-in source keeps listing by partition through the plugin guard; a source reporting a partition twice fails the scan", async () => {
    const { dataDir, work } = await fresh();
    try {
      const guarded = await Effect.runPromise(openSource("iotdb", { dataDir, options: {} }));
      expect(typeof guarded.byPartition?.stamps).toBe("function");
      const twice: Source = {
        name: "twice",
        list: () => Effect.succeed({ units: [], notReady: [], ignored: 0 }),
        byPartition: {
          stamps: () =>
            Effect.succeed([
              { sg: "root.sg1", vg: "0", tp: "1", stamp: "a" },
              { sg: "root.sg1", vg: "0", tp: "1", stamp: "b" },
            ]),
          list: () => Effect.succeed({ units: [], notReady: [], ignored: 0 }),
        },
      };
      await expect(runEffect(scanForRound(twice, work, []))).rejects.toThrow("root.sg1/0/1 twice");
    } finally {
      await work.close();
    }
  });
});

/** One change to a tree of two partitions of up to four files each. */
type Change = { readonly op: "seal" | "unseal" | "mods" | "rm" | "rmdir"; readonly tp: number; readonly file: number };

const apply = async (dataDir: string, c: Change) => {
  const dir = seq(dataDir, String(c.tp));
  const name = `${c.file}-${c.file}-0-0.tsfile`;
  switch (c.op) {
    case "seal":
      return seal(dir, name);
    case "unseal":
      // Compaction marks a file it works on.
      await mkdir(dir, { recursive: true });
      return writeFile(join(dir, `${name}.merge`), "");
    case "mods":
      await mkdir(dir, { recursive: true });
      return appendFile(join(dir, `${name}.mods`), "d");
    case "rm":
      for (const s of ["", ".resource", ".mods", ".merge"]) await rm(join(dir, name + s), { force: true });
      return;
    case "rmdir":
      return rm(dir, { recursive: true, force: true });
  }
};

describe("scan by partition against a full listing", () => {
  prop.prop(
    [
      fc.array(
        fc.array(
          fc.record({
            op: fc.constantFrom("seal", "unseal", "mods", "rm", "rmdir"),
            tp: fc.integer({ min: 1, max: 2 }),
            file: fc.integer({ min: 1, max: 4 }),
          }),
          { maxLength: 3 },
        ),
        { minLength: 1, maxLength: 5 },
      ),
      fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
    ],
    { numRuns: 12 },
  )(
    "after any changes, round after round, rounds that fail among them, it finds what a source listing everything finds",
    async (rounds, fails) => {
      const { dataDir, work } = await fresh();
      try {
        const w = watched(dataDir);
        const full: Source = { name: "full", list: w.source.list };
        const summary = (r: ScanResult) => ({
          units: r.units.map((u) => `${refKey(u.ref)}:${u.parts.map((p) => `${p.kind}/${p.size}`).join(",")}`).sort(),
          deletions: gone(r),
          ignored: r.ignored,
        });
        for (const [i, changes] of rounds.entries()) {
          for (const c of changes) await apply(dataDir, c as Change);
          await quiet();
          const expected = summary(await runEffect(scanForRound(full, work, [])));
          const got = await runEffect(scanForRound(w.source, work, []));
          expect(summary(got)).toEqual(expected);
          // A failed round sends and deletes nothing: all of it is still to do next round.
          if (!fails[i]) await settle(work, got);
          await quiet();
        }
      } finally {
        await work.close();
      }
    },
  );
});
