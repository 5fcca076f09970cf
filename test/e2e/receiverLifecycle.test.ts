// A receiver's services live in one scope: a start that fails half way releases what it had
// acquired (no nats-server left behind), and stop releases everything, the server last.
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { readRunningServer } from "../../src/actors/natsServer.js";
import { embeddedStoreDir, Receiver, ReceiverStartError } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { receiverConfig } from "../harness/configs.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

let root: string;
beforeAll(async () => {
  root = await tempRoot("tsync-lifecycle-");
});
afterAll(async () => {
  await removeAll(root);
});

const start = (centre: string, props: Record<string, string> = {}) =>
  Receiver.start({
    config: receiverConfig({ is_sync_enable: "true", sync_server_port: "0", receiver_data_directory: centre, ...props }),
    validateTsFile,
    log: () => undefined,
  });

test("a start that fails after the embedded server is up stops that server and says which step failed", async () => {
  const centre = join(root, "broken");
  const failure = await start(centre, { storage_plugin: join(root, "no-such-plugin.mjs") }).catch((e: unknown) => e);
  expect(failure).toBeInstanceOf(ReceiverStartError);
  expect((failure as ReceiverStartError).step).toBe("storage plugin");
  expect((failure as ReceiverStartError).message).toContain("no-such-plugin.mjs");
  expect(await readRunningServer(embeddedStoreDir(centre))).toBeUndefined();
});

test("stop closes both connections and the embedded server", async () => {
  const centre = join(root, "clean");
  const receiver = await start(centre);
  const running = await readRunningServer(embeddedStoreDir(centre));
  expect(running?.port).toBe(receiver.port);
  await receiver.stop();
  expect(receiver.nc.isClosed()).toBe(true);
  expect(receiver.store.isClosed()).toBe(true);
  expect(await readRunningServer(embeddedStoreDir(centre))).toBeUndefined();
});
