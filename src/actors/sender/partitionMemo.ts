// What the scan remembers of each time partition between rounds, so an unchanged partition costs its stamp and its side files' stats.
import { stat } from "node:fs/promises";
import type { SourceListing, SourcePartition } from "../../plugins/source.js";
import { partitionKey, type ConfirmedView } from "./confirmedSet.js";

/**
 * Side files (`.mods`, `.mods2`) change in place, without changing their directory, so a clean
 * partition keeps the ones its listing showed, with the size and mtime they had: the confirmed
 * ones, since the partition was clean.
 */
interface SideFiles {
  readonly paths: ReadonlyArray<string>;
  readonly sizes: Float64Array;
  readonly mtimes: Float64Array;
}

/**
 * A partition whose listing at `stamp` left nothing to do: every sealed file confirmed with its
 * side files as they were, every confirmed file still there. It stays so while the stamp, the
 * confirmed files (`version`) and the side files do not change.
 */
interface Clean {
  readonly stamp: string;
  readonly version: number;
  readonly ignored: number;
  readonly sides: SideFiles | undefined;
}

const sideFilesOf = (listing: SourceListing): SideFiles | undefined => {
  const paths: string[] = [];
  const sizes: number[] = [];
  const mtimes: number[] = [];
  for (const unit of listing.units) {
    for (const p of unit.parts) {
      if (!p.stat) continue;
      paths.push(p.path);
      sizes.push(p.stat.size);
      mtimes.push(p.stat.mtimeMs);
    }
  }
  return paths.length === 0 ? undefined : { paths, sizes: Float64Array.from(sizes), mtimes: Float64Array.from(mtimes) };
};

/** Side files stat'ed at once, enough to keep the thread pool busy without flooding it. */
const statConcurrency = 16;

/** Per time partition (`sg/vg/tp`), the clean ones only: anything else is listed every round. */
export class PartitionMemo {
  private readonly clean = new Map<string, Clean>();

  /** Whether the partition needs no listing: clean at this stamp, its confirmed files unchanged since. */
  known(key: string, stamp: string, confirmed: ConfirmedView): boolean {
    const c = this.clean.get(key);
    return c !== undefined && c.stamp === stamp && c.version === confirmed.versionOf(key);
  }

  /** Files not ready or not TsFiles that the partition's last listing counted. */
  ignoredIn(key: string): number {
    return this.clean.get(key)?.ignored ?? 0;
  }

  /**
   * Stats every side file of every clean partition: one stat each per round, the price of files
   * that change without their directory. A partition with one changed (or gone) is forgotten, so
   * the source lists it again.
   */
  async checkSideFiles(signal?: AbortSignal): Promise<void> {
    const work: { key: string; sides: SideFiles; i: number }[] = [];
    for (const [key, c] of this.clean) if (c.sides) for (let i = 0; i < c.sides.paths.length; i++) work.push({ key, sides: c.sides, i });
    let next = 0;
    const changed = new Set<string>();
    const worker = async () => {
      for (let w = work[next++]; w !== undefined; w = work[next++]) {
        if (changed.has(w.key)) continue;
        signal?.throwIfAborted();
        const s = await stat(w.sides.paths[w.i]!).catch(() => undefined);
        if (!s || s.size !== w.sides.sizes[w.i] || s.mtimeMs !== w.sides.mtimes[w.i]) changed.add(w.key);
      }
    };
    await Promise.all(Array.from({ length: Math.min(statConcurrency, work.length) }, worker));
    for (const key of changed) this.clean.delete(key);
  }

  /** After a partition was diffed: clean (and vouched for by a stamp) is remembered, anything else forgotten. */
  record(p: SourcePartition, listing: SourceListing, clean: boolean, confirmed: ConfirmedView): void {
    const key = partitionKey(p);
    if (!clean || p.stamp === undefined) this.clean.delete(key);
    else this.clean.set(key, { stamp: p.stamp, version: confirmed.versionOf(key), ignored: listing.ignored, sides: sideFilesOf(listing) });
  }

  /** Keeps only the partitions the source reported this round. */
  retain(reported: ReadonlySet<string>): void {
    for (const key of this.clean.keys()) if (!reported.has(key)) this.clean.delete(key);
  }

  get size(): number {
    return this.clean.size;
  }
}
