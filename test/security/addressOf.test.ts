// Who owns a reply inbox, decided from the server's connection listings; and lookups in batches.
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { batchedAddressBook, inboxOwner, inboxWildcard, leafOwner, type ConnzConnection } from "../../src/actors/receiver/addressOf.js";

const token = fc.stringMatching(/^[A-Za-z0-9]{1,12}$/);
const reply = fc.tuple(token, token).map(([nuid, t]) => `_INBOX.${nuid}.${t}`);

describe("inboxOwner", () => {
  test.prop([
    reply,
    fc.array(
      fc.record({
        cid: fc.nat(),
        ip: fc.ipV4(),
        holds: fc.constantFrom("own", "exact", "firehose", "other", "none"),
      }),
      { maxLength: 6 },
    ),
  ])(
    "the owner is the one connection subscribing the reply's inbox (or the exact reply); listeners of _INBOX.> never count; two owners are ambiguous",
    (r, conns) => {
      const wildcard = inboxWildcard(r)!;
      const subject = { own: wildcard, exact: r, firehose: "_INBOX.>", other: "_INBOX.someone.*", none: undefined } as const;
      const listing: ConnzConnection[] = conns.map((c) => ({
        cid: c.cid,
        ip: c.ip,
        name: `c${c.cid}`,
        subscriptions_list_detail: subject[c.holds] === undefined ? [] : [{ subject: subject[c.holds]! }],
      }));
      const holders = conns.filter((c) => c.holds === "own" || c.holds === "exact");
      const got = inboxOwner([{ server: undefined, connections: listing }], r);
      if (holders.length === 0) expect(got).toEqual({ kind: "none" });
      else if (holders.length === 1) expect(got).toMatchObject({ kind: "found", conn: { ip: holders[0]!.ip, cid: holders[0]!.cid } });
      else {
        expect(got.kind).toBe("ambiguous");
        if (got.kind === "ambiguous") expect(got.conns.map((c) => c.cid)).toEqual(holders.map((h) => h.cid));
      }
    },
  );

  test.prop([reply, token])("holders listed by different servers of a cluster are told apart by server", (r, server) => {
    const conn = (cid: number): ConnzConnection => ({ cid, ip: "10.0.0.1", subscriptions_list_detail: [{ subject: inboxWildcard(r)! }] });
    const one = inboxOwner(
      [
        { server, connections: [conn(1)] },
        { server: `${server}x`, connections: [] },
      ],
      r,
    );
    expect(one).toMatchObject({ kind: "found", conn: { server } });
    const two = inboxOwner(
      [
        { server, connections: [conn(1)] },
        { server: `${server}x`, connections: [conn(1)] },
      ],
      r,
    );
    expect(two.kind).toBe("ambiguous");
  });

  test("a reply without a dot has no inbox", () => {
    expect(
      inboxOwner([{ server: undefined, connections: [{ cid: 1, ip: "1.1.1.1", subscriptions_list_detail: [{ subject: "x" }] }] }], "x"),
    ).toEqual({ kind: "none" });
  });
});

describe("leafOwner", () => {
  const reply = "_tsync_inbox.a1.N.7";
  const leaf = (ip: string, subs: ReadonlyArray<string>) => ({
    server: "http://hub:8222",
    leaf: { ip, account: "$G", subscriptions_list: subs },
  });

  test("the one leaf connection carrying the sender's inbox owns it, with the other subscriptions that hear the reply", () => {
    const got = leafOwner(
      [
        leaf("198.51.100.1", ["_tsync_inbox.b1.M.*"]),
        leaf("198.51.100.2", ["_tsync_inbox.a1.N.*", "_tsync_inbox.>", "tsync.>", "_tsync_inbox.a2.>", "*.a1.N.7"]),
      ],
      reply,
    );
    expect(got).toMatchObject({ kind: "found", conn: { ip: "198.51.100.2", leaf: true, alsoHeardBy: ["_tsync_inbox.>", "*.a1.N.7"] } });
  });

  test("a leaf that only listens widely does not own the inbox; two that carry it are ambiguous", () => {
    expect(leafOwner([leaf("198.51.100.1", ["_tsync_inbox.>"])], reply)).toEqual({ kind: "none" });
    expect(leafOwner([leaf("198.51.100.1", [reply]), leaf("198.51.100.2", ["_tsync_inbox.a1.N.*"])], reply).kind).toBe("ambiguous");
  });
});

describe("batchedAddressBook", () => {
  test.prop([fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 50 })], { numRuns: 30 })(
    "concurrent lookups share listings (at most two per burst), each answered from a listing taken after it was asked",
    async (n, burst) => {
      // The "server": connections appear over time; a listing is a snapshot taken when it starts.
      const live: ConnzConnection[] = [];
      let listings = 0;
      const book = batchedAddressBook(
        "test",
        async () => {
          listings++;
          const snapshot = live.map(({ subscriptions_list_detail: _subs, ...c }) => c);
          await new Promise((r) => setTimeout(r, 1));
          return [{ server: undefined, connections: snapshot }];
        },
        async (_server, cid) => live.find((c) => c.cid === cid)?.subscriptions_list_detail ?? [],
      );
      const asks: Array<Promise<unknown>> = [];
      let bursts = 1;
      for (let i = 0; i < n; i++) {
        if (i > 0 && i % burst === 0) {
          bursts++;
          await new Promise((r) => setTimeout(r, 0));
        }
        // Each requester subscribes its inbox before it asks, like a client's SUB before its PUB.
        live.push({ cid: i, ip: `10.0.0.${i % 250}`, name: `n${i}`, subscriptions_list_detail: [{ subject: `_INBOX.n${i}.*` }] });
        asks.push(book.ownerOf(`_INBOX.n${i}.t`, { name: `n${i}` }));
      }
      const answers = await Promise.all(asks);
      answers.forEach((a, i) => expect(a).toMatchObject({ kind: "found", conn: { cid: i } }));
      expect(listings).toBeLessThanOrEqual(2 * bursts);
    },
  );

  test("a failed listing fails the lookups that waited for it, and the next ones are served again", async () => {
    let fail = true;
    const book = batchedAddressBook(
      "test",
      async () => {
        if (fail) throw new Error("monitoring endpoint answered HTTP 503");
        return [{ server: undefined, connections: [{ cid: 1, ip: "10.1.1.1", name: "a" }] }];
      },
      async () => [{ subject: "_INBOX.a.*" }],
    );
    await expect(Promise.all([book.ownerOf("_INBOX.a.1", { name: "a" }), book.ownerOf("_INBOX.a.2", { name: "a" })])).rejects.toThrow(
      /503/,
    );
    fail = false;
    expect(await book.ownerOf("_INBOX.a.3", { name: "a" })).toMatchObject({ kind: "found", conn: { ip: "10.1.1.1" } });
  });

  test("only connections with the sender's identity have their subscriptions looked at: a client holding many subscriptions costs other lookups nothing", async () => {
    const asked: number[] = [];
    const hog = { cid: 7, ip: "10.6.6.6", name: "hog", authorized_user: "UHOG" };
    const sender = { cid: 8, ip: "10.1.1.1", name: "tsync-sender-a", authorized_user: "UA" };
    const book = batchedAddressBook(
      "test",
      async () => [{ server: undefined, connections: [hog, sender] }],
      async (_server, cid) => {
        asked.push(cid);
        return cid === hog.cid
          ? Array.from({ length: 100_000 }, (_, i) => ({ subject: `_tsync_inbox.a.x${i}.*` }))
          : [{ subject: "_tsync_inbox.a.n1.*" }];
      },
    );
    expect(await book.ownerOf("_tsync_inbox.a.n1.5", { user: "UA", name: "tsync-sender-a" })).toMatchObject({
      kind: "found",
      conn: { cid: 8 },
    });
    expect(asked).toEqual([8]);
    // With an enrolled key, a connection that merely carries the sender's name is no suspect.
    const impostor = await batchedAddressBook(
      "test",
      async () => [{ server: undefined, connections: [{ ...hog, name: "tsync-sender-a" }] }],
      async () => [{ subject: "_tsync_inbox.a.n1.*" }],
    ).ownerOf("_tsync_inbox.a.n1.5", { user: "UA", name: "tsync-sender-a" });
    expect(impostor).toEqual({ kind: "none" });
  });
});
