import { appendFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { senderWorkDirectory } from "../../src/config/sender.js";
import { positionFile } from "../../src/actors/sender/schemaLog.js";
import { frameMlogRecord } from "../../src/iotdb/schemaRecords.js";
import type { RoundSummary } from "../../src/machines/senderTypes.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { openPair, type Pair } from "../plugins/e2e.js";

let server: TestNatsServer;
let root: string;
beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-schema-e2e-");
});
afterAll(async () => {
  await server.cleanup();
  await removeAll(root);
});

const record = (plan: string) => Buffer.from(frameMlogRecord(new TextEncoder().encode(plan)));
const schemaSent = (s: RoundSummary) => s.sent.find((x) => x.file.startsWith("schema "));
const fileNames = (pair: Pair) => pair.files.map((f) => `${f.sg}/${f.vg}/${f.tp}/${f.name}`).sort();
const copyOf = (pair: Pair, file: string) => readFile(join(pair.centre, "schema", pair.sender.senderId, file));

describe("schema sync over a real nats-server", () => {
  test("mlog.bin goes before the data, then only what was appended, never a record IoTDB is still writing", async () => {
    const schemaDir = join(root, "a-system-schema");
    await mkdir(schemaDir, { recursive: true });
    const mlog = join(schemaDir, "mlog.bin");
    const v1 = Buffer.concat([
      record("\x03root.plant"),
      record("\x04root.plant.line1.press.temperature DOUBLE"),
      record("\x04root.plant.line1.oven.count INT64"),
    ]);
    await writeFile(mlog, v1);
    const pair = await openPair(server, root, {}, { iotdb_schema_directory: schemaDir });
    try {
      const first = await pair.round();
      expect(first.failed).toEqual([]);
      expect(first.sent[0]).toEqual({ file: "schema mlog.bin", bytes: v1.length, resumedFrom: 0 });
      expect(
        first.sent
          .slice(1)
          .map((s) => s.file)
          .sort(),
      ).toEqual(fileNames(pair));
      expect(await copyOf(pair, "mlog.bin")).toEqual(v1);

      // IoTDB appends one record and is halfway through the next.
      const d = record("\x04root.plant.line2.press.temperature DOUBLE");
      const e = record("\x1cset ttl root.plant 604800000");
      await appendFile(mlog, Buffer.concat([d, e.subarray(0, 7)]));
      const second = await pair.round();
      expect(schemaSent(second)).toEqual({ file: "schema mlog.bin", bytes: d.length, resumedFrom: v1.length });
      expect(await copyOf(pair, "mlog.bin")).toEqual(Buffer.concat([v1, d]));

      await appendFile(mlog, e.subarray(7));
      const third = await pair.round();
      expect(schemaSent(third)).toEqual({ file: "schema mlog.bin", bytes: e.length, resumedFrom: v1.length + d.length });
      expect(await copyOf(pair, "mlog.bin")).toEqual(await readFile(mlog));

      // Nothing new: no schema bytes, and no files either.
      const idle = await pair.round();
      expect(idle.sent).toEqual([]);
      expect(idle.failed).toEqual([]);
    } finally {
      await pair.close();
    }
  });

  test("a receiver that lost its position gets the log again (its copy stays exact); a sender that lost its own asks instead of resending", async () => {
    const schemaDir = join(root, "b-system-schema");
    await mkdir(schemaDir, { recursive: true });
    const log = Buffer.concat([record("\x03root.plant"), record("\x04root.plant.line1.press.temperature DOUBLE")]);
    await writeFile(join(schemaDir, "mlog.bin"), log);
    const pair = await openPair(server, root, {}, { iotdb_schema_directory: schemaDir });
    try {
      await pair.round();
      await rm(join(pair.centre, ".tsync", "schema-sync"), { recursive: true, force: true });
      const again = await pair.round();
      expect(schemaSent(again)).toEqual({ file: "schema mlog.bin", bytes: log.length, resumedFrom: 0 });
      expect(await copyOf(pair, "mlog.bin")).toEqual(log);

      await rm(positionFile(senderWorkDirectory(pair.sender.options.config)), { force: true });
      const asked = await pair.round();
      expect(schemaSent(asked)).toBeUndefined();
      expect(asked.failed).toEqual([]);
    } finally {
      await pair.close();
    }
  });

  test("when IoTDB rewrites mlog.bin (a schema snapshot) the new log is sent from its start as a new generation", async () => {
    const schemaDir = join(root, "c-system-schema");
    await mkdir(schemaDir, { recursive: true });
    const mlog = join(schemaDir, "mlog.bin");
    const old = Buffer.concat([record("\x03root.plant"), record("\x04root.plant.a DOUBLE"), record("\x04root.plant.b DOUBLE")]);
    await writeFile(mlog, old);
    const pair = await openPair(server, root, {}, { iotdb_schema_directory: schemaDir });
    try {
      await pair.round();
      await rm(mlog);
      const fresh = record("\x04root.plant.c INT64");
      await writeFile(mlog, fresh);
      const after = await pair.round();
      expect(schemaSent(after)).toEqual({ file: "schema mlog.bin", bytes: fresh.length, resumedFrom: 0 });
      expect(await copyOf(pair, "mlog.bin")).toEqual(Buffer.concat([old, fresh]));
    } finally {
      await pair.close();
    }
  });

  test("0.10/0.11: mlog.txt goes line by line, a line without its end waits", async () => {
    const schemaDir = join(root, "d-system-schema");
    await mkdir(schemaDir, { recursive: true });
    const mlog = join(schemaDir, "mlog.txt");
    await writeFile(mlog, "SET_STORAGE_LEVEL_TO_MTREE,root.plant\nADD_PATH_TO_MTREE,root.plant.line1.press.temperature,4,0\nADD_PATH_TO");
    const pair = await openPair(server, root, {}, { iotdb_schema_directory: mlog });
    try {
      const first = await pair.round();
      expect(schemaSent(first)?.file).toBe("schema mlog.txt");
      expect((await copyOf(pair, "mlog.txt")).toString()).toBe(
        "SET_STORAGE_LEVEL_TO_MTREE,root.plant\nADD_PATH_TO_MTREE,root.plant.line1.press.temperature,4,0\n",
      );
      await appendFile(mlog, "_MTREE,root.plant.line1.oven.count,2,0\n");
      await pair.round();
      expect((await copyOf(pair, "mlog.txt")).toString()).toBe(await readFile(mlog, "utf8"));
    } finally {
      await pair.close();
    }
  });

  test("a storage that cannot apply the schema fails the schema step with its reason; the data files still arrive", async () => {
    const schemaDir = join(root, "e-system-schema");
    await mkdir(schemaDir, { recursive: true });
    await writeFile(join(schemaDir, "mlog.bin"), record("\x03root.plant"));
    const dest = join(root, "e-dest");
    const pair = await openPair(
      server,
      root,
      {
        storage_plugin: "exec",
        "plugin.load_command": `mkdir -p '${dest}' && cp "$TSYNC_TSFILE" '${dest}/'`,
        "plugin.schema_command": "echo 'schema registry unreachable' >&2; exit 4",
      },
      { iotdb_schema_directory: schemaDir },
    );
    try {
      const summary = await pair.round();
      expect(summary.failed).toHaveLength(1);
      expect(summary.failed[0]!.file).toBe("schema log");
      expect(summary.failed[0]!.reason).toContain("schema command exited with 4: schema registry unreachable");
      expect(summary.sent.map((s) => s.file).sort()).toEqual(fileNames(pair));
    } finally {
      await pair.close();
    }
  });

  test("a schema directory with no log yet is noted, not a failure", async () => {
    const schemaDir = join(root, "f-empty");
    await mkdir(schemaDir, { recursive: true });
    const pair = await openPair(server, root, {}, { iotdb_schema_directory: schemaDir });
    try {
      const summary = await pair.round();
      expect(summary.failed).toEqual([]);
      expect(summary.skipped).toEqual([{ file: "schema log", reason: `no mlog.bin or mlog.txt at ${schemaDir} yet` }]);
    } finally {
      await pair.close();
    }
  });
});
