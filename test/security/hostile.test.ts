// Hostile input: every receiver handler fuzzed with fast-check (malformed, wrongly typed, huge,
// random bytes, unknown operations and sessions), named attacks on names, offsets and digests,
// and floods of handshakes. Each gets a clear status; nothing lands outside the receiver's data
// directory; a well-behaved sender keeps syncing all along.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { parse as parsePath, join } from "node:path";
import { tmpdir } from "node:os";
import { fc } from "@fast-check/vitest";
import { headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { SampleFile } from "../../src/actors/sampleDataDir.js";
import type { Receiver } from "../../src/actors/receiver/receiver.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { roundSucceeded, type RoundSummary } from "../../src/machines/senderTypes.js";
import { encodeJson } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";
import { ChunkHeader, helloSubject, PutHeader, senderInboxPrefix } from "../../src/protocol/subjects.js";
import { senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";
import {
  addSealedFile,
  buildEdge,
  eventually,
  expectLandedByteForByte,
  helloBody,
  helloInto,
  listTree,
  rawClient,
  replyOf,
  sayHello,
  type AnyReply,
} from "./kit.js";

const group = "hostile";
const knownCodes = new Set<number>(Object.values(Code));
const marker = "tsync-escape-marker";

let server: TestNatsServer;
let root: string;
let centre: string;
let receiver: Receiver;
let good: Sender;
let goodEdge: string;
const goodFiles: SampleFile[] = [];
let outsideBefore: string[];

/** Everything under the temp root except the receiver's data directory and the good sender's edge. */
const outsideListing = () =>
  listTree(root, (rel) => rel === "deep" || rel.startsWith("deep/") || rel === "good-edge" || rel.startsWith("good-edge/"));

beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-hostile-");
  // Deep, so a name that climbed out of it would land inside the temp root where we look.
  centre = join(root, "deep", "a", "b", "c", "d", "e", "f", "g", "centre");
  receiver = await startReceiver(server, centre, {
    receiver_group: group,
    session_idle_timeout_in_second: "2",
    max_file_size_bytes: "100000",
  });
  goodEdge = join(root, "good-edge");
  goodFiles.push(...(await buildEdge(goodEdge, ["root.good"], 1)));
  good = await Sender.open({
    config: senderConfig({ data_directory: goodEdge, nats_url: server.url, receiver_group: group, sender_name: "good" }),
  });
  await import("node:fs/promises").then((fs) =>
    fs.mkdir(join(root, "outside")).then(() => fs.writeFile(join(root, "outside", "bystander"), "untouched")),
  );
  outsideBefore = await outsideListing();
});

afterAll(async () => {
  await good?.close();
  await receiver?.stop();
  await server?.cleanup();
  await removeAll(root);
});

/** Runs `work` while the good sender syncs a new file every round; every one of its rounds must succeed. */
const whileGoodSenderSyncs = async (work: () => Promise<void>): Promise<void> => {
  let stop = false;
  const rounds: RoundSummary[] = [];
  const loop = (async () => {
    while (!stop) {
      const n = goodFiles.length + 1;
      goodFiles.push(await addSealedFile(goodEdge, "root.good", `${3_000_000_000_000 + n}-${1000 + n}-0-0.tsfile`, 1000 + n));
      rounds.push(await good.runOnce());
    }
  })();
  try {
    await work();
  } finally {
    stop = true;
    await loop;
  }
  expect(rounds.length).toBeGreaterThan(0);
  for (const r of rounds) expect(roundSucceeded(r), JSON.stringify(r)).toBe(true);
  await expectLandedByteForByte(centre, goodFiles);
};

/** The hand-driven client "fuzz": says hello again when its session was closed (bye) or expired. */
class FuzzClient {
  private prefix: string | undefined;
  hellos = 0;
  constructor(readonly nc: NatsConnection) {}

  async session(): Promise<string> {
    if (this.prefix === undefined) {
      const r = await sayHello(this.nc, group, "fuzz");
      expect(r.code, r.message).toBe(Code.ok);
      this.prefix = String(r["sessionPrefix"]);
      this.hellos++;
    }
    return this.prefix;
  }

  async ask(op: string, data: Uint8Array, h?: MsgHdrs): Promise<AnyReply> {
    for (let attempt = 0; ; attempt++) {
      const prefix = await this.session();
      try {
        const r = replyOf(await this.nc.request(`${prefix}.${op}`, data, { timeout: 10_000, ...(h ? { headers: h } : {}) }));
        if (op === "bye") this.prefix = undefined;
        return r;
      } catch (e) {
        // No responders: the session ended (bye, idle timeout); a real sender says hello again.
        if (attempt > 0 || !String(e).includes("no responders")) throw e;
        this.prefix = undefined;
      }
    }
  }
}

const expectStatus = (r: AnyReply) => {
  expect(knownCodes.has(r.code), JSON.stringify(r)).toBe(true);
  expect(typeof r.message).toBe("string");
  if (r.code >= 40) expect(r.message.length, JSON.stringify(r)).toBeGreaterThan(0);
};

// ---- arbitraries ----------------------------------------------------------------------------

const nameLike = fc.oneof(
  fc.constantFrom(
    "..",
    ".",
    "",
    "/etc",
    "/",
    "a/b",
    "a\\b",
    "a\u0000b",
    "root.sg",
    "0",
    "-1",
    "x".repeat(300),
    "1-1-0-0.tsfile",
    "../../x.tsfile",
    "C:\\x",
    `${"../".repeat(20)}${marker}`,
  ),
  fc.string(),
  fc.string({ unit: "binary", maxLength: 40 }),
);
const anyValue = fc.oneof(
  nameLike,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.object({ maxDepth: 2 }),
);
const sha = fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), anyValue);
const size = fc.oneof(fc.nat({ max: 200_000 }), fc.integer(), fc.double(), fc.constantFrom(-1, 2 ** 53, 1e300, "12"), anyValue);
const refFields = {
  sg: nameLike,
  vg: fc.oneof(nameLike, fc.constantFrom("0", "1")),
  tp: fc.oneof(nameLike, fc.constantFrom("0", "9")),
  name: fc.oneof(nameLike, fc.constant("1-1-0-0.tsfile")),
};
const kind = fc.oneof(fc.constantFrom("tsfile", "resource", "mods", "mods2", "exe"), anyValue);
const offerLike = fc.record({ ...refFields, kind, size, sha256: sha }, { requiredKeys: [] });
const commitLike = fc.record({ fileId: anyValue, size, sha256: sha }, { requiredKeys: [] });
const loadLike = fc.record(
  { ...refFields, parts: fc.oneof(fc.array(fc.record({ kind, size, sha256: sha }, { requiredKeys: [] }), { maxLength: 6 }), anyValue) },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.jsonValue({ maxDepth: 3 }).map(encodeJson),
  offerLike.map(encodeJson),
  commitLike.map(encodeJson),
  loadLike.map(encodeJson),
  fc.record(refFields, { requiredKeys: [] }).map(encodeJson),
  // Huge: close to max_payload, of the kind that is slow to parse if anything is (shown short).
  fc
    .tuple(fc.constantFrom("{", "[", '"', "9"), fc.integer({ min: 100_000, max: 1_000_000 }))
    .map(([c, n]) => Object.assign(new TextEncoder().encode(c.repeat(n)), { [fc.toStringMethod]: () => `${JSON.stringify(c)} x ${n}` })),
);
const headerText = fc.stringMatching(/^[\x20-\x7e]{0,24}$/);
// A put's header: a load-like ref and parts as JSON (printable ASCII, as NATS headers carry it), or junk.
const putHeader = fc.oneof(
  loadLike.map((l) => JSON.stringify(l)).filter((t) => /^[\x20-\x7e]*$/.test(t)),
  loadLike.map((l) => JSON.stringify({ ...l, held: ["tsfile"] })).filter((t) => /^[\x20-\x7e]*$/.test(t)),
  headerText,
);
const chunkHeaders = fc.option(
  fc.record(
    {
      file: headerText,
      offset: fc.oneof(fc.nat().map(String), fc.constantFrom("-1", "1e3", "99999999999999999999", ""), headerText),
      put: putHeader,
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);
const knownOp = fc.constantFrom("offer", "chunk", "commit", "load", "put", "delete", "bye", "schema");
const anyOp = fc.oneof(knownOp, knownOp, fc.stringMatching(/^[a-z]{1,10}(\.[a-z0-9]{1,5})?$/));

const decodesAsJson = (b: Uint8Array): boolean => {
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b));
    return true;
  } catch {
    return false;
  }
};

// ---- fuzzing --------------------------------------------------------------------------------

describe("fuzzed", () => {
  test("property: every hello, however malformed, gets a known status, and only a true hello of this connection's sender is admitted", async () => {
    const nc = await rawClient(server.url, "fuzz");
    const token = fc.oneof(fc.constant("fuzz"), fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/));
    const helloLike = fc.record(
      {
        protocol: fc.oneof(fc.constant(1), anyValue),
        senderId: fc.oneof(fc.constant("fuzz"), token, anyValue),
        tsyncVersion: fc.oneof(fc.constant("0.1.0"), anyValue),
        storageGroups: fc.oneof(fc.array(nameLike, { maxLength: 4 }), anyValue),
        address: fc.constantFrom("10.0.0.1", "::1"),
      },
      { requiredKeys: [] },
    );
    try {
      await whileGoodSenderSyncs(async () => {
        await fc.assert(
          fc.asyncProperty(token, fc.oneof(helloLike.map(encodeJson), body), async (id, data) => {
            // The connection's own id asks from its own inbox; other ids from theirs (this server has no permissions).
            const r =
              id === "fuzz"
                ? replyOf(await nc.request(helloSubject(group, id), data, { timeout: 10_000 }))
                : await helloInto(nc, group, id, data);
            expectStatus(r);
            if (r.code === Code.ok) {
              const h = JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>;
              expect([id, h["senderId"], h["protocol"]]).toEqual(["fuzz", "fuzz", 1]);
            }
          }),
          { numRuns: 150 },
        );
      });
      // Each admitted hello replaced the one before: at most one session of "fuzz" is left.
      expect(receiver.openSessions.filter((s) => s.input.senderId === "fuzz").length).toBeLessThanOrEqual(1);
    } finally {
      await nc.close();
    }
  });

  test("property: every session operation, however malformed, gets a known status; unknown operations and undecodable bodies get badMessage", async () => {
    const client = new FuzzClient(await rawClient(server.url, "fuzz"));
    try {
      await whileGoodSenderSyncs(async () => {
        await fc.assert(
          fc.asyncProperty(anyOp, body, chunkHeaders, async (op, data, hdr) => {
            let h: MsgHdrs | undefined;
            if (hdr) {
              h = headers();
              if (hdr.file !== undefined) h.set(ChunkHeader.file, hdr.file);
              if (hdr.offset !== undefined) h.set(ChunkHeader.offset, hdr.offset);
              if (hdr.put !== undefined) h.set(PutHeader, hdr.put);
            }
            const r = await client.ask(op, data, h);
            expectStatus(r);
            if (!["offer", "chunk", "commit", "load", "put", "delete", "bye", "schema"].includes(op)) {
              expect(r.code).toBe(Code.badMessage);
              expect(r.message).toBe(`unknown operation ${JSON.stringify(op)}`);
            }
            if (["offer", "commit", "load", "delete"].includes(op) && !decodesAsJson(data)) expect(r.code).toBe(Code.badMessage);
            if (op === "chunk") expect([Code.unknownFile, Code.badMessage, Code.outOfOrder, Code.tooLarge, Code.ok]).toContain(r.code);
            // Random bytes never match a digest, so no put of them is ever stored.
            if (op === "put") expect(r.code, r.message).not.toBe(Code.ok);
          }),
          { numRuns: 300 },
        );
      });
      expect(client.hellos).toBeGreaterThan(0);
    } finally {
      await client.nc.close();
    }
  });

  test("property: a request to a session that does not exist fails at once with no responders", async () => {
    const nc = await rawClient(server.url, "fuzz");
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.stringMatching(/^[A-Za-z0-9]{1,16}$/),
          fc.stringMatching(/^[A-Za-z0-9]{1,16}$/),
          knownOp,
          body,
          async (instance, session, op, data) => {
            await expect(nc.request(`tsync.${group}.s.${instance}.fuzz.${session}.${op}`, data, { timeout: 5_000 })).rejects.toThrow(
              /no responders/,
            );
          },
        ),
        { numRuns: 30 },
      );
    } finally {
      await nc.close();
    }
  });
});

// ---- named cases ----------------------------------------------------------------------------

describe("named cases", () => {
  let client: FuzzClient;
  beforeAll(async () => {
    client = new FuzzClient(await rawClient(server.url, "fuzz"));
  });
  afterAll(async () => {
    await client.nc.close();
  });

  const offer = (o: Record<string, unknown>) =>
    client.ask("offer", encodeJson({ sg: "root.named", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 10, ...o }));
  const put = (header: Record<string, unknown> | undefined, bytes: Uint8Array) => {
    const h = headers();
    if (header) h.set(PutHeader, JSON.stringify(header));
    return client.ask("put", bytes, h);
  };
  const chunk = (fileId: unknown, offset: number | string, bytes: Uint8Array) => {
    const h = headers();
    h.set(ChunkHeader.file, String(fileId));
    h.set(ChunkHeader.offset, String(offset));
    return client.ask("chunk", bytes, h);
  };

  test.each([
    ["sg", "..", /storage group "\.\." is not a name/],
    ["sg", ".", /storage group "\." is not a name/],
    ["sg", "../../etc", /storage group "\.\.\/\.\.\/etc" contains a path separator/],
    ["sg", "/etc", /storage group "\/etc" contains a path separator/],
    ["sg", "root\\sg", /contains a path separator/],
    ["sg", "root\u0000sg", /storage group contains a NUL byte/],
    ["sg", "", /storage group is empty/],
    ["vg", "..", /vg "\.\." is not a partition number/],
    ["vg", "/0", /vg "\/0" is not a partition number/],
    ["tp", "0/../..", /tp "0\/\.\.\/\.\." is not a partition number/],
    ["tp", "0\u0000", /is not a partition number/],
    ["name", "../../1-1-0-0.tsfile", /file name "\.\.\/\.\.\/1-1-0-0\.tsfile" contains a path separator/],
    ["name", `${"../".repeat(20)}${marker}.tsfile`, /contains a path separator/],
    ["name", "/abs.tsfile", /contains a path separator/],
    ["name", "x\u0000.tsfile", /file name contains a NUL byte/],
    ["name", "..", /file name "\.\." is not a name/],
    ["name", "notes.txt", /does not end in \.tsfile/],
  ])("%s = %j is refused with badName in offer, load and delete", async (field, value, message) => {
    const ref = { sg: "root.named", vg: "0", tp: "0", name: "1-1-0-0.tsfile", [field]: value };
    for (const [op, body] of [
      ["offer", { ...ref, kind: "tsfile", size: 10 }],
      ["load", { ...ref, parts: [{ kind: "tsfile", size: 10, sha256: "0".repeat(64) }] }],
      ["delete", ref],
    ] as const) {
      const r = await client.ask(op, encodeJson(body));
      expect(r.code, `${op}: ${r.message}`).toBe(Code.badName);
      expect(r.message).toMatch(message);
    }
    const r = await put({ ...ref, parts: [{ kind: "tsfile", size: 10, sha256: "0".repeat(64) }] }, new Uint8Array(10));
    expect(r.code, `put: ${r.message}`).toBe(Code.badName);
    expect(r.message).toMatch(message);
  });

  test("offsets past the announced size, duplicate and out-of-order chunks, more bytes than announced", async () => {
    const o = await offer({ name: "2-2-0-0.tsfile", size: 10 });
    expect(o.code).toBe(Code.start);
    const id = o["fileId"];
    expect(await chunk(id, 0, new Uint8Array(20))).toMatchObject({
      code: Code.tooLarge,
      message: "chunk ends at 20, past the announced size 10",
    });
    expect(await chunk(id, 0, new Uint8Array(6))).toMatchObject({ code: Code.ok, offset: 6 });
    expect(await chunk(id, 0, new Uint8Array(6))).toMatchObject({ code: Code.outOfOrder, offset: 6, message: "chunk at 0, expected 6" });
    expect(await chunk(id, 8, new Uint8Array(2))).toMatchObject({ code: Code.outOfOrder, offset: 6 });
    expect(await chunk(id, 12, new Uint8Array(1))).toMatchObject({ code: Code.outOfOrder, offset: 6 });
    expect(await chunk(id, 6, new Uint8Array(5))).toMatchObject({
      code: Code.tooLarge,
      message: "chunk ends at 11, past the announced size 10",
    });
    expect((await chunk(id, "6.0", new Uint8Array(1))).code).toBe(Code.badMessage);
    expect((await chunk(id, "-6", new Uint8Array(1))).code).toBe(Code.badMessage);
    expect((await chunk("someone-elses", 6, new Uint8Array(1))).code).toBe(Code.unknownFile);
    // A commit before all bytes arrived.
    expect((await client.ask("commit", encodeJson({ fileId: id, size: 10, sha256: "0".repeat(64) }))).code).toBe(Code.sizeMismatch);
  });

  test("a wrong digest is refused at commit and the bytes are not kept; a commit of an unknown file is unknownFile", async () => {
    const o = await offer({ name: "3-3-0-0.tsfile", size: 4 });
    expect(await chunk(o["fileId"], 0, new Uint8Array([1, 2, 3, 4]))).toMatchObject({ code: Code.ok, offset: 4 });
    const r = await client.ask("commit", encodeJson({ fileId: o["fileId"], size: 4, sha256: "0".repeat(64) }));
    expect(r.code).toBe(Code.digestMismatch);
    expect(r.message).toMatch(/SHA-256 of the received bytes is [0-9a-f]{64}, the sender's is 0{64}/);
    expect((await offer({ name: "3-3-0-0.tsfile", size: 4 })).code).toBe(Code.start);
    expect((await client.ask("commit", encodeJson({ fileId: "nope", size: 4, sha256: "0".repeat(64) }))).code).toBe(Code.unknownFile);
  });

  test("a file larger than max_file_size_bytes, a load of what never arrived, a load naming a part twice", async () => {
    expect(await offer({ size: 100_001 })).toMatchObject({ code: Code.tooLarge });
    const part = { kind: "tsfile", size: 4, sha256: "a".repeat(64) };
    const ref = { sg: "root.named", vg: "0", tp: "0", name: "4-4-0-0.tsfile" };
    expect(await client.ask("load", encodeJson({ ...ref, parts: [part] }))).toMatchObject({ code: Code.notReady });
    expect(await client.ask("load", encodeJson({ ...ref, parts: [part, part] }))).toMatchObject({ code: Code.badMessage });
    expect(await client.ask("load", encodeJson({ ...ref, parts: [] }))).toMatchObject({ code: Code.badMessage });
  });

  test("puts: no header, parts that do not add up, too large, a part named twice, a held part that is not held, a wrong digest, a corrupt TsFile", async () => {
    const ref = { sg: "root.named", vg: "0", tp: "0", name: "5-5-0-0.tsfile" };
    const bytes = new Uint8Array([1, 2, 3, 4]);
    const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    const part = { kind: "tsfile", size: 4, sha256: digest(bytes) };
    expect(await put(undefined, bytes)).toMatchObject({ code: Code.badMessage, message: expect.stringContaining(PutHeader) });
    expect(await put({ ...ref, parts: [part] }, new Uint8Array(3))).toMatchObject({
      code: Code.sizeMismatch,
      message: "5-5-0-0.tsfile: the parts add up to 4 bytes, the put carries 3",
    });
    expect(await put({ ...ref, parts: [{ ...part, size: 2 ** 40 }] }, bytes)).toMatchObject({ code: Code.tooLarge });
    expect(await put({ ...ref, parts: [part, part] }, new Uint8Array(8))).toMatchObject({ code: Code.badMessage });
    expect(await put({ ...ref, parts: [part], held: ["resource"] }, bytes)).toMatchObject({ code: Code.badMessage });
    expect(await put({ ...ref, parts: [part], held: ["tsfile"] }, new Uint8Array(0))).toMatchObject({ code: Code.notReady });
    const wrong = await put({ ...ref, parts: [{ ...part, sha256: "0".repeat(64) }] }, bytes);
    expect(wrong.code).toBe(Code.digestMismatch);
    expect(wrong.message).toMatch(/SHA-256 of the received bytes is [0-9a-f]{64}, the sender's is 0{64}/);
    expect(await put({ ...ref, parts: [part] }, bytes)).toMatchObject({
      code: Code.badTsFile,
      message: expect.stringContaining("5-5-0-0.tsfile is not a sound TsFile"),
    });
    // None of it waits in staging: a load of it finds nothing.
    expect(await client.ask("load", encodeJson({ ...ref, parts: [part] }))).toMatchObject({ code: Code.notReady });
  });

  test("after all of it the receiver holds nothing of these sessions in storage, and the good sender still syncs", async () => {
    await whileGoodSenderSyncs(async () => {
      expect((await client.ask("nonsense", new Uint8Array([0xff]))).code).toBe(Code.badMessage);
    });
    expect(await listTree(join(centre, "sequence"))).toEqual(
      [
        "root.good/",
        "root.good/0/",
        "root.good/0/0/",
        ...goodFiles.flatMap((f) => [`root.good/0/0/${f.name}`, `root.good/0/0/${f.name}.resource`]),
      ].sort(),
    );
  });
});

// ---- floods ---------------------------------------------------------------------------------

describe("floods of handshakes", () => {
  /** The subscriptions the receiver's connection holds, as the server counts them. */
  const receiverSubscriptions = async (r: Receiver): Promise<number> => {
    const connz = (await (await fetch(`${server.monitorUrl}/connz?limit=10000`)).json()) as {
      connections: Array<{ name?: string; subscriptions: number }>;
    };
    const mine = connz.connections.filter((c) => c.name?.startsWith(`tsync-receiver-${r.core.settings.group}-${r.core.settings.instance}`));
    expect(mine).toHaveLength(1);
    return mine[0]!.subscriptions;
  };

  test("hellos under other names from one connection are all refused; a sender's own hellos replace each other; none leak", async () => {
    await eventually("earlier sessions to expire", () => (receiver.openSessions.length === 0 ? true : undefined));
    const baseline = await receiverSubscriptions(receiver);
    const flooder = await rawClient(server.url, "flooder");
    try {
      await whileGoodSenderSyncs(async () => {
        // Asked from the flooder's own inbox, hellos of other ids are dropped unanswered...
        const dropped = receiver.core.stats.droppedReplies;
        for (let i = 0; i < 400; i++)
          flooder.publish(helloSubject(group, `forged${i}`), helloBody(`forged${i}`), { reply: `${senderInboxPrefix("flooder")}.f.${i}` });
        await eventually("400 dropped hellos", () => (receiver.core.stats.droppedReplies >= dropped + 400 ? true : undefined));
        // ...and asked from their own inboxes, they are refused: no connection of those senders holds them.
        const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => helloInto(flooder, group, `forged${i}`)));
        expect(answers.filter((a) => a.code !== Code.addressNotAllowed && a.code !== Code.busy)).toEqual([]);
        expect(answers.filter((a) => a.code === Code.addressNotAllowed).length).toBeGreaterThan(0);
        const own = await Promise.all(Array.from({ length: 100 }, () => sayHello(flooder, group, "flooder")));
        expect(own.filter((a) => a.code !== Code.ok && a.code !== Code.busy)).toEqual([]);
      });
      expect(receiver.openSessions.filter((s) => s.input.senderId.startsWith("forged"))).toEqual([]);
      expect(receiver.openSessions.filter((s) => s.input.senderId === "flooder").length).toBeLessThanOrEqual(1);
    } finally {
      await flooder.close();
    }
    // Idle sessions expire; the receiver is back to the subscriptions it started with.
    await eventually("the flood's sessions to expire", () => (receiver.openSessions.length === 0 ? true : undefined));
    // The server counts an unsubscribe once it has read it: wait for the count, a leak never gets there.
    await eventually(
      `${baseline} subscriptions`,
      async () => ((await receiverSubscriptions(receiver)) === baseline ? true : undefined),
      5_000,
    );
  });

  test("at max_sessions a new sender is told busy; once idle sessions expire, senders are served again", async () => {
    const capped = await startReceiver(server, join(root, "deep", "capped"), {
      receiver_group: "capped",
      max_sessions: "5",
      session_idle_timeout_in_second: "1",
    });
    const clients = await Promise.all(Array.from({ length: 8 }, (_, i) => rawClient(server.url, `crowd${i}`)));
    try {
      const baseline = await receiverSubscriptions(capped);
      const answers = await Promise.all(clients.map((nc, i) => sayHello(nc, "capped", `crowd${i}`)));
      expect(answers.filter((a) => a.code === Code.ok)).toHaveLength(5);
      expect(answers.filter((a) => a.code === Code.busy).map((a) => a.message)).toEqual(
        Array(3).fill("receiver is at max_sessions (5); try later"),
      );
      // The same sender saying hello again is not turned away by its own session.
      const again = answers.findIndex((a) => a.code === Code.ok);
      expect((await sayHello(clients[again]!, "capped", `crowd${again}`)).code).toBe(Code.ok);
      expect(capped.openSessions).toHaveLength(5);
      await eventually("the crowd's sessions to expire", () => (capped.openSessions.length === 0 ? true : undefined));
      await eventually(
        `${baseline} subscriptions`,
        async () => ((await receiverSubscriptions(capped)) === baseline ? true : undefined),
        5_000,
      );
      const late = await sayHello(clients[7]!, "capped", "crowd7");
      expect(late.code).toBe(Code.ok);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await capped.stop();
    }
  });
});

test("nothing was written outside the receiver's data directory", async () => {
  expect(await outsideListing()).toEqual(outsideBefore);
  // Names climbing further than the temp root would have landed here.
  for (const dir of [tmpdir(), parsePath(root).root]) expect(existsSync(join(dir, marker))).toBe(false);
  // Inside it, only tsync's own state and the storage layout, with one-segment names.
  const inside = await listTree(centre);
  expect(inside.filter((p) => !p.startsWith(".tsync/") && !p.startsWith("sequence/"))).toEqual([]);
  for (const p of inside)
    for (const segment of p.split("/").filter(Boolean)) expect(segment).toMatch(/^(?!\.{1,2}$)[\p{L}\p{N}_.\-]{1,255}$/u);
});
