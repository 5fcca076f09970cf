// Storage-group ownership over a real server: the first sender to offer a group owns it; a later
// sender is told CONFLICT (once per group per round, without offering the group's other files)
// and its other groups still sync; `tsync owners` lists and releases; the registry outlives the
// receiver and is shared by receiver instances.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { PutHeader } from "../../src/protocol/subjects.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildSampleDataDir, type SampleFile } from "../../src/actors/sampleDataDir.js";
import { OwnershipRegistry } from "../../src/actors/receiver/ownership.js";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { roundSucceeded, type RoundSummary } from "../../src/machines/senderTypes.js";
import { runTsync } from "../harness/cli.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { listFiles, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";
import { enroll } from "../harness/enroll.js";
import { addSealedFile, expectLandedByteForByte, landedAt, rawClient } from "../security/kit.js";

let server: TestNatsServer;
let root: string;
beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-owners-");
});
afterAll(async () => {
  await server.cleanup();
  await removeAll(root);
});

/** An edge whose groups come in this order, two files each, devices named after the sender. */
const edgeOf = async (name: string, groups: ReadonlyArray<string>): Promise<{ dir: string; files: ReadonlyArray<SampleFile> }> => {
  const dir = join(root, `edge-${name}`);
  const files = await buildSampleDataDir(dir, {
    groups: Object.fromEntries(groups.map((g) => [g, [`${name}_device`]])),
    virtualGroups: 1,
    partitions: 1,
    filesPerPartition: 2,
    pointsPerSeries: 3,
    withUnsealed: false,
  });
  return { dir, files };
};

const openFor = (group: string, id: string, dir: string) =>
  Sender.open({ config: senderConfig({ data_directory: dir, nats_url: server.url, receiver_group: group, sender_name: id }) });

/** Counts the offers and puts (a small file's one request) a sender makes, per storage group, as the server carries them. */
const offerTap = async (group: string, id: string): Promise<{ perGroup: () => Record<string, number>; close: () => Promise<void> }> => {
  const nc: NatsConnection = await rawClient(server.url, `tap-${id}`);
  const counts: Record<string, number> = {};
  nc.subscribe(`tsync.${group}.s.*.${id}.*.offer`, {
    callback: (_e, m) => {
      const sg = m.json<{ sg: string }>().sg;
      counts[sg] = (counts[sg] ?? 0) + 1;
    },
  });
  nc.subscribe(`tsync.${group}.s.*.${id}.*.put`, {
    callback: (_e, m) => {
      const sg = (JSON.parse(m.headers?.get(PutHeader) ?? "{}") as { sg: string }).sg;
      counts[sg] = (counts[sg] ?? 0) + 1;
    },
  });
  await nc.flush();
  return { perGroup: () => ({ ...counts }), close: () => nc.close() };
};

const propertiesFor = async (group: string, centre: string): Promise<string> => {
  const file = join(root, `${group}.receiver.properties`);
  await writeFile(
    file,
    `nats_url=${server.url}\nnats_monitor_url=${server.monitorUrl}\nreceiver_group=${group}\nreceiver_data_directory=${centre}\n`,
  );
  return file;
};

const conflictedGroups = (s: RoundSummary) => s.conflicts.map((c) => c.sg);

describe("two senders, one shared storage group", () => {
  const group = "owners1";
  let receiver: Receiver;
  let centre: string;
  beforeAll(async () => {
    centre = join(root, "centre1");
    receiver = await startReceiver(server, centre, { receiver_group: group });
  });
  afterAll(async () => {
    await receiver.stop();
  });

  test("the first sender owns it; the second is refused with CONFLICT once per round, offers nothing more of it, and its other group syncs", async () => {
    const a = await edgeOf("A", ["root.shared", "root.a"]);
    const b = await edgeOf("B", ["root.b", "root.shared"]);
    const sa = await openFor(group, "A", a.dir);
    const sb = await openFor(group, "B", b.dir);
    const tap = await offerTap(group, "B");
    try {
      const first = await sa.runOnce();
      expect(roundSucceeded(first), JSON.stringify(first)).toBe(true);
      await expectLandedByteForByte(centre, a.files);

      for (const round of [1, 2]) {
        const s = await sb.runOnce();
        expect(conflictedGroups(s), `round ${round}`).toEqual(["root.shared"]);
        expect(s.conflicts[0]?.message).toMatch(/storage group root\.shared belongs to sender A \(since /);
        expect(s.skipped.filter((k) => k.file.startsWith("root.shared/")).map((k) => k.reason)).toEqual([
          s.conflicts[0]?.message,
          s.conflicts[0]?.message,
        ]);
        expect(s.failed).toEqual([]);
        // One request per round: the first file's put (or its first part's offer); the rest of the group is skipped.
        expect(tap.perGroup()["root.shared"], `round ${round}`).toBe(round);
      }
      const bOwn = b.files.filter((f) => f.sg === "root.b");
      await expectLandedByteForByte(centre, bOwn);
      // A's copies of root.shared are still A's bytes; B's never landed.
      for (const f of b.files.filter((f) => f.sg === "root.shared")) await expect(readFile(landedAt(centre, f))).rejects.toThrow(/ENOENT/);
      await expectLandedByteForByte(centre, a.files);
    } finally {
      await tap.close();
      await sa.close();
      await sb.close();
    }
  });

  test("tsync owners list shows each group with its owner; release --yes frees one, and exactly one of two racing senders wins it", async () => {
    const props = await propertiesFor(group, centre);
    const listed = await runTsync(["owners", "list", "--config", props]);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.stdout
      .trim()
      .split("\n")
      .map((l) => l.split("\t"));
    expect(rows.map(([sg, owner]) => [sg, owner])).toEqual([
      ["root.a", "A"],
      ["root.b", "B"],
      ["root.shared", "A"],
    ]);
    for (const row of rows) expect(row[2]).toMatch(/^since \d{4}-\d\d-\d\dT/);
    const json = JSON.parse((await runTsync(["owners", "list", "--json", "--config", props])).stdout) as Array<{
      sg: string;
      senderId: string;
    }>;
    expect(json.map((o) => `${o.sg}=${o.senderId}`)).toEqual(["root.a=A", "root.b=B", "root.shared=A"]);

    const admin = await rawClient(server.url, "admin");
    try {
      const registry = await OwnershipRegistry.open(admin, group);
      const unconfirmed = await runTsync(["owners", "release", "root.shared", "--config", props]);
      expect(unconfirmed.code).toBe(2);
      expect(unconfirmed.stderr).toMatch(/add --yes/);
      expect((await registry.owner("root.shared"))?.senderId).toBe("A");
      const released = await runTsync(["owners", "release", "root.shared", "--yes", "--config", props]);
      expect(released.code, released.stderr).toBe(0);
      expect(released.stdout.trim()).toBe("released root.shared");
      expect(await registry.owner("root.shared")).toBeUndefined();
      expect((await registry.list()).map((o) => o.sg)).toEqual(["root.a", "root.b"]);
    } finally {
      await admin.close();
    }

    // Both senders have a new file of root.shared and sync at once: one claims it, one is refused.
    const a = join(root, "edge-A");
    const b = join(root, "edge-B");
    const newA = await addSealedFile(a, "root.shared", "9000000000001-101-0-0.tsfile", 101);
    const newB = await addSealedFile(b, "root.shared", "9000000000002-102-0-0.tsfile", 102);
    const sa = await openFor(group, "A", a);
    const sb = await openFor(group, "B", b);
    try {
      const [ra, rb] = await Promise.all([sa.runOnce(), sb.runOnce()]);
      const winners = [ra, rb].filter((s) => !conflictedGroups(s).includes("root.shared"));
      expect(winners).toHaveLength(1);
      const winner = winners[0] === ra ? "A" : "B";
      const loser = winner === "A" ? rb : ra;
      expect(loser.conflicts[0]?.message).toMatch(new RegExp(`belongs to sender ${winner} `));
      await expectLandedByteForByte(centre, [winner === "A" ? newA : newB]);
      await expect(readFile(landedAt(centre, winner === "A" ? newB : newA))).rejects.toThrow(/ENOENT/);
      expect((await runTsync(["owners", "list", "--config", props])).stdout).toMatch(new RegExp(`root\\.shared\\t${winner}\\t`));
    } finally {
      await sa.close();
      await sb.close();
    }
  });
});

test("ownership outlives a receiver restart, and a second receiver instance of the group agrees", async () => {
  const group = "owners2";
  const a = await edgeOf("C", ["root.kept"]);
  const b = await edgeOf("D", ["root.kept", "root.d"]);
  const first = await startReceiver(server, join(root, "centre2a"), { receiver_group: group });
  const sa = await openFor(group, "C", a.dir);
  try {
    expect(roundSucceeded(await sa.runOnce())).toBe(true);
  } finally {
    await sa.close();
    await first.stop();
  }
  // A new instance (new data dir, same server): only it serves the group now.
  const second = await startReceiver(server, join(root, "centre2b"), { receiver_group: group });
  const sb = await openFor(group, "D", b.dir);
  try {
    const s = await sb.runOnce();
    expect(conflictedGroups(s)).toEqual(["root.kept"]);
    expect(s.conflicts[0]?.message).toMatch(/belongs to sender C/);
    expect(s.sent.map((f) => f.file.split("/")[0])).toEqual(["root.d", "root.d"]);
    expect(await listFiles(join(root, "centre2b", "sequence", "root.kept"))).toEqual([]);
  } finally {
    await sb.close();
  }
  // And two live instances racing on a fresh group settle on one owner that both report.
  const third = await startReceiver(server, join(root, "centre2c"), { receiver_group: group });
  try {
    const claims = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? second : third).core.claim("root.raced", `racer${i}`)),
    );
    const owners = new Set(claims.map((o) => o.senderId));
    expect(owners.size).toBe(1);
    const [owner] = [...owners];
    expect((await second.core.claim("root.raced", "late")).senderId).toBe(owner);
    expect((await third.core.claim("root.raced", "late")).senderId).toBe(owner);
  } finally {
    await third.stop();
    await second.stop();
  }
});

test("with the embedded server, owners survive a restart and tsync owners reads them whether or not the receiver runs", async () => {
  const centre = join(root, "centre3");
  const edge = await edgeOf("E", ["root.embedded"]);
  const start = (port: number) =>
    Receiver.start({
      config: receiverConfig({
        is_sync_enable: "true",
        receiver_data_directory: centre,
        sync_server_port: String(port),
        receiver_group: "emb",
      }),
      validateTsFile,
      log: () => undefined,
    });
  const credentials = await enroll(centre, "E", root);
  let receiver = await start(0);
  const port = receiver.port;
  const props = join(root, "emb.receiver.properties");
  await writeFile(props, `receiver_data_directory=${centre}\nsync_server_port=${port}\nreceiver_group=emb\n`);
  try {
    const sender = await Sender.open({
      config: senderConfig({
        data_directory: edge.dir,
        server_ip: "127.0.0.1",
        server_port: String(port),
        receiver_group: "emb",
        ...credentials,
      }),
    });
    try {
      expect(roundSucceeded(await sender.runOnce())).toBe(true);
    } finally {
      await sender.close();
    }
    const whileRunning = await runTsync(["owners", "list", "--config", props]);
    expect(whileRunning.stdout).toMatch(/^root\.embedded\tE\tsince /m);
    await receiver.stop();
    const whileStopped = await runTsync(["owners", "list", "--config", props]);
    expect(whileStopped.code, whileStopped.stderr).toBe(0);
    expect(whileStopped.stdout).toMatch(/^root\.embedded\tE\tsince /m);
    receiver = await start(port);
    expect((await receiver.core.claim("root.embedded", "someone-else")).senderId).toBe("E");
  } finally {
    await receiver.stop();
  }
});
