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

export class SourceError extends Data.TaggedError("SourceError")<{ readonly message: string; readonly cause?: unknown }> {}

/** Finds sealed files. Built-in: IoTDB data directories; third parties may add others. */
export interface Source {
  readonly name: string;
  readonly list: (storageGroups: ReadonlyArray<string>) => Effect.Effect<SourceListing, SourceError>;
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
