// The storage contract: where a receiver places verified files and schema records.
import { Data, type Effect } from "effect";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FileRef, PartKind } from "../protocol/messages.js";
import type { SchemaLogFormat } from "../iotdb/schemaRecords.js";

/** A part that passed its digest check and waits in staging, ready to be placed. */
export interface StagedPart {
  readonly kind: PartKind;
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/** What the receiver learned about a TsFile while verifying it; plugins may index it. */
export interface TsFileFacts {
  readonly devices: ReadonlyArray<{ readonly id: string; readonly startTime: string | null; readonly endTime: string | null }>;
  readonly version: number;
}

export interface LoadRequest {
  readonly senderId: string;
  readonly ref: FileRef;
  /** Only the parts that changed; parts the storage already holds are not repeated. */
  readonly parts: ReadonlyArray<StagedPart>;
  readonly facts: TsFileFacts | undefined;
}

/** A part that arrived whole in one message (a small file) and passed its checks in memory. */
export interface CarriedPart {
  readonly kind: PartKind;
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly sha256: string;
}

export interface BytesLoadRequest {
  readonly senderId: string;
  readonly ref: FileRef;
  readonly parts: ReadonlyArray<CarriedPart>;
  readonly facts: TsFileFacts | undefined;
}

/**
 * One piece of a sender's schema log as it travelled: whole records, byte for byte as in the
 * sender's `mlog.bin` (IoTDB 0.12+) or `mlog.txt` (0.10/0.11). `splitSchemaRecords` in
 * `src/iotdb/schemaRecords.ts` cuts it into records.
 */
export interface SchemaBatch {
  readonly format: SchemaLogFormat;
  /** Goes up by one each time IoTDB rewrote the log (a schema snapshot truncates it). */
  readonly epoch: number;
  /** Where `bytes` starts in that generation of the sender's log. */
  readonly offset: number;
  readonly bytes: Uint8Array;
}

export class StorageError extends Data.TaggedError("StorageError")<{
  readonly op: string;
  readonly message: string;
  readonly cause?: unknown;
}> {}

/**
 * Where received files end up. Every storage, built-in or third-party, implements this; the
 * receiver never touches the destination any other way. `load` must be all-or-nothing per part
 * and safe to repeat: the receiver may call it again for a part it already placed after a crash.
 */
export interface Storage {
  readonly name: string;
  readonly load: (req: LoadRequest) => Effect.Effect<void, StorageError>;
  /**
   * Optional: places parts that arrived whole in memory, with `load`'s contract (durable when it
   * succeeds, all-or-nothing per part, safe to repeat). Without it the receiver writes such parts to
   * staging first and calls `load`; with it a small file costs the storage one write instead of two.
   */
  readonly loadBytes?: (req: BytesLoadRequest) => Effect.Effect<void, StorageError>;
  /** Removes the TsFile and its side files; answers whether anything was there. */
  readonly remove: (senderId: string, ref: FileRef) => Effect.Effect<boolean, StorageError>;
  /** "Do you hold this part with this digest?" Used by recovery so nothing is loaded twice. */
  readonly has: (ref: FileRef, kind: PartKind, sha256: string) => Effect.Effect<boolean, StorageError>;
  /**
   * Schema records of one sender, in log order, each at least once: after a receiver crash the
   * last batch may come again (same `batch.epoch` and `batch.offset`). `records` are the lines
   * of an `mlog.txt`, or for `mlog.bin` each record's serialized plans in base64. The receiver
   * always passes `batch`; it is optional so storages written against the first contract still fit.
   */
  readonly applySchema: (senderId: string, records: ReadonlyArray<string>, batch?: SchemaBatch) => Effect.Effect<void, StorageError>;
  readonly close: Effect.Effect<void>;
}

export interface StorageContext {
  /** The receiver's data directory: a storage keeps its own state below it. */
  readonly dataDir: string;
  /** `plugin.*` keys of the receiver properties, prefix removed. */
  readonly options: Readonly<Record<string, string>>;
  /** NATS servers the receiver uses, for storages that live in NATS. */
  readonly natsServers: string;
  readonly natsOptions: Readonly<Record<string, unknown>>;
  /** The receiver's own connection, authenticated as configured; storages in NATS should use it. */
  readonly nc?: NatsConnection;
  /** The receiver's log. */
  readonly log?: (line: string) => void;
}

export type StorageFactory = (ctx: StorageContext) => Effect.Effect<Storage, StorageError>;
