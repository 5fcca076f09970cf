// What a running receiver is doing, for `tsync status`: its open sessions, read from their actors
// when asked, and totals per sender over the sessions that ended since the process started.
import type { Receiver, ReceiverOptions } from "../actors/receiver/receiver.js";
import type { SessionHost } from "../actors/receiver/sessionHost.js";
import type { SessionContext } from "../machines/receiverSession.js";
import { refKey } from "../machines/senderTypes.js";

export interface SenderTotals {
  readonly sessions: number;
  readonly bytes: number;
  readonly received: number;
  readonly loaded: number;
  readonly deleted: number;
  readonly rejected: number;
}

export interface SessionStatus {
  readonly sender: string;
  readonly session: string;
  readonly address: string;
  readonly state: string;
  readonly openedAt: string;
  readonly bytes: number;
  readonly files: SessionContext["files"];
  readonly file: { readonly name: string; readonly part: string; readonly received: number; readonly size: number } | undefined;
  readonly lastReply: { readonly code: number; readonly message: string } | undefined;
}

export interface ReceiverStatus {
  readonly role: "receiver";
  readonly group: string;
  readonly nats: string;
  readonly syncEnabled: boolean;
  readonly sessions: ReadonlyArray<SessionStatus>;
  /** Since the process started: ended sessions and the open ones together. */
  readonly senders: Readonly<Record<string, SenderTotals>>;
}

const zero: SenderTotals = { sessions: 0, bytes: 0, received: 0, loaded: 0, deleted: 0, rejected: 0 };

const add = (t: SenderTotals, c: SessionContext): SenderTotals => ({
  sessions: t.sessions + 1,
  bytes: t.bytes + c.bytes,
  received: t.received + c.files.received,
  loaded: t.loaded + c.files.loaded,
  deleted: t.deleted + c.files.deleted,
  rejected: t.rejected + c.files.rejected,
});

const sessionOf = (h: SessionHost): SessionStatus => {
  const snap = h.actor.getSnapshot();
  const c = snap.context;
  const t = c.transfer;
  return {
    sender: c.senderId,
    session: c.sessionId,
    address: h.address ?? c.address,
    state: typeof snap.value === "string" ? snap.value : JSON.stringify(snap.value),
    openedAt: new Date(h.startedAt).toISOString(),
    bytes: c.bytes,
    files: c.files,
    file: t ? { name: refKey(t.offer), part: t.offer.kind, received: t.received, size: t.offer.size } : undefined,
    lastReply: c.lastReply ? { code: c.lastReply.code, message: c.lastReply.message } : undefined,
  };
};

export class ReceiverWatch {
  private readonly ended = new Map<string, SenderTotals>();

  /** Counts a session into its sender's totals when it ends. */
  readonly onSession: NonNullable<ReceiverOptions["onSession"]> = (host, event) => {
    if (event !== "end") return;
    const c = host.actor.getSnapshot().context;
    this.ended.set(c.senderId, add(this.ended.get(c.senderId) ?? zero, c));
  };

  status(receiver: Receiver): ReceiverStatus {
    const open = receiver.openSessions;
    const senders = new Map(this.ended);
    for (const h of open) {
      const c = h.actor.getSnapshot().context;
      senders.set(c.senderId, add(senders.get(c.senderId) ?? zero, c));
    }
    const settings = receiver.core.settings;
    return {
      role: "receiver",
      group: settings.group,
      nats: receiver.server ? `embedded, port ${receiver.port}` : receiver.url,
      syncEnabled: settings.enabled,
      sessions: open.map(sessionOf),
      senders: Object.fromEntries([...senders].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    };
  }
}
