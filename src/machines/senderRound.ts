// The sender round machine: handshake, schema, then each file offered, transferred, verified, loaded and confirmed.
import { assign, setup } from "xstate";
import type { FileRef } from "../protocol/messages.js";
import type { SyncUnit } from "../protocol/parts.js";
import { backoffDelay, fileRetry, handshakeRetry, type RandomSource } from "./backoff.js";
import { needs } from "./slot.js";
import {
  asStepFailure,
  emptySummary,
  fitsOneMessage,
  refKey,
  type PutOutput,
  type PutInput,
  type DeleteOutput,
  type RoundSummary,
  type ScanResult,
  type SessionInfo,
  type StepFailure,
  type LoadInput,
  type SentPart,
  type TransferInput,
  type VerifyInput,
} from "./senderTypes.js";

/** What the schema step did: the log, bytes sent from which offset, or a note on why not. */
export interface SchemaSyncOutput {
  readonly file: string;
  readonly bytesSent: number;
  readonly fromOffset: number;
  readonly note?: string;
}

export interface SenderRoundInput {
  /** Retries per file per round after the first attempt (`max_number_of_sync_file_retry`). */
  readonly maxRetries: number;
  /** Hello attempts before the round gives up on an unreachable receiver. */
  readonly maxHandshakes?: number;
}

export interface SenderRoundContext {
  readonly maxRetries: number;
  readonly maxHandshakes: number;
  readonly units: ReadonlyArray<SyncUnit>;
  readonly deletions: ReadonlyArray<FileRef>;
  readonly index: number;
  /** Attempts made at the current file in this round, the first included. */
  readonly attempts: number;
  readonly handshakes: number;
  readonly session: SessionInfo | undefined;
  /** The part of the current file being sent, and the parts already sent and verified. */
  readonly partIndex: number;
  readonly parts: ReadonlyArray<SentPart>;
  readonly lastFailure: StepFailure | undefined;
  /** Storage groups refused with CONFLICT this round: their other files are skipped, not offered. */
  readonly conflicted: Readonly<Record<string, string>>;
  /** The schema log goes once per round, after the first hello; a later hello goes straight on. */
  readonly schemaDone: boolean;
  /** Files whose put failed in a way worth retrying: they go the offer way, with its retries. */
  readonly viaOffer: Readonly<Record<string, true>>;
  readonly summary: RoundSummary;
}

export type SenderRoundEvent = { type: "stop" };

const current = (c: SenderRoundContext): SyncUnit | undefined => c.units[c.index];
const currentName = (c: SenderRoundContext): string => {
  const u = current(c);
  return u ? refKey(u.ref) : "?";
};

/** Most files one `putting` hands its actor: enough to keep its window full, few enough that progress shows. */
export const putBatchMax = 64;

/**
 * The small files from the current one on that go as puts: consecutive, each fitting one message,
 * none of a conflicted group or already failed as a put. Empty when the receiver takes no puts.
 */
export const putBatch = (c: SenderRoundContext): SyncUnit[] => {
  const s = c.session;
  if (!s || s.filesInFlight === 0) return [];
  const out: SyncUnit[] = [];
  for (let i = c.index; i < c.units.length && out.length < putBatchMax; i++) {
    const u = c.units[i]!;
    if (c.conflicted[u.ref.sg] !== undefined || c.viaOffer[refKey(u.ref)] || !fitsOneMessage(u, s.chunkBytes)) break;
    out.push(u);
  }
  return out;
};

/**
 * A file the receiver answers "have" for is already there, unless this round tried it before: then
 * the earlier try placed it and only its reply was lost, so it counts as sent, resumed at its end.
 */
const withSent = (summary: RoundSummary, file: string, parts: ReadonlyArray<SentPart>, triedBefore: boolean): RoundSummary => {
  if (parts.every((p) => p.had)) {
    if (!triedBefore) return { ...summary, skipped: [...summary.skipped, { file, reason: "receiver already has it" }] };
    const size = parts.reduce((n, p) => n + p.size, 0);
    return { ...summary, sent: [...summary.sent, { file, bytes: 0, resumedFrom: size }] };
  }
  const bytes = parts.reduce((n, p) => n + p.bytesSent, 0);
  const resumedFrom = parts.reduce((n, p) => n + p.resumedFrom, 0);
  return { ...summary, bytesSent: summary.bytesSent + bytes, sent: [...summary.sent, { file, bytes, resumedFrom }] };
};

/**
 * The round's named waits, both taken from the backoff in `backoff.ts`. The machine uses the capped
 * delays. The runtime provides `roundDelays(random)`, the jittered ones, because randomness is I/O.
 */
export const roundDelays = (random?: RandomSource) => ({
  // `attempts` counts the first try: after it fails, the wait is the first retry's.
  backoff: ({ context }: { context: SenderRoundContext }) => backoffDelay(fileRetry, context.attempts, random),
  handshakeBackoff: ({ context }: { context: SenderRoundContext }) => backoffDelay(handshakeRetry, context.handshakes, random),
});

/**
 * One sync round: recover → scan → hello → schema log → for each new file: transfer → verify → load → confirm
 * → deletions → done. Per-file failures retry with backoff up to `maxRetries`, then the file is
 * quarantined for the round and the round goes on.
 */
export const senderRound = setup({
  types: {
    context: {} as SenderRoundContext,
    input: {} as SenderRoundInput,
    events: {} as SenderRoundEvent,
    output: {} as RoundSummary,
  },
  actors: {
    recover: needs<void, void>("recover"),
    scan: needs<ScanResult, void>("scan"),
    handshake: needs<SessionInfo, void>("handshake"),
    syncSchema: needs<SchemaSyncOutput | undefined, { session: SessionInfo }>("syncSchema"),
    putFiles: needs<PutOutput, PutInput>("putFiles"),
    transfer: needs<SentPart, TransferInput>("transfer"),
    verify: needs<void, VerifyInput>("verify"),
    load: needs<void, LoadInput>("load"),
    confirm: needs<void, LoadInput>("confirm"),
    deleteFiles: needs<DeleteOutput, { session: SessionInfo; deletions: ReadonlyArray<FileRef> }>("deleteFiles"),
    bye: needs<void, { session: SessionInfo | undefined }>("bye"),
  },
  guards: {
    schemaPending: ({ context }) => !context.schemaDone,
    allFilesDone: ({ context }) => context.index >= context.units.length,
    allFilesDoneDeletionsPending: ({ context }) => context.index >= context.units.length && context.deletions.length > 0,
    groupConflicted: ({ context }) => {
      const u = current(context);
      return u !== undefined && context.conflicted[u.ref.sg] !== undefined;
    },
    isConflict: ({ context }) => context.lastFailure?.kind === "conflict",
    isRefused: ({ context }) => context.lastFailure?.kind === "refused",
    isFatal: ({ context }) => context.lastFailure?.kind === "fatal",
    canRetry: ({ context }) => context.attempts <= context.maxRetries,
    lastPartHad: ({ context }) => context.parts[context.parts.length - 1]?.had === true,
    morePartsToSend: ({ context }) => context.partIndex < (current(context)?.parts.length ?? 0),
    sessionLost: ({ context }) => context.lastFailure?.kind === "sessionLost",
    putsNext: ({ context }) => putBatch(context).length > 0,
    // A named guard sees only the machine's own events, so the put actor's output arrives as params.
    putRefused: (_, output: PutOutput) => output.results.some((r) => r.failure?.kind === "refused"),
    canHandshakeAgain: ({ context }) => context.handshakes < context.maxHandshakes && context.lastFailure?.kind !== "refused",
  },
  delays: roundDelays(),
  actions: {
    recordFailure: assign({ lastFailure: (_, failure: StepFailure) => failure }),
    advance: assign({ index: ({ context }) => context.index + 1, attempts: 0, partIndex: 0, parts: [] }),
    // A retry starts the file over; parts the receiver already holds answer "have" at once.
    restartFile: assign({ partIndex: 0, parts: [] }),
    skipConflicted: assign({
      summary: ({ context }) => ({
        ...context.summary,
        skipped: [
          ...context.summary.skipped,
          { file: currentName(context), reason: context.conflicted[current(context)?.ref.sg ?? ""] ?? "conflict" },
        ],
      }),
    }),
    markConflict: assign(({ context }) => {
      const sg = current(context)?.ref.sg ?? "?";
      const message = context.lastFailure?.message ?? "conflict";
      return {
        conflicted: { ...context.conflicted, [sg]: message },
        summary: {
          ...context.summary,
          conflicts: [...context.summary.conflicts, { sg, message }],
          skipped: [...context.summary.skipped, { file: currentName(context), reason: message }],
        },
      };
    }),
    quarantine: assign({
      summary: ({ context }) => ({
        ...context.summary,
        failed: [
          ...context.summary.failed,
          { file: currentName(context), reason: context.lastFailure?.message ?? "unknown error", attempts: context.attempts },
        ],
      }),
    }),
    countAttempt: assign({ attempts: ({ context }) => context.attempts + 1 }),
    recordSent: assign({
      summary: ({ context }) => {
        const file = currentName(context);
        return withSent(context.summary, file, context.parts, context.attempts > 1 || context.viaOffer[file] === true);
      },
    }),
    /**
     * What the puts did, file by file: sent or already there; a conflict marks its group; a fatal
     * failure quarantines the file; any other failure sends it again later the offer way, with retries.
     */
    recordPuts: assign(({ context }, output: PutOutput) => {
      let { summary } = context;
      const conflicted = { ...context.conflicted };
      const viaOffer = { ...context.viaOffer };
      const again: SyncUnit[] = [];
      for (const r of output.results) {
        const file = refKey(r.unit.ref);
        if (r.failure === undefined) {
          summary = withSent(summary, file, r.parts, false);
          continue;
        }
        const reason = r.failure.message;
        if (r.failure.kind === "conflict") {
          const sg = r.unit.ref.sg;
          if (conflicted[sg] === undefined) summary = { ...summary, conflicts: [...summary.conflicts, { sg, message: reason }] };
          conflicted[sg] ??= reason;
          summary = { ...summary, skipped: [...summary.skipped, { file, reason }] };
        } else if (r.failure.kind === "fatal") {
          summary = { ...summary, failed: [...summary.failed, { file, reason, attempts: 1 }] };
        } else if (r.failure.kind !== "refused") {
          viaOffer[file] = true;
          again.push(r.unit);
        }
      }
      return {
        summary,
        conflicted,
        viaOffer,
        units: [...context.units, ...again],
        index: context.index + putBatch(context).length,
        attempts: 0,
        partIndex: 0,
        parts: [],
      };
    }),
    /** The put actor itself failed: its files go the offer way. */
    deferPuts: assign(({ context }) => {
      const batch = putBatch(context);
      const viaOffer = { ...context.viaOffer };
      for (const u of batch) viaOffer[refKey(u.ref)] = true;
      return { viaOffer, units: [...context.units, ...batch], index: context.index + batch.length };
    }),
    recordSchema: assign({
      summary: ({ context }, out: SchemaSyncOutput | undefined) => {
        if (!out) return context.summary;
        const sent =
          out.bytesSent > 0
            ? [...context.summary.sent, { file: `schema ${out.file}`, bytes: out.bytesSent, resumedFrom: out.fromOffset }]
            : context.summary.sent;
        const skipped =
          out.bytesSent === 0 && out.note
            ? [...context.summary.skipped, { file: `schema ${out.file}`, reason: out.note }]
            : context.summary.skipped;
        return { ...context.summary, sent, skipped, bytesSent: context.summary.bytesSent + out.bytesSent };
      },
    }),
    // The data files go on: a TsFile carries its own series and types, and IoTDB's load creates
    // what is missing; holding every file back for one bad schema record is what the original did.
    reportSchemaFailure: assign({
      summary: ({ context }) => ({
        ...context.summary,
        failed: [...context.summary.failed, { file: "schema log", reason: context.lastFailure?.message ?? "unknown error", attempts: 1 }],
      }),
    }),
    failRound: assign({
      summary: ({ context }) => ({ ...context.summary, roundError: context.lastFailure?.message ?? "round failed" }),
    }),
  },
}).createMachine({
  id: "senderRound",
  initial: "recovering",
  context: ({ input }) => ({
    maxRetries: input.maxRetries,
    maxHandshakes: input.maxHandshakes ?? 3,
    units: [],
    deletions: [],
    index: 0,
    attempts: 0,
    handshakes: 0,
    session: undefined,
    partIndex: 0,
    parts: [],
    lastFailure: undefined,
    conflicted: {},
    schemaDone: false,
    viaOffer: {},
    summary: emptySummary,
  }),
  on: { stop: ".stopped" },
  states: {
    recovering: {
      invoke: {
        src: "recover",
        onDone: "scanning",
        onError: { target: "failed", actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) } },
      },
    },
    scanning: {
      invoke: {
        src: "scan",
        onDone: {
          target: "handshaking",
          actions: assign({ units: ({ event }) => event.output.units, deletions: ({ event }) => event.output.deletions }),
        },
        onError: { target: "failed", actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) } },
      },
    },
    handshaking: {
      entry: assign({ handshakes: ({ context }) => context.handshakes + 1 }),
      invoke: {
        src: "handshake",
        onDone: [
          { guard: "schemaPending", target: "schema", actions: assign({ session: ({ event }) => event.output, handshakes: 0 }) },
          { target: "nextFile", actions: assign({ session: ({ event }) => event.output, handshakes: 0 }) },
        ],
        onError: {
          target: "handshakeFailed",
          actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) },
        },
      },
    },
    handshakeFailed: {
      always: [{ guard: "canHandshakeAgain", target: "handshakeBackoff" }, { target: "failed" }],
    },
    handshakeBackoff: { after: { handshakeBackoff: "handshaking" } },
    schema: {
      entry: assign({ schemaDone: true }),
      invoke: {
        src: "syncSchema",
        input: ({ context }) => ({ session: context.session! }),
        onDone: { target: "nextFile", actions: { type: "recordSchema", params: ({ event }) => event.output } },
        onError: { target: "schemaFailed", actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) } },
      },
    },
    schemaFailed: {
      always: [
        { guard: "isRefused", target: "failed" },
        { target: "nextFile", actions: "reportSchemaFailure" },
      ],
    },
    nextFile: {
      always: [
        { guard: "allFilesDoneDeletionsPending", target: "deleting" },
        { guard: "allFilesDone", target: "closing" },
        { guard: "groupConflicted", target: "nextFile", reenter: true, actions: ["skipConflicted", "advance"] },
        { guard: "putsNext", target: "putting" },
        { target: "transferring", actions: "countAttempt" },
      ],
    },
    // Small files, one message each and several at once: put, verified, loaded and confirmed.
    putting: {
      invoke: {
        src: "putFiles",
        input: ({ context }) => ({ session: context.session!, units: putBatch(context) }),
        onDone: [
          {
            guard: { type: "putRefused", params: ({ event }) => event.output },
            target: "failed",
            actions: [
              { type: "recordPuts", params: ({ event }) => event.output },
              {
                type: "recordFailure",
                params: ({ event }) => event.output.results.find((r) => r.failure?.kind === "refused")!.failure!,
              },
            ],
          },
          { target: "nextFile", actions: { type: "recordPuts", params: ({ event }) => event.output } },
        ],
        onError: {
          target: "nextFile",
          actions: [{ type: "recordFailure", params: ({ event }) => asStepFailure(event.error) }, "deferPuts"],
        },
      },
    },
    transferring: {
      invoke: {
        src: "transfer",
        input: ({ context }) => ({ session: context.session!, unit: current(context)!, partIndex: context.partIndex }),
        onDone: {
          target: "partSent",
          actions: assign({
            parts: ({ context, event }) => [...context.parts, event.output],
            partIndex: ({ context }) => context.partIndex + 1,
          }),
        },
        onError: { target: "fileFailed", actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) } },
      },
    },
    partSent: {
      always: [{ guard: "lastPartHad", target: "partVerified" }, { target: "verifying" }],
    },
    verifying: {
      invoke: {
        src: "verify",
        input: ({ context }) => ({ session: context.session!, unit: current(context)!, part: context.parts[context.parts.length - 1]! }),
        onDone: "partVerified",
        onError: { target: "fileFailed", actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) } },
      },
    },
    partVerified: {
      always: [{ guard: "morePartsToSend", target: "transferring" }, { target: "loading" }],
    },
    loading: {
      invoke: {
        src: "load",
        input: ({ context }) => ({ session: context.session!, unit: current(context)!, parts: context.parts }),
        onDone: "confirming",
        onError: { target: "fileFailed", actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) } },
      },
    },
    confirming: {
      invoke: {
        src: "confirm",
        input: ({ context }) => ({ session: context.session!, unit: current(context)!, parts: context.parts }),
        onDone: { target: "nextFile", actions: ["recordSent", "advance"] },
        onError: { target: "fileFailed", actions: { type: "recordFailure", params: ({ event }) => asStepFailure(event.error) } },
      },
    },
    fileFailed: {
      always: [
        { guard: "isConflict", target: "nextFile", actions: ["markConflict", "advance"] },
        { guard: "isRefused", target: "failed" },
        { guard: "isFatal", target: "nextFile", actions: ["quarantine", "advance"] },
        { guard: "canRetry", target: "retryBackoff" },
        { target: "nextFile", actions: ["quarantine", "advance"] },
      ],
    },
    retryBackoff: {
      entry: "restartFile",
      after: {
        backoff: [
          { guard: "sessionLost", target: "handshaking" },
          { target: "transferring", actions: "countAttempt" },
        ],
      },
    },
    deleting: {
      invoke: {
        src: "deleteFiles",
        input: ({ context }) => ({ session: context.session!, deletions: context.deletions }),
        onDone: {
          target: "closing",
          actions: assign({
            summary: ({ context, event }) => ({
              ...context.summary,
              deleted: [...context.summary.deleted, ...event.output.deleted.map(refKey)],
              failed: [
                ...context.summary.failed,
                ...event.output.failed.map((f) => ({ file: `${refKey(f.ref)} (delete)`, reason: f.reason, attempts: 1 })),
              ],
            }),
          }),
        },
        onError: {
          target: "closing",
          actions: assign({
            summary: ({ context, event }) => ({
              ...context.summary,
              failed: [...context.summary.failed, { file: "deletions", reason: asStepFailure(event.error).message, attempts: 1 }],
            }),
          }),
        },
      },
    },
    closing: {
      invoke: { src: "bye", input: ({ context }) => ({ session: context.session }), onDone: "done", onError: "done" },
    },
    done: { type: "final" },
    failed: { type: "final", entry: "failRound" },
    stopped: {
      type: "final",
      entry: assign({ summary: ({ context }) => ({ ...context.summary, roundError: context.summary.roundError ?? "stopped" }) }),
    },
  },
  output: ({ context }) => context.summary,
});
