// The source contract: how a sender finds sealed TsFiles (built in: IoTDB data directories).
import { Data, type Effect } from "effect";
import type { FileRef } from "../protocol/messages.js";
import type { SourcePart, SyncUnit } from "../protocol/parts.js";

// The unit a source lists is the unit the sender sends: one type, defined in src/protocol/parts.ts.
export type { SourcePart, SyncUnit } from "../protocol/parts.js";

export interface SourceListing {
  /** Sealed TsFiles, each with its parts. */
  readonly units: ReadonlyArray<SyncUnit<SourcePart>>;
  /** TsFiles seen but not ready (no .resource, under compaction): not sent, and not deleted either. */
  readonly notReady: ReadonlyArray<FileRef>;
  readonly ignored: number;
}

/** A time partition as a source reports it: `sg`, `vg`, `tp` as in the FileRefs of its files. */
export interface SourcePartition {
  readonly sg: string;
  readonly vg: string;
  readonly tp: string;
  /**
   * Changes whenever the set of files in the partition changes (for a directory: its mtime and
   * ctime). undefined when the source cannot vouch for it, e.g. a directory changed too recently to
   * tell a later change in the same clock tick apart: the sender then lists it every round.
   */
  readonly stamp: string | undefined;
}

/**
 * A source's files by time partition: the stamps of all first, then the files of the partitions
 * the sender does not already hold at that stamp, one partition at a time. An unchanged tree then
 * costs what the stamps cost (the built-in source: a stat per directory), and a first listing
 * holds one partition in memory at a time, not the whole tree.
 */
export interface SourcePartitions {
  /** Every partition present, of the groups asked for, once each: a confirmed partition not reported is gone. */
  readonly stamps: (storageGroups: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<SourcePartition>, SourceError>;
  /**
   * The files of a partition, given as `stamps` returned it. Side files (`stat` set) may change
   * without changing the stamp: the sender stats the ones listed and asks again when one changed.
   */
  readonly list: (partition: SourcePartition) => Effect.Effect<SourceListing, SourceError>;
}

export class SourceError extends Data.TaggedError("SourceError")<{ readonly message: string; readonly cause?: unknown }> {}

/** Finds sealed files. Built-in: IoTDB data directories; third parties may add others. */
export interface Source {
  readonly name: string;
  readonly list: (storageGroups: ReadonlyArray<string>) => Effect.Effect<SourceListing, SourceError>;
  /** Optional: the same files by time partition, so a sender can skip those it holds unchanged. */
  readonly byPartition?: SourcePartitions;
}

export interface SourceContext {
  /** The sender's `data_directory`: where the built-in source looks, and where a plugin may too. */
  readonly dataDir: string;
  /** `plugin.*` keys of the sender properties, prefix removed. */
  readonly options: Readonly<Record<string, string>>;
  /** The sender's log. */
  readonly log?: (line: string) => void;
}

/** What a source plugin module exports as `createSource` (or its default export). */
export type SourceFactory = (ctx: SourceContext) => Effect.Effect<Source, SourceError>;
