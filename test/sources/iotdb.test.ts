import { mkdir, rm, utimes, writeFile, appendFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import { fc, test as prop } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { iotdbSource, compareTsFileNames } from "../../src/plugins/sourceIotdb.js";
import type { SourceListing } from "../../src/plugins/source.js";
import { scanForRound } from "../../src/actors/sender/scan.js";
import { runEffect } from "../../src/actors/runtime.js";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import { refKey } from "../../src/machines/senderTypes.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await tempRoot("tsync-source-");
});
afterAll(async () => {
  await removeAll(root);
});

const freshDir = async () => {
  const d = join(root, String(n++));
  await mkdir(d, { recursive: true });
  return d;
};

/** A TsFile and the side files named, in `dir` (contents do not matter to the source). */
const put = async (dir: string, name: string, sides: ReadonlyArray<string> = [".resource"]) => {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), "TsFile");
  for (const s of sides) await writeFile(join(dir, `${name}${s}`), s);
};

const list = (dataDir: string, groups: ReadonlyArray<string> = []): Promise<SourceListing> =>
  Effect.runPromise(iotdbSource(dataDir).list(groups));
const keys = (l: SourceListing) => l.units.map((u) => refKey(u.ref));

describe("iotdb source: layouts", () => {
  test("0.12/0.13: sequence/<sg>/<vg>/<tp>/, files in name order, unsequence not sent", async () => {
    const d = await freshDir();
    await put(join(d, "sequence/root.sg1/1/2800"), "1700000000000-10-0-0.tsfile");
    await put(join(d, "sequence/root.sg1/1/2800"), "1700000000000-9-0-0.tsfile");
    await put(join(d, "sequence/root.sg1/0/2801"), "1700000000001-1-1-0.tsfile");
    await put(join(d, "unsequence/root.sg1/0/2801"), "1700000000002-2-0-0.tsfile");
    const l = await list(d);
    expect(keys(l)).toEqual([
      "root.sg1/0/2801/1700000000001-1-1-0.tsfile",
      "root.sg1/1/2800/1700000000000-9-0-0.tsfile",
      "root.sg1/1/2800/1700000000000-10-0-0.tsfile",
    ]);
    expect(l.units[1]!.parts.map((p) => p.kind)).toEqual(["resource", "tsfile"]);
  });

  test("0.10/0.11: sequence/<sg>/<tp>/ without virtual groups is vg 0", async () => {
    const d = await freshDir();
    await put(join(d, "sequence/root.old/2799"), "1600000000000-1-0.tsfile");
    expect(keys(await list(d))).toEqual(["root.old/0/2799/1600000000000-1-0.tsfile"]);
  });

  test("1.x/2.x: datanode/data/sequence/<db>/<region>/<tp>/", async () => {
    const d = await freshDir();
    await put(join(d, "datanode/data/sequence/root.db/3/2800"), "1700000000000-1-0-0.tsfile");
    await put(join(d, "data/sequence/root.db2/4/2800"), "1700000000000-2-0-0.tsfile");
    expect(keys(await list(d)).sort()).toEqual(["root.db/3/2800/1700000000000-1-0-0.tsfile", "root.db2/4/2800/1700000000000-2-0-0.tsfile"]);
  });

  test("sync_storage_groups limits the listing to the groups named", async () => {
    const d = await freshDir();
    await put(join(d, "sequence/root.a/0/0"), "1-1-0-0.tsfile");
    await put(join(d, "sequence/root.b/0/0"), "2-2-0-0.tsfile");
    expect(keys(await list(d, ["root.b"]))).toEqual(["root.b/0/0/2-2-0-0.tsfile"]);
  });

  test("a missing data directory lists nothing rather than failing", async () => {
    expect(await list(join(root, "nowhere"))).toEqual({ units: [], notReady: [], ignored: 0 });
  });

  test("IoTDB file names order by their numbers, not as text", () => {
    expect(["10-1-0-0.tsfile", "9-1-0-0.tsfile", "9-10-0-0.tsfile", "9-2-0-0.tsfile"].sort(compareTsFileNames)).toEqual([
      "9-1-0-0.tsfile",
      "9-2-0-0.tsfile",
      "9-10-0-0.tsfile",
      "10-1-0-0.tsfile",
    ]);
  });
});

const markers = [".resource.temp", ".merge", ".compaction.mods", ".compaction.mods2"] as const;

describe("iotdb source: sealed or not", () => {
  test.each(markers)("a TsFile with %s beside its .resource is under compaction: not sent, not deleted", async (marker) => {
    const d = await freshDir();
    const dir = join(d, "sequence/root.sg1/0/0");
    await put(dir, "1-1-0-0.tsfile", [".resource", marker]);
    await put(dir, "2-2-0-0.tsfile");
    const l = await list(d);
    expect(keys(l)).toEqual(["root.sg1/0/0/2-2-0-0.tsfile"]);
    expect(l.notReady.map(refKey)).toEqual(["root.sg1/0/0/1-1-0-0.tsfile"]);
  });

  test("a TsFile without .resource is still being written", async () => {
    const d = await freshDir();
    await put(join(d, "sequence/root.sg1/0/0"), "1-1-0-0.tsfile", []);
    const l = await list(d);
    expect(l.units).toEqual([]);
    expect(l.notReady.map(refKey)).toEqual(["root.sg1/0/0/1-1-0-0.tsfile"]);
  });

  prop.prop([fc.array(fc.subarray([".resource", ...markers, ".mods", ".mods2"]), { minLength: 1, maxLength: 8 })], { numRuns: 25 })(
    "every TsFile is either sent (a .resource and no compaction marker) or not ready, never both and never lost",
    async (sideSets) => {
      const d = await freshDir();
      const dir = join(d, "sequence/root.sg1/0/0");
      for (const [i, sides] of sideSets.entries()) await put(dir, `${i + 1}-${i + 1}-0-0.tsfile`, sides);
      const l = await list(d);
      const sealed = sideSets.flatMap((s, i) =>
        s.includes(".resource") && !markers.some((m) => s.includes(m)) ? [`root.sg1/0/0/${i + 1}-${i + 1}-0-0.tsfile`] : [],
      );
      expect(keys(l).sort()).toEqual(sealed.sort());
      expect([...keys(l), ...l.notReady.map(refKey)].sort()).toEqual(
        sideSets.map((_, i) => `root.sg1/0/0/${i + 1}-${i + 1}-0-0.tsfile`).sort(),
      );
      for (const u of l.units) {
        const i = Number(u.ref.name.split("-")[0]) - 1;
        const sideKinds = u.parts.filter((p) => p.kind === "mods" || p.kind === "mods2").map((p) => `.${p.kind}`);
        expect(sideKinds.sort()).toEqual(sideSets[i]!.filter((s) => s === ".mods" || s === ".mods2").sort());
      }
      await rm(d, { recursive: true, force: true });
    },
  );
});

describe("iotdb source: side files", () => {
  test(".mods and .mods2 travel with their TsFile with size and time, and a change sends the file again", async () => {
    const d = await freshDir();
    const dir = join(d, "sequence/root.sg1/0/0");
    await put(dir, "1-1-0-0.tsfile", [".resource", ".mods"]);
    await put(dir, "2-2-0-0.tsfile", [".resource", ".mods2"]);
    const work = await WorkDir.open(join(d, "work"), "edge1");
    try {
      const source = iotdbSource(d);
      const first = await runEffect(scanForRound(source, work, []));
      expect(first.units.map((u) => [u.ref.name, u.parts.map((p) => p.kind)])).toEqual([
        ["1-1-0-0.tsfile", ["resource", "tsfile", "mods"]],
        ["2-2-0-0.tsfile", ["resource", "tsfile", "mods2"]],
      ]);
      for (const u of first.units)
        await work.confirm({
          ref: u.ref,
          parts: u.parts.map((p) => ({ kind: p.kind, size: p.size, sha256: p.sha256 ?? "", mtimeMs: p.mtimeMs })),
        });
      expect((await runEffect(scanForRound(source, work, []))).units).toEqual([]);

      // A deletion on the edge appends to .mods: that file goes again, the other does not.
      await appendFile(join(dir, "1-1-0-0.tsfile.mods"), "another deletion");
      const afterDelete = await runEffect(scanForRound(source, work, []));
      expect(afterDelete.units.map((u) => u.ref.name)).toEqual(["1-1-0-0.tsfile"]);
      for (const u of afterDelete.units)
        await work.confirm({
          ref: u.ref,
          parts: u.parts.map((p) => ({ kind: p.kind, size: p.size, sha256: p.sha256 ?? "", mtimeMs: p.mtimeMs })),
        });

      // Same size, new time (rewritten in place) also counts; a new side file too.
      await utimes(join(dir, "2-2-0-0.tsfile.mods2"), new Date(), new Date(Date.now() + 60_000));
      await writeFile(join(dir, "1-1-0-0.tsfile.mods2"), "new format deletions");
      expect((await runEffect(scanForRound(source, work, []))).units.map((u) => u.ref.name).sort()).toEqual([
        "1-1-0-0.tsfile",
        "2-2-0-0.tsfile",
      ]);
    } finally {
      await work.close();
    }
  });
});
