// What a person debugging a transfer wants to see of each machine's context, small enough to
// send to a browser a few times a second. Contexts hold whole scan results; these do not.
import type { SessionContext } from "../machines/receiverSession.js";
import type { LifecycleContext } from "../machines/senderLifecycle.js";
import type { SenderRoundContext } from "../machines/senderRound.js";
import { refKey, type RoundSummary } from "../machines/senderTypes.js";

export interface RoundCounts {
  readonly sent: number;
  readonly skipped: number;
  readonly failed: number;
  readonly conflicts: number;
  readonly deleted: number;
  readonly bytesSent: number;
  readonly roundError: string | undefined;
}

export interface ReceiverSessionDetails {
  readonly kind: "receiverSession";
  readonly senderId: string;
  readonly sessionId: string;
  /** The address the NATS server saw, once admission has established it. */
  readonly address: string;
  readonly file: { readonly name: string; readonly part: string; readonly received: number; readonly size: number } | undefined;
  /** Small files being stored at once (puts), each in a child actor of the session. */
  readonly putsInFlight: number;
  readonly bytes: number;
  readonly files: { readonly received: number; readonly loaded: number; readonly deleted: number; readonly rejected: number };
  readonly lastReply: { readonly code: number; readonly message: string } | undefined;
}

export interface SenderRoundDetails {
  readonly kind: "senderRound";
  readonly files: number;
  readonly deletions: number;
  /** 1-based number of the file being worked on; files + 1 once all are done. */
  readonly fileNumber: number;
  readonly file:
    | { readonly name: string; readonly part: string; readonly partNumber: number; readonly parts: number; readonly size: number }
    | undefined;
  readonly attempts: number;
  readonly maxRetries: number;
  readonly handshakes: number;
  readonly sessionId: string | undefined;
  /** `code` is the receiver's status code, absent when it never answered (a timeout, no responders). */
  readonly lastFailure: { readonly kind: string; readonly code: number | undefined; readonly message: string } | undefined;
  readonly conflictedGroups: ReadonlyArray<string>;
  readonly summary: RoundCounts;
  /** The last few files that failed, with why. */
  readonly failures: ReadonlyArray<{ readonly file: string; readonly reason: string; readonly attempts: number }>;
}

export interface SenderDetails {
  readonly kind: "sender";
  readonly rounds: number;
  readonly periodMs: number;
  readonly lastRound: RoundCounts | undefined;
}

export interface OtherDetails {
  readonly kind: "other";
}

export type ActorDetails = ReceiverSessionDetails | SenderRoundDetails | SenderDetails | OtherDetails;

export const roundCounts = (s: RoundSummary): RoundCounts => ({
  sent: s.sent.length,
  skipped: s.skipped.length,
  failed: s.failed.length,
  conflicts: s.conflicts.length,
  deleted: s.deleted.length,
  bytesSent: s.bytesSent,
  roundError: s.roundError,
});

const FAILURES_SHOWN = 5;

const receiverSession = (c: SessionContext, before: ActorDetails | undefined): ReceiverSessionDetails => {
  const replyAddress = c.lastReply?.["address"];
  const known = before?.kind === "receiverSession" ? before.address : "";
  const t = c.transfer;
  return {
    kind: "receiverSession",
    senderId: c.senderId,
    sessionId: c.sessionId,
    address: c.address || known || (typeof replyAddress === "string" ? replyAddress : ""),
    file: t ? { name: refKey(t.offer), part: t.offer.kind, received: t.received, size: t.offer.size } : undefined,
    // Contexts recorded before puts existed (a saved board, a test fixture) have none.
    putsInFlight: Object.keys(c.puts ?? {}).length,
    bytes: c.bytes,
    files: c.files,
    lastReply: c.lastReply ? { code: c.lastReply.code, message: c.lastReply.message } : undefined,
  };
};

const senderRound = (c: SenderRoundContext): SenderRoundDetails => {
  const unit = c.units[c.index];
  const part = unit?.parts[Math.min(c.partIndex, Math.max(0, unit.parts.length - 1))];
  return {
    kind: "senderRound",
    files: c.units.length,
    deletions: c.deletions.length,
    fileNumber: c.index + 1,
    file: unit
      ? {
          name: refKey(unit.ref),
          part: part?.kind ?? "",
          partNumber: Math.min(c.partIndex + 1, unit.parts.length),
          parts: unit.parts.length,
          size: part?.size ?? 0,
        }
      : undefined,
    attempts: c.attempts,
    maxRetries: c.maxRetries,
    handshakes: c.handshakes,
    sessionId: c.session?.sessionId,
    lastFailure: c.lastFailure ? { kind: c.lastFailure.kind, code: c.lastFailure.code, message: c.lastFailure.message } : undefined,
    conflictedGroups: Object.keys(c.conflicted),
    summary: roundCounts(c.summary),
    failures: c.summary.failed.slice(-FAILURES_SHOWN),
  };
};

const sender = (c: LifecycleContext): SenderDetails => ({
  kind: "sender",
  rounds: c.rounds,
  periodMs: c.periodMs,
  lastRound: c.lastSummary ? roundCounts(c.lastSummary) : undefined,
});

/** The details of one actor, by the id of its machine; `before` keeps what only an earlier context told. */
export const detailsOf = (machine: string, context: unknown, before: ActorDetails | undefined): ActorDetails => {
  switch (machine) {
    case "receiverSession":
      return receiverSession(context as SessionContext, before);
    case "senderRound":
      return senderRound(context as SenderRoundContext);
    case "sender":
      return sender(context as LifecycleContext);
    default:
      return { kind: "other" };
  }
};
