/**
 * The address a sender really connected from, as the NATS server saw it. A request's reply subject
 * is `_INBOX.<nuid>.<token>`, and only the requesting connection subscribes `_INBOX.<nuid>.*`
 * (or the exact reply subject, for a request without the shared inbox); the server lists every
 * connection's subscriptions with the connection's IP, name and authenticated user, either on its
 * HTTP monitoring endpoint (`/connz?subs=detail`) or, from every server of a cluster, to a client
 * of the same account (`$SYS.REQ.ACCOUNT.PING.CONNZ`). What the sender says about itself is never
 * consulted.
 */
import type { NatsConnection } from "@nats-io/transport-node";

export interface ConnInfo {
  readonly ip: string;
  readonly name: string | undefined;
  readonly cid: number;
  /** The user (or nkey) the server authenticated, when it has auth configured. */
  readonly user: string | undefined;
  readonly account: string | undefined;
  /** Which server of a cluster holds the connection (account lookups only). */
  readonly server: string | undefined;
}

export type InboxOwner =
  | { readonly kind: "found"; readonly conn: ConnInfo }
  | { readonly kind: "none" }
  /** More than one connection holds the inbox: someone shadows another's replies. */
  | { readonly kind: "ambiguous"; readonly conns: ReadonlyArray<ConnInfo> };

/** Finds the connection that owns a reply subject. */
export interface AddressBook {
  /** Where the answers come from, for messages. */
  readonly source: string;
  readonly ownerOf: (reply: string) => Promise<InboxOwner>;
  readonly close: () => Promise<void>;
}

export interface ConnzConnection {
  readonly cid: number;
  readonly ip: string;
  readonly name?: string;
  readonly authorized_user?: string;
  readonly account?: string;
  readonly subscriptions_list_detail?: ReadonlyArray<{ readonly subject: string }>;
}

interface Connz {
  readonly total?: number;
  readonly offset?: number;
  readonly limit?: number;
  readonly connections?: ReadonlyArray<ConnzConnection>;
}

export const inboxWildcard = (reply: string): string | undefined => {
  const cut = reply.lastIndexOf(".");
  return cut > 0 ? `${reply.slice(0, cut)}.*` : undefined;
};

/** The connections (with the server each was listed by) that subscribe the reply's inbox. */
export const inboxOwner = (listings: ReadonlyArray<{ server: string | undefined; connections: ReadonlyArray<ConnzConnection> }>, reply: string): InboxOwner => {
  const wildcard = inboxWildcard(reply);
  if (!wildcard) return { kind: "none" };
  const holders: ConnInfo[] = [];
  for (const { server, connections } of listings) {
    for (const c of connections) {
      // Only the requester's own inbox subscription counts; a `_INBOX.>` listener is not an owner.
      if (c.subscriptions_list_detail?.some((s) => s.subject === wildcard || s.subject === reply))
        holders.push({ ip: c.ip, name: c.name, cid: c.cid, user: c.authorized_user, account: c.account, server });
    }
  }
  const [first] = holders;
  if (first === undefined) return { kind: "none" };
  return holders.length === 1 ? { kind: "found", conn: first } : { kind: "ambiguous", conns: holders };
};

/**
 * Answers lookups in batches: every lookup waiting when a listing starts is answered from that
 * listing. A hello reaches us after the server handled the requester's SUB (one connection's
 * protocol is processed in order), so any listing started after the hello arrived shows it. A
 * burst of hellos costs a few listings, not one each.
 */
export const batchedAddressBook = (
  source: string,
  list: () => Promise<ReadonlyArray<{ server: string | undefined; connections: ReadonlyArray<ConnzConnection> }>>,
  close: () => Promise<void> = async () => undefined,
): AddressBook => {
  let waiting: Array<{ reply: string; resolve: (o: InboxOwner) => void; reject: (e: unknown) => void }> = [];
  let running = false;
  const pump = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      while (waiting.length > 0) {
        const batch = waiting;
        waiting = [];
        try {
          const listings = await list();
          for (const w of batch) w.resolve(inboxOwner(listings, w.reply));
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      running = false;
    }
  };
  return {
    source,
    ownerOf: (reply) =>
      new Promise<InboxOwner>((resolve, reject) => {
        waiting.push({ reply, resolve, reject });
        void pump();
      }),
    close,
  };
};

const pageSize = 4096;

/** The server's HTTP monitoring endpoint (the embedded server's, or `nats_monitor_url`). */
export const monitorAddressBook = (monitorUrl: string): AddressBook => {
  const base = monitorUrl.replace(/\/$/, "");
  return batchedAddressBook(`the NATS monitoring endpoint ${base}`, async () => {
    const connections: ConnzConnection[] = [];
    for (let offset = 0; ; offset += pageSize) {
      const res = await fetch(`${base}/connz?subs=detail&auth=true&offset=${offset}&limit=${pageSize}`, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`monitoring endpoint ${base} answered HTTP ${res.status}`);
      const page = (await res.json()) as Connz;
      const got = page.connections ?? [];
      connections.push(...got);
      if (got.length < pageSize || offset + got.length >= (page.total ?? 0)) break;
    }
    return [{ server: undefined, connections }];
  });
};

interface ServerConnz {
  readonly server?: { readonly name?: string; readonly id?: string };
  readonly data?: Connz;
  readonly error?: { readonly code?: number; readonly description?: string };
}

/**
 * Every server of a cluster, asked over the receiver's own connection: the system account exports
 * `$SYS.REQ.ACCOUNT.PING.CONNZ` to every account, and each server answers with the connections
 * of the asking account (so the receiver must share its account with the senders). The listing is
 * complete when no server has answered for `stallMs`. No monitoring port, no system credentials.
 */
export const accountAddressBook = (nc: NatsConnection, stallMs = 100): AddressBook =>
  batchedAddressBook("the NATS servers of this account ($SYS.REQ.ACCOUNT.PING.CONNZ)", async () => {
    const body = JSON.stringify({ subscriptions_detail: true, auth: true, limit: 1 << 20 });
    const answers = await nc.requestMany("$SYS.REQ.ACCOUNT.PING.CONNZ", body, { strategy: "stall", stall: stallMs, maxWait: 5_000 });
    const listings: Array<{ server: string | undefined; connections: ReadonlyArray<ConnzConnection> }> = [];
    for await (const m of answers) {
      // An empty message is a status (no responders), not a listing.
      if (m.data.length === 0) continue;
      const r = m.json<ServerConnz>();
      if (r.error) throw new Error(`server ${r.server?.name ?? "?"} refused CONNZ: ${r.error.description ?? r.error.code}`);
      listings.push({ server: r.server?.name ?? r.server?.id, connections: r.data?.connections ?? [] });
    }
    if (listings.length === 0) throw new Error("no NATS server answered $SYS.REQ.ACCOUNT.PING.CONNZ (is the system account off?); set nats_monitor_url");
    return listings;
  });
