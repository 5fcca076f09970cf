import { assign, setup } from "xstate";
import type { Commit, Delete, Load, Offer, SchemaPiece } from "../protocol/messages.js";
import { Code } from "../protocol/status.js";
import { needs } from "./slot.js";

/** What the session answers to the request that is being handled; the host sends it. */
export interface Reply {
  readonly code: number;
  readonly message: string;
  readonly [field: string]: unknown;
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
}

export interface SessionContext extends SessionInput {
  readonly transfer: Transfer | undefined;
  /** The offer being decided; it becomes the transfer when accepted. */
  readonly pendingOffer: Offer | undefined;
  readonly lastReply: Reply | undefined;
  /** Counts replies so the host can wait for the one its request caused. */
  readonly replies: number;
  readonly files: { readonly received: number; readonly loaded: number; readonly deleted: number; readonly rejected: number };
  readonly bytes: number;
}

export type SessionEvent =
  | { type: "offer"; offer: Offer }
  | { type: "progress"; fileId: string; received: number; bytes: number }
  | { type: "commit"; commit: Commit }
  | { type: "load"; load: Load }
  | { type: "delete"; ref: Delete }
  | { type: "schema"; request: SchemaRequest }
  | { type: "bye" };


const answered = (code: number) => code === Code.ok || code === Code.have;

/**
 * A failed step's reply text: the error's message alone (the host's actors make it fit for the
 * sender), never the stringified value of something that is not an Error.
 */
const failureText = (error: unknown): string =>
  error instanceof Error && typeof error.message === "string" ? error.message : "internal error; see the receiver log";

/**
 * One connected sender: admitted → ready → receiving (a file) → verifying → ready → loading → ready …
 * → closed | expired, and from ready `syncingSchema` for a piece of the sender's schema log. The
 * host feeds it requests as events and sends `lastReply` back.
 */
export const receiverSession = setup({
  types: {
    context: {} as SessionContext,
    input: {} as SessionInput,
    events: {} as SessionEvent,
  },
  actors: {
    admit: needs<Reply, SessionInput>("admit"),
    acceptOffer: needs<Reply & { fileId?: string; offset?: number }, { session: SessionInput; offer: Offer }>("acceptOffer"),
    verify: needs<Reply, { session: SessionInput; transfer: Transfer; commit: Commit }>("verify"),
    load: needs<Reply, { session: SessionInput; load: Load }>("load"),
    remove: needs<Reply, { session: SessionInput; ref: Delete }>("remove"),
    applySchema: needs<Reply, { session: SessionInput; request: SchemaRequest }>("applySchema"),
  },
  guards: {
    // A named guard sees only the machine's own event types, not an actor's done event, so a reply arrives as params.
    admitted: (_, reply: Reply) => reply.code === Code.ok,
    offerAccepted: (_, reply: Reply & { fileId?: string | undefined }) =>
      (reply.code === Code.start || reply.code === Code.resume) && reply.fileId !== undefined,
    // Progress or a commit for a file other than the one being received is stale: ignored.
    forCurrentFile: ({ context }, params: { fileId: string }) => context.transfer?.fileId === params.fileId,
  },
  delays: {
    idle: ({ context }) => context.idleTimeoutMs,
  },
  actions: {
    holdOffer: assign({
      pendingOffer: ({ event }) => (event.type === "offer" ? event.offer : undefined),
    }),
    answer: assign({
      lastReply: (_, r: Reply) => r,
      replies: ({ context }) => context.replies + 1,
    }),
  },
}).createMachine({
  id: "receiverSession",
  initial: "handshaking",
  context: ({ input }) => ({
    ...input,
    transfer: undefined,
    pendingOffer: undefined,
    lastReply: undefined,
    replies: 0,
    files: { received: 0, loaded: 0, deleted: 0, rejected: 0 },
    bytes: 0,
  }),
  states: {
    handshaking: {
      invoke: {
        src: "admit",
        input: ({ context }) => context,
        onDone: [
          { guard: { type: "admitted", params: ({ event }) => event.output }, target: "ready", actions: { type: "answer", params: ({ event }) => event.output } },
          { target: "closed", actions: { type: "answer", params: ({ event }) => event.output } },
        ],
        onError: {
          target: "closed",
          actions: { type: "answer", params: ({ event }) => ({ code: Code.internal, message: failureText(event.error) }) },
        },
      },
    },
    ready: {
      after: { idle: "expired" },
      on: {
        offer: { target: "offering", actions: "holdOffer" },
        load: "loading",
        delete: "deleting",
        schema: "syncingSchema",
        bye: { target: "closed", actions: { type: "answer", params: { code: Code.ok, message: "bye" } } },
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
              { type: "answer", params: ({ event }) => event.output },
            ],
          },
          { target: "ready", actions: { type: "answer", params: ({ event }) => event.output } },
        ],
        onError: {
          target: "ready",
          actions: { type: "answer", params: ({ event }) => ({ code: Code.internal, message: failureText(event.error) }) },
        },
      },
    },
    receiving: {
      after: { idle: "expired" },
      on: {
        progress: {
          target: "receiving",
          reenter: true,
          guard: { type: "forCurrentFile", params: ({ event }) => ({ fileId: event.fileId }) },
          actions: assign({
            transfer: ({ context, event }) => (context.transfer ? { ...context.transfer, received: event.received } : undefined),
            bytes: ({ context, event }) => context.bytes + event.bytes,
          }),
        },
        commit: { guard: { type: "forCurrentFile", params: ({ event }) => ({ fileId: event.commit.fileId }) }, target: "verifying" },
        // A new offer abandons the current file; its bytes stay staged for a later resume.
        offer: { target: "offering", actions: [assign({ transfer: undefined }), "holdOffer"] },
        bye: { target: "closed", actions: { type: "answer", params: { code: Code.ok, message: "bye" } } },
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
            { type: "answer", params: ({ event }) => event.output },
          ],
        },
        onError: {
          target: "ready",
          actions: [
            assign({ transfer: undefined }),
            { type: "answer", params: ({ event }) => ({ code: Code.internal, message: failureText(event.error) }) },
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
            { type: "answer", params: ({ event }) => event.output },
          ],
        },
        onError: {
          target: "ready",
          actions: { type: "answer", params: ({ event }) => ({ code: Code.storageFailed, message: failureText(event.error) }) },
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
            { type: "answer", params: ({ event }) => event.output },
          ],
        },
        onError: {
          target: "ready",
          actions: { type: "answer", params: ({ event }) => ({ code: Code.storageFailed, message: failureText(event.error) }) },
        },
      },
    },
    syncingSchema: {
      invoke: {
        src: "applySchema",
        input: ({ context, event }) => ({ session: context, request: (event as Extract<SessionEvent, { type: "schema" }>).request }),
        onDone: { target: "ready", actions: { type: "answer", params: ({ event }) => event.output } },
        onError: {
          target: "ready",
          actions: { type: "answer", params: ({ event }) => ({ code: Code.storageFailed, message: failureText(event.error) }) },
        },
      },
    },
    closed: { type: "final" },
    expired: { type: "final" },
  },
});
