// Log events read from the actors' snapshots, with the fields a JSON line carries (sender, session,
// file, code): a sender's failed attempts, quarantined files and conflicts; a receiver's refusals.
import type { InspectionEvent } from "xstate";
import type { SessionContext } from "../machines/receiverSession.js";
import type { SenderRoundContext } from "../machines/senderRound.js";
import { refKey } from "../machines/senderTypes.js";
import { Code, codeName } from "../protocol/status.js";
import type { Logger } from "./log.js";

interface Snap {
  readonly context?: unknown;
  readonly status?: string;
  readonly machine?: { readonly id?: string };
}

const snapshotOf = (e: InspectionEvent, machine: string): Snap | undefined => {
  if (e.type !== "@xstate.snapshot") return undefined;
  const snap = e.snapshot as Snap;
  return snap.machine?.id === machine ? snap : undefined;
};

/** A sender round's events: each failed attempt (warn), each file given up for the round and each conflict (error), each file sent (debug). */
export const senderRoundEvents = (log: Logger): ((e: InspectionEvent) => void) => {
  let lastFailure: unknown;
  let seen = { sent: 0, failed: 0, conflicts: 0 };
  return (e) => {
    const snap = snapshotOf(e, "senderRound");
    if (!snap) return;
    const c = snap.context as SenderRoundContext;
    const session = c.session?.sessionId;
    const f = c.lastFailure;
    if (f !== undefined && f !== lastFailure) {
      const unit = c.units[c.index];
      const file = unit ? refKey(unit.ref) : undefined;
      log.warn(
        `${file ?? "round"}: attempt ${c.attempts} failed (${f.kind}${f.code === undefined ? "" : `, ${codeName(f.code)}`}): ${f.message}`,
        {
          session,
          file,
          code: f.code,
        },
      );
    }
    lastFailure = f;
    const s = c.summary;
    if (log.enabled("debug"))
      for (const x of s.sent.slice(seen.sent)) log.debug(`sent ${x.file} (${x.bytes} bytes)`, { session, file: x.file });
    for (const x of s.failed.slice(seen.failed))
      log.error(`${x.file}: given up for this round after ${x.attempts} attempt(s): ${x.reason}`, { session, file: x.file });
    for (const x of s.conflicts.slice(seen.conflicts)) log.error(`storage group ${x.sg}: ${x.message}`, { session, code: Code.conflict });
    seen =
      snap.status === "active"
        ? { sent: s.sent.length, failed: s.failed.length, conflicts: s.conflicts.length }
        : { sent: 0, failed: 0, conflicts: 0 };
    if (snap.status !== "active") lastFailure = undefined;
  };
};

const refused = (code: number): boolean => code !== Code.ok && code !== Code.start && code !== Code.resume && code !== Code.have;

/** A receiver session's refusals (warn), each with the sender, session, file and code. */
export const receiverSessionEvents = (log: Logger): ((sessionId: string, e: unknown) => void) => {
  const lastReply = new Map<string, unknown>();
  return (sessionId, e) => {
    const snap = snapshotOf(e as InspectionEvent, "receiverSession");
    if (!snap) return;
    const c = snap.context as SessionContext;
    const r = c.lastReply;
    if (r !== undefined && r !== lastReply.get(sessionId) && refused(r.code)) {
      const offer = c.transfer?.offer ?? c.pendingOffer;
      const file = offer ? refKey(offer) : undefined;
      log.warn(`session ${sessionId} of ${c.senderId}: ${codeName(r.code)}: ${r.message}`, {
        sender: c.senderId,
        session: sessionId,
        file,
        code: r.code,
      });
    }
    if (snap.status === "active") lastReply.set(sessionId, r);
    else lastReply.delete(sessionId);
  };
};
