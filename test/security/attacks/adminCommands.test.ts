// Finding 9: `tsync owners release` with sync_server_port=0 said "released" and released nothing
// (it opened the store with a second server instead of asking the running one). Admin commands now
// find the running embedded server through its pid and ports files and authenticate as the
// receiver's store user; with no receiver running they open the store on loopback, for that user only.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { OwnershipRegistry } from "../../../src/actors/receiver/ownership.js";
import { Sender } from "../../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../../src/machines/senderTypes.js";
import { runTsync } from "../../harness/cli.js";
import { senderConfig } from "../../harness/configs.js";
import { startEnrolledReceiver } from "../../harness/enroll.js";
import { removeAll, tempRoot } from "../../harness/syncPair.js";
import { buildEdge, rawClient } from "../kit.js";

let root: string;
beforeAll(async () => {
  root = await tempRoot("tsync-admin-");
});
afterAll(async () => {
  await removeAll(root);
});

test("owners release acts on the running receiver's registry when sync_server_port=0, and on its store when it is stopped", async () => {
  let r = await startEnrolledReceiver(root, "admin", ["plant-a"]);
  const conf = join(root, "admin.receiver.properties");
  // As the operator wrote it: port 0, so only the running server knows its port.
  await writeFile(conf, `receiver_data_directory=${r.centre}\nreceiver_group=admin\nsync_server_port=0\n`);
  const edge = join(root, "admin-edge");
  await buildEdge(edge, ["root.one", "root.two"], 1);
  const sender = await Sender.open({
    config: senderConfig({
      data_directory: edge,
      server_ip: "127.0.0.1",
      server_port: String(r.receiver.port),
      receiver_group: "admin",
      ...r.senders["plant-a"],
    }),
  });
  try {
    expect(roundSucceeded(await sender.runOnce())).toBe(true);
  } finally {
    await sender.close();
  }
  const owners = async () => (await (await OwnershipRegistry.open(r.receiver.store, "admin")).list()).map((o) => `${o.sg}:${o.senderId}`);
  try {
    expect(await owners()).toEqual(["root.one:plant-a", "root.two:plant-a"]);
    const released = await runTsync(["owners", "release", "root.one", "--yes", "--config", conf]);
    expect(released.code, released.stderr).toBe(0);
    expect(released.stdout).toBe("released root.one\n");
    expect(await owners()).toEqual(["root.two:plant-a"]);
    // The admin's connection was the store user's: the receiver's embedded server lets nobody else in.
    await expect(rawClient(r.url, "admin")).rejects.toThrow(/Authorization Violation/);
  } finally {
    await r.receiver.stop();
  }
  const whileStopped = await runTsync(["owners", "release", "root.two", "--yes", "--config", conf]);
  expect(whileStopped.code, whileStopped.stderr).toBe(0);
  expect(whileStopped.stdout).toBe("released root.two\n");
  r = { ...(await startEnrolledReceiver(root, "admin", [])), senders: r.senders, as: r.as };
  try {
    expect(await owners()).toEqual([]);
    const again = await runTsync(["owners", "release", "root.two", "--yes", "--config", conf]);
    expect(again.stdout).toBe("root.two had no owner\n");
    expect(again.code).toBe(1);
  } finally {
    await r.receiver.stop();
  }
}, 180_000);
