import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";
import { Effect, Exit } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { openStorage } from "../../src/plugins/loadStorage.js";
import { splitSchemaRecords } from "../../src/iotdb/schemaRecords.js";
import { ObjectMeta, objectName } from "../../src/plugins/storageObjectStore.js";
import { inspectTsFile } from "../../src/actors/tsfileFiles.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { deleteOnEdge, openPair } from "./e2e.js";
import { contractFacts, storageContract } from "./storageContract.js";

let server: TestNatsServer;
let nc: NatsConnection;
let root: string;
beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connect({ servers: server.url });
  root = await tempRoot();
});
afterAll(async () => {
  await nc.close();
  await server.cleanup();
  await removeAll(root);
});

let buckets = 0;

storageContract("objectstore", async (dataDir) => {
  const bucket = `contract${buckets++}`;
  const storage = await Effect.runPromise(
    openStorage("objectstore", { dataDir, options: { bucket }, natsServers: server.url, natsOptions: {}, nc }),
  );
  const os = await new Objm(nc).open(bucket);
  return {
    storage,
    read: async (_sender, ref, kind) => (await os.getBlob(objectName(ref, kind))) ?? undefined,
    schemaKept: async (sender) => {
      const pieces = (await os.list())
        .filter((i) => !i.deleted && i.name.startsWith(`_schema/${sender}/mlog.bin/`))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      const records: string[] = [];
      for (const p of pieces) records.push(...splitSchemaRecords("mlog.bin", (await os.getBlob(p.name))!));
      return records;
    },
    close: () => Effect.runPromise(storage.close),
  };
});

describe("objectstore specifics", () => {
  test("a part whose bytes do not have the verified digest is refused and not left in the bucket", async () => {
    const storage = await Effect.runPromise(
      openStorage("objectstore", { dataDir: root, options: { bucket: "digestcheck" }, natsServers: server.url, natsOptions: {}, nc }),
    );
    const path = join(root, "damaged.ready");
    await writeFile(path, "bytes that changed on disk after verification");
    const ref = { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile" };
    const claimed = createHash("sha256").update("the bytes that were verified").digest("hex");
    const exit = await Effect.runPromiseExit(
      storage.load({ senderId: "edge1", ref, parts: [{ kind: "tsfile", path, size: 46, sha256: claimed }], facts: contractFacts }),
    );
    expect(Exit.isFailure(exit)).toBe(true);
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain(claimed);
    expect((await (await new Objm(nc).open("digestcheck")).info(objectName(ref, "tsfile")))?.deleted ?? true).toBe(true);
    await Effect.runPromise(storage.close);
  });

  test("without the receiver's connection it connects to natsServers itself, and closes that connection", async () => {
    const storage = await Effect.runPromise(
      openStorage("objectstore", { dataDir: root, options: { bucket: "ownconn" }, natsServers: server.url, natsOptions: {} }),
    );
    const ref = { sg: "root.sg1", vg: "0", tp: "0", name: "2-2-0-0.tsfile" };
    await Effect.runPromise(storage.applySchema("edge1", ["line"], undefined));
    expect(await Effect.runPromise(storage.has(ref, "tsfile", "0".repeat(64)))).toBe(false);
    const names = (await (await new Objm(nc).open("ownconn")).list()).map((i) => i.name);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(/^_schema\/edge1\/records\/[0-9a-f]{64}$/);
    await Effect.runPromise(storage.close);
  });

  test("a bad plugin.replicas is refused at open, naming the key", async () => {
    const exit = await Effect.runPromiseExit(
      openStorage("objectstore", {
        dataDir: root,
        options: { bucket: "nowhere", replicas: "9" },
        natsServers: server.url,
        natsOptions: {},
        nc,
      }),
    );
    expect(Exit.isFailure(exit)).toBe(true);
    if (Exit.isFailure(exit)) expect(JSON.stringify(exit.cause)).toContain("plugin.replicas must be 1..5");
  });
});

describe("objectstore end to end", () => {
  test("each part is an object named <sg>/<vg>/<tp>/<file> whose metadata says sender, group, devices and time range; deletions reach the bucket", async () => {
    const pair = await openPair(server, root, { storage_plugin: "objectstore", "plugin.bucket": "e2e" });
    try {
      const first = await pair.round();
      expect(roundSucceeded(first), JSON.stringify(first)).toBe(true);
      const os = await new Objm(nc).open("e2e");
      for (const f of pair.files) {
        const ref = { sg: f.sg, vg: f.vg, tp: f.tp, name: f.name };
        expect(Buffer.from((await os.getBlob(objectName(ref, "tsfile")))!).equals(await readFile(f.path))).toBe(true);
        expect(Buffer.from((await os.getBlob(objectName(ref, "resource")))!).equals(await readFile(`${f.path}.resource`))).toBe(true);
        const meta = (await os.info(objectName(ref, "tsfile")))!.metadata!;
        const info = await inspectTsFile(f.path);
        expect(meta[ObjectMeta.sender]).toBe(pair.sender.senderId);
        expect(meta[ObjectMeta.sg]).toBe(f.sg);
        expect(meta[ObjectMeta.sha256]).toBe(
          createHash("sha256")
            .update(await readFile(f.path))
            .digest("hex"),
        );
        expect(meta[ObjectMeta.devices]?.split(",").sort()).toEqual(info.devices.map((d) => d.id).sort());
        const starts = info.devices.map((d) => d.startTime!).sort((a, b) => (a < b ? -1 : 1));
        const ends = info.devices.map((d) => d.endTime!).sort((a, b) => (a < b ? -1 : 1));
        expect(meta[ObjectMeta.startTime]).toBe(String(starts[0]));
        expect(meta[ObjectMeta.endTime]).toBe(String(ends[ends.length - 1]));
      }
      const [gone] = pair.files;
      await deleteOnEdge(gone!);
      const second = await pair.round();
      expect(second.deleted).toHaveLength(1);
      expect((await os.info(objectName(gone!, "tsfile")))?.deleted ?? true).toBe(true);
    } finally {
      await pair.close();
    }
  });
});
