import { mkdtemp, mkdir, copyFile, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";

const fx = new URL("../../../shared/fixtures/tsfile/generated/", import.meta.url).pathname;
let server: TestNatsServer;
beforeAll(async () => { server = await startTestNatsServer(); });
afterAll(async () => { await server.cleanup(); });

test("smoke", async () => {
  const root = await mkdtemp(join(tmpdir(), "tsync-e2e-"));
  const data = join(root, "edge");
  const dir = join(data, "sequence", "root.sg1", "0", "0");
  await mkdir(dir, { recursive: true });
  await copyFile(join(fx, "gen_v3_tree.tsfile"), join(dir, "1-1-0-0.tsfile"));
  await copyFile(join(fx, "gen_v3_tree.tsfile.resource"), join(dir, "1-1-0-0.tsfile.resource"));
  const receiver = await Receiver.start({
    config: receiverConfig({ is_sync_enable: "true", receiver_data_directory: join(root, "centre"), nats_url: server.url, nats_monitor_url: server.monitorUrl }),
    validateTsFile: async () => ({ ok: true, facts: { devices: [], version: 3 } }),
    log: (l) => console.log("[r]", l),
  });
  const sender = await Sender.open({ config: senderConfig({ data_directory: data, nats_url: server.url }), log: (l) => console.log("[s]", l) });
  const summary = await sender.runOnce();
  console.log(JSON.stringify(summary));
  await sender.close();
  await receiver.stop();
  console.log(await readdir(join(root, "centre", "sequence", "root.sg1", "0", "0")));
  expect(await readFile(join(root, "centre", "sequence", "root.sg1", "0", "0", "1-1-0-0.tsfile"))).toEqual(await readFile(join(dir, "1-1-0-0.tsfile")));
});
