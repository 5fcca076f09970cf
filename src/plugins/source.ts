import { Data, type Effect } from "effect";
import type { FileRef, PartKind } from "../protocol/messages.js";

export interface SourcePart {
  readonly kind: PartKind;
  readonly path: string;
  /**
   * Present for side files, which change after sealing. A sealed TsFile and its .resource never
   * change under the same name, so the scan does not pay a stat for each of them.
   */
  readonly stat?: { readonly size: number; readonly mtimeMs: number };
}

/** A sealed TsFile found on the sender with its side files. */
export interface SourceUnit {
  readonly ref: FileRef;
  readonly parts: ReadonlyArray<SourcePart>;
}

export interface SourceListing {
  readonly units: ReadonlyArray<SourceUnit>;
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
