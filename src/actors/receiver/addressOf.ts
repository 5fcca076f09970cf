/**
 * The address a sender really connected from, as the NATS server saw it. A request's reply subject
 * is `_INBOX.<nuid>.<token>`, and only the requesting connection subscribes `_INBOX.<nuid>.*`;
 * the monitoring endpoint lists subscriptions per connection with the connection's IP. What the
 * sender says about itself is never consulted.
 */
export interface ConnInfo {
  readonly ip: string;
  readonly name: string | undefined;
  readonly cid: number;
}

interface Connz {
  readonly connections?: ReadonlyArray<{
    readonly cid: number;
    readonly ip: string;
    readonly name?: string;
    readonly subscriptions_list_detail?: ReadonlyArray<{ readonly subject: string }>;
  }>;
}

export const inboxWildcard = (reply: string): string | undefined => {
  const cut = reply.lastIndexOf(".");
  return cut > 0 ? `${reply.slice(0, cut)}.*` : undefined;
};

export const connectionFor = async (monitorUrl: string, reply: string): Promise<ConnInfo | undefined> => {
  const wildcard = inboxWildcard(reply);
  if (!wildcard) return undefined;
  const res = await fetch(`${monitorUrl.replace(/\/$/, "")}/connz?subs=detail&limit=100000`, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`monitoring endpoint answered HTTP ${res.status}`);
  const connz = (await res.json()) as Connz;
  for (const c of connz.connections ?? []) {
    // An exact inbox (no muxing) is also a valid reply subject: match it as it is.
    if (c.subscriptions_list_detail?.some((s) => s.subject === wildcard || s.subject === reply)) return { ip: c.ip, name: c.name, cid: c.cid };
  }
  return undefined;
};
