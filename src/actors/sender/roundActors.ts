// The sender round machine with its I/O: scan, schema sync, transfer, verify, load and delete as actors.
import { Effect } from "effect";
import { roundDelays, senderRound, type SchemaSyncOutput } from "../../machines/senderRound.js";
import {
  type DeleteOutput,
  type LoadInput,
  type ScanResult,
  type SentPart,
  type SessionInfo,
  type TransferInput,
  type VerifyInput,
} from "../../machines/senderTypes.js";
import type { FileRef } from "../../protocol/messages.js";
import type { Source } from "../../plugins/source.js";
import { scanForRound } from "./scan.js";
import { syncSchemaLog, type SchemaLogOptions } from "./schemaLog.js";
import type { SenderLink } from "./link.js";
import type { WorkDir } from "./workDir.js";
import { abortable, fromEffect } from "../runtime.js";

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
        Effect.uninterruptible(
          abortable(async () => {
            await deps.work.confirm({
              ref: input.unit.ref,
              parts: input.parts.map((p) => ({
                kind: p.kind,
                size: p.size,
                sha256: p.sha256,
                mtimeMs: input.unit.parts.find((l) => l.kind === p.kind)?.mtimeMs ?? 0,
              })),
            });
            await deps.work.unpin(
              input.unit.ref,
              input.parts.map((p) => p.kind),
            );
          }),
        ),
      ),
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
