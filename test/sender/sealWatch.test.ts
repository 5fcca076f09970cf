import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { watchSealed, worthWatching } from "../../src/actors/sender/sealWatch.js";
import { writeSealedTsFile } from "../../src/actors/tsfileFiles.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { openSender, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";

/** IoTDB's way: the TsFile is complete, then its .resource appears by rename. */
const seal = async (dir: string, name: string) => {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, name), "tsfile bytes");
  await writeFile(join(dir, `${name}.resource.temp`), "resource bytes");
  await rename(join(dir, `${name}.resource.temp`), join(dir, `${name}.resource`));
};

const spec = {
  devices: [
    { path: "root.sg1.d1", measurements: [{ name: "s1", dataType: "INT64" as const, timestamps: [1n, 2n, 3n], values: [1n, 2n, 3n] }] },
  ],
};

describe("worthWatching", () => {
  test.each([
    [[], true],
    [["sequence"], true],
    [["sequence", "root.sg1", "0", "0"], true],
    [["sequence", "root.sg1", "0", "0", "deeper"], false],
    [["datanode"], true],
    [["datanode", "data", "sequence", "root.db", "3", "7"], true],
    [["unsequence"], false],
    [["sync-sender"], false],
    [["datanode", "wal"], false],
  ])("%j → %s", (segments, expected) => {
    expect(worthWatching(segments)).toBe(expected);
  });
});

describe("watchSealed", () => {
  let root: string;
  beforeAll(async () => {
    root = await tempRoot("tsync-sealwatch-");
  });
  afterAll(async () => {
    await removeAll(root);
  });

  test("reports a new .resource in a new partition, and nothing from unsequence, the work dir or files there before", async () => {
    const data = join(root, "data1");
    await seal(join(data, "sequence", "root.sg1", "0", "0"), "1-1-0-0.tsfile");
    const calls: string[][] = [];
    const w = watchSealed(
      data,
      (paths) => calls.push([...paths]),
      () => undefined,
      50,
    );
    try {
      await w.ready;
      // Noise first, then the real thing: events arrive in order, so had the noise counted it
      // would be in the same (debounced) call as the real file.
      await seal(join(data, "unsequence", "root.sg1", "0", "0"), "2-2-0-0.tsfile");
      await seal(join(data, "sync-sender", "r_tsync", "snapshot", "root.sg1", "0", "0"), "3-3-0-0.tsfile");
      await seal(join(data, "sequence", "root.sg1", "0", "7"), "4-4-0-0.tsfile");
      await expect.poll(() => calls.length, { timeout: 10_000 }).toBeGreaterThan(0);
      expect(calls.flat()).toEqual(["sequence/root.sg1/0/7/4-4-0-0.tsfile.resource"]);
    } finally {
      w.close();
    }
  });

  test("finds the sequence root of the 1.x layout when it appears after the watch started", async () => {
    const data = join(root, "data2");
    await mkdir(data, { recursive: true });
    const calls: string[][] = [];
    const w = watchSealed(
      data,
      (paths) => calls.push([...paths]),
      () => undefined,
      50,
    );
    try {
      await w.ready;
      await seal(join(data, "datanode", "data", "sequence", "root.db", "3", "7"), "5-5-0-0.tsfile");
      // The rescan of a directory that appeared and its own event may both report the file, in two
      // batches when the machine is slow: the watch only has to find it (a second report is one more round at most).
      await expect
        .poll(() => [...new Set(calls.flat())], { timeout: 10_000 })
        .toEqual(["datanode/data/sequence/root.db/3/7/5-5-0-0.tsfile.resource"]);
    } finally {
      w.close();
    }
  });
});

describe("sync_on_seal", () => {
  let server: TestNatsServer;
  let root: string;
  beforeAll(async () => {
    server = await startTestNatsServer();
    root = await tempRoot("tsync-onseal-");
  });
  afterAll(async () => {
    await server.cleanup();
    await removeAll(root);
  });

  test("a new .resource starts a round long before the period: the file reaches the centre", async () => {
    const edge = join(root, "edge");
    const centre = join(root, "centre");
    const partition = join(edge, "sequence", "root.sg1", "0", "0");
    await mkdir(partition, { recursive: true });
    await writeSealedTsFile(partition, "1000-1-0-0.tsfile", spec);
    const receiver = await startReceiver(server, centre);
    // A period of an hour: only the watch can explain a second round within the test.
    const sender = await openSender(server, edge, { sync_on_seal: "true", sync_period_in_second: "3600" });
    const stop = new AbortController();
    let rounds = 0;
    const running = sender.runForever(stop.signal, () => rounds++);
    const watcher = watchSealed(
      edge,
      () => sender.sealed(),
      () => undefined,
    );
    try {
      await watcher.ready;
      await expect.poll(() => rounds, { timeout: 30_000 }).toBe(1);
      await writeSealedTsFile(partition, "2000-2-0-0.tsfile", spec);
      const arrived = join(centre, "sequence", "root.sg1", "0", "0", "2000-2-0-0.tsfile.resource");
      await expect
        .poll(
          () =>
            stat(arrived).then(
              () => true,
              () => false,
            ),
          { timeout: 30_000 },
        )
        .toBe(true);
      expect(rounds).toBeGreaterThanOrEqual(1);
    } finally {
      watcher.close();
      stop.abort();
      await running;
      await sender.close();
      await receiver.stop();
    }
  });
});
