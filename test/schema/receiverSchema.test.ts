import { createHash } from "node:crypto";
import { join } from "node:path";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { applySchemaPiece } from "../../src/actors/receiver/schemaSync.js";
import { Code } from "../../src/protocol/status.js";
import { frameMlogRecord } from "../../src/iotdb/schemaRecords.js";
import { StorageError, type SchemaBatch, type Storage } from "../../src/plugins/storage.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

let root: string;
let n = 0;
beforeAll(async () => {
  root = await tempRoot("tsync-schema-");
});
afterAll(async () => {
  await removeAll(root);
});

/** Our own seam: a storage that records what it was asked to apply, and can be told to fail. */
const recordingStorage = () => {
  const applied: Array<{ records: ReadonlyArray<string>; batch: SchemaBatch | undefined }> = [];
  let failNext = false;
  const storage: Storage = {
    name: "recording",
    load: () => Effect.void,
    remove: () => Effect.succeed(false),
    has: () => Effect.succeed(false),
    applySchema: (_s, records, batch) =>
      Effect.suspend(() => {
        if (failNext) {
          failNext = false;
          return Effect.fail(new StorageError({ op: "applySchema", message: "schema store is read-only" }));
        }
        applied.push({ records, batch });
        return Effect.void;
      }),
    close: Effect.void,
  };
  return { storage, applied, failOnce: () => (failNext = true) };
};

const enc = new TextEncoder();
const frames = ["a", "bb", "ccc", "dddd"].map((t) => frameMlogRecord(enc.encode(`plan ${t}`)));
const log = Buffer.concat(frames);
const at = (i: number) => frames.slice(0, i).reduce((s, f) => s + f.length, 0);
const piece = (epoch: number, from: number, to: number) => {
  const bytes = log.subarray(from, to);
  return { piece: { file: "mlog.bin" as const, epoch, offset: from, sha256: createHash("sha256").update(bytes).digest("hex") }, bytes };
};

describe("receiver side of schema sync", () => {
  const fresh = () => ({ dir: join(root, String(n++)), ...recordingStorage() });

  test("pieces in order are applied once each and the position moves with them", async () => {
    const r = fresh();
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, 0))).toMatchObject({ code: Code.ok, epoch: 0, offset: 0 });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(2)))).toMatchObject({ code: Code.ok, offset: at(2) });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, at(2), at(4)))).toMatchObject({ code: Code.ok, offset: at(4) });
    expect(r.applied.map((a) => a.batch?.offset)).toEqual([0, at(2)]);
    expect(r.applied.flatMap((a) => a.records)).toEqual(["a", "bb", "ccc", "dddd"].map((t) => Buffer.from(`plan ${t}`).toString("base64")));
  });

  test("a piece seen before is not applied again; one that overlaps applies only its new records", async () => {
    const r = fresh();
    await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(2)));
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(2)))).toMatchObject({
      code: Code.ok,
      message: "already applied",
      offset: at(2),
    });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, at(1), at(3)))).toMatchObject({ code: Code.ok, offset: at(3) });
    expect(r.applied.map((a) => [a.batch?.offset, a.records.length])).toEqual([
      [0, 2],
      [at(2), 1],
    ]);
    expect(Buffer.from(r.applied[1]!.batch!.bytes)).toEqual(log.subarray(at(2), at(3)));
  });

  test("a piece past the position is answered outOfOrder with the byte wanted: a receiver that lost its state gets the log again", async () => {
    const r = fresh();
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, at(2), at(3)))).toMatchObject({
      code: Code.outOfOrder,
      epoch: 0,
      offset: 0,
    });
    expect(r.applied).toEqual([]);
  });

  test("a new generation starts from its byte 0; an older one is refused with the current generation", async () => {
    const r = fresh();
    await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(3)));
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(1, at(1), at(2)))).toMatchObject({
      code: Code.outOfOrder,
      epoch: 1,
      offset: 0,
    });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(1, 0, at(1)))).toMatchObject({ code: Code.ok, epoch: 1, offset: at(1) });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, at(3), at(4)))).toMatchObject({
      code: Code.outOfOrder,
      epoch: 1,
      offset: at(1),
    });
    expect(r.applied.map((a) => [a.batch?.epoch, a.batch?.offset])).toEqual([
      [0, 0],
      [1, 0],
    ]);
  });

  test("a digest that does not match, or bytes that are not whole records, apply nothing", async () => {
    const r = fresh();
    const p = piece(0, 0, at(1));
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", { ...p, piece: { ...p.piece, sha256: "0".repeat(64) } })).toMatchObject({
      code: Code.digestMismatch,
    });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(1) + 3))).toMatchObject({ code: Code.badMessage });
    expect(r.applied).toEqual([]);
  });

  test("when the storage fails the position stays, so the same piece is applied on the next attempt", async () => {
    const r = fresh();
    r.failOnce();
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(2)))).toMatchObject({
      code: Code.storageFailed,
      message: "mlog.bin: schema store is read-only",
      offset: 0,
    });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(2)))).toMatchObject({ code: Code.ok, offset: at(2) });
    expect(r.applied).toHaveLength(1);
  });

  test("positions are per sender and per log", async () => {
    const r = fresh();
    await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, at(2)));
    expect(await applySchemaPiece(r.storage, r.dir, "edge2", piece(0, 0, 0))).toMatchObject({ offset: 0 });
    const txt = enc.encode("line\n");
    const p = {
      piece: { file: "mlog.txt" as const, epoch: 0, offset: 0, sha256: createHash("sha256").update(txt).digest("hex") },
      bytes: txt,
    };
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", p)).toMatchObject({ code: Code.ok, offset: txt.length });
    expect(await applySchemaPiece(r.storage, r.dir, "edge1", piece(0, 0, 0))).toMatchObject({ offset: at(2) });
  });
});
