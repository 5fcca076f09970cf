// Storage-group ownership against a client holding one sender's credentials (plant-b): deleting
// files that were never there claims nothing; it cannot delete or overwrite another plant's loaded
// files, not even in a group it came to own after the operator released it; only
// `tsync owners release --transfer-files` hands the previous owner's files to the next owner.
// Through all of it a bystander plant's files and owner record stay byte for byte as they were.
import { readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { SampleFile } from "../../../src/actors/sampleDataDir.js";
import { catalogPath, type Receiver } from "../../../src/actors/receiver/receiver.js";
import { ownerKey, ownersBucket, OwnershipRegistry } from "../../../src/actors/receiver/ownership.js";
import { SenderLink } from "../../../src/actors/sender/link.js";
import type { Sender } from "../../../src/actors/sender/sender.js";
import { isStepFailure, roundSucceeded, type SessionInfo } from "../../../src/machines/senderTypes.js";
import { encodeJson, type FileRef, type PartDigest } from "../../../src/protocol/messages.js";
import { Code } from "../../../src/protocol/status.js";
import { runTsync } from "../../harness/cli.js";
import { startTestNatsServer, type TestNatsServer } from "../../harness/natsServer.js";
import { openSender, removeAll, startReceiver, tempRoot } from "../../harness/syncPair.js";
import { addSealedFile, expectLandedByteForByte, landedAt, listTree, rawClient, replyOf, type AnyReply } from "../kit.js";

const group = "own-attack";
const A = "plant-a";
const B = "plant-b";
const C = "plant-c";

let server: TestNatsServer;
let root: string;
let centre: string;
let props: string;
let receiver: Receiver;
let admin: NatsConnection;
let registry: OwnershipRegistry;
let kv: KV;
let plantA: Sender;
let plantC: Sender;
const edgeA = () => join(root, "edge-a");
const edgeB = () => join(root, "edge-b");
const edgeC = () => join(root, "edge-c");

/** A's files: north1/north2 in root.north, south1/south2 in root.south, east1/east2 in root.east. */
const a: Record<string, SampleFile> = {};
let cFile: SampleFile;
/** B's own bytes under the name of A's north2, staged while root.north had no owner yet. */
let twinOfNorth2: { file: SampleFile; parts: ReadonlyArray<PartDigest> };
/** The bystander, as it was once it had synced: its owner record and its landed tree. */
let cRecordBefore: { revision: number; value: string };
let cTreeBefore: string[];

const refOf = (f: SampleFile): FileRef => ({ sg: f.sg, vg: f.vg, tp: f.tp, name: f.name });
const centreBytes = async (f: SampleFile) => ({
  tsfile: await readFile(landedAt(centre, f)),
  resource: await readFile(`${landedAt(centre, f)}.resource`),
});
const edgeBytes = async (f: SampleFile) => ({ tsfile: await readFile(f.path), resource: await readFile(`${f.path}.resource`) });
const gone = async (f: SampleFile) => {
  await expect(stat(landedAt(centre, f))).rejects.toThrow(/ENOENT/);
  await expect(stat(`${landedAt(centre, f)}.resource`)).rejects.toThrow(/ENOENT/);
};

const rawRecord = async (sg: string) => {
  const e = await kv.get(ownerKey(sg));
  return { revision: e?.revision ?? 0, value: e?.operation === "PUT" ? e.string() : "" };
};

/** A hand-driven client speaking as `id`, through the sender's own protocol code where that helps. */
interface Hand {
  readonly nc: NatsConnection;
  readonly link: SenderLink;
  readonly session: SessionInfo;
  ask(op: string, body: unknown): Promise<AnyReply>;
  /** Offers, sends and commits both parts; answers what a load names. */
  stage(f: SampleFile): Promise<ReadonlyArray<PartDigest>>;
  load(f: SampleFile, parts: ReadonlyArray<PartDigest>): Promise<AnyReply>;
  close(): Promise<void>;
}

const hand = async (id: string): Promise<Hand> => {
  const nc = await rawClient(server.url, id);
  const link = new SenderLink(nc, { group, senderId: id, window: 4, chunkBytes: 64 * 1024, requestTimeoutMs: 10_000 });
  const session = await link.hello([]);
  const ask = async (op: string, body: unknown) =>
    replyOf(await nc.request(`${session.prefix}.${op}`, encodeJson(body), { timeout: 10_000 }));
  return {
    nc,
    link,
    session,
    ask,
    stage: async (f) => {
      const parts: PartDigest[] = [];
      for (const [kind, path] of [
        ["resource", `${f.path}.resource`],
        ["tsfile", f.path],
      ] as const) {
        const size = (await stat(path)).size;
        const sent = await link.sendPart(session, refOf(f), { kind, path, size, mtimeMs: 0 });
        if (!sent.had) await link.commit(session, sent);
        parts.push({ kind, size, sha256: sent.sha256 });
      }
      return parts;
    },
    load: (f, parts) => ask("load", { ...refOf(f), parts }),
    close: () => nc.close(),
  };
};

/** The refusal a `sendPart` met at the offer, or a failure of the test if the offer was taken. */
const offerRefusal = async (h: Hand, f: SampleFile) => {
  try {
    await h.stage(f);
  } catch (e) {
    if (isStepFailure(e)) return e;
    throw e;
  }
  throw new Error(`the offer of ${f.name} was accepted`);
};

// Tests that run the CLI get more time: each start compiles the sources (tsx) on a shared machine.
const release = async (sg: string, ...extra: string[]) => {
  const r = await runTsync(["owners", "release", sg, "--yes", ...extra, "--config", props]);
  expect(r.code, r.stderr + r.stdout).toBe(0);
  return r.stdout.trim();
};

const ownersList = async () => {
  const r = await runTsync(["owners", "list", "--config", props]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-own-attack-");
  centre = join(root, "centre");
  receiver = await startReceiver(server, centre, { receiver_group: group });
  props = join(root, "receiver.properties");
  await writeFile(
    props,
    `nats_url=${server.url}\nnats_monitor_url=${server.monitorUrl}\nreceiver_group=${group}\nreceiver_data_directory=${centre}\n`,
  );
  admin = await rawClient(server.url, "admin");
  registry = await OwnershipRegistry.open(admin, group);
  kv = await new Kvm(admin).open(ownersBucket(group));

  for (const [i, sg] of ["root.north", "root.south", "root.east"].entries())
    for (const n of [1, 2])
      a[`${sg.slice(5)}${n}`] = await addSealedFile(edgeA(), sg, `${1_700_000_000_000 + 10 * i + n}-${10 * i + n}-0-0.tsfile`, 10 * i + n);
  cFile = await addSealedFile(edgeC(), "root.c", "1700000000000-1-0-0.tsfile", 99);

  // B stages its own bytes under the name of A's north2 before anyone loaded a file of root.north:
  // an offer of an unowned group goes through, and claims nothing.
  const b = await hand(B);
  try {
    const file = await addSealedFile(edgeB(), "root.north", a["north2"]!.name, 2002);
    twinOfNorth2 = { file, parts: await b.stage(file) };
    expect(await registry.owner("root.north")).toBeUndefined();
  } finally {
    await b.close();
  }

  plantA = await openSender(server, edgeA(), { receiver_group: group, sender_name: A });
  plantC = await openSender(server, edgeC(), { receiver_group: group, sender_name: C });
  for (const s of [plantC, plantA]) {
    const r = await s.runOnce();
    expect(roundSucceeded(r), JSON.stringify(r)).toBe(true);
  }
  await expectLandedByteForByte(centre, [...Object.values(a), cFile]);
  expect((await registry.list()).map((o) => `${o.sg}=${o.senderId}`)).toEqual([
    "root.c=plant-c",
    "root.east=plant-a",
    "root.north=plant-a",
    "root.south=plant-a",
  ]);
  cRecordBefore = await rawRecord("root.c");
  cTreeBefore = await listTree(join(centre, "sequence", "root.c"));
});

afterAll(async () => {
  await plantA?.close();
  await plantC?.close();
  await admin?.close();
  await receiver?.stop();
  await server?.cleanup();
  await removeAll(root);
});

describe("a client with plant-b's credentials", () => {
  test("2,000 deletes of files never loaded, each in its own group, claim nothing and write nothing", async () => {
    const before = await registry.records();
    const journal = join(centre, ".tsync", "journal.jsonl");
    const journalBefore = await readFile(journal);
    const catalogBefore = await readFile(catalogPath(centre)).catch(() => Buffer.alloc(0));
    const treeBefore = await listTree(join(centre, "sequence"));
    const b = await hand(B);
    try {
      const refs: FileRef[] = Array.from({ length: 2000 }, (_, i) => ({
        sg: `root.grab${i}`,
        vg: "0",
        tp: "0",
        name: `${i}-${i}-0-0.tsfile`,
      }));
      // And names never loaded in groups that others own.
      refs.push({ ...refOf(a["north1"]!), name: "1-999-0-0.tsfile" }, { ...refOf(cFile), name: "1-998-0-0.tsfile" });
      const replies: AnyReply[] = [];
      for (let i = 0; i < refs.length; i += 250)
        replies.push(...(await Promise.all(refs.slice(i, i + 250).map((r) => b.ask("delete", r)))));
      expect(new Set(replies.map((r) => `${r.code} ${r.message}`))).toEqual(new Set([`${Code.ok} was not there`]));
    } finally {
      await b.close();
    }
    expect(await registry.records()).toEqual(before);
    expect(await readFile(journal)).toEqual(journalBefore);
    expect(await readFile(catalogPath(centre)).catch(() => Buffer.alloc(0))).toEqual(catalogBefore);
    expect(await listTree(join(centre, "sequence"))).toEqual(treeBefore);
  });

  test("cannot delete or overwrite plant-a's files, in plant-a's group or in one it owns after a release; it can load new files there", async () => {
    const north1 = a["north1"]!;
    const north2 = a["north2"]!;
    const b = await hand(B);
    try {
      const whileAOwns = await b.ask("delete", refOf(north1));
      expect(whileAOwns).toMatchObject({ code: Code.conflict, owner: A });
      expect(whileAOwns.message).toMatch(/^storage group root\.north belongs to sender plant-a \(since /);
      // Its twin of north2 is staged, but the group is A's.
      expect(await b.load(twinOfNorth2.file, twinOfNorth2.parts)).toMatchObject({ code: Code.conflict, owner: A });

      expect(await release("root.north")).toBe("released root.north");
      expect(await registry.owner("root.north")).toBeUndefined();

      // Nobody owns root.north now: refused all the same, and nothing is claimed.
      const unowned = await b.ask("delete", refOf(north1));
      expect(unowned).toMatchObject({ code: Code.conflict, loader: A, file: `root.north/0/0/${north1.name}` });
      expect(unowned.message).toContain(`root.north/0/0/${north1.name} was loaded by sender plant-a`);
      expect(await b.load(twinOfNorth2.file, twinOfNorth2.parts)).toMatchObject({ code: Code.conflict, loader: A });
      expect(await registry.owner("root.north")).toBeUndefined();
      // Nor may its former owner touch its files while the group is free.
      const former = await hand(A);
      try {
        const r = await former.ask("delete", refOf(north2));
        expect(r.code).toBe(Code.conflict);
        expect(r.message).toMatch(/storage group root\.north has no owner \(it was released\)/);
      } finally {
        await former.close();
      }
      expect(await registry.owner("root.north")).toBeUndefined();

      // B's first load of a new file makes it the owner, and the file lands.
      const fresh = await addSealedFile(edgeB(), "root.north", "1800000000000-500-0-0.tsfile", 500);
      expect(await b.load(fresh, await b.stage(fresh))).toMatchObject({ code: Code.ok });
      expect(await registry.owner("root.north")).toMatchObject({ senderId: B, inheritsFrom: [] });
      await expectLandedByteForByte(centre, [fresh]);

      // Owning the group does not make A's files B's.
      const del = await b.ask("delete", refOf(north1));
      expect(del).toMatchObject({ code: Code.conflict, loader: A });
      expect(del.message).toContain(`root.north/0/0/${north1.name} was loaded by sender plant-a`);
      const overwrite = await b.load(twinOfNorth2.file, twinOfNorth2.parts);
      expect(overwrite).toMatchObject({ code: Code.conflict, loader: A, file: `root.north/0/0/${north2.name}` });
      // An offer of the same name is refused before any byte travels.
      const ownBytes = await addSealedFile(edgeB(), "root.north", north1.name, 1001);
      const refused = await offerRefusal(b, ownBytes);
      expect(refused.code).toBe(Code.conflict);
      expect(refused.message).toContain(`root.north/0/0/${north1.name} was loaded by sender plant-a`);
    } finally {
      await b.close();
    }
    for (const f of [north1, north2]) expect(await centreBytes(f)).toEqual(await edgeBytes(f));

    // And A, its files untouched, is now the one refused in root.north.
    const former = await hand(A);
    try {
      expect(await former.ask("delete", refOf(north1))).toMatchObject({ code: Code.conflict, owner: B });
    } finally {
      await former.close();
    }
    await expectLandedByteForByte(centre, [north1, north2]);
  }, 180_000);

  test("after release --transfer-files its next owner may overwrite and delete the files of the previous owner, and owners list says so", async () => {
    const south1 = a["south1"]!;
    const south2 = a["south2"]!;
    expect(await release("root.south", "--transfer-files")).toBe("released root.south; its next owner inherits the files of plant-a");
    expect(await ownersList()).toMatch(/^root\.south\t-\treleased \S+\tthe next owner inherits the files of plant-a$/m);
    // While the transfer waits for a claimant, a delete still claims nothing.
    const b = await hand(B);
    try {
      expect((await b.ask("delete", refOf(south2))).code).toBe(Code.conflict);
      expect(await registry.owner("root.south")).toBeUndefined();

      // B's own bytes under A's name: this load is the one that claims, and it inherits A's files.
      const mine = await addSealedFile(edgeB(), "root.south", south1.name, 3001);
      expect(await b.load(mine, await b.stage(mine))).toMatchObject({ code: Code.ok });
      expect(await registry.owner("root.south")).toMatchObject({ senderId: B, inheritsFrom: [A] });
      expect(await ownersList()).toMatch(/^root\.south\tplant-b\tsince \S+\tinherits the files of plant-a$/m);
      await expectLandedByteForByte(centre, [mine]);

      expect(await b.ask("delete", refOf(south2))).toEqual({ code: Code.ok, message: "deleted" });
      await gone(south2);
      // Now B's: B may delete it as its own.
      expect(await b.ask("delete", refOf(mine))).toEqual({ code: Code.ok, message: "deleted" });
      await gone(mine);
    } finally {
      await b.close();
    }
    // A's own bookkeeping: its files of root.south are no longer its on the receiver.
    const former = await hand(A);
    try {
      expect(await former.ask("delete", refOf(south1))).toEqual({ code: Code.ok, message: "was not there" });
    } finally {
      await former.close();
    }
  }, 180_000);

  test("a transfer hands over only the released owner's files: A's files in root.north stay A's when B releases it with --transfer-files", async () => {
    expect(await release("root.north", "--transfer-files")).toBe("released root.north; its next owner inherits the files of plant-b");
    const d = await hand("plant-d");
    try {
      const fresh = await addSealedFile(join(root, "edge-d"), "root.north", "1800000000001-600-0-0.tsfile", 600);
      expect(await d.load(fresh, await d.stage(fresh))).toMatchObject({ code: Code.ok });
      expect(await registry.owner("root.north")).toMatchObject({ senderId: "plant-d", inheritsFrom: [B] });
      expect(await d.ask("delete", refOf(a["north1"]!))).toMatchObject({ code: Code.conflict, loader: A });
      expect(await d.ask("delete", { sg: "root.north", vg: "0", tp: "0", name: "1800000000000-500-0-0.tsfile" })).toEqual({
        code: Code.ok,
        message: "deleted",
      });
    } finally {
      await d.close();
    }
    await expectLandedByteForByte(centre, [a["north1"]!, a["north2"]!]);
  }, 180_000);
});

test("an honest plant still deletes its own files in its own group, and its round stays clean", async () => {
  const east1 = a["east1"]!;
  await rm(east1.path);
  await rm(`${east1.path}.resource`);
  const r = await plantA.runOnce();
  expect(r.deleted).toEqual([`root.east/0/0/${east1.name}`]);
  expect(r.failed).toEqual([]);
  await gone(east1);
  await expectLandedByteForByte(centre, [a["east2"]!]);
});

test("the bystander plant's files and owner record are byte for byte as they were, and it still syncs", async () => {
  expect(await rawRecord("root.c")).toEqual(cRecordBefore);
  expect(await listTree(join(centre, "sequence", "root.c"))).toEqual(cTreeBefore);
  await expectLandedByteForByte(centre, [cFile]);
  const next = await addSealedFile(edgeC(), "root.c", "1700000000001-2-0-0.tsfile", 98);
  const r = await plantC.runOnce();
  expect(roundSucceeded(r), JSON.stringify(r)).toBe(true);
  await expectLandedByteForByte(centre, [cFile, next]);
  expect(await rawRecord("root.c")).toEqual(cRecordBefore);
});

describe("the registry records", () => {
  test("an owner record written before transfers existed reads as an owner that inherits nothing", async () => {
    const old = JSON.stringify({ sg: "root.old", senderId: "plant-old", since: "2025-01-02T03:04:05.000Z" });
    await kv.put(ownerKey("root.old"), old);
    expect(await registry.owner("root.old")).toEqual({
      sg: "root.old",
      senderId: "plant-old",
      since: "2025-01-02T03:04:05.000Z",
      inheritsFrom: [],
    });
    expect(await registry.claim("root.old", B)).toMatchObject({ senderId: "plant-old" });
    expect(await ownersList()).toMatch(/^root\.old\tplant-old\tsince 2025-01-02T03:04:05\.000Z$/m);
    expect((await rawRecord("root.old")).value).toBe(old);
  }, 180_000);

  test("of claimants racing on a transferred group from separate connections, exactly one owns it and inherits its files", async () => {
    const sg = "root.raced";
    const conns = await Promise.all(["r1", "r2", "r3"].map((id) => rawClient(server.url, `registry-${id}`)));
    try {
      const registries = await Promise.all(conns.map((nc) => OwnershipRegistry.open(nc, group)));
      await registries[0]!.claim(sg, "first");
      expect(await registries[1]!.releaseGroup(sg, { transferFiles: true })).toMatchObject({
        kind: "released",
        transfer: { filesOf: ["first"] },
      });
      const answers = await Promise.all(["x", "y", "z", "w", "v", "u"].map((id, i) => registries[i % 3]!.claim(sg, id)));
      const owners = new Set(answers.map((o) => o.senderId));
      expect(owners.size).toBe(1);
      expect(answers.every((o) => o.inheritsFrom.length === 1 && o.inheritsFrom[0] === "first")).toBe(true);
      // A second release with --transfer-files passes on both generations.
      expect(await registries[2]!.releaseGroup(sg, { transferFiles: true })).toMatchObject({ transfer: { filesOf: [...owners, "first"] } });
      // Without it, the waiting transfer is cancelled and the next owner inherits nothing.
      expect(await registries[0]!.releaseGroup(sg)).toMatchObject({ kind: "transferCancelled" });
      expect(await registries[1]!.claim(sg, "last")).toMatchObject({ senderId: "last", inheritsFrom: [] });
    } finally {
      for (const nc of conns) await nc.close();
    }
  });
});
