import { fc, test as prop } from "@fast-check/vitest";
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, test } from "vitest";
import { crc32, cutSchemaRecords, frameMlogRecord, schemaRecordTexts, splitSchemaRecords } from "../../src/iotdb/schemaRecords.js";

const enc = new TextEncoder();
const concat = (parts: ReadonlyArray<Uint8Array>) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

describe("mlog.bin records", () => {
  test("whole records are found with their plans; the text of each is its plans in base64", () => {
    const plans = [enc.encode("\x03root.sg1"), enc.encode("\x04root.sg1.d1.s1 INT64 RLE SNAPPY")];
    const log = concat(plans.map(frameMlogRecord));
    const cut = cutSchemaRecords("mlog.bin", log);
    expect(cut.stop).toBe("end");
    expect(cut.end).toBe(log.length);
    expect(schemaRecordTexts("mlog.bin", log, cut.records)).toEqual(plans.map((p) => Buffer.from(p).toString("base64")));
  });

  test("a record whose CRC32 does not match is damage, with its byte named; the records before it stand", () => {
    const a = frameMlogRecord(enc.encode("plan a"));
    const b = frameMlogRecord(enc.encode("plan b"));
    b[6] = b[6]! ^ 0xff;
    const cut = cutSchemaRecords("mlog.bin", concat([a, b]));
    expect(cut).toMatchObject({ stop: "damaged", end: a.length, damage: `record at byte ${a.length} (6 bytes) fails its CRC32` });
    expect(cut.records).toHaveLength(1);
  });

  test("a length that no record can have is damage, not a wait for more bytes", () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setInt32(0, -5);
    expect(cutSchemaRecords("mlog.bin", bytes)).toMatchObject({ stop: "damaged", end: 0 });
  });

  prop.prop([fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 8 }), fc.nat()])(
    "a log cut at any byte keeps exactly the whole records before the cut and asks for the rest",
    (plans, at) => {
      const frames = plans.map(frameMlogRecord);
      const log = concat(frames);
      const cutAt = at % (log.length + 1);
      const cut = cutSchemaRecords("mlog.bin", log.subarray(0, cutAt));
      let whole = 0;
      let count = 0;
      for (const f of frames) {
        if (whole + f.length > cutAt) break;
        whole += f.length;
        count++;
      }
      expect(cut.end).toBe(whole);
      expect(cut.records).toHaveLength(count);
      expect(cut.stop).toBe(whole === cutAt ? "end" : "incomplete");
      if (cut.stop === "incomplete" && cutAt - whole >= 4) expect(cut.nextRecordBytes).toBe(frames[count]!.length);
    },
  );
});

describe("mlog.txt records", () => {
  test("records are lines; a line without its end is still being written", () => {
    const bytes = enc.encode("SET_STORAGE_LEVEL_TO_MTREE,root.sg1\r\nADD_PATH_TO_MTREE,root.sg1.d1.s1,2,2\nADD_PATH");
    const cut = cutSchemaRecords("mlog.txt", bytes);
    expect(cut.stop).toBe("incomplete");
    expect(schemaRecordTexts("mlog.txt", bytes, cut.records)).toEqual([
      "SET_STORAGE_LEVEL_TO_MTREE,root.sg1",
      "ADD_PATH_TO_MTREE,root.sg1.d1.s1,2,2",
    ]);
  });

  test("splitSchemaRecords refuses bytes that are not whole records, saying where", () => {
    expect(() => splitSchemaRecords("mlog.txt", enc.encode("a\nb"))).toThrow("a record starting at byte 2 is cut off");
    expect(splitSchemaRecords("mlog.txt", enc.encode("a\nb\n"))).toEqual(["a", "b"]);
  });
});

// src/iotdb imports no node:*, so it carries its own CRC-32: it must be zlib's (and java.util.zip.CRC32's).
prop.prop([fc.uint8Array({ maxLength: 4096 })], { numRuns: 200 })("crc32 is zlib's CRC-32", (bytes) => {
  expect(crc32(bytes)).toBe(zlibCrc32(bytes));
});
