// The sender's scan: lists a source, pins new or changed units for the round, and finds confirmed files gone from disk.
import { Effect } from "effect";
import type { Source, SourceListing, SourcePartitions } from "../../plugins/source.js";
import { abortable } from "../runtime.js";
import type { FileRef } from "../../protocol/messages.js";
import { isSideKind, partOrder, type LocalPart, type SourcePart, type SyncUnit } from "../../protocol/parts.js";
import type { ScanResult } from "../../machines/senderTypes.js";
import type { WorkDir } from "./workDir.js";
import { sha256OfFile } from "../../files/fileDigest.js";
import { partitionKey, type ConfirmedPartition, type ConfirmedView } from "./confirmedSet.js";
import { PartitionMemo } from "./partitionMemo.js";

type SourceUnit = SyncUnit<SourcePart>;

/** A listed file needs sending unless confirmed with each side file's size and mtime as listed. */
const needsSending = (unit: SourceUnit, confirmed: ConfirmedPartition | undefined): boolean => {
  if (!confirmed?.has(unit.ref.name)) return true;
  if (!unit.parts.some((p) => p.stat)) return false;
  const parts = confirmed.parts(unit.ref.name) ?? [];
  return unit.parts.some((p) => {
    if (!p.stat) return false;
    const c = parts.find((x) => x.kind === p.kind);
    return c === undefined || c.size !== p.stat.size || c.mtimeMs !== p.stat.mtimeMs;
  });
};

/** Pins the listed files that need sending; undefined for one gone meanwhile. */
const pinUnit = async (unit: SourceUnit, confirmed: ConfirmedPartition | undefined, work: WorkDir): Promise<SyncUnit | undefined> => {
  const known = confirmed?.parts(unit.ref.name);
  try {
    const parts: LocalPart[] = [];
    for (const kind of partOrder) {
      const p = unit.parts.find((x) => x.kind === kind);
      if (!p) continue;
      const pinned = await work.pin(unit.ref, kind, p.path);
      // Side files are small and mutable: hash them now so "have" is answered on content.
      const sha256 = isSideKind(kind)
        ? await sha256OfFile(pinned.path)
        : known?.find((c) => c.kind === kind && c.size === pinned.size)?.sha256;
      parts.push({ kind, path: pinned.path, size: pinned.size, mtimeMs: pinned.mtimeMs, sha256 });
    }
    return { ref: unit.ref, parts };
  } catch (e) {
    // Compaction or TTL removed it between listing and pinning: it will show up as deleted or new.
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    return undefined;
  }
};

/** Confirmed files of a partition that its listing no longer shows (a file not ready yet still counts as there). */
const goneFrom = (confirmed: ConfirmedPartition | undefined, present: ReadonlySet<string>): FileRef[] => {
  const gone: FileRef[] = [];
  if (confirmed) for (const name of confirmed.names()) if (!present.has(name)) gone.push({ ...confirmed.ref, name });
  return gone;
};

/** Deletions stay within `sync_storage_groups`: another group's files are not this sender's business. */
const inGroups = (storageGroups: ReadonlyArray<string>): ((sg: string) => boolean) => {
  const wanted = new Set(storageGroups);
  return (sg) => wanted.size === 0 || wanted.has(sg);
};

/** Every file of confirmed partitions the source did not report at all, in the groups synced. */
const partitionsGone = (confirmed: ConfirmedView, reported: ReadonlySet<string>, synced: (sg: string) => boolean): FileRef[] => {
  const gone: FileRef[] = [];
  for (const p of confirmed.partitions()) if (!reported.has(partitionKey(p.ref)) && synced(p.ref.sg)) gone.push(...goneFrom(p, new Set()));
  return gone;
};

/** The diff of one partition's listing against its confirmed files. */
const diffPartition = async (
  listing: SourceListing,
  confirmed: ConfirmedPartition | undefined,
  work: WorkDir,
): Promise<{ units: SyncUnit[]; deletions: FileRef[]; ignored: number; clean: boolean }> => {
  const units: SyncUnit[] = [];
  let vanished = 0;
  for (const unit of listing.units) {
    if (!needsSending(unit, confirmed)) continue;
    const pinned = await pinUnit(unit, confirmed, work);
    if (pinned) units.push(pinned);
    else vanished++;
  }
  const present = new Set<string>();
  for (const u of listing.units) present.add(u.ref.name);
  for (const r of listing.notReady) present.add(r.name);
  const deletions = goneFrom(confirmed, present);
  const clean = units.length === 0 && deletions.length === 0 && vanished === 0;
  return { units, deletions, ignored: listing.ignored + vanished, clean };
};

/**
 * The scan's memory of the partitions of one work directory and source, for as long as the sender
 * runs: a new process starts with none, so its first round lists everything.
 */
const memos = new WeakMap<WorkDir, { source: Source; memo: PartitionMemo }>();

const memoFor = (work: WorkDir, source: Source): PartitionMemo => {
  const m = memos.get(work);
  if (m?.source === source) return m.memo;
  const memo = new PartitionMemo();
  memos.set(work, { source, memo });
  return memo;
};

/** How many partitions the scan remembers as clean for this work directory (tests, the bench). */
export const rememberedPartitions = (work: WorkDir): number => memos.get(work)?.memo.size ?? 0;

/**
 * A round by partition: the side files of clean partitions stat'ed, every partition's stamp, then
 * only the partitions not clean at their stamp listed and diffed, one at a time. An unchanged tree
 * costs the stamps (a stat per directory) and a stat per side file.
 */
const scanByPartition = (
  source: Source,
  byPartition: SourcePartitions,
  work: WorkDir,
  storageGroups: ReadonlyArray<string>,
): Effect.Effect<ScanResult, unknown> =>
  Effect.gen(function* () {
    const memo = memoFor(work, source);
    yield* abortable((signal) => memo.checkSideFiles(signal));
    const partitions = yield* byPartition.stamps(storageGroups);
    const synced = inGroups(storageGroups);
    const units: SyncUnit[] = [];
    const deletions: FileRef[] = [];
    let ignored = 0;
    const reported = new Set<string>();
    for (const p of partitions) {
      const key = partitionKey(p);
      if (reported.has(key)) return yield* Effect.fail(new Error(`source ${source.name} reported the partition ${key} twice`));
      reported.add(key);
      if (p.stamp !== undefined && memo.known(key, p.stamp, work.confirmed)) {
        ignored += memo.ignoredIn(key);
        continue;
      }
      const listing = yield* byPartition.list(p);
      const d = yield* abortable(() => diffPartition(listing, work.confirmed.partition(key), work));
      units.push(...d.units);
      if (synced(p.sg)) deletions.push(...d.deletions);
      ignored += d.ignored;
      memo.record(p, listing, d.clean, work.confirmed);
    }
    memo.retain(reported);
    deletions.push(...partitionsGone(work.confirmed, reported, synced));
    return { units, deletions, ignored };
  });

/** A round over a source that lists everything at once (plugins without `byPartition`). */
const diffListing = async (listing: SourceListing, work: WorkDir, storageGroups: ReadonlyArray<string>): Promise<ScanResult> => {
  const present = new Map<string, Set<string>>();
  const see = (ref: FileRef) => {
    const key = partitionKey(ref);
    const names = present.get(key) ?? new Set<string>();
    present.set(key, names.add(ref.name));
  };
  listing.notReady.forEach(see);
  const units: SyncUnit[] = [];
  let ignored = listing.ignored;
  for (const unit of listing.units) {
    see(unit.ref);
    const confirmed = work.confirmed.partition(partitionKey(unit.ref));
    if (!needsSending(unit, confirmed)) continue;
    const pinned = await pinUnit(unit, confirmed, work);
    if (pinned) units.push(pinned);
    else ignored++;
  }
  const synced = inGroups(storageGroups);
  const deletions: FileRef[] = [];
  for (const [key, names] of present) {
    const confirmed = work.confirmed.partition(key);
    if (confirmed && synced(confirmed.ref.sg)) deletions.push(...goneFrom(confirmed, names));
  }
  deletions.push(...partitionsGone(work.confirmed, new Set(present.keys()), synced));
  return { units, deletions, ignored };
};

/**
 * The diff of a round, made after recovery: new sealed files (or files whose side files changed)
 * to send, pinned in the snapshot; and confirmed files gone from disk, to delete on the receiver.
 */
export const scanForRound = (source: Source, work: WorkDir, storageGroups: ReadonlyArray<string>): Effect.Effect<ScanResult, unknown> => {
  const byPartition = source.byPartition;
  return byPartition
    ? scanByPartition(source, byPartition, work, storageGroups)
    : source.list(storageGroups).pipe(Effect.flatMap((listing) => abortable(() => diffListing(listing, work, storageGroups))));
};
