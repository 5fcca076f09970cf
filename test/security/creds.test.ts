// `.creds` files (JWT + nkey seed) on both sides, against a server in operator mode, with the
// per-sender permissions carried in each sender's JWT. No monitoring URL is given: addresses come
// over NATS from the receiver's account.
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { Code } from "../../src/protocol/status.js";
import { helloSubject, senderInboxPrefix } from "../../src/protocol/subjects.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { listFiles, removeAll, tempRoot } from "../harness/syncPair.js";
import { makeOperator } from "./jwt.js";
import { buildEdge, expectLandedByteForByte, helloBody, noAuth, rawClient, sayHello } from "./kit.js";

const group = "jwt";
let server: TestNatsServer;
let root: string;
let receiver: Receiver;
let senderCreds: (id: string) => Promise<string>;

beforeAll(async () => {
  const operator = makeOperator();
  server = await startTestNatsServer(operator.serverConfig);
  root = await tempRoot("tsync-creds-");
  senderCreds = (id) =>
    operator.user(join(root, `${id}.creds`), id, {
      pub: [`tsync.${group}.hello.${id}`, `tsync.${group}.s.*.${id}.>`, `tsync.${group}.fleet.${id}`],
      sub: [`${senderInboxPrefix(id)}.>`],
    });
  receiver = await Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_group: group,
      receiver_data_directory: join(root, "centre"),
      nats_url: server.url,
      nats_creds_file: await operator.user(join(root, "receiver.creds"), "receiver"),
    }),
    validateTsFile,
    log: () => undefined,
  });
});
afterAll(async () => {
  await receiver?.stop();
  await server?.cleanup();
  await removeAll(root);
});

test("a sender with a .creds file syncs; with its credentials no hello as another sender gets through", async () => {
  const edge = join(root, "edge");
  const files = await buildEdge(edge, ["root.jwt"], 2);
  const creds = await senderCreds("plant-j");
  const sender = await Sender.open({
    config: senderConfig({
      data_directory: edge,
      nats_url: server.url,
      receiver_group: group,
      sender_name: "plant-j",
      nats_creds_file: creds,
    }),
  });
  // plant-j's credentials, taking replies in plant-j's inbox (the only one they may read).
  const impostor = await rawClient(
    server.url,
    "plant-k",
    { ...noAuth, nats_creds_file: creds },
    { inboxPrefix: senderInboxPrefix("plant-j") },
  );
  try {
    const s = await sender.runOnce();
    expect(roundSucceeded(s), JSON.stringify(s)).toBe(true);
    await expectLandedByteForByte(join(root, "centre"), files);

    await expect(impostor.request(helloSubject(group, "plant-k"), helloBody("plant-k"), { timeout: 5_000 })).rejects.toThrow(
      /Permissions Violation for Publish/,
    );
    // plant-j's own hello from a connection named as plant-k's is not taken for plant-j's.
    const misnamed = await sayHello(impostor, group, "plant-j");
    expect(misnamed.code).toBe(Code.addressNotAllowed);
    expect(misnamed.message).toMatch(/no connection named tsync-sender-plant-j/);
    expect(await listFiles(join(root, "centre", "sequence"))).toEqual(
      files.flatMap((f) => [`root.jwt/0/0/${f.name}`, `root.jwt/0/0/${f.name}.resource`]).sort(),
    );
  } finally {
    await impostor.close();
    await sender.close();
  }
});
