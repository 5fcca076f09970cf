// Staging as an attack surface, against a live receiver over a real nats-server: a client that
// offers more than it finishes is held to staging_quota_bytes_per_sender (refused without losing
// what it holds, while other senders sync), and parts it abandons are swept at start-up and
// periodically after staging_grace_in_second, never under a session still writing them.
import { createHash, randomBytes } from "node:crypto";
import { stat, utimes } from "node:fs/promises";
import { join } from "node:path";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Receiver } from "../../../src/actors/receiver/receiver.js";
import { stagingRoot } from "../../../src/actors/receiver/staging.js";
import { validateTsFile } from "../../../src/actors/receiver/validateTsFile.js";
import { roundSucceeded } from "../../../src/machines/senderTypes.js";
import { encodeJson } from "../../../src/protocol/messages.js";
import { Code } from "../../../src/protocol/status.js";
import { ChunkHeader } from "../../../src/protocol/subjects.js";
import { receiverConfig } from "../../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../../harness/natsServer.js";
import { openSender, removeAll, tempRoot } from "../../harness/syncPair.js";
import { buildSampleDataDir } from "../../../src/actors/sampleDataDir.js";
import { buildEdge, eventually, expectLandedByteForByte, rawClient, replyOf, sayHello, tinyLayout, type AnyReply } from "../kit.js";

let server: TestNatsServer;
let root: string;

beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-staging-attack-");
});

afterAll(async () => {
  await server?.cleanup();
  await removeAll(root);
});

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const startReceiver = (dataDir: string, group: string, props: Record<string, string>, lines: string[]): Promise<Receiver> =>
  Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_data_directory: dataDir,
      nats_url: server.url,
      nats_monitor_url: server.monitorUrl,
      receiver_group: group,
      ...props,
    }),
    validateTsFile,
    log: (l) => lines.push(l),
  });

/**
 * A sender spoken by hand. Its parts are `.resource` parts: the receiver checks a TsFile's
 * structure at commit, and what is under test here is staging, not TsFiles.
 */
class Hand {
  private constructor(
    readonly nc: NatsConnection,
    readonly group: string,
    readonly id: string,
    private prefix: string,
  ) {}

  static async open(group: string, id: string): Promise<Hand> {
    const nc = await rawClient(server.url, id);
    const h = new Hand(nc, group, id, "");
    await h.hello();
    return h;
  }

  async hello(): Promise<void> {
    const r = await sayHello(this.nc, this.group, this.id);
    expect(r.code, r.message).toBe(Code.ok);
    this.prefix = String(r["sessionPrefix"]);
  }

  async ask(op: string, data: Uint8Array, h?: ReturnType<typeof headers>): Promise<AnyReply> {
    return replyOf(await this.nc.request(`${this.prefix}.${op}`, data, { timeout: 10_000, ...(h ? { headers: h } : {}) }));
  }

  offer(sg: string, name: string, size: number): Promise<AnyReply> {
    return this.ask("offer", encodeJson({ sg, vg: "0", tp: "0", name, kind: "resource", size }));
  }

  chunk(fileId: unknown, offset: number, bytes: Uint8Array): Promise<AnyReply> {
    const h = headers();
    h.set(ChunkHeader.file, String(fileId));
    h.set(ChunkHeader.offset, String(offset));
    return this.ask("chunk", bytes, h);
  }

  commit(fileId: unknown, body: Uint8Array): Promise<AnyReply> {
    return this.ask("commit", encodeJson({ fileId, size: body.length, sha256: sha(body) }));
  }

  async close(): Promise<void> {
    await this.ask("bye", new Uint8Array()).catch(() => undefined);
    await this.nc.close();
  }
}

/** Where a hand sender's resource part of `name` is staged, without the `.part` / `.ready` suffix. */
const staged = (dataDir: string, sender: string, sg: string, name: string) =>
  join(stagingRoot(dataDir), sender, sg, "0", "0", `${name}.resource`);

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** As if nobody had touched the files for `ageMs`. */
const backdate = async (ageMs: number, ...paths: string[]) => {
  const t = new Date(Date.now() - ageMs);
  for (const p of paths) await utimes(p, t, t);
};

describe("staging_quota_bytes_per_sender", () => {
  const group = "stgquota";
  let centre: string;
  let receiver: Receiver;
  const lines: string[] = [];

  beforeAll(async () => {
    centre = join(root, "quota-centre");
    receiver = await startReceiver(
      centre,
      group,
      { max_file_size_bytes: "100000", staging_quota_bytes_per_sender: "100000", staging_grace_in_second: "3600" },
      lines,
    );
  });
  afterAll(async () => {
    await receiver?.stop();
  });

  test("offers past the quota are refused (tooLarge, naming the key, the quota and the holdings); what the sender holds stays and resumes", async () => {
    const hog = await Hand.open(group, "hog");
    try {
      const first = await hog.offer("root.hog", "1-1-0-0.tsfile", 60_000);
      expect(first.code, first.message).toBe(Code.start);
      expect(await hog.chunk(first["fileId"], 0, randomBytes(10_000))).toMatchObject({ code: Code.ok, offset: 10_000 });
      // Counted by announced size: 10 000 bytes written reserve all 60 000.
      const over = await hog.offer("root.hog", "2-2-0-0.tsfile", 50_000);
      expect(over.code, over.message).toBe(Code.tooLarge);
      expect(over.message).toContain("staging_quota_bytes_per_sender");
      expect(over.message).toContain("quota of 100000 bytes");
      expect(over.message).toContain("already holds 60000 bytes in 1 part ");
      expect((await hog.offer("root.hog", "3-3-0-0.tsfile", 30_000)).code).toBe(Code.start);
      const again = await hog.offer("root.hog", "4-4-0-0.tsfile", 20_000);
      expect(again.code).toBe(Code.tooLarge);
      expect(again.message).toContain("already holds 90000 bytes in 2 parts");
      // Many small offers do not get round it either: each part counts at least 4 KiB.
      const small = await Promise.all([5, 6, 7].map((i) => hog.offer("root.hog", `${i}-${i}-0-0.tsfile`, 0)));
      expect(small.map((r) => r.code)).toEqual([Code.start, Code.start, Code.tooLarge]);
      // The refused offers cost nothing of what it held: the first part resumes where it stopped.
      expect(await hog.offer("root.hog", "1-1-0-0.tsfile", 60_000)).toMatchObject({ code: Code.resume, offset: 10_000 });
      expect(await exists(`${staged(centre, "hog", "root.hog", "3-3-0-0.tsfile")}.part`)).toBe(true);
      expect(await exists(`${staged(centre, "hog", "root.hog", "2-2-0-0.tsfile")}.part`)).toBe(false);
    } finally {
      await hog.close();
    }
  });

  test("a real sender over its quota quarantines the file at once (no retries), syncs once its parts are gone; other senders sync all along", async () => {
    const edge = join(root, "stuck-edge");
    // A file larger than the sender's chunk, so it is offered and sent in chunks through staging. (A
    // file that fits one message goes as a put, straight into storage: it parks nothing in staging
    // and the quota does not govern it.)
    const files = await buildSampleDataDir(edge, { ...tinyLayout(["root.stuck"], 1), pointsPerSeries: 400 });
    expect((await stat(files[0]!.path)).size).toBeGreaterThan(1024);
    const stuck = await openSender(server, edge, { receiver_group: group, chunk_size_bytes: "1024" });
    const goodEdge = join(root, "good-edge");
    const goodFiles = await buildEdge(goodEdge, ["root.good"], 2);
    const good = await openSender(server, goodEdge, { receiver_group: group });
    try {
      // Under the sender's own identity: a part that leaves it no room for anything else.
      const body = randomBytes(99_000);
      let hand = await Hand.open(group, stuck.senderId);
      const left = await hand.offer("root.left", "9-9-0-0.tsfile", body.length);
      expect(left.code).toBe(Code.start);
      expect((await hand.chunk(left["fileId"], 0, body.subarray(0, 1_000))).code).toBe(Code.ok);
      await hand.close();

      const refused = await stuck.runOnce();
      expect(refused.sent).toEqual([]);
      expect(refused.failed).toHaveLength(1);
      expect(refused.failed[0]?.reason).toMatch(/^tooLarge: staging_quota_bytes_per_sender: .* already holds 99000 bytes in 1 part /);
      expect(refused.failed[0]?.attempts).toBe(1);

      const goodRound = await good.runOnce();
      expect(roundSucceeded(goodRound), JSON.stringify(goodRound)).toBe(true);
      await expectLandedByteForByte(centre, goodFiles);

      // The part was kept; once it is finished (here: refused at commit and dropped) the quota is free again.
      hand = await Hand.open(group, stuck.senderId);
      const resumed = await hand.offer("root.left", "9-9-0-0.tsfile", body.length);
      expect(resumed).toMatchObject({ code: Code.resume, offset: 1_000 });
      expect((await hand.chunk(resumed["fileId"], 1_000, body.subarray(1_000))).code).toBe(Code.ok);
      expect((await hand.ask("commit", encodeJson({ fileId: resumed["fileId"], size: body.length, sha256: "0".repeat(64) }))).code).toBe(
        Code.digestMismatch,
      );
      await hand.close();

      const synced = await stuck.runOnce();
      expect(roundSucceeded(synced), JSON.stringify(synced)).toBe(true);
      await expectLandedByteForByte(centre, files);
      await expectLandedByteForByte(centre, goodFiles);
    } finally {
      await stuck.close();
      await good.close();
    }
  });
});

describe("abandoned parts", () => {
  test("parts untouched for staging_grace_in_second are swept when the receiver starts; a part touched within it stays and resumes", async () => {
    const group = "stgstartup";
    const centre = join(root, "startup-centre");
    const props = { staging_grace_in_second: "60" };
    const lines: string[] = [];
    let receiver = await startReceiver(centre, group, props, lines);
    const a = randomBytes(40_000);
    const b = randomBytes(40_000);
    const c = randomBytes(3_000);
    try {
      const hand = await Hand.open(group, "leaver");
      const oa = await hand.offer("root.leave", "1-1-0-0.tsfile", a.length);
      expect((await hand.chunk(oa["fileId"], 0, a.subarray(0, 10_000))).code).toBe(Code.ok);
      const ob = await hand.offer("root.leave", "2-2-0-0.tsfile", b.length);
      expect((await hand.chunk(ob["fileId"], 0, b.subarray(0, 5_000))).code).toBe(Code.ok);
      // Verified, never loaded.
      const oc = await hand.offer("root.leave", "3-3-0-0.tsfile", c.length);
      expect((await hand.chunk(oc["fileId"], 0, c)).code).toBe(Code.ok);
      expect((await hand.commit(oc["fileId"], c)).code).toBe(Code.ok);
      await hand.close();
    } finally {
      await receiver.stop();
    }
    const pa = staged(centre, "leaver", "root.leave", "1-1-0-0.tsfile");
    const pb = staged(centre, "leaver", "root.leave", "2-2-0-0.tsfile");
    const pc = staged(centre, "leaver", "root.leave", "3-3-0-0.tsfile");
    expect(await exists(`${pc}.ready`)).toBe(true);
    await backdate(120_000, `${pa}.part`, `${pa}.part.meta`, `${pc}.ready`, `${pc}.ready.meta`);

    receiver = await startReceiver(centre, group, props, lines);
    try {
      expect(await exists(`${pa}.part`)).toBe(false);
      expect(await exists(`${pa}.part.meta`)).toBe(false);
      expect(await exists(`${pc}.ready`)).toBe(false);
      expect(await exists(`${pc}.ready.meta`)).toBe(false);
      expect(
        lines
          .filter((l) => l.includes("swept an abandoned part of sender leaver"))
          .map((l) => l.replace(/ \(.*/, ""))
          .sort(),
      ).toEqual([
        "staging: swept an abandoned part of sender leaver: root.leave/0/0/1-1-0-0.tsfile.resource.part",
        "staging: swept an abandoned part of sender leaver: root.leave/0/0/3-3-0-0.tsfile.resource.ready",
      ]);
      expect(lines.find((l) => l.includes("1-1-0-0.tsfile.resource.part"))).toMatch(/\((1\d{4}) bytes, untouched for 1[12]\d s/);

      const hand = await Hand.open(group, "leaver");
      const ob = await hand.offer("root.leave", "2-2-0-0.tsfile", b.length);
      expect(ob).toMatchObject({ code: Code.resume, offset: 5_000 });
      expect((await hand.chunk(ob["fileId"], 5_000, b.subarray(5_000))).code).toBe(Code.ok);
      expect(await hand.commit(ob["fileId"], b)).toMatchObject({ code: Code.ok, message: "verified" });
      expect(await hand.offer("root.leave", "1-1-0-0.tsfile", a.length)).toMatchObject({ code: Code.start, offset: 0 });
      await hand.close();
    } finally {
      await receiver.stop();
    }
  });

  test("while running, the periodic sweep removes a part once its session is gone and the grace has passed, never while the session writes it", async () => {
    const group = "stgperiodic";
    const centre = join(root, "periodic-centre");
    const lines: string[] = [];
    const receiver = await startReceiver(centre, group, { staging_grace_in_second: "2" }, lines);
    try {
      const body = randomBytes(40_000);
      const p = staged(centre, "slow", "root.slow", "1-1-0-0.tsfile");
      const hand = await Hand.open(group, "slow");
      const o = await hand.offer("root.slow", "1-1-0-0.tsfile", body.length);
      expect((await hand.chunk(o["fileId"], 0, body.subarray(0, 10_000))).code).toBe(Code.ok);
      // Old by its mtime, past the grace, through several sweeps (every 0.5 s): the session still holds it.
      await backdate(60_000, `${p}.part`, `${p}.part.meta`);
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await exists(`${p}.part`)).toBe(true);
      expect(await hand.chunk(o["fileId"], 10_000, body.subarray(10_000, 20_000))).toMatchObject({ code: Code.ok, offset: 20_000 });
      expect(lines.filter((l) => l.includes("swept"))).toEqual([]);

      await hand.close();
      const at = Date.now();
      await eventually("the abandoned part to be swept", async () => ((await exists(`${p}.part`)) ? undefined : true), 15_000);
      // Not before the grace since its session let go of it.
      expect(Date.now() - at).toBeGreaterThanOrEqual(1_500);
      expect(await exists(`${p}.part.meta`)).toBe(false);
      // The sweep logs right after it removes the files: wait for the line, not just the removal.
      const swept = await eventually("the sweep's log line", () => lines.find((l) => l.includes("swept an abandoned part of sender slow")));
      expect(swept).toMatch(/root\.slow\/0\/0\/1-1-0-0\.tsfile\.resource\.part \(2\d{4} bytes, untouched for \d+ s/);
    } finally {
      await receiver.stop();
    }
  });
});
