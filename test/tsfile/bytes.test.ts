import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import {
  ByteReader,
  ByteWriter,
  TsFileFormatError,
  compareDeviceSegments,
  deviceIdToString,
  splitDevicePath,
} from "../../src/tsfile/bytes.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const written = (f: (w: ByteWriter) => void): Uint8Array => {
  const w = new ByteWriter(16);
  f(w);
  return w.toBytes();
};

const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const segment = fc.option(fc.string({ unit: "grapheme", maxLength: 12 }), { nil: null });

describe("encodings from the format notes (§2)", () => {
  test("uvarint is LEB128, least significant group first", () => {
    expect(hex(written((w) => w.uvarint(0)))).toBe("00");
    expect(hex(written((w) => w.uvarint(127)))).toBe("7f");
    expect(hex(written((w) => w.uvarint(256)))).toBe("8002"); // bloom filter bit count in the fixtures
    expect(hex(written((w) => w.uvarint(0xffffffff)))).toBe("ffffffff0f");
  });

  test("varint is zigzag: -1 → 01, 3 → 06, 11 → 16", () => {
    expect(hex(written((w) => w.varint(-1)))).toBe("01");
    expect(hex(written((w) => w.varint(3)))).toBe("06");
    expect(hex(written((w) => w.varint(11)))).toBe("16");
  });

  test("var-strings carry a zigzag length; null is the single byte 01", () => {
    expect(hex(written((w) => w.varString("s1")))).toBe("047331");
    expect(hex(written((w) => w.varString("root.sg1.d1")))).toBe("16" + Buffer.from("root.sg1.d1").toString("hex"));
    expect(hex(written((w) => w.varString(null)))).toBe("01");
  });

  test("int-strings carry an int32 BE length; null is ffffffff", () => {
    expect(hex(written((w) => w.intString("d1")))).toBe("000000026431");
    expect(hex(written((w) => w.intString(null)))).toBe("ffffffff");
  });

  test("v4 device ids are a segment count and var-strings; count 0 reads as one empty segment", () => {
    expect(hex(written((w) => w.deviceIdV4(["root.sg1", "d1"])))).toBe("0210" + Buffer.from("root.sg1").toString("hex") + "046431");
    expect(new ByteReader(Uint8Array.of(0)).deviceIdV4()).toEqual([""]);
    expect(new ByteReader(Uint8Array.of(2, 1, 2, 0x61)).deviceIdV4()).toEqual([null, "a"]);
  });

  test("the Java tree-path split keeps 3 levels as the table name", () => {
    expect(splitDevicePath("root.sg1.d1")).toEqual(["root.sg1", "d1"]);
    expect(splitDevicePath("root.a.b.c.d")).toEqual(["root.a.b", "c", "d"]);
    expect(splitDevicePath("root.a")).toEqual(["root", "a"]);
    expect(splitDevicePath("root")).toEqual(["root"]);
  });

  test("device order: null segments first, a prefix before its extensions", () => {
    expect(compareDeviceSegments([null], ["a"])).toBeLessThan(0);
    expect(compareDeviceSegments(["a"], ["a", "b"])).toBeLessThan(0);
    expect(compareDeviceSegments(["a", "c"], ["a", "b"])).toBeGreaterThan(0);
    expect(compareDeviceSegments(["a", null], ["a", null])).toBe(0);
    expect(deviceIdToString(["t", null, "x"])).toBe("t.null.x");
  });
});

describe("round trips", () => {
  test.prop([fc.integer({ min: 0, max: 0xffffffff })])("every uint32 survives uvarint write/read in ≤5 bytes", (n) => {
    const bytes = written((w) => w.uvarint(n));
    expect(bytes.length).toBeLessThanOrEqual(5);
    const r = new ByteReader(bytes);
    expect(r.uvarint()).toBe(n);
    expect(r.remaining).toBe(0);
  });

  test.prop([fc.integer({ min: -0x80000000, max: 0x7fffffff })])("every int32 survives zigzag varint write/read", (n) => {
    expect(new ByteReader(written((w) => w.varint(n))).varint()).toBe(n);
  });

  test.prop([int64, fc.double(), fc.integer({ min: -0x80000000, max: 0x7fffffff })])(
    "int64 (as bigint), float64 and int32 read back exactly, big-endian",
    (a, d, i) => {
      const r = new ByteReader(written((w) => w.int64(a).float64(d).int32(i)));
      expect(r.int64()).toBe(a);
      expect(Object.is(r.float64(), d)).toBe(true);
      expect(r.int32()).toBe(i);
    },
  );

  test.prop([fc.option(fc.string({ unit: "grapheme" }), { nil: null }), fc.option(fc.string({ unit: "grapheme" }), { nil: null })])(
    "var-strings and int-strings (null included) read back exactly",
    (a, b) => {
      const r = new ByteReader(written((w) => w.varString(a).intString(b)));
      expect(r.varString()).toBe(a);
      expect(r.intString()).toBe(b);
    },
  );

  test.prop([fc.array(segment, { minLength: 1, maxLength: 6 })])("v4 device ids with null segments read back exactly", (segments) => {
    expect(new ByteReader(written((w) => w.deviceIdV4(segments))).deviceIdV4()).toEqual(segments);
  });

  test.prop([fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 })])(
    "the writer keeps every byte while it grows past its initial capacity",
    (parts) => {
      const w = new ByteWriter(16);
      for (const p of parts) w.int32(p.length).bytes(p);
      const r = new ByteReader(w.toBytes());
      for (const p of parts) expect(r.bytesOf(r.int32())).toEqual(p);
      expect(r.remaining).toBe(0);
    },
  );

  test("take() hands over the bytes and starts empty", () => {
    const w = new ByteWriter(16);
    const first = w.u8(1).u8(2).take();
    w.u8(3);
    expect([...first]).toEqual([1, 2]);
    expect([...w.toBytes()]).toEqual([3]);
  });
});

describe("the bounded reader", () => {
  test("a read past the end throws TsFileFormatError naming the value and the absolute offset", () => {
    const r = new ByteReader(Uint8Array.of(1, 2, 3), 100);
    r.u8();
    let error: unknown;
    try {
      r.int32("metadata size");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TsFileFormatError);
    expect((error as TsFileFormatError).reason).toBe("truncated metadata size at offset 101: needs 4 bytes, 2 left");
    expect((error as TsFileFormatError).offset).toBe(101);
  });

  test("truncated varints and strings are reported at their start", () => {
    expect(() => new ByteReader(Uint8Array.of(0x80, 0x80), 10).uvarint()).toThrow("truncated varint at offset 10");
    expect(() => new ByteReader(Uint8Array.of(0x16, 0x61), 20).varString()).toThrow(
      "truncated string at offset 20: length 11, 1 bytes left",
    );
    expect(() => new ByteReader(Uint8Array.of(0, 0, 0, 9, 1), 0).intString()).toThrow(
      "truncated string at offset 0: length 9, 1 bytes left",
    );
  });

  test("a varint longer than 5 bytes and a negative string length are format errors", () => {
    expect(() => new ByteReader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01)).uvarint()).toThrow(
      "varint at offset 0 is longer than 5 bytes",
    );
    expect(() => new ByteReader(Uint8Array.of(0x03)).varString()).toThrow("invalid string length -2 at offset 0");
    expect(() => new ByteReader(Uint8Array.of(0xff, 0xff, 0xff, 0xfe)).intBytes()).toThrow("invalid string length -2 at offset 0");
  });

  test("seek refuses positions outside the bytes read", () => {
    const r = new ByteReader(new Uint8Array(4), 50);
    r.seek(54);
    expect(r.remaining).toBe(0);
    expect(() => r.seek(49)).toThrow(TsFileFormatError);
    expect(() => r.seek(55)).toThrow("position 55 lies outside the bytes read [50, 54)");
  });

  test("garbage UTF-8 decodes leniently instead of throwing", () => {
    expect(new ByteReader(Uint8Array.of(0x06, 0x5f, 0xcd, 0x16)).varString()).toBe("_\uFFFD\u0016");
  });

  const ops = [
    "u8",
    "int32",
    "int64",
    "float32",
    "float64",
    "uvarint",
    "varint",
    "varString",
    "intString",
    "deviceIdV3",
    "deviceIdV4",
  ] as const;
  test.prop([fc.uint8Array({ maxLength: 64 }), fc.array(fc.constantFrom(...ops), { maxLength: 20 }), fc.nat(1 << 20)])(
    "any sequence of reads over any bytes either succeeds or throws TsFileFormatError, never another error",
    (bytes, sequence, base) => {
      const r = new ByteReader(bytes, base);
      try {
        for (const op of sequence) r[op]();
      } catch (e) {
        expect(e).toBeInstanceOf(TsFileFormatError);
        const offset = (e as TsFileFormatError).offset ?? -1;
        expect(offset).toBeGreaterThanOrEqual(base);
        expect(offset).toBeLessThanOrEqual(base + bytes.length);
      }
      expect(r.offset).toBeLessThanOrEqual(base + bytes.length);
    },
  );
});
