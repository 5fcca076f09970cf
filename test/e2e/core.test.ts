import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { listFiles, openSender, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";
import { failWithoutFixturesUnderCi, fixturePath, fixturesFound } from "../tsfile/fixtures.js";

failWithoutFixturesUnderCi();

/**
 * An edge data directory built from the shared fixtures: three storage groups, virtual groups and
 * time partitions in the 0.13 layout, one database in the 1.x layout, a TsFile without .resource.
 */
const buildEdge = async (root: string): Promise<string[]> => {
  const place = async (dir: string, name: string, fixture: string, withResource: boolean) => {
    await mkdir(join(root, dir), { recursive: true });
    await copyFile(fixturePath(`generated/${fixture}`), join(root, dir, name));
    if (withResource) await copyFile(fixturePath(`generated/${fixture}.resource`), join(root, dir, `${name}.resource`));
    return join(dir, name);
  };
  return [
    await place("sequence/root.sg1/0/0", "1000-1-0-0.tsfile", "gen_v3_tree.tsfile", true),
    await place("sequence/root.sg1/0/1", "2000-2-0-0.tsfile", "gen_v4_tree.tsfile", true),
    await place("sequence/root.sg1/1/0", "3000-3-0-0.tsfile", "gen_v4_table.tsfile", true),
    await place("sequence/root.sg2/0/0", "4000-4-0-0.tsfile", "gen_v3_tree.tsfile", true),
    await place("sequence/root.sg3/2/5", "5000-5-0-0.tsfile", "gen_v4_tree.tsfile", true),
    await place("datanode/data/sequence/root.db/3/7", "6000-6-0-0.tsfile", "gen_v4_table.tsfile", true),
  ];
};

describe.skipIf(!fixturesFound)("one sender, one receiver, a real nats-server", () => {
  let server: TestNatsServer;
  let root: string;
  beforeAll(async () => {
    server = await startTestNatsServer();
    root = await tempRoot();
  });
  afterAll(async () => {
    await server.cleanup();
    await removeAll(root);
  });

  test("syncs every sealed file byte for byte, then nothing, then a deletion; unsealed files stay behind", async () => {
    const edge = join(root, "edge1");
    const centre = join(root, "centre1");
    const placed = await buildEdge(edge);
    await mkdir(join(edge, "sequence/root.sg2/0/0"), { recursive: true });
    await copyFile(fixturePath("generated/gen_v3_min.tsfile"), join(edge, "sequence/root.sg2/0/0/9999-9-0-0.tsfile")); // no .resource: unsealed
    const receiver = await startReceiver(server, centre);
    const sender = await openSender(server, edge);
    try {
      const first = await sender.runOnce();
      expect(first.roundError).toBeUndefined();
      expect(first.failed).toEqual([]);
      expect(first.sent).toHaveLength(placed.length);
      for (const p of placed) {
        // The 1.x layout lands in the receiver's sequence/<db>/<region>/<tp> like the others.
        const target = p.replace(/^datanode\/data\//, "");
        expect(await readFile(join(centre, target))).toEqual(await readFile(join(edge, p)));
        expect(await readFile(join(centre, `${target}.resource`))).toEqual(await readFile(join(edge, `${p}.resource`)));
      }
      const arrived = await listFiles(join(centre, "sequence"));
      expect(arrived).not.toContain("root.sg2/0/0/9999-9-0-0.tsfile");
      expect(arrived).toHaveLength(placed.length * 2);

      const second = await sender.runOnce();
      expect(roundSucceeded(second)).toBe(true);
      expect(second.sent).toEqual([]);
      expect(second.bytesSent).toBe(0);

      await rm(join(edge, placed[0]!));
      await rm(join(edge, `${placed[0]!}.resource`));
      const third = await sender.runOnce();
      expect(third.deleted).toEqual(["root.sg1/0/0/1000-1-0-0.tsfile"]);
      expect(await listFiles(join(centre, "sequence"))).not.toContain("root.sg1/0/0/1000-1-0-0.tsfile");
      expect(await listFiles(join(centre, "sequence"))).toHaveLength((placed.length - 1) * 2);
      expect(receiver.core.stats.loads).toBe(placed.length);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("sync_storage_groups limits what is sent, and a file sealed later goes in the next round", async () => {
    const edge = join(root, "edge2");
    const centre = join(root, "centre2");
    await buildEdge(edge);
    const receiver = await startReceiver(server, centre, { receiver_group: "limited" });
    const sender = await openSender(server, edge, { sync_storage_groups: "root.sg2, root.sg3", receiver_group: "limited" });
    try {
      const round = await sender.runOnce();
      expect(round.sent.map((s) => s.file).sort()).toEqual(["root.sg2/0/0/4000-4-0-0.tsfile", "root.sg3/2/5/5000-5-0-0.tsfile"]);
      expect(await listFiles(join(centre, "sequence"))).toEqual([
        "root.sg2/0/0/4000-4-0-0.tsfile",
        "root.sg2/0/0/4000-4-0-0.tsfile.resource",
        "root.sg3/2/5/5000-5-0-0.tsfile",
        "root.sg3/2/5/5000-5-0-0.tsfile.resource",
      ]);
      // IoTDB seals a file by writing its .resource last: from then on it is sent.
      const dir = join(edge, "sequence/root.sg2/0/0");
      await copyFile(fixturePath("generated/gen_v3_min.tsfile"), join(dir, "7000-7-0-0.tsfile"));
      expect((await sender.runOnce()).sent).toEqual([]);
      await copyFile(fixturePath("generated/gen_v3_tree.tsfile.resource"), join(dir, "7000-7-0-0.tsfile.resource"));
      expect((await sender.runOnce()).sent.map((s) => s.file)).toEqual(["root.sg2/0/0/7000-7-0-0.tsfile"]);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("a disabled receiver makes the round fail with its reason, and nothing is written", async () => {
    const edge = join(root, "edge3");
    const centre = join(root, "centre3");
    await buildEdge(edge);
    const receiver = await startReceiver(server, centre, { is_sync_enable: "false", receiver_group: "off" });
    const sender = await openSender(server, edge, { receiver_group: "off" });
    try {
      const round = await sender.runOnce();
      expect(round.roundError).toMatch(/sync is disabled on this receiver \(is_sync_enable=false\)/);
      expect(roundSucceeded(round)).toBe(false);
      expect(round.sent).toEqual([]);
      expect(await listFiles(centre)).toEqual([]);
      expect(receiver.core.stats.refused).toBeGreaterThan(0);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("a changed .mods side file travels again without resending the TsFile", async () => {
    const edge = join(root, "edge4");
    const centre = join(root, "centre4");
    const dir = join(edge, "sequence/root.sg1/0/0");
    await mkdir(dir, { recursive: true });
    await copyFile(fixturePath("generated/gen_v3_tree.tsfile"), join(dir, "1-1-0-0.tsfile"));
    await copyFile(fixturePath("generated/gen_v3_tree.tsfile.resource"), join(dir, "1-1-0-0.tsfile.resource"));
    const receiver = await startReceiver(server, centre, { receiver_group: "mods" });
    const sender = await openSender(server, edge, { receiver_group: "mods" });
    try {
      expect((await sender.runOnce()).sent).toHaveLength(1);
      await copyFile(fixturePath("generated/gen_v3_tree.tsfile.mods"), join(dir, "1-1-0-0.tsfile.mods"));
      const round = await sender.runOnce();
      const mods = await readFile(join(dir, "1-1-0-0.tsfile.mods"));
      expect(round.sent).toEqual([{ file: "root.sg1/0/0/1-1-0-0.tsfile", bytes: mods.length, resumedFrom: 0 }]);
      expect(await readFile(join(centre, "sequence/root.sg1/0/0/1-1-0-0.tsfile.mods"))).toEqual(mods);
      await writeFile(
        join(dir, "1-1-0-0.tsfile.mods"),
        Buffer.concat([mods, Buffer.from("DELETION,root.sg1.d2.counter,1256,2000,2100\n")]),
      );
      const grown = await sender.runOnce();
      expect(grown.sent).toHaveLength(1);
      expect(await readFile(join(centre, "sequence/root.sg1/0/0/1-1-0-0.tsfile.mods"))).toEqual(
        await readFile(join(dir, "1-1-0-0.tsfile.mods")),
      );
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("one data directory feeds two receivers through two sender configs, each with its own state", async () => {
    const edge = join(root, "edge5");
    const placed = await buildEdge(edge);
    const other = await startTestNatsServer();
    const east = await startReceiver(server, join(root, "east"), { receiver_group: "east" });
    const west = await startReceiver(other, join(root, "west"), { receiver_group: "west" });
    const toEast = await openSender(server, edge, { receiver_group: "east" });
    const toWest = await openSender(other, edge, { receiver_group: "west" });
    try {
      const [a, b] = await Promise.all([toEast.runOnce(), toWest.runOnce()]);
      expect(a.sent).toHaveLength(placed.length);
      expect(b.sent).toHaveLength(placed.length);
      expect(await listFiles(join(root, "east", "sequence"))).toEqual(await listFiles(join(root, "west", "sequence")));
      expect(toEast.work.dir).not.toBe(toWest.work.dir);
    } finally {
      await toEast.close();
      await toWest.close();
      await east.stop();
      await west.stop();
      await other.cleanup();
    }
  });
});
