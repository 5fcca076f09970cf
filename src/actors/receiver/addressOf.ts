/**
 * The address a sender really connected from, as the NATS server saw it. A sender's request has
 * the reply subject `_tsync_inbox.<id>.<nuid>.<token>`, and only the requesting connection
 * subscribes `_tsync_inbox.<id>.<nuid>.*`
 * (or the exact reply subject, for a request without the shared inbox); the server lists every
 * connection's subscriptions with the connection's IP, name and authenticated user, either on its
 * HTTP monitoring endpoint (`/connz?subs=detail`) or, from every server of a cluster, to a client
 * of the same account (`$SYS.REQ.ACCOUNT.PING.CONNZ`). A sender behind a leaf node is no client of
 * the hub: its inbox subscription reaches the hub as interest of the leaf connection, so the
 * monitoring endpoint's `/leafz?subs=1` names the leaf connection that holds it, with the address
 * the hub saw when the leaf dialed in (docs/scale-out.md). What the sender says about itself is
 * never consulted.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { subjectMatches } from "../../protocol/subjects.js";

export interface ConnInfo {
  readonly ip: string;
  readonly name: string | undefined;
  readonly cid: number;
  /** The user (or nkey) the server authenticated, when it has auth configured. */
  readonly user: string | undefined;
  readonly account: string | undefined;
  /** Which server of a cluster holds the connection (account lookups only). */
  readonly server: string | undefined;
  /**
   * A leaf node's connection to the hub, holding the inbox for a client of the leaf server: the
   * address is the leaf's, and the identity is what the hub's leafnode authorization lets that
   * connection subscribe, not a connection name.
   */
  readonly leaf?: true;
  /**
   * For a leaf connection: its other subscriptions that also hear the reply (`_tsync_inbox.>`,
   * `>`...), the interest of some other client of the leaf server, which would read the answer too.
   */
  readonly alsoHeardBy?: ReadonlyArray<string>;
}

export type InboxOwner =
  | { readonly kind: "found"; readonly conn: ConnInfo }
  | { readonly kind: "none" }
  /** More than one connection holds the inbox: someone shadows another's replies. */
  | { readonly kind: "ambiguous"; readonly conns: ReadonlyArray<ConnInfo> };

/** Which connections may have sent a hello: its sender's authenticated key, or else its connection name. */
export interface Suspects {
  /** The enrolled sender's public nkey (the server lists it as `authorized_user`). */
  readonly user?: string | undefined;
  readonly name: string;
}

/** Finds the connection that owns a reply subject. */
export interface AddressBook {
  /** Where the answers come from, for messages. */
  readonly source: string;
  readonly ownerOf: (reply: string, suspects: Suspects) => Promise<InboxOwner>;
  readonly close: () => Promise<void>;
}

/** More connections than this claiming one sender's identity is an attack, not a fleet. */
export const maxSuspects = 16;

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
export const inboxOwner = (
  listings: ReadonlyArray<{ server: string | undefined; connections: ReadonlyArray<ConnzConnection> }>,
  reply: string,
): InboxOwner => {
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

export type Listing = ReadonlyArray<{ server: string | undefined; connections: ReadonlyArray<ConnzConnection> }>;

/** A leaf connection as the hub's `/leafz?subs=1` lists it. */
export interface LeafConnection {
  readonly ip: string;
  readonly account?: string;
  readonly subscriptions_list?: ReadonlyArray<string>;
}

/**
 * The leaf connection that holds the reply's inbox (its exact subject or the inbox wildcard), with
 * its other subscriptions that hear the reply too.
 */
export const leafOwner = (leafs: ReadonlyArray<{ server: string | undefined; leaf: LeafConnection }>, reply: string): InboxOwner => {
  const wildcard = inboxWildcard(reply);
  if (!wildcard) return { kind: "none" };
  const own = (s: string) => s === wildcard || s === reply;
  const holders: ConnInfo[] = leafs
    .filter(({ leaf }) => leaf.subscriptions_list?.some(own))
    .map(({ server, leaf }, cid) => ({
      ip: leaf.ip,
      name: undefined,
      cid,
      user: undefined,
      account: leaf.account,
      server,
      leaf: true,
      alsoHeardBy: (leaf.subscriptions_list ?? []).filter((s) => !own(s) && subjectMatches(s, reply)),
    }));
  const [first] = holders;
  if (first === undefined) return { kind: "none" };
  return holders.length === 1 ? { kind: "found", conn: first } : { kind: "ambiguous", conns: holders };
};

/** Where a lookup that found no client holding the inbox looks next. */
export interface SecondLook {
  /** The same two steps again, waiting longer for every server of a cluster to answer. */
  readonly patient?: {
    readonly list: () => Promise<Listing>;
    readonly subscriptionsOf: (server: string | undefined, cid: number) => Promise<ReadonlyArray<{ readonly subject: string }>>;
  };
  /** The leaf connections of the hub servers, with their subscriptions. */
  readonly leafs?: () => Promise<ReadonlyArray<{ server: string | undefined; leaf: LeafConnection }>>;
}

const isSuspect = (c: ConnzConnection, who: Suspects): boolean =>
  who.user !== undefined ? c.authorized_user === who.user : c.name === who.name;

/**
 * Answers lookups in two steps, each bounded: a listing of connections without their
 * subscriptions (batched: every lookup waiting when a listing starts is answered from it, so a
 * burst of hellos costs a few listings, not one each), then the subscriptions of the few
 * connections that carry the sender's identity, asked for one connection at a time. A client that
 * holds a million subscriptions slows only lookups of its own identity. A hello reaches us after
 * the server handled the requester's SUB (one connection's protocol is processed in order), so
 * any listing started after the hello arrived shows it.
 */
export const batchedAddressBook = (
  source: string,
  list: () => Promise<Listing>,
  subscriptionsOf: (server: string | undefined, cid: number) => Promise<ReadonlyArray<{ readonly subject: string }>>,
  close: () => Promise<void> = async () => undefined,
  second: SecondLook = {},
): AddressBook => {
  let waiting: Array<{ resolve: (l: Listing) => void; reject: (e: unknown) => void }> = [];
  let running = false;
  const pump = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      while (waiting.length > 0) {
        const batch = waiting;
        waiting = [];
        try {
          const listing = await list();
          for (const w of batch) w.resolve(listing);
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      running = false;
    }
  };
  const listing = () =>
    new Promise<Listing>((resolve, reject) => {
      waiting.push({ resolve, reject });
      void pump();
    });
  return {
    source,
    ownerOf: async (reply, who) => {
      const look = async (listed: Listing, subsOf: typeof subscriptionsOf): Promise<InboxOwner> => {
        const suspects = listed.flatMap(({ server, connections }) =>
          connections.filter((c) => isSuspect(c, who)).map((c) => ({ server, c })),
        );
        if (suspects.length > maxSuspects)
          throw new Error(`${suspects.length} connections carry the identity of ${who.name}; at most ${maxSuspects} are looked at`);
        const detailed = await Promise.all(
          suspects.map(async ({ server, c }) => ({
            server,
            connections: [{ ...c, subscriptions_list_detail: await subsOf(server, c.cid) }],
          })),
        );
        return inboxOwner(detailed, reply);
      };
      let owner = await look(await listing(), subscriptionsOf);
      // Rare paths only: an honest sender connected directly is found at the first look.
      if (owner.kind === "none" && second.patient) owner = await look(await second.patient.list(), second.patient.subscriptionsOf);
      if (owner.kind === "none" && second.leafs) owner = leafOwner(await second.leafs(), reply);
      return owner;
    },
    close,
  };
};

const pageSize = 4096;

const fetchConnz = async (base: string, query: string): Promise<Connz> => {
  const res = await fetch(`${base}/connz?${query}`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`monitoring endpoint ${base} answered HTTP ${res.status}`);
  return (await res.json()) as Connz;
};

const fetchLeafz = async (base: string): Promise<ReadonlyArray<LeafConnection>> => {
  const res = await fetch(`${base}/leafz?subs=1`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`monitoring endpoint ${base} answered HTTP ${res.status}`);
  return ((await res.json()) as { leafs?: ReadonlyArray<LeafConnection> }).leafs ?? [];
};

/**
 * The HTTP monitoring endpoints of the servers senders connect to (the embedded server's, or
 * `nats_monitor_url`: one URL, or one per hub node, comma-separated), clients and leaf connections.
 */
export const monitorAddressBook = (monitorUrls: string): AddressBook => {
  const bases = monitorUrls
    .split(",")
    .map((u) => u.trim().replace(/\/$/, ""))
    .filter(Boolean);
  return batchedAddressBook(
    `the NATS monitoring endpoint${bases.length > 1 ? "s" : ""} ${bases.join(", ")}`,
    () =>
      Promise.all(
        bases.map(async (base) => {
          const connections: ConnzConnection[] = [];
          for (let offset = 0; ; offset += pageSize) {
            const page = await fetchConnz(base, `auth=true&offset=${offset}&limit=${pageSize}`);
            const got = page.connections ?? [];
            connections.push(...got);
            if (got.length < pageSize || offset + got.length >= (page.total ?? 0)) break;
          }
          return { server: base, connections };
        }),
      ),
    async (server, cid) => {
      const page = await fetchConnz(server ?? bases[0] ?? "", `cid=${cid}&subs=detail`);
      return page.connections?.find((c) => c.cid === cid)?.subscriptions_list_detail ?? [];
    },
    async () => undefined,
    {
      leafs: async () =>
        (await Promise.all(bases.map(async (base) => (await fetchLeafz(base)).map((leaf) => ({ server: base, leaf }))))).flat(),
    },
  );
};

interface ServerConnz {
  readonly server?: { readonly name?: string; readonly id?: string };
  readonly data?: Connz;
  readonly error?: { readonly code?: number; readonly description?: string };
}

/**
 * Every server of a cluster, asked over the receiver's store connection (which hears nothing from
 * senders): the system account exports `$SYS.REQ.ACCOUNT.PING.CONNZ` to every account, and each
 * server answers with the connections of the asking account (so the receiver must share its
 * account with the senders). The listing is complete when no server has answered for `stallMs`.
 * No monitoring port, no system credentials. Answers could be forged by any client that may
 * publish into the receiver's inbox, which is why a receiver on a server without authentication
 * refuses a non-trivial ip_white_list (see receiver.ts).
 */
export const accountAddressBook = (nc: NatsConnection, stallMs = 100, patientStallMs = 1_000): AddressBook => {
  const ask = async (
    body: Record<string, unknown>,
    stall = stallMs,
  ): Promise<ReadonlyArray<{ server: string | undefined; connz: Connz }>> => {
    const answers = await nc.requestMany("$SYS.REQ.ACCOUNT.PING.CONNZ", JSON.stringify(body), {
      strategy: "stall",
      stall,
      maxWait: 5_000,
    });
    const out: Array<{ server: string | undefined; connz: Connz }> = [];
    for await (const m of answers) {
      // An empty message is a status (no responders), not a listing.
      if (m.data.length === 0) continue;
      const r = m.json<ServerConnz>();
      if (r.error) throw new Error(`server ${r.server?.name ?? "?"} refused CONNZ: ${r.error.description ?? r.error.code}`);
      out.push({ server: r.server?.name ?? r.server?.id, connz: r.data ?? {} });
    }
    if (out.length === 0)
      throw new Error("no NATS server answered $SYS.REQ.ACCOUNT.PING.CONNZ (is the system account off?); set nats_monitor_url");
    return out;
  };
  const list = (stall: number) => async () =>
    (await ask({ auth: true, limit: 1 << 20 }, stall)).map(({ server, connz }) => ({ server, connections: connz.connections ?? [] }));
  const subscriptionsOf = (stall: number) => async (server: string | undefined, cid: number) =>
    (await ask({ cid, subscriptions_detail: true, auth: true }, stall))
      .filter((a) => a.server === server)
      .flatMap((a) => a.connz.connections ?? [])
      .find((c) => c.cid === cid)?.subscriptions_list_detail ?? [];
  return batchedAddressBook(
    "the NATS servers of this account ($SYS.REQ.ACCOUNT.PING.CONNZ)",
    list(stallMs),
    subscriptionsOf(stallMs),
    async () => undefined,
    // A busy node of a cluster can answer after the others went quiet for `stallMs`: a sender not
    // found is looked for once more, waiting longer, before it is refused.
    { patient: { list: list(patientStallMs), subscriptionsOf: subscriptionsOf(patientStallMs) } },
  );
};
