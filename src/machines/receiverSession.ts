// The receiver's per-sender session as pure data: hello to bye, every request an event answered by the machine's reply.
import { and, assign, not, setup, spawnChild, stopChild } from "xstate";
import type { Commit, Delete, Load, Offer, Put, SchemaPiece } from "../protocol/messages.js";
import { Code, reply, type Reply } from "../protocol/status.js";
import { needs } from "./slot.js";

export { reply, type Reply } from "../protocol/status.js";

/**
 * How a request is answered: the host hands each request event the NATS `respond` of its message
 * (encoding the reply on the way); the machine calls it, once, with the reply it decided on.
 */
export type Respond = (reply: Reply) => void;

/**
 * A request from the sender, with whom to answer. An event with no responder (a test driving the
 * machine) is never refused: there is nobody to refuse it to.
 */
interface Request {
  readonly respond?: Respond | undefined;
}

export interface Transfer {
  readonly fileId: string;
  readonly offer: Offer;
  readonly received: number;
}

/** A piece of the sender's schema log: headers decoded, bytes as they came. */
export interface SchemaRequest {
  readonly piece: SchemaPiece;
  readonly bytes: Uint8Array;
}

export interface SessionInput {
  readonly senderId: string;
  readonly sessionId: string;
  readonly address: string;
  readonly idleTimeoutMs: number;
  /** The largest chunk the session takes; the receiver's max_chunk_bytes (no limit when absent). */
  readonly maxChunkBytes?: number | undefined;
  /** Whole-file `put`s one session may have in flight; more are answered `busy` (default 32). */
  readonly maxFilesInFlight?: number | undefined;
}

/** A whole small file: its ref and digests, and the bytes of its parts back to back. */
export interface PutRequest {
  readonly put: Put;
  readonly bytes: Uint8Array;
}

export const defaultFilesInFlight = 32;

/** The id of the child that stores the n-th put of a session (ids are how their answers come back). */
const putActorId = (n: number): string => `put-${n}`;
const putActorPrefix = "xstate.done.actor.put-";
const putErrorPrefix = "xstate.error.actor.put-";

/** What the machine starts with: the session, and who waits for the admission decision. */
export interface SessionStart extends SessionInput {
  readonly hello?: Respond | undefined;
}

export interface SessionContext extends SessionInput {
  readonly transfer: Transfer | undefined;
  /** The offer being decided; it becomes the transfer when accepted. */
  readonly pendingOffer: Offer | undefined;
  /** Who waits for the reply of the request being handled by an actor. */
  readonly replyTo?: Respond | undefined;
  /** The last reply the session gave (the dashboard shows it). */
  readonly lastReply: Reply | undefined;
  /** How many replies the session gave. */
  readonly replies: number;
  /** Puts being stored, by child actor id, with who waits for each answer. */
  readonly puts: Readonly<Record<string, Respond | undefined>>;
  /** The size of each put being stored, by child actor id: counted in `bytes` once stored. */
  readonly putBytes?: Readonly<Record<string, number>>;
  /** Puts started in this session: the next put's child id. */
  readonly putsStarted: number;
  readonly files: { readonly received: number; readonly loaded: number; readonly deleted: number; readonly rejected: number };
  readonly bytes: number;
}

/** One chunk of the file being received: `offset` is NaN when its header was not a number. */
export interface Chunk {
  readonly fileId: string;
  readonly offset: number;
  readonly offsetText: string;
  readonly data: Uint8Array;
}

export type SessionEvent =
  | ({ type: "offer"; offer: Offer } & Request)
  | ({ type: "chunk" } & Chunk & Request)
  /** A chunk was written (by the host's `write`): `received` is the next byte expected. */
  | ({ type: "progress"; fileId: string; received: number; bytes: number } & Request)
  /** A chunk could not be written: its part is closed, or the write failed (logged by the host). */
  | ({ type: "writeFailed"; fileId: string; reason: "closed" | "failed" } & Request)
  | ({ type: "commit"; commit: Commit } & Request)
  | ({ type: "load"; load: Load } & Request)
  | ({ type: "put" } & PutRequest & Request)
  | ({ type: "delete"; ref: Delete } & Request)
  | ({ type: "schema"; request: SchemaRequest } & Request)
  | ({ type: "bye" } & Request);

/** `record` without `key` (a copy: the context is never changed in place). */
const without = <V>(record: Readonly<Record<string, V>>, key: string): Record<string, V> =>
  Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));

const answered = (code: number) => code === Code.ok || code === Code.have;

/**
 * A failed step's reply text: the error's message alone (the host's actors make it fit for the
 * sender), never the stringified value of something that is not an Error.
 */
const failureText = (error: unknown): string =>
  error instanceof Error && typeof error.message === "string" ? error.message : "internal error; see the receiver log";

const chunkOf = (event: SessionEvent): Chunk =>
  event.type === "chunk" ? event : { fileId: "", offset: Number.NaN, offsetText: "", data: new Uint8Array(0) };

const fileIdOf = (event: SessionEvent): string | undefined =>
  event.type === "chunk" || event.type === "progress" || event.type === "writeFailed"
    ? event.fileId
    : event.type === "commit"
      ? event.commit.fileId
      : undefined;

const sessionInputOf = (c: SessionContext): SessionInput => ({
  senderId: c.senderId,
  sessionId: c.sessionId,
  address: c.address,
  idleTimeoutMs: c.idleTimeoutMs,
});

const transferOf = (context: SessionContext): Transfer => {
  if (!context.transfer) throw new Error("no transfer in receiving");
  return context.transfer;
};

/**
 * One connected sender: admitted → ready → receiving (a file) → verifying → ready → loading → ready …
 * → closed | expired, and from ready `syncingSchema` for a piece of the sender's schema log. The
 * host feeds it each request as an event carrying its responder; the machine answers every one,
 * through `reply`: from an actor's output, from a guard's refusal, or `notReady` (a request the
 * state cannot take, answered at the top level).
 */
export const receiverSession = setup({
  types: {
    context: {} as SessionContext,
    input: {} as SessionStart,
    events: {} as SessionEvent,
  },
  actors: {
    admit: needs<Reply, SessionInput>("admit"),
    acceptOffer: needs<Reply & { fileId?: string; offset?: number }, { session: SessionInput; offer: Offer }>("acceptOffer"),
    verify: needs<Reply, { session: SessionInput; transfer: Transfer; commit: Commit }>("verify"),
    load: needs<Reply, { session: SessionInput; load: Load }>("load"),
    remove: needs<Reply, { session: SessionInput; ref: Delete }>("remove"),
    applySchema: needs<Reply, { session: SessionInput; request: SchemaRequest }>("applySchema"),
    storeFile: needs<Reply, { session: SessionInput; request: PutRequest }>("storeFile"),
  },
  guards: {
    // A named guard sees only the machine's own event types, not an actor's done event, so a reply arrives as params.
    admitted: (_, reply: Reply) => reply.code === Code.ok,
    offerAccepted: (_, reply: Reply & { fileId?: string | undefined }) =>
      (reply.code === Code.start || reply.code === Code.resume) && reply.fileId !== undefined,
    // Progress, a chunk or a commit for a file other than the one being received is refused (or, without a responder, ignored).
    forCurrentFile: ({ context, event }) => context.transfer !== undefined && context.transfer.fileId === fileIdOf(event),
    numericOffset: ({ event }) => Number.isSafeInteger(chunkOf(event).offset),
    inOrder: ({ context, event }) => chunkOf(event).offset === context.transfer?.received,
    fitsChunk: ({ context, event }) => chunkOf(event).data.length <= (context.maxChunkBytes ?? Number.POSITIVE_INFINITY),
    withinSize: ({ context, event }) => {
      const c = chunkOf(event);
      return context.transfer !== undefined && c.offset + c.data.length <= context.transfer.offer.size;
    },
    putSlotFree: ({ context }) => Object.keys(context.puts).length < (context.maxFilesInFlight ?? defaultFilesInFlight),
    putsInFlight: ({ context }) => Object.keys(context.puts).length > 0,
    // Spawned puts answer through xstate.done/error.actor.put-<n>; invoked actors' answers are their states' own.
    isPutAnswer: ({ event }) => {
      const type = (event as { type: string }).type;
      return type.startsWith(putActorPrefix) || type.startsWith(putErrorPrefix);
    },
    // A request with nobody to answer is not refused: it is simply not taken.
    hasResponder: ({ event }) => "respond" in event && event.respond !== undefined,
  },
  delays: {
    idle: ({ context }) => context.idleTimeoutMs,
  },
  actions: {
    holdOffer: assign({
      pendingOffer: ({ event }) => (event.type === "offer" ? event.offer : undefined),
    }),
    /** Keeps the request's responder while an actor decides its reply. */
    holdResponder: assign({ replyTo: ({ event }: { event: SessionEvent }) => ("respond" in event ? event.respond : undefined) }),
    /**
     * Answers: to `to` when given (a request answered at once), else to the held responder (an
     * actor's output). Each request is answered exactly once.
     */
    reply: ({ context }, p: { reply: Reply; to?: Respond | undefined }) => {
      (p.to ?? context.replyTo)?.(p.reply);
    },
    /** What the dashboard shows of the reply; the held responder is used up. */
    record: assign({
      lastReply: (_, p: { reply: Reply; to?: Respond | undefined }) => p.reply,
      replies: ({ context }) => context.replies + 1,
      replyTo: undefined,
    }),
    /** Starts storing a whole file in a child of its own: puts overlap, each answered when it is done. */
    startPut: assign(({ context, event, spawn }) => {
      if (event.type !== "put") return {};
      const id = putActorId(context.putsStarted);
      spawn("storeFile", {
        id,
        input: {
          session: sessionInputOf(context),
          request: { put: event.put, bytes: event.bytes },
        },
      });
      return {
        puts: { ...context.puts, [id]: event.respond },
        putBytes: { ...context.putBytes, [id]: event.bytes.length },
        putsStarted: context.putsStarted + 1,
      };
    }),
    /** A put's child finished: its answer goes to whoever sent it, and the child is let go. */
    answerPut: ({ context, event }) => {
      const e = event as unknown as { actorId?: string; output?: Reply; error?: unknown; type: string };
      const to = context.puts[e.actorId ?? ""];
      to?.(e.type.startsWith(putActorPrefix) && e.output ? e.output : reply(Code.storageFailed, failureText(e.error)));
    },
    forgetPut: assign(({ context, event }) => {
      const e = event as unknown as { actorId?: string; output?: Reply; type: string };
      const id = e.actorId ?? "";
      const size = context.putBytes?.[id];
      const ok = e.type.startsWith(putActorPrefix) && e.output !== undefined && answered(e.output.code);
      return {
        puts: without(context.puts, id),
        putBytes: without(context.putBytes ?? {}, id),
        // A stored put's bytes count as received, as a written chunk's do.
        bytes: ok && e.output?.code === Code.ok ? context.bytes + (size ?? 0) : context.bytes,
        files: ok ? { ...context.files, received: context.files.received + 1, loaded: context.files.loaded + 1 } : context.files,
        replies: context.replies + 1,
        lastReply: e.output ?? context.lastReply,
      };
    }),
    /** A request the current state cannot take: answered `notReady`, naming the state. */
    refuseNotReady: ({ event, self }) => {
      if ("respond" in event && event.respond)
        event.respond(reply(Code.notReady, `cannot ${event.type} while ${JSON.stringify(self.getSnapshot().value)}`));
    },
    /** A refused request from the wire: the host counts it (stats.rejected). */
    countRejected: () => undefined,
    /** Writes a chunk at its offset; the host sends `progress` (or `writeFailed`) when done. */
    write: (_, _chunk: Chunk & Request) => {
      throw new Error(`action "write" was not provided`);
    },
  },
}).createMachine({
  id: "receiverSession",
  initial: "handshaking",
  context: ({ input: { hello, ...input } }) => ({
    ...input,
    transfer: undefined,
    pendingOffer: undefined,
    replyTo: hello,
    lastReply: undefined,
    replies: 0,
    puts: {},
    putsStarted: 0,
    files: { received: 0, loaded: 0, deleted: 0, rejected: 0 },
    bytes: 0,
  }),
  // Requests the current state cannot take: answered here, unless the state takes them.
  on: {
    chunk: {
      guard: "hasResponder" as const,
      actions: [
        {
          type: "reply",
          params: ({ event }) => ({
            to: event.respond,
            reply: reply(Code.unknownFile, `no file ${JSON.stringify(event.fileId)} is being received`),
          }),
        },
        "countRejected",
      ],
    },
    commit: {
      guard: "hasResponder" as const,
      actions: [
        {
          type: "reply",
          params: ({ event }) => ({
            to: event.respond,
            reply: reply(Code.unknownFile, `no file ${event.commit.fileId} is being received`),
          }),
        },
      ],
    },
    offer: { guard: "hasResponder" as const, actions: "refuseNotReady" },
    load: { guard: "hasResponder" as const, actions: "refuseNotReady" },
    put: { guard: "hasResponder" as const, actions: "refuseNotReady" },
    "xstate.done.actor.*": {
      guard: "isPutAnswer",
      actions: ["answerPut", "forgetPut", stopChild(({ event }) => (event as unknown as { actorId: string }).actorId)],
    },
    "xstate.error.actor.*": {
      guard: "isPutAnswer",
      actions: ["answerPut", "forgetPut", stopChild(({ event }) => (event as unknown as { actorId: string }).actorId)],
    },
    delete: { guard: "hasResponder" as const, actions: "refuseNotReady" },
    schema: { guard: "hasResponder" as const, actions: "refuseNotReady" },
    bye: { guard: "hasResponder" as const, actions: "refuseNotReady" },
  },
  states: {
    handshaking: {
      invoke: {
        src: "admit",
        input: ({ context }) => ({
          senderId: context.senderId,
          sessionId: context.sessionId,
          address: context.address,
          idleTimeoutMs: context.idleTimeoutMs,
        }),
        onDone: [
          {
            guard: { type: "admitted", params: ({ event }) => event.output },
            target: "ready",
            actions: [
              { type: "reply", params: ({ event }) => ({ reply: event.output }) },
              { type: "record", params: ({ event }) => ({ reply: event.output }) },
            ],
          },
          {
            target: "closed",
            actions: [
              { type: "reply", params: ({ event }) => ({ reply: event.output }) },
              { type: "record", params: ({ event }) => ({ reply: event.output }) },
            ],
          },
        ],
        onError: {
          target: "closed",
          actions: [
            { type: "reply", params: ({ event }) => ({ reply: reply(Code.internal, failureText(event.error)) }) },
            { type: "record", params: ({ event }) => ({ reply: reply(Code.internal, failureText(event.error)) }) },
          ],
        },
      },
    },
    ready: {
      // Puts in flight keep the session alive: the idle wait starts over until they are answered.
      after: { idle: [{ guard: "putsInFlight", target: "ready", reenter: true }, { target: "expired" }] },
      on: {
        put: [
          { guard: "putSlotFree", target: "ready", reenter: true, actions: "startPut" },
          {
            guard: "hasResponder",
            actions: [
              {
                type: "reply",
                params: ({ context, event }) => ({
                  to: event.respond,
                  reply: reply(
                    Code.busy,
                    `this session has ${Object.keys(context.puts).length} files in flight, its most; send the next when one is answered`,
                  ),
                }),
              },
              "countRejected",
            ],
          },
        ],
        offer: { target: "offering", actions: ["holdOffer", "holdResponder"] },
        load: { target: "loading", actions: "holdResponder" },
        delete: { target: "deleting", actions: "holdResponder" },
        schema: { target: "syncingSchema", actions: "holdResponder" },
        bye: {
          target: "closed",
          actions: [
            { type: "reply", params: ({ event }) => ({ to: event.respond, reply: reply(Code.ok, "bye") }) },
            { type: "record", params: ({ event }) => ({ to: event.respond, reply: reply(Code.ok, "bye") }) },
          ],
        },
      },
    },
    offering: {
      invoke: {
        src: "acceptOffer",
        input: ({ context }) => ({ session: context, offer: context.pendingOffer! }),
        onDone: [
          {
            guard: { type: "offerAccepted", params: ({ event }) => event.output },
            target: "receiving",
            actions: [
              assign({
                transfer: ({ context, event }) => ({
                  fileId: event.output.fileId!,
                  offer: context.pendingOffer!,
                  received: event.output.offset ?? 0,
                }),
              }),
              { type: "reply", params: ({ event }) => ({ reply: event.output }) },
              { type: "record", params: ({ event }) => ({ reply: event.output }) },
            ],
          },
          {
            target: "ready",
            actions: [
              { type: "reply", params: ({ event }) => ({ reply: event.output }) },
              { type: "record", params: ({ event }) => ({ reply: event.output }) },
            ],
          },
        ],
        onError: {
          target: "ready",
          actions: [
            { type: "reply", params: ({ event }) => ({ reply: reply(Code.internal, failureText(event.error)) }) },
            { type: "record", params: ({ event }) => ({ reply: reply(Code.internal, failureText(event.error)) }) },
          ],
        },
      },
    },
    receiving: {
      after: { idle: "expired" },
      on: {
        // Checked in this order; a chunk of another file falls through to the top-level refusal.
        chunk: [
          {
            guard: and(["forCurrentFile", not("numericOffset")]),
            actions: [
              {
                type: "reply",
                params: ({ event }) => ({
                  to: event.respond,
                  reply: reply(Code.badMessage, `chunk offset ${JSON.stringify(event.offsetText)} is not a number`),
                }),
              },
              "countRejected",
            ],
          },
          {
            guard: and(["forCurrentFile", not("inOrder")]),
            actions: [
              {
                type: "reply",
                params: ({ context, event }) => {
                  const expected = transferOf(context).received;
                  return {
                    to: event.respond,
                    reply: reply(Code.outOfOrder, `chunk at ${event.offset}, expected ${expected}`, { offset: expected }),
                  };
                },
              },
              "countRejected",
            ],
          },
          {
            guard: and(["forCurrentFile", not("fitsChunk")]),
            actions: [
              {
                type: "reply",
                params: ({ context, event }) => ({
                  to: event.respond,
                  reply: reply(
                    Code.tooLarge,
                    `chunk of ${event.data.length} bytes exceeds ${context.maxChunkBytes ?? Number.POSITIVE_INFINITY}`,
                  ),
                }),
              },
              "countRejected",
            ],
          },
          {
            guard: and(["forCurrentFile", not("withinSize")]),
            actions: [
              {
                type: "reply",
                params: ({ context, event }) => ({
                  to: event.respond,
                  reply: reply(
                    Code.tooLarge,
                    `chunk ends at ${event.offset + event.data.length}, past the announced size ${transferOf(context).offer.size}`,
                  ),
                }),
              },
              "countRejected",
            ],
          },
          {
            guard: "forCurrentFile",
            actions: {
              type: "write",
              params: ({ event }) => ({
                fileId: event.fileId,
                offset: event.offset,
                offsetText: event.offsetText,
                data: event.data,
                respond: event.respond,
              }),
            },
          },
        ],
        progress: {
          target: "receiving",
          reenter: true,
          guard: "forCurrentFile",
          actions: [
            assign({
              transfer: ({ context, event }) => (context.transfer ? { ...context.transfer, received: event.received } : undefined),
              bytes: ({ context, event }) => context.bytes + event.bytes,
            }),
            { type: "reply", params: ({ event }) => ({ to: event.respond, reply: reply(Code.ok, "", { offset: event.received }) }) },
          ],
        },
        writeFailed: {
          actions: {
            type: "reply",
            params: ({ event }) => ({
              to: event.respond,
              reply:
                event.reason === "closed"
                  ? reply(Code.unknownFile, `file ${event.fileId} is closed`)
                  : reply(Code.internal, "internal error; see the receiver log"),
            }),
          },
        },
        commit: { guard: "forCurrentFile", target: "verifying", actions: "holdResponder" },
        // A new offer abandons the current file; its bytes stay staged for a later resume.
        offer: { target: "offering", actions: [assign({ transfer: undefined }), "holdOffer", "holdResponder"] },
        bye: {
          target: "closed",
          actions: [
            { type: "reply", params: ({ event }) => ({ to: event.respond, reply: reply(Code.ok, "bye") }) },
            { type: "record", params: ({ event }) => ({ to: event.respond, reply: reply(Code.ok, "bye") }) },
          ],
        },
      },
    },
    verifying: {
      invoke: {
        src: "verify",
        input: ({ context, event }) => ({
          session: context,
          transfer: context.transfer!,
          commit: (event as Extract<SessionEvent, { type: "commit" }>).commit,
        }),
        onDone: {
          target: "ready",
          actions: [
            assign({
              transfer: undefined,
              files: ({ context, event }) =>
                answered(event.output.code)
                  ? { ...context.files, received: context.files.received + 1 }
                  : { ...context.files, rejected: context.files.rejected + 1 },
            }),
            { type: "reply", params: ({ event }) => ({ reply: event.output }) },
            { type: "record", params: ({ event }) => ({ reply: event.output }) },
          ],
        },
        onError: {
          target: "ready",
          actions: [
            assign({ transfer: undefined }),
            { type: "reply", params: ({ event }) => ({ reply: reply(Code.internal, failureText(event.error)) }) },
            { type: "record", params: ({ event }) => ({ reply: reply(Code.internal, failureText(event.error)) }) },
          ],
        },
      },
    },
    loading: {
      invoke: {
        src: "load",
        input: ({ context, event }) => ({ session: context, load: (event as Extract<SessionEvent, { type: "load" }>).load }),
        onDone: {
          target: "ready",
          actions: [
            assign({
              files: ({ context, event }) =>
                answered(event.output.code) ? { ...context.files, loaded: context.files.loaded + 1 } : context.files,
            }),
            { type: "reply", params: ({ event }) => ({ reply: event.output }) },
            { type: "record", params: ({ event }) => ({ reply: event.output }) },
          ],
        },
        onError: {
          target: "ready",
          actions: [
            { type: "reply", params: ({ event }) => ({ reply: reply(Code.storageFailed, failureText(event.error)) }) },
            { type: "record", params: ({ event }) => ({ reply: reply(Code.storageFailed, failureText(event.error)) }) },
          ],
        },
      },
    },
    deleting: {
      invoke: {
        src: "remove",
        input: ({ context, event }) => ({ session: context, ref: (event as Extract<SessionEvent, { type: "delete" }>).ref }),
        onDone: {
          target: "ready",
          actions: [
            assign({ files: ({ context }) => ({ ...context.files, deleted: context.files.deleted + 1 }) }),
            { type: "reply", params: ({ event }) => ({ reply: event.output }) },
            { type: "record", params: ({ event }) => ({ reply: event.output }) },
          ],
        },
        onError: {
          target: "ready",
          actions: [
            { type: "reply", params: ({ event }) => ({ reply: reply(Code.storageFailed, failureText(event.error)) }) },
            { type: "record", params: ({ event }) => ({ reply: reply(Code.storageFailed, failureText(event.error)) }) },
          ],
        },
      },
    },
    syncingSchema: {
      invoke: {
        src: "applySchema",
        input: ({ context, event }) => ({ session: context, request: (event as Extract<SessionEvent, { type: "schema" }>).request }),
        onDone: {
          target: "ready",
          actions: [
            { type: "reply", params: ({ event }) => ({ reply: event.output }) },
            { type: "record", params: ({ event }) => ({ reply: event.output }) },
          ],
        },
        onError: {
          target: "ready",
          actions: [
            { type: "reply", params: ({ event }) => ({ reply: reply(Code.storageFailed, failureText(event.error)) }) },
            { type: "record", params: ({ event }) => ({ reply: reply(Code.storageFailed, failureText(event.error)) }) },
          ],
        },
      },
    },
    closed: { type: "final" },
    expired: { type: "final" },
  },
});
