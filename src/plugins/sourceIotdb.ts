// The built-in `iotdb` source: sealed TsFiles with their side files in every IoTDB data directory layout.
import { Effect } from "effect";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { isNumericSegment, isSegment, isTsFileName } from "../protocol/names.js";
import type { FileRef } from "../protocol/messages.js";
import { isSideKind, partFileName, partOrder, sideKinds, type SourcePart, type SyncUnit } from "../protocol/parts.js";
import { SourceError, type Source, type SourceFactory, type SourceListing } from "./source.js";

type SourceUnit = SyncUnit<SourcePart>;

/**
 * Where sequence files live under an IoTDB data directory, newest layout last:
 * 0.10-0.13 `sequence/<sg>/[<vg>/]<tp>/`, 1.x/2.x `datanode/data/sequence/<db>/<region>/<tp>/`.
 * Unsequence data is not synced, as in the original tool: compaction moves it into sequence files.
 */
const sequenceRoots = (dataDir: string): ReadonlyArray<string> => [
  join(dataDir, "sequence"),
  join(dataDir, "data", "sequence"),
  join(dataDir, "datanode", "data", "sequence"),
];

const dirNames = async (dir: string): Promise<ReadonlyArray<{ name: string; isDir: boolean }>> => {
  try {
    return (await readdir(dir, { withFileTypes: true })).map((d) => ({ name: d.name, isDir: d.isDirectory() }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return [];
    throw e;
  }
};

/** IoTDB names files `{time}-{version}-{inner}-{cross}.tsfile`; older first keeps the receiver's order sane. */
export const compareTsFileNames = (a: string, b: string): number => {
  const pa = a
    .replace(/\.tsfile$/, "")
    .split("-")
    .map(Number);
  const pb = b
    .replace(/\.tsfile$/, "")
    .split("-")
    .map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (Number.isNaN(x) || Number.isNaN(y)) return a < b ? -1 : a > b ? 1 : 0;
    if (x !== y) return x - y;
  }
  return a < b ? -1 : a > b ? 1 : 0;
};

/** Sorted as `compareTsFileNames` orders them, parsing each name once (a partition holds thousands). */
export const sortTsFileNames = (names: ReadonlyArray<string>): string[] => {
  const keyed = names.map((name) => {
    const nums = name
      .replace(/\.tsfile$/, "")
      .split("-")
      .map(Number);
    return { name, nums, numeric: nums.every((n) => !Number.isNaN(n)) };
  });
  keyed.sort((a, b) => {
    if (a.numeric && b.numeric) {
      for (let i = 0; i < Math.max(a.nums.length, b.nums.length); i++) {
        const d = (a.nums[i] ?? 0) - (b.nums[i] ?? 0);
        if (d !== 0) return d;
      }
    }
    return compareTsFileNames(a.name, b.name);
  });
  return keyed.map((k) => k.name);
};

/** Sealed = `.resource` exists and no `.resource.temp`, `.merge` or compaction marker beside it. */
const unitsInPartition = async (
  dir: string,
  ref: { sg: string; vg: string; tp: string },
): Promise<{ units: SourceUnit[]; notReady: FileRef[]; ignored: number }> => {
  const entries = await dirNames(dir);
  const names = new Set(entries.filter((e) => !e.isDir).map((e) => e.name));
  const units: SourceUnit[] = [];
  const notReady: FileRef[] = [];
  let ignored = 0;
  for (const name of sortTsFileNames([...names].filter((n) => n.endsWith(".tsfile")))) {
    const sealed =
      names.has(partFileName(name, "resource")) &&
      !names.has(`${partFileName(name, "resource")}.temp`) &&
      !names.has(`${name}.merge`) &&
      !sideKinds.some((kind) => names.has(`${name}.compaction.${kind}`));
    if (!sealed || !isTsFileName(name)) {
      ignored++;
      if (isTsFileName(name)) notReady.push({ ...ref, name });
      continue;
    }
    const parts: SourcePart[] = [];
    for (const kind of partOrder) {
      const path = join(dir, partFileName(name, kind));
      if (!isSideKind(kind)) {
        parts.push({ kind, path });
        continue;
      }
      if (!names.has(partFileName(name, kind))) continue;
      // Side files change after sealing (deletions), so their size and time are part of the identity.
      const s = await stat(path).catch(() => undefined);
      if (s) parts.push({ kind, path, stat: { size: s.size, mtimeMs: s.mtimeMs } });
    }
    units.push({ ref: { ...ref, name }, parts });
  }
  return { units, notReady, ignored };
};

export const listIotdbDataDir = async (dataDir: string, storageGroups: ReadonlyArray<string>): Promise<SourceListing> => {
  const wanted = new Set(storageGroups);
  const units: SourceUnit[] = [];
  const notReady: FileRef[] = [];
  let ignored = 0;
  const add = (r: { units: SourceUnit[]; notReady: FileRef[]; ignored: number }) => {
    units.push(...r.units);
    notReady.push(...r.notReady);
    ignored += r.ignored;
  };
  for (const root of sequenceRoots(dataDir)) {
    for (const sg of (await dirNames(root))
      .filter((e) => e.isDir)
      .map((e) => e.name)
      .sort()) {
      if (!isSegment(sg) || (wanted.size > 0 && !wanted.has(sg))) continue;
      for (const level1 of (await dirNames(join(root, sg))).filter((e) => e.isDir && isNumericSegment(e.name))) {
        const l1 = join(root, sg, level1.name);
        const children = await dirNames(l1);
        const numericDirs = children.filter((e) => e.isDir && isNumericSegment(e.name));
        if (numericDirs.length > 0) {
          for (const tp of numericDirs.sort((a, b) => Number(a.name) - Number(b.name))) {
            add(await unitsInPartition(join(l1, tp.name), { sg, vg: level1.name, tp: tp.name }));
          }
        }
        // 0.10/0.11 had no virtual storage groups: the level under the group is the time partition.
        if (children.some((e) => !e.isDir && e.name.endsWith(".tsfile"))) {
          add(await unitsInPartition(l1, { sg, vg: "0", tp: level1.name }));
        }
      }
    }
  }
  return { units, notReady, ignored };
};

export const iotdbSource = (dataDir: string): Source => ({
  name: "iotdb",
  list: (storageGroups) =>
    Effect.tryPromise({
      try: () => listIotdbDataDir(dataDir, storageGroups),
      catch: (cause) => new SourceError({ message: `cannot scan ${dataDir}: ${String(cause)}`, cause }),
    }),
});

export const createIotdbSource: SourceFactory = (ctx) => Effect.succeed(iotdbSource(ctx.dataDir));
