import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { partFileName } from "../../src/protocol/parts.js";
import { openStorage } from "../../src/plugins/loadStorage.js";
import { splitSchemaRecords } from "../../src/iotdb/schemaRecords.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { deleteOnEdge, openPair } from "./e2e.js";
import { storageContract } from "./storageContract.js";

const orUndefined = (p: string) =>
  readFile(p).then(
    (b) => new Uint8Array(b),
    () => undefined,
  );

storageContract("fs", async (dataDir) => {
  const storage = await Effect.runPromise(openStorage("fs", { dataDir, options: {}, natsServers: "", natsOptions: {} }));
  return {
    storage,
    read: (_sender, ref, kind) => orUndefined(join(dataDir, "sequence", ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind))),
    schemaKept: async (sender) => splitSchemaRecords("mlog.bin", await readFile(join(dataDir, "schema", sender, "mlog.bin"))),
    close: () => Effect.runPromise(storage.close),
  };
});

describe("fs storage end to end", () => {
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

  test("files arrive in IoTDB's layout under receiver_data_directory; a file deleted on the edge is removed there", async () => {
    const pair = await openPair(server, root, { storage_plugin: "fs" });
    try {
      const first = await pair.round();
      expect(roundSucceeded(first), JSON.stringify(first)).toBe(true);
      expect(first.sent).toHaveLength(pair.files.length);
      for (const f of pair.files) {
        const at = join(pair.centre, "sequence", f.sg, f.vg, f.tp, f.name);
        expect(await readFile(at)).toEqual(await readFile(f.path));
        expect(await readFile(`${at}.resource`)).toEqual(await readFile(`${f.path}.resource`));
      }
      const [gone] = pair.files;
      await deleteOnEdge(gone!);
      const second = await pair.round();
      expect(second.deleted).toEqual([`${gone!.sg}/${gone!.vg}/${gone!.tp}/${gone!.name}`]);
      expect(await orUndefined(join(pair.centre, "sequence", gone!.sg, gone!.vg, gone!.tp, gone!.name))).toBeUndefined();
    } finally {
      await pair.close();
    }
  });
});
