// Types the sender machines and their actors share: scan results, session, part, step inputs, failures and summaries.
import { isSenderFailure, Unexpected, type LocalFailure, type ReplyFailure, type TransportFailure } from "../protocol/failures.js";
import type { FileRef, PartKind } from "../protocol/messages.js";
import { fileKey, type SyncUnit } from "../protocol/parts.js";

export interface ScanResult {
  readonly units: ReadonlyArray<SyncUnit>;
  readonly deletions: ReadonlyArray<FileRef>;
  /** Files seen but not offered this round (unsealed, filtered, under compaction), with why. */
  readonly ignored: number;
}

export interface SessionInfo {
  readonly prefix: string;
  readonly sessionId: string;
  readonly chunkBytes: number;
  /**
   * Small files that may be `put` at once in this session (the lesser of the sender's
   * files_in_flight and the receiver's limit); 0 when the receiver takes no puts.
   */
  readonly filesInFlight: number;
}

/** One part after its transfer: what the receiver must verify and then load. */
export interface SentPart {
  readonly kind: PartKind;
  readonly fileId: string | undefined;
  readonly size: number;
  readonly sha256: string;
  /** True when the receiver already held it ("have") and nothing was sent. */
  readonly had: boolean;
  readonly bytesSent: number;
  /** Where the transfer started: > 0 when the receiver kept a partial copy. */
  readonly resumedFrom: number;
}

export interface TransferInput {
  readonly session: SessionInfo;
  readonly unit: SyncUnit;
  readonly partIndex: number;
}

export interface VerifyInput {
  readonly session: SessionInfo;
  readonly unit: SyncUnit;
  readonly part: SentPart;
}

export interface LoadInput {
  readonly session: SessionInfo;
  readonly unit: SyncUnit;
  readonly parts: ReadonlyArray<SentPart>;
}

/** Small files put one message each, several at once. */
export interface PutInput {
  readonly session: SessionInfo;
  readonly units: ReadonlyArray<SyncUnit>;
}

/** What became of each put file: loaded and confirmed (or already there), or how it failed. */
export type PutResult =
  | { readonly unit: SyncUnit; readonly parts: ReadonlyArray<SentPart>; readonly failure?: undefined }
  | { readonly unit: SyncUnit; readonly parts?: undefined; readonly failure: StepFailure };

export interface PutOutput {
  readonly results: ReadonlyArray<PutResult>;
}

/** Whether a unit goes in one message of `chunkBytes`: all its parts together. */
export const fitsOneMessage = (unit: SyncUnit, chunkBytes: number): boolean => unit.parts.reduce((n, p) => n + p.size, 0) <= chunkBytes;

export interface DeleteOutput {
  readonly deleted: ReadonlyArray<FileRef>;
  readonly failed: ReadonlyArray<{ readonly ref: FileRef; readonly reason: string }>;
}

/**
 * How a step failed: actors reject with one of these tagged failures (src/protocol/failures.ts).
 * `_tag` says what happened (a receiver's code, a timeout, a local problem); `kind` says what the
 * machine does next (conflict, refused, sessionLost, retryable, fatal), and is all its guards read.
 * `code` is the receiver's status code when it answered, absent when it did not.
 */
export type StepFailure = ReplyFailure | TransportFailure | LocalFailure;

export const isStepFailure = (e: unknown): e is StepFailure => isSenderFailure(e);

export const asStepFailure = (e: unknown): StepFailure =>
  isStepFailure(e) ? e : new Unexpected({ message: e instanceof Error ? e.message : String(e), cause: e });

export const refKey = (r: FileRef): string => fileKey(r);

export interface RoundSummary {
  readonly sent: ReadonlyArray<{ readonly file: string; readonly bytes: number; readonly resumedFrom: number }>;
  readonly skipped: ReadonlyArray<{ readonly file: string; readonly reason: string }>;
  readonly failed: ReadonlyArray<{ readonly file: string; readonly reason: string; readonly attempts: number }>;
  readonly conflicts: ReadonlyArray<{ readonly sg: string; readonly message: string }>;
  readonly deleted: ReadonlyArray<string>;
  readonly bytesSent: number;
  /** Set when the round could not run at all (refused, receiver unreachable). */
  readonly roundError: string | undefined;
}

export const emptySummary: RoundSummary = {
  sent: [],
  skipped: [],
  failed: [],
  conflicts: [],
  deleted: [],
  bytesSent: 0,
  roundError: undefined,
};

export const roundSucceeded = (s: RoundSummary): boolean => s.roundError === undefined && s.failed.length === 0 && s.conflicts.length === 0;
