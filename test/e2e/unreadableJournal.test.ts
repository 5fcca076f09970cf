// A journal that cannot be replayed stops start-up with a message naming it: starting from an empty
// one would forget what was loaded (receiver) or confirmed (sender) and load it all again.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { ReceiverStartError } from "../../src/actors/receiver/receiver.js";
import { senderWorkDirectory } from "../../src/config/sender.js";
import { senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { openSender, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";

let root: string;
let server: TestNatsServer;
beforeAll(async () => {
  root = await tempRoot("tsync-unreadable-journal-");
  server = await startTestNatsServer();
});
afterAll(async () => {
  await server?.cleanup();
  await removeAll(root);
});

/** Why the receiver did not start; undefined (after stopping it) when it did. */
const receiverRefusal = (centre: string): Promise<unknown> =>
  startReceiver(server, centre).then(
    (r) => r.stop().then(() => undefined),
    (e: unknown) => e,
  );

const senderRefusal = (edge: string): Promise<unknown> =>
  openSender(server, edge).then(
    (s) => s.close().then(() => undefined),
    (e: unknown) => e,
  );

test("a receiver whose journal.jsonl is a directory refuses to start, naming the file and why", async () => {
  const centre = join(root, "centre-dir");
  await mkdir(join(centre, ".tsync", "journal.jsonl"), { recursive: true });
  const e = await receiverRefusal(centre);
  expect(e).toBeInstanceOf(ReceiverStartError);
  expect((e as ReceiverStartError).step).toBe("load journal");
  expect((e as ReceiverStartError).message).toContain(join(centre, ".tsync", "journal.jsonl"));
  expect((e as ReceiverStartError).message).toContain("EISDIR");
});

test("a receiver whose journal has a damaged line before its last refuses to start, naming the file and the line", async () => {
  const centre = join(root, "centre-damaged");
  await mkdir(join(centre, ".tsync"), { recursive: true });
  const loaded = (name: string) =>
    JSON.stringify({
      op: "loaded",
      sender: "edge1",
      ref: { sg: "root.sg1", vg: "0", tp: "0", name },
      kind: "tsfile",
      size: 1,
      sha256: "0".repeat(64),
      at: 1,
    });
  await writeFile(
    join(centre, ".tsync", "journal.jsonl"),
    `${loaded("1-1-0-0.tsfile")}\n{"op":"loaded","sen\n${loaded("2-2-0-0.tsfile")}\n`,
  );
  const e = await receiverRefusal(centre);
  expect(e).toBeInstanceOf(ReceiverStartError);
  expect((e as ReceiverStartError).message).toContain("journal.jsonl, line 2");
});

test("a receiver whose journal only has a torn last line starts, without it", async () => {
  const centre = join(root, "centre-torn");
  await mkdir(join(centre, ".tsync"), { recursive: true });
  await writeFile(join(centre, ".tsync", "journal.jsonl"), '{"op":"loaded","sen');
  const e = await receiverRefusal(centre);
  expect(e).toBeUndefined();
});

test("a sender whose confirmed journal is a directory refuses to start, naming the file, and leaves no lock behind", async () => {
  const edge = join(root, "edge");
  await mkdir(edge, { recursive: true });
  const work = senderWorkDirectory(senderConfig({ data_directory: edge, nats_url: server.url }));
  await mkdir(join(work, "confirmed.jsonl"), { recursive: true });
  const e = await senderRefusal(edge);
  expect(e).toBeInstanceOf(Error);
  expect((e as Error).message).toContain(join(work, "confirmed.jsonl"));
  expect((e as Error).message).toContain("EISDIR");

  await rm(join(work, "confirmed.jsonl"), { recursive: true });
  expect(await senderRefusal(edge)).toBeUndefined();
});
