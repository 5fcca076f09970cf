/** What a sender's step failed with, and THE mapping from a receiver's status code to what the sender does next. */
import { Data } from "effect";
import { Code, codeName, type CodeName, type CodeValue, type Status } from "./status.js";

/**
 * What the sender does after a failed step (the round machine reads only this):
 * - conflict: the storage group belongs to another sender; skip the group for the round.
 * - refused: the receiver (or the NATS server) will not talk to us; end the round.
 * - sessionLost: say hello again, then retry.
 * - retryable: retry the file after a backoff.
 * - fatal: this file cannot succeed this round (quarantine it).
 */
export type FailureKind = "conflict" | "refused" | "sessionLost" | "retryable" | "fatal";

/**
 * Every code's behaviour when it answers a step that needed another answer; docs/protocol.md
 * ("What the sender does with each code") shows the same table and a test holds them equal.
 * The success codes are here too: a success where the step needed a different one (a hello `ok`
 * without a session, an `ok` to an offer) means the receiver broke the protocol, so no retry
 * can help the file this round.
 */
export const codeBehaviour: { readonly [K in CodeName]: FailureKind } = {
  ok: "fatal",
  start: "fatal",
  resume: "fatal",
  have: "fatal",
  conflict: "conflict",
  disabled: "refused",
  addressNotAllowed: "refused",
  badMessage: "fatal",
  badName: "fatal",
  digestMismatch: "retryable",
  badTsFile: "fatal",
  sizeMismatch: "retryable",
  unknownSession: "sessionLost",
  unknownFile: "retryable",
  tooLarge: "fatal",
  outOfOrder: "retryable",
  notReady: "fatal",
  storageFailed: "retryable",
  internal: "retryable",
  busy: "retryable",
  protocolMismatch: "refused",
  unauthorized: "refused",
};

const behaviourOf = new Map<CodeValue, FailureKind>(
  (Object.entries(codeBehaviour) as Array<[CodeName, FailureKind]>).map(([name, kind]) => [Code[name], kind]),
);

/** A reply as the mapping needs it: its code, and with a conflict whose group or file it was. */
export type FailedReply = Status & { readonly owner?: string | undefined; readonly loader?: string | undefined };

/**
 * The behaviour a reply asks for. A conflict naming a `loader` is over one file (another sender
 * loaded a file of that name), not over the group: only that file fails, the group's others go on.
 */
export const kindOfReply = (r: Pick<FailedReply, "code" | "loader">): FailureKind =>
  r.code === Code.conflict && r.loader !== undefined ? "fatal" : (behaviourOf.get(r.code) ?? "fatal");

// The receiver answered with a code: one variant per behaviour, the code kept as it came.
interface Answered {
  readonly code: CodeValue;
  readonly message: string;
  readonly cause?: unknown;
}

export class Conflict extends Data.TaggedError("Conflict")<Answered & { readonly owner?: string | undefined }> {
  readonly kind = "conflict" as const;
}
export class Refused extends Data.TaggedError("Refused")<Answered> {
  readonly kind = "refused" as const;
}
export class SessionLost extends Data.TaggedError("SessionLost")<Answered> {
  readonly kind = "sessionLost" as const;
}
export class Retryable extends Data.TaggedError("Retryable")<Answered> {
  readonly kind = "retryable" as const;
}
export class Fatal extends Data.TaggedError("Fatal")<Answered> {
  readonly kind = "fatal" as const;
}

export type ReplyFailure = Conflict | Refused | SessionLost | Retryable | Fatal;

/** The failure of a reply of a given behaviour; `failureFor` picks the behaviour from the code. */
export const replyFailure = (kind: FailureKind, a: Answered & { readonly owner?: string | undefined }): ReplyFailure => {
  switch (kind) {
    case "conflict":
      return new Conflict(a);
    case "refused":
      return new Refused(a);
    case "sessionLost":
      return new SessionLost(a);
    case "retryable":
      return new Retryable(a);
    case "fatal":
      return new Fatal(a);
  }
};

/** How a receiver's answer shapes the sender's next move; the message says which code and why. */
export const failureFor = (r: FailedReply): ReplyFailure => {
  const kind = kindOfReply(r);
  if (r.code === Code.conflict)
    return kind === "conflict"
      ? new Conflict({ code: r.code, message: r.message, owner: r.owner })
      : new Fatal({ code: r.code, message: `conflict: ${r.message}` });
  // Refusals and a lost session read well as the receiver put them; the rest name their code.
  const message = kind === "refused" || kind === "sessionLost" ? r.message : `${codeName(r.code)}: ${r.message}`;
  return replyFailure(kind, { code: r.code, message });
};

// No answer at all: what the NATS client reported instead. No code was sent, so none is carried.
interface Transport {
  /** The step's request: hello, or a session operation. */
  readonly op: string;
  readonly message: string;
  readonly cause?: unknown;
}

/** No answer in time: the receiver may be slow or the reply lost; try again after a backoff. */
export class Timeout extends Data.TaggedError("Timeout")<Transport> {
  readonly kind = "retryable" as const;
  declare readonly code?: undefined;
}
/**
 * Nobody subscribes to the subject. Before a session (hello) the receiver is down: retry. Within
 * one, the receiver restarted and forgot the session: say hello again.
 */
export class NoResponders extends Data.TaggedError("NoResponders")<Transport & { readonly kind: "retryable" | "sessionLost" }> {
  declare readonly code?: undefined;
}
/** Our own connection is closed, draining or broken: retry once it is back. */
export class Disconnected extends Data.TaggedError("Disconnected")<Transport> {
  readonly kind = "retryable" as const;
  declare readonly code?: undefined;
}
/** The NATS server's permissions forbid the subject: the same credentials cannot succeed, end the round. */
export class PermissionDenied extends Data.TaggedError("PermissionDenied")<Transport> {
  readonly kind = "refused" as const;
  declare readonly code?: undefined;
}

export type TransportFailure = Timeout | NoResponders | Disconnected | PermissionDenied;

// The sender decided on its own: nothing came from the receiver.
interface Local {
  readonly message: string;
  readonly cause?: unknown;
}

/** The file (or schema log) on the sender's disk cannot be sent as it is: quarantine it for the round. */
export class Unsendable extends Data.TaggedError("Unsendable")<Local> {
  readonly kind = "fatal" as const;
  declare readonly code?: undefined;
}
/** The step was stopped because the round is ending; nothing failed on either side. */
export class Stopped extends Data.TaggedError("Stopped")<Local> {
  readonly kind = "retryable" as const;
  declare readonly code?: undefined;
}
/** An error no one classified: retried, with the original kept as `cause` for the log. */
export class Unexpected extends Data.TaggedError("Unexpected")<Local> {
  readonly kind = "retryable" as const;
  declare readonly code?: undefined;
}

export type LocalFailure = Unsendable | Stopped | Unexpected;

const senderFailures = [
  Conflict,
  Refused,
  SessionLost,
  Retryable,
  Fatal,
  Timeout,
  NoResponders,
  Disconnected,
  PermissionDenied,
  Unsendable,
  Stopped,
  Unexpected,
];

/** Whether `e` is one of the failures above (an actor's rejection), by class, not by shape. */
export const isSenderFailure = (e: unknown): e is ReplyFailure | TransportFailure | LocalFailure =>
  senderFailures.some((C) => e instanceof C);
