// The sender round machine with its I/O: scan, schema sync, transfer, verify, load and delete as actors.
import { fromPromise } from "xstate";
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
      recover: fromPromise<void, void>(async () => {
        await deps.work.clearSnapshots();
      }),
      scan: fromPromise<ScanResult, void>(async () => {
        const r = await scanForRound(deps.source, deps.work, deps.storageGroups);
        deps.log?.(`scan: ${r.units.length} new, ${r.deletions.length} deleted, ${r.ignored} not sealed`);
        return r;
      }),
      handshake: fromPromise<SessionInfo, void>(() => deps.link.hello(deps.storageGroups)),
      syncSchema: fromPromise<SchemaSyncOutput | undefined, { session: SessionInfo }>(async ({ input }) =>
        deps.schemaLog ? syncSchemaLog(deps.schemaLog, input.session) : undefined,
      ),
      transfer: fromPromise<SentPart, TransferInput>(({ input, signal }) => {
        const part = input.unit.parts[input.partIndex];
        if (!part) throw new Error(`no part ${input.partIndex} in ${input.unit.ref.name}`);
        return deps.link.sendPart(input.session, input.unit.ref, part, signal);
      }),
      verify: fromPromise<void, VerifyInput>(({ input }) => deps.link.commit(input.session, input.part)),
      load: fromPromise<void, LoadInput>(({ input }) =>
        deps.link.load(
          input.session,
          input.unit.ref,
          input.parts.map((p) => ({ kind: p.kind, size: p.size, sha256: p.sha256 })),
        ),
      ),
      confirm: fromPromise<void, LoadInput>(async ({ input }) => {
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
      deleteFiles: fromPromise<DeleteOutput, { session: SessionInfo; deletions: ReadonlyArray<FileRef> }>(async ({ input }) => {
        const deleted: FileRef[] = [];
        const failed: { ref: FileRef; reason: string }[] = [];
        for (const ref of input.deletions) {
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
      bye: fromPromise<void, { session: SessionInfo | undefined }>(async ({ input }) => {
        await deps.work.flush();
        if (input.session) await deps.link.bye(input.session).catch(() => undefined);
      }),
    },
    // The machine's own backoff, jittered: senders that failed together do not retry together.
    delays: roundDelays(Math.random),
  });
