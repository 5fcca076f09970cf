// max_bandwidth_bytes_per_second holds for small files too: they travel whole, one request each
// (puts), and each put is paced like a chunk.
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { buildSampleDataDir } from "../../src/actors/sampleDataDir.js";
import { burstSeconds } from "../../src/actors/sender/pacer.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { openSender, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";

let server: TestNatsServer;
let root: string;
beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-bandwidth-");
});
afterAll(async () => {
  await server.cleanup();
  await removeAll(root);
});

test("small files sent whole keep to max_bandwidth_bytes_per_second: the round takes at least bytes ÷ rate, less one burst", async () => {
  const edge = join(root, "edge");
  const made = await buildSampleDataDir(edge, {
    groups: { "root.paced": ["d1", "d2", "d3"] },
    virtualGroups: 1,
    partitions: 1,
    filesPerPartition: 12,
    pointsPerSeries: 400,
    withUnsealed: false,
  });
  let bytes = 0;
  for (const f of made) bytes += (await stat(f.path)).size + (await stat(`${f.path}.resource`)).size;
  // About three seconds of data at this rate, whatever the writer's exact sizes.
  const rate = Math.round(bytes / 3);
  const receiver = await startReceiver(server, join(root, "centre"));
  const sender = await openSender(server, edge, { max_bandwidth_bytes_per_second: String(rate) });
  try {
    const began = performance.now();
    const summary = await sender.runOnce();
    const seconds = (performance.now() - began) / 1000;
    expect(summary.failed).toEqual([]);
    expect(summary.sent).toHaveLength(made.length);
    expect(summary.bytesSent).toBe(bytes);
    expect(seconds).toBeGreaterThanOrEqual(bytes / rate - burstSeconds - 0.05);
  } finally {
    await sender.close();
    await receiver.stop();
  }
});
