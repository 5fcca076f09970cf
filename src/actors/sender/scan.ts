// The sender's scan: lists a source, pins new or changed units for the round, and finds confirmed files gone from disk.
import { Effect } from "effect";
import type { SourceListing } from "../../plugins/source.js";
import { abortable } from "../runtime.js";
import type { FileRef } from "../../protocol/messages.js";
import { isSideKind, partOrder, type LocalPart, type SourcePart, type SyncUnit } from "../../protocol/parts.js";
import type { Source } from "../../plugins/source.js";
import { refKey, type ScanResult } from "../../machines/senderTypes.js";
import type { WorkDir } from "./workDir.js";
import { sha256OfFile } from "../../files/fileDigest.js";

const sideFileChanged = (unit: SyncUnit<SourcePart>, work: WorkDir): boolean => {
  const confirmed = work.confirmedUnits.get(refKey(unit.ref));
  if (!confirmed) return true;
  return unit.parts.some((p) => {
    if (!p.stat) return false;
    const c = confirmed.parts.find((x) => x.kind === p.kind);
    return c === undefined || c.size !== p.stat.size || c.mtimeMs !== p.stat.mtimeMs;
  });
};

/**
 * The diff of a round, made after recovery: new sealed files (or files whose side files changed)
 * to send, pinned in the snapshot; and confirmed files gone from disk, to delete on the receiver.
 */
export const scanForRound = (source: Source, work: WorkDir, storageGroups: ReadonlyArray<string>): Effect.Effect<ScanResult, unknown> =>
  source.list(storageGroups).pipe(Effect.flatMap((listing) => abortable(() => diffListing(listing, work, storageGroups))));

const diffListing = async (listing: SourceListing, work: WorkDir, storageGroups: ReadonlyArray<string>): Promise<ScanResult> => {
  const seen = new Set<string>(listing.notReady.map(refKey));
  const units: SyncUnit[] = [];
  let ignored = listing.ignored;
  for (const unit of listing.units) {
    const key = refKey(unit.ref);
    seen.add(key);
    if (!sideFileChanged(unit, work)) continue;
    const confirmed = work.confirmedUnits.get(key);
    try {
      const parts: LocalPart[] = [];
      for (const kind of partOrder) {
        const p = unit.parts.find((x) => x.kind === kind);
        if (!p) continue;
        const pinned = await work.pin(unit.ref, kind, p.path);
        const known = confirmed?.parts.find((c) => c.kind === kind && c.size === pinned.size);
        // Side files are small and mutable: hash them now so "have" is answered on content.
        const sha256 = isSideKind(kind) ? await sha256OfFile(pinned.path) : known?.sha256;
        parts.push({ kind, path: pinned.path, size: pinned.size, mtimeMs: pinned.mtimeMs, sha256 });
      }
      units.push({ ref: unit.ref, parts });
    } catch (e) {
      // Compaction or TTL removed it between listing and pinning: it will show up as deleted or new.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      ignored++;
    }
  }
  const wanted = new Set(storageGroups);
  const deletions: FileRef[] = [];
  for (const [key, c] of work.confirmedUnits) {
    if (!seen.has(key) && (wanted.size === 0 || wanted.has(c.ref.sg))) deletions.push(c.ref);
  }
  return { units, deletions, ignored };
};
