// The sender round machine with its I/O: scan, schema sync, transfer, verify, load and delete as actors.
import { Effect } from "effect";
import { roundDelays, senderRound, type SchemaSyncOutput } from "../../machines/senderRound.js";
import {
  asStepFailure,
  type DeleteOutput,
  type LoadInput,
  type PutInput,
  type PutOutput,
  type PutResult,
  type ScanResult,
  type SentPart,
  type SessionInfo,
  type StepFailure,
  type TransferInput,
  type VerifyInput,
} from "../../machines/senderTypes.js";
import type { FileRef } from "../../protocol/messages.js";
import { Stopped } from "../../protocol/failures.js";
import type { SyncUnit } from "../../protocol/parts.js";
import type { Source } from "../../plugins/source.js";
import { scanForRound } from "./scan.js";
import { syncSchemaLog, type SchemaLogOptions } from "./schemaLog.js";
import type { SenderLink } from "./link.js";
import type { WorkDir } from "./workDir.js";
import { abortable, fromEffect } from "../runtime.js";

/** Records a loaded file as confirmed (the sender's commit point) and lets go of its pinned snapshot. */
const confirmUnit = async (work: WorkDir, unit: SyncUnit, parts: ReadonlyArray<SentPart>): Promise<void> => {
  await work.confirm({
    ref: unit.ref,
    parts: parts.map((p) => ({
      kind: p.kind,
      size: p.size,
      sha256: p.sha256,
      mtimeMs: unit.parts.find((l) => l.kind === p.kind)?.mtimeMs ?? 0,
    })),
  });
  await work.unpin(
    unit.ref,
    parts.map((p) => p.kind),
  );
};

/**
 * Puts the files `filesInFlight` at a time, each confirmed as soon as it is loaded (concurrent
 * confirmations share the journal's fsync). A stop lets the puts in flight finish and starts no more;
 * the files not reached are told so and go again.
 */
const putFiles = async (deps: RoundDeps, { session, units }: PutInput, signal: AbortSignal): Promise<PutOutput> => {
  const results: PutResult[] = [];
  // The first file of each group goes alone: if the group is another sender's, its other files are
  // told so here instead of each being refused by the receiver.
  const firstOfGroup = new Map<string, Promise<StepFailure | undefined>>();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < units.length; i = next++) {
      const unit = units[i]!;
      const gate = firstOfGroup.get(unit.ref.sg);
      const conflict = gate ? await gate : undefined;
      if (signal.aborted || conflict) {
        results[i] = { unit, failure: conflict ?? new Stopped({ message: "stopped" }) };
        continue;
      }
      let opened: (f: StepFailure | undefined) => void = () => undefined;
      if (!gate) firstOfGroup.set(unit.ref.sg, new Promise((resolve) => (opened = resolve)));
      try {
        const parts = await deps.link.put(session, unit.ref, unit.parts);
        await confirmUnit(deps.work, unit, parts);
        results[i] = { unit, parts };
        opened(undefined);
      } catch (e) {
        const failure = asStepFailure(e);
        results[i] = { unit, failure };
        opened(failure.kind === "conflict" ? failure : undefined);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(session.filesInFlight, units.length)) }, worker));
  return { results };
};

export interface RoundDeps {
  readonly link: SenderLink;
  readonly work: WorkDir;
  readonly source: Source;
  readonly storageGroups: ReadonlyArray<string>;
  /** Set when `iotdb_schema_directory` is: the schema log to ship before the data files. */
  readonly schemaLog?: SchemaLogOptions;
  readonly log?: (line: string) => void;
}

/** The sender round machine with its I/O. */
export const senderRoundWith = (deps: RoundDeps) =>
  senderRound.provide({
    actors: {
      recover: fromEffect<void>(() => abortable(() => deps.work.clearSnapshots())),
      scan: fromEffect<ScanResult>(() =>
        scanForRound(deps.source, deps.work, deps.storageGroups).pipe(
          Effect.tap((r) =>
            Effect.sync(() => deps.log?.(`scan: ${r.units.length} new, ${r.deletions.length} deleted, ${r.ignored} not sealed`)),
          ),
        ),
      ),
      handshake: fromEffect<SessionInfo>(() => abortable(() => deps.link.hello(deps.storageGroups))),
      syncSchema: fromEffect<SchemaSyncOutput | undefined, { session: SessionInfo }>(({ session }) =>
        abortable(async () => (deps.schemaLog ? syncSchemaLog(deps.schemaLog, session) : undefined)),
      ),
      transfer: fromEffect<SentPart, TransferInput>((input) =>
        abortable((signal) => {
          const part = input.unit.parts[input.partIndex];
          if (!part) throw new Error(`no part ${input.partIndex} in ${input.unit.ref.name}`);
          return deps.link.sendPart(input.session, input.unit.ref, part, signal);
        }),
      ),
      verify: fromEffect<void, VerifyInput>((input) => abortable(() => deps.link.commit(input.session, input.part))),
      load: fromEffect<void, LoadInput>((input) =>
        abortable(() =>
          deps.link.load(
            input.session,
            input.unit.ref,
            input.parts.map((p) => ({ kind: p.kind, size: p.size, sha256: p.sha256 })),
          ),
        ),
      ),
      // Confirming is the sender's commit point: once begun it finishes, even when the state is left.
      confirm: fromEffect<void, LoadInput>((input) =>
        Effect.uninterruptible(abortable(() => confirmUnit(deps.work, input.unit, input.parts))),
      ),
      putFiles: fromEffect<PutOutput, PutInput>((input) => abortable((signal) => putFiles(deps, input, signal))),
      deleteFiles: fromEffect<DeleteOutput, { session: SessionInfo; deletions: ReadonlyArray<FileRef> }>((input) =>
        abortable(async (signal) => {
          const deleted: FileRef[] = [];
          const failed: { ref: FileRef; reason: string }[] = [];
          for (const ref of input.deletions) {
            if (signal.aborted) break;
            try {
              await deps.link.delete(input.session, ref);
              await deps.work.forget(ref);
              deleted.push(ref);
            } catch (e) {
              failed.push({ ref, reason: (e as { message?: string }).message ?? String(e) });
            }
          }
          return { deleted, failed };
        }),
      ),
      bye: fromEffect<void, { session: SessionInfo | undefined }>((input) =>
        abortable(async () => {
          await deps.work.flush();
          if (input.session) await deps.link.bye(input.session).catch(() => undefined);
        }),
      ),
    },
    // The machine's own backoff, jittered: senders that failed together do not retry together.
    delays: roundDelays(Math.random),
  });
