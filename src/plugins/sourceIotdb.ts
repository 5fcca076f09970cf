// The built-in `iotdb` source: sealed TsFiles with their side files in every IoTDB data directory layout.
import type { Stats } from "node:fs";
import { Effect } from "effect";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { isNumericSegment, isSegment, isTsFileName } from "../protocol/names.js";
import type { FileRef } from "../protocol/messages.js";
import { isSideKind, partFileName, partOrder, sideKinds, type SourcePart, type SyncUnit } from "../protocol/parts.js";
import { SourceError, type Source, type SourceFactory, type SourceListing, type SourcePartition } from "./source.js";

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

interface Entry {
  readonly name: string;
  readonly isDir: boolean;
}

const dirNames = async (dir: string): Promise<ReadonlyArray<Entry>> => {
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

/**
 * How old a directory's mtime and ctime must be, when a listing starts, for the listing to vouch
 * for it: a directory changed again within the same tick of the file system's clock keeps its
 * mtime (the kernel's clock is coarse; some file systems keep whole or even-numbered seconds).
 * Younger directories are listed again next round, as make and git treat "racy" timestamps.
 */
export const racyWindowMs = 2000;

const statDir = async (path: string): Promise<Stats | undefined> => {
  try {
    const s = await stat(path);
    return s.isDirectory() ? s : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw e;
  }
};

/**
 * What says a directory's entries did not change: entries added, removed or renamed (IoTDB seals
 * a file by renaming its `.resource` in) move its mtime; ctime also moves when a copy tool sets the
 * mtime back; the inode tells a directory made again apart. undefined: too young to vouch for.
 */
export const stampOf = (s: Pick<Stats, "ino" | "mtimeMs" | "ctimeMs">, listedFrom: number, racyMs = racyWindowMs): string | undefined =>
  Math.max(s.mtimeMs, s.ctimeMs) < listedFrom - racyMs ? `${s.ino}:${s.mtimeMs}:${s.ctimeMs}` : undefined;

/** Tests only: the clock a listing starts by, and the racy window. */
export interface IotdbSourceClock {
  readonly now?: () => number;
  readonly racyWindowMs?: number;
}

/** A directory above the partitions, as remembered between listings: its subdirectories, and whether it holds TsFiles. */
interface Level {
  readonly stamp: string | undefined;
  readonly dirs: ReadonlyArray<string>;
  readonly tsfiles: boolean;
}

/** A directory of TsFiles found by a listing, before it is read. */
interface PartitionDir {
  readonly ref: { readonly sg: string; readonly vg: string; readonly tp: string };
  readonly path: string;
  readonly stamp: string | undefined;
}

/**
 * The directories of a data directory, remembered between listings by the source that read them:
 * a directory whose stamp did not change costs a stat, not a readdir.
 */
class DataDirWalk {
  private readonly levels = new Map<string, Level>();

  constructor(
    private readonly dataDir: string,
    private readonly clock: IotdbSourceClock = {},
  ) {}

  /** When a listing starts: what every directory's times are held against. */
  now(): number {
    return (this.clock.now ?? Date.now)();
  }

  private stamp(s: Stats, listedFrom: number): string | undefined {
    return stampOf(s, listedFrom, this.clock.racyWindowMs);
  }

  private async level(path: string, listedFrom: number, visited: Set<string>): Promise<Level | undefined> {
    const s = await statDir(path);
    if (!s) return undefined;
    visited.add(path);
    const stamp = this.stamp(s, listedFrom);
    const known = this.levels.get(path);
    if (stamp !== undefined && known?.stamp === stamp) return known;
    const entries = await dirNames(path);
    const level = {
      stamp,
      dirs: entries.filter((e) => e.isDir).map((e) => e.name),
      tsfiles: entries.some((e) => !e.isDir && e.name.endsWith(".tsfile")),
    };
    if (stamp !== undefined) this.levels.set(path, level);
    else this.levels.delete(path);
    return level;
  }

  /** Every directory of TsFiles of the groups wanted, in listing order: groups by name, partitions by number. */
  async partitionDirs(storageGroups: ReadonlyArray<string>, listedFrom: number, signal?: AbortSignal): Promise<PartitionDir[]> {
    const wanted = new Set(storageGroups);
    const visited = new Set<string>();
    const out: PartitionDir[] = [];
    for (const root of sequenceRoots(this.dataDir)) {
      const r = await this.level(root, listedFrom, visited);
      for (const sg of [...(r?.dirs ?? [])].sort()) {
        if (!isSegment(sg) || (wanted.size > 0 && !wanted.has(sg))) continue;
        const g = await this.level(join(root, sg), listedFrom, visited);
        for (const l1 of (g?.dirs ?? []).filter(isNumericSegment)) {
          signal?.throwIfAborted();
          const l1Path = join(root, sg, l1);
          const level1 = await this.level(l1Path, listedFrom, visited);
          if (!level1) continue;
          const tps = level1.dirs.filter(isNumericSegment).sort((a, b) => Number(a) - Number(b));
          // The stats of one level at once: the thread pool overlaps them, in order all the same.
          const stats = await Promise.all(tps.map((tp) => statDir(join(l1Path, tp))));
          tps.forEach((tp, i) => {
            const s = stats[i];
            if (s) out.push({ ref: { sg, vg: l1, tp }, path: join(l1Path, tp), stamp: this.stamp(s, listedFrom) });
          });
          // 0.10/0.11 had no virtual storage groups: the level under the group is the time partition.
          if (level1.tsfiles) out.push({ ref: { sg, vg: "0", tp: l1 }, path: l1Path, stamp: level1.stamp });
        }
      }
    }
    // Directories gone (TTL, a group removed) are forgotten; with a group filter, so are the others'.
    for (const path of this.levels.keys()) if (!visited.has(path)) this.levels.delete(path);
    return out;
  }
}

/** Every time partition with its stamp; two layouts side by side can name one partition twice, reported once with both directories. */
const partitionStamps = async (
  walk: DataDirWalk,
  storageGroups: ReadonlyArray<string>,
  dirsOf: WeakMap<SourcePartition, ReadonlyArray<string>>,
  signal?: AbortSignal,
): Promise<SourcePartition[]> => {
  const byKey = new Map<string, PartitionDir[]>();
  for (const d of await walk.partitionDirs(storageGroups, walk.now(), signal)) {
    const key = `${d.ref.sg}/${d.ref.vg}/${d.ref.tp}`;
    const same = byKey.get(key);
    if (same) same.push(d);
    else byKey.set(key, [d]);
  }
  const out: SourcePartition[] = [];
  for (const dirs of byKey.values()) {
    const stamp = dirs.every((d) => d.stamp !== undefined) ? dirs.map((d) => d.stamp).join("|") : undefined;
    const p: SourcePartition = { ...dirs[0]!.ref, stamp };
    dirsOf.set(
      p,
      dirs.map((d) => d.path),
    );
    out.push(p);
  }
  return out;
};

const listPartition = async (p: SourcePartition, dirs: ReadonlyArray<string>): Promise<SourceListing> => {
  const ref = { sg: p.sg, vg: p.vg, tp: p.tp };
  const units: SourceUnit[] = [];
  const notReady: FileRef[] = [];
  let ignored = 0;
  for (const dir of dirs) {
    const r = await unitsInPartition(dir, ref);
    units.push(...r.units);
    notReady.push(...r.notReady);
    ignored += r.ignored;
  }
  return { units, notReady, ignored };
};

const listAll = async (walk: DataDirWalk, storageGroups: ReadonlyArray<string>, signal?: AbortSignal): Promise<SourceListing> => {
  const dirsOf = new WeakMap<SourcePartition, ReadonlyArray<string>>();
  const units: SourceUnit[] = [];
  const notReady: FileRef[] = [];
  let ignored = 0;
  for (const p of await partitionStamps(walk, storageGroups, dirsOf, signal)) {
    signal?.throwIfAborted();
    const r = await listPartition(p, dirsOf.get(p) ?? []);
    units.push(...r.units);
    notReady.push(...r.notReady);
    ignored += r.ignored;
  }
  return { units, notReady, ignored };
};

/** Every sealed file of a data directory, read in full. */
export const listIotdbDataDir = (dataDir: string, storageGroups: ReadonlyArray<string>): Promise<SourceListing> =>
  listAll(new DataDirWalk(dataDir), storageGroups);

/**
 * The source of one data directory. Between listings it remembers the directories above the
 * partitions (checked against each one's stamp every time); what the sender holds of each
 * partition is the sender's to remember.
 */
export const iotdbSource = (dataDir: string, clock?: IotdbSourceClock): Source => {
  const walk = new DataDirWalk(dataDir, clock);
  // Where each partition `stamps` reported lives, for `list`: held only as long as the caller holds the partition.
  const dirsOf = new WeakMap<SourcePartition, ReadonlyArray<string>>();
  const failed = (cause: unknown) => new SourceError({ message: `cannot scan ${dataDir}: ${String(cause)}`, cause });
  return {
    name: "iotdb",
    list: (storageGroups) => Effect.tryPromise({ try: (signal) => listAll(walk, storageGroups, signal), catch: failed }),
    byPartition: {
      stamps: (storageGroups) =>
        Effect.tryPromise({ try: (signal) => partitionStamps(walk, storageGroups, dirsOf, signal), catch: failed }),
      list: (p) =>
        Effect.tryPromise({
          try: () => {
            const dirs = dirsOf.get(p);
            if (!dirs) throw new Error(`partition ${p.sg}/${p.vg}/${p.tp} was not reported by this source's stamps`);
            return listPartition(p, dirs);
          },
          catch: failed,
        }),
    },
  };
};

export const createIotdbSource: SourceFactory = (ctx) => Effect.succeed(iotdbSource(ctx.dataDir));
