import { createHash } from "node:crypto";
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { ByteReader, NodeType, compareDeviceSegments, splitDevicePath } from "../../src/tsfile/bytes.js";
import { parseTsFileMetadata, readTsFile, readTsFileTail, type TsFileMetadataBlock } from "../../src/tsfile/reader.js";
import {
  TsFileStreamWriter,
  encodeRegularTimestamps,
  encodeTimestampNumbers,
  encodeTimestamps,
  encodeValues,
  generateTsFile,
  writeTsFileBytes,
  type DeviceSpec,
  type MeasurementSpec,
  type TsFileSpec,
  type ValueColumn,
  type TsFileWriteSummary,
} from "../../src/tsfile/writer.js";
import { failWithoutFixturesUnderCi, fixturesFound, memorySource, readFixture } from "./fixtures.js";

failWithoutFixturesUnderCi();

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** The content of gen_v3_min.tsfile and gen_v4_min.tsfile (PROVENANCE.md). */
const minSpec: TsFileSpec = {
  devices: [
    {
      path: "root.sg1.d1",
      measurements: [
        { name: "s1", dataType: "INT64", timestamps: [1n, 2n, 3n], values: [10n, 20n, 30n] },
        { name: "s2", dataType: "DOUBLE", timestamps: [1n, 2n, 3n], values: [0.5, 1.0, 1.5] },
      ],
    },
  ],
};

async function metadataOf(bytes: Uint8Array): Promise<TsFileMetadataBlock> {
  const tail = await readTsFileTail(memorySource(bytes));
  return parseTsFileMetadata(new ByteReader(bytes.subarray(tail.metaPos, tail.size - 10), tail.metaPos), tail.version);
}

async function collect(run: (sink: (piece: Uint8Array) => Promise<void>) => Promise<TsFileWriteSummary>) {
  const pieces: Uint8Array[] = [];
  const summary = await run(async (piece) => {
    pieces.push(piece);
  });
  return { pieces, summary, bytes: new Uint8Array(Buffer.concat(pieces)) };
}

describe.skipIf(!fixturesFound)("byte equality with the Java writer's *_min fixtures", () => {
  for (const version of [3, 4] as const) {
    test(`v${version}: with the fixture's bloom filter bytes the whole file is identical to gen_v${version}_min.tsfile`, async () => {
      const fixture = await readFixture(`generated/gen_v${version}_min.tsfile`);
      const bloom = (await metadataOf(fixture)).bloom;
      expect(bloom).not.toBeNull();
      const ours = writeTsFileBytes(minSpec, { version, ...(bloom ? { bloom } : {}) });
      expect(hex(ours)).toBe(hex(fixture));
    });

    test(`v${version}: with the default all-ones bloom filter only the bloom bytes differ from gen_v${version}_min.tsfile`, async () => {
      const fixture = await readFixture(`generated/gen_v${version}_min.tsfile`);
      const fixtureBloom = (await metadataOf(fixture)).bloom;
      const ours = writeTsFileBytes(minSpec, { version });
      const bloomStart = hex(fixture).indexOf(hex(fixtureBloom?.bytes ?? new Uint8Array())) / 2;
      expect(bloomStart).toBeGreaterThan(0);
      expect(hex(ours.subarray(0, bloomStart - 1))).toBe(hex(fixture.subarray(0, bloomStart - 1)));
      expect((await metadataOf(ours)).bloom).toEqual({ bytes: new Uint8Array(32).fill(0xff), bitCount: 256, hashCount: 5 });
    });
  }
});

describe("TS_2DIFF time encoding", () => {
  test("[1,2,3] is the 24-byte block of the format notes (§9)", () => {
    expect(hex(encodeTimestamps([1n, 2n, 3n]).bytes)).toBe("00000002" + "00000000" + "0000000000000001" + "0000000000000001");
  });

  test("a single value gets minDelta Long.MAX_VALUE", () => {
    expect(hex(encodeTimestamps([5n]).bytes)).toBe("00000000" + "00000000" + "7fffffffffffffff" + "0000000000000005");
  });

  test("[1000,1003,1010,1011,1100] packs (delta − minDelta) = 2,6,0,88 in 7 bits each, MSB first", () => {
    expect(hex(encodeTimestamps([1000n, 1003n, 1010n, 1011n, 1100n]).bytes)).toBe(
      "00000004" + "00000007" + "0000000000000001" + "00000000000003e8" + "04180580",
    );
  });

  test("blocks hold the first value and 128 deltas", () => {
    const times = Array.from({ length: 130 }, (_, i) => BigInt(i * 10));
    const bytes = encodeTimestamps(times).bytes;
    expect(bytes.length).toBe(24 + 24);
    expect(hex(bytes.subarray(24))).toBe("00000000" + "00000000" + "7fffffffffffffff" + "000000000000050a");
  });

  const sortedTimes = (min: bigint, max: bigint) =>
    fc.uniqueArray(fc.bigInt({ min, max }), { minLength: 1, maxLength: 400 }).map((a) => a.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));

  test.prop([sortedTimes(-(2n ** 63n), 2n ** 63n - 1n)])(
    "the safe-number fast path and the BigInt path agree with the Java long semantics over the whole int64 range",
    (times) => {
      const encoded = encodeTimestamps(times);
      expect(encoded.start).toBe(times[0]);
      expect(encoded.end).toBe(times[times.length - 1]);
      expect(encoded.count).toBe(times.length);
      const safe = times.every((t) => Number.isSafeInteger(Number(t)) && BigInt(Number(t)) === t);
      if (safe && Number.isSafeInteger(Number(encoded.end - encoded.start))) {
        expect(hex(encodeTimestampNumbers(times.map(Number)).bytes)).toBe(hex(encoded.bytes));
      }
    },
  );

  test.prop([sortedTimes(0n, 2n ** 52n)])("numbers and bigints of the same millisecond times encode to the same bytes", (times) => {
    expect(hex(encodeTimestampNumbers(times.map(Number)).bytes)).toBe(hex(encodeTimestamps(times).bytes));
  });

  test.prop([fc.bigInt({ min: -(2n ** 40n), max: 2n ** 40n }), fc.bigInt({ min: 1n, max: 100_000n }), fc.integer({ min: 1, max: 1000 })])(
    "the O(blocks) regular encoding equals the general encoding of start + i·step",
    (start, step, count) => {
      const times = Array.from({ length: count }, (_, i) => start + step * BigInt(i));
      expect(hex(encodeRegularTimestamps(start, step, count).bytes)).toBe(hex(encodeTimestamps(times).bytes));
    },
  );
});

describe("PLAIN values", () => {
  test("INT32 values are zigzag varints, TEXT values zigzag-length strings, FLOAT 4 bytes, BOOLEAN 1 byte", () => {
    expect(hex(encodeValues({ dataType: "INT32", values: [-1, 3, 64] }).bytes)).toBe("01068001");
    expect(hex(encodeValues({ dataType: "TEXT", values: ["ab", ""] }).bytes)).toBe("04616200");
    expect(hex(encodeValues({ dataType: "FLOAT", values: [1.5] }).bytes)).toBe("3fc00000");
    expect(hex(encodeValues({ dataType: "BOOLEAN", values: [true, false] }).bytes)).toBe("0100");
  });

  test("statistics follow the Java rules: INT64 sum is a double, BOOLEAN sum counts true values", () => {
    expect(encodeValues({ dataType: "INT64", values: [10n, 30n, 20n] }).statistics).toEqual({
      dataType: "INT64",
      min: 10n,
      max: 30n,
      first: 10n,
      last: 20n,
      sum: 60,
    });
    expect(encodeValues({ dataType: "BOOLEAN", values: [true, false, true] }).statistics).toEqual({
      dataType: "BOOLEAN",
      first: true,
      last: true,
      sum: 2n,
    });
  });
});

// ── random specs read back through the reader ───────────────────────────────────────────────────────

const columnOf = (n: number): fc.Arbitrary<ValueColumn> => {
  const arr = <T>(a: fc.Arbitrary<T>) => fc.array(a, { minLength: n, maxLength: n });
  return fc.oneof(
    arr(fc.boolean()).map((values): ValueColumn => ({ dataType: "BOOLEAN", values })),
    arr(fc.integer({ min: -0x80000000, max: 0x7fffffff })).map((values): ValueColumn => ({ dataType: "INT32", values })),
    arr(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })).map((values): ValueColumn => ({ dataType: "INT64", values })),
    arr(fc.float({ noNaN: true })).map((values): ValueColumn => ({ dataType: "FLOAT", values })),
    arr(fc.double({ noNaN: true })).map((values): ValueColumn => ({ dataType: "DOUBLE", values })),
    arr(fc.string({ unit: "grapheme", maxLength: 16 })).map((values): ValueColumn => ({ dataType: "TEXT", values })),
  );
};

const measurementArb: fc.Arbitrary<MeasurementSpec> = fc
  .tuple(
    fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,7}$/),
    fc.uniqueArray(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { minLength: 1, maxLength: 200 }),
  )
  .chain(([name, times]) => {
    const timestamps = times.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    return columnOf(timestamps.length).map((column): MeasurementSpec => ({ ...column, name, timestamps }));
  });

const deviceArb: fc.Arbitrary<DeviceSpec> = fc.record({
  path: fc.array(fc.stringMatching(/^[a-z0-9]{1,5}$/), { minLength: 1, maxLength: 4 }).map((levels) => ["root", ...levels].join(".")),
  measurements: fc.uniqueArray(measurementArb, { selector: (m) => m.name, minLength: 1, maxLength: 6 }),
});

const specArb: fc.Arbitrary<TsFileSpec> = fc.record({
  devices: fc.uniqueArray(deviceArb, { selector: (d) => d.path, minLength: 1, maxLength: 6 }),
});

function expectedDevices(spec: TsFileSpec, version: 3 | 4) {
  const devices = spec.devices.map((d) => {
    const segments = version === 3 ? [d.path] : splitDevicePath(d.path);
    return {
      id: d.path,
      segments,
      ...(version === 4 ? { table: segments[0] } : {}),
      aligned: false,
      startTime: d.measurements.map((m) => m.timestamps[0] ?? 0n).reduce((a, b) => (b < a ? b : a)),
      endTime: d.measurements.map((m) => m.timestamps[m.timestamps.length - 1] ?? 0n).reduce((a, b) => (b > a ? b : a)),
      measurements: d.measurements
        .map((m) => ({ name: m.name, dataType: m.dataType }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    };
  });
  return devices.sort((a, b) => (version === 3 ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : compareDeviceSegments(a.segments, b.segments)));
}

describe("writer output read back by the reader", () => {
  test.prop([specArb, fc.constantFrom(3 as const, 4 as const)])(
    "for any spec, the reader returns exactly its devices (in index order), sorted measurements with types, and time ranges",
    async (spec, version) => {
      const bytes = writeTsFileBytes(spec, { version });
      const info = await readTsFile(memorySource(bytes));
      expect(info.version).toBe(version);
      expect(info.size).toBe(bytes.length);
      expect(info.devices).toEqual(expectedDevices(spec, version));
      if (version === 4) expect(info.tables).toEqual([]);
    },
  );

  test("a file without devices (the Java writer can seal one) is valid and lists nothing", async () => {
    for (const version of [3, 4] as const) {
      const info = await readTsFile(memorySource(writeTsFileBytes({ devices: [] }, { version })));
      expect(info).toMatchObject({ version, metaOffset: 7, devices: [] });
    }
  });

  test("a device with 600 series gets a sparse LEAF_MEASUREMENT node, and every series is still listed", async () => {
    const names = Array.from({ length: 600 }, (_, i) => `s${String(i).padStart(4, "0")}`);
    const measurements = names.map((name): MeasurementSpec => ({ name, dataType: "INT32", timestamps: [1n], values: [1] }));
    const info = await readTsFile(memorySource(writeTsFileBytes({ devices: [{ path: "root.sg.d", measurements }] })));
    expect(info.devices[0]?.measurements.map((m) => m.name)).toEqual(names);
  });
});

describe("writer input checks", () => {
  const one = (m: Partial<MeasurementSpec>): TsFileSpec => ({
    devices: [
      {
        path: "root.sg.d",
        measurements: [{ name: "s", dataType: "INT64", timestamps: [1n, 2n], values: [1n, 2n], ...m } as MeasurementSpec],
      },
    ],
  });

  test("timestamps must be strictly increasing", () => {
    expect(() => writeTsFileBytes(one({ timestamps: [2n, 2n] }))).toThrow(/strictly increasing/);
  });

  test("each timestamp needs a value", () => {
    expect(() => writeTsFileBytes(one({ timestamps: [1n] }))).toThrow("series s: 1 timestamps but 2 values");
  });

  test("INT32 values must fit in 32 bits", () => {
    expect(() => writeTsFileBytes(one({ dataType: "INT32", values: [1, 2 ** 31] } as Partial<MeasurementSpec>))).toThrow(
      "INT32 value out of range",
    );
  });

  test("the empty measurement name is reserved for aligned time columns", () => {
    expect(() => writeTsFileBytes(one({ name: "" }))).toThrow(/reserved/);
  });

  test("a device needs at least one measurement", () => {
    expect(() => writeTsFileBytes({ devices: [{ path: "root.sg.d", measurements: [] }] })).toThrow(/at least one chunk/);
  });
});

describe("streaming writer", () => {
  test("chunk groups of one device accumulate into multi-chunk series whose range is the union", async () => {
    const { bytes, summary, pieces } = await collect(async (sink) => {
      const w = new TsFileStreamWriter(sink, { bufferBytes: 64 });
      for (const start of [100n, 200n, 300n]) {
        await w.writeChunkGroup("root.sg.d1", [{ name: "s", dataType: "DOUBLE", timestamps: [start, start + 5n], values: [1, 2] }]);
      }
      await w.writeChunkGroup("root.sg.d2", [{ name: "t", dataType: "TEXT", timestamps: [7n], values: ["x"] }]);
      return w.close();
    });
    expect(pieces.length).toBeGreaterThan(1);
    expect(summary).toMatchObject({ size: bytes.length, devices: 2, series: 2, chunks: 4 });
    const info = await readTsFile(memorySource(bytes));
    expect(info.devices.map((d) => [d.id, d.startTime, d.endTime])).toEqual([
      ["root.sg.d1", 100n, 305n],
      ["root.sg.d2", 7n, 7n],
    ]);
  });

  test("a chunk that does not start after the series' previous chunk is refused", async () => {
    const w = new TsFileStreamWriter(async () => {});
    await w.writeChunkGroup("root.sg.d1", [{ name: "s", dataType: "INT64", timestamps: [10n, 20n], values: [1n, 2n] }]);
    await expect(w.writeChunkGroup("root.sg.d1", [{ name: "s", dataType: "INT64", timestamps: [20n], values: [3n] }])).rejects.toThrow(
      "root.sg.d1.s: chunk starts at 20, not after the previous chunk's end 20",
    );
    await expect(w.writeChunkGroup("root.sg.d1", [{ name: "s", dataType: "DOUBLE", timestamps: [30n], values: [3] }])).rejects.toThrow(
      "root.sg.d1.s: data type DOUBLE after INT64",
    );
  });

  test("overlapping calls are refused instead of interleaving bytes", async () => {
    let release: () => void = () => {};
    const w = new TsFileStreamWriter(() => new Promise<void>((resolve) => (release = resolve)), { bufferBytes: 1 });
    const first = w.writeChunkGroup("root.sg.d", [{ name: "s", dataType: "BOOLEAN", timestamps: [1n], values: [true] }]);
    await expect(w.close()).rejects.toThrow(/previous call has not finished/);
    release();
    await first;
  });

  test("a 4 MiB v3 file with 300 devices: 1 MiB pieces, INTERNAL_DEVICE root, several chunks per series, valid", async () => {
    const target = 4 << 20;
    const { bytes, summary, pieces } = await collect((sink) =>
      generateTsFile(sink, { targetBytes: target, devices: 300, seed: 7, bufferBytes: 1 << 20 }),
    );
    expect(pieces.slice(0, -1).every((p) => p.length >= 1 << 20)).toBe(true);
    expect(bytes.length).toBe(summary.size);
    expect(Math.abs(bytes.length - target) / target).toBeLessThan(0.05);
    expect(summary.chunks).toBeGreaterThanOrEqual(2 * summary.series);
    expect((await metadataOf(bytes)).roots.map((r) => r.node.type)).toEqual([NodeType.internalDevice]);
    const info = await readTsFile(memorySource(bytes));
    expect(info.devices).toHaveLength(300);
    expect(new Set(info.devices.map((d) => d.measurements.map((m) => `${m.name}:${m.dataType}`).join()))).toEqual(
      new Set(["s_bool:BOOLEAN,s_double:DOUBLE,s_float:FLOAT,s_int:INT32,s_long:INT64,s_text:TEXT"]),
    );
    expect(info.devices.every((d) => d.startTime !== null && d.endTime !== null && d.startTime < d.endTime)).toBe(true);
  });

  test("a 3 MiB v4 file with 600 devices has two tables of 300 devices, each under an INTERNAL_DEVICE root", async () => {
    const { bytes } = await collect((sink) => generateTsFile(sink, { targetBytes: 3 << 20, devices: 600, version: 4 }));
    const meta = await metadataOf(bytes);
    expect(meta.roots.map((r) => [r.table, r.node.type])).toEqual([
      ["root.sg0", NodeType.internalDevice],
      ["root.sg1", NodeType.internalDevice],
    ]);
    const info = await readTsFile(memorySource(bytes));
    expect(info.devices).toHaveLength(600);
    expect(info.devices.filter((d) => d.table === "root.sg1")).toHaveLength(300);
  });

  test("a device with 65 537 series gets an INTERNAL_MEASUREMENT level and reads back completely", async () => {
    const times = encodeRegularTimestamps(1n, 1n, 2);
    const values = encodeValues({ dataType: "INT64", values: [1n, 2n] });
    const names = Array.from({ length: 65_537 }, (_, i) => `m${String(i).padStart(5, "0")}`);
    const { bytes } = await collect(async (sink) => {
      const w = new TsFileStreamWriter(sink);
      await w.writePreparedChunkGroup(
        "root.sg.wide",
        names.map((name) => ({ name, times, values })),
      );
      return w.close();
    });
    const info = await readTsFile(memorySource(bytes));
    expect(info.devices[0]?.measurements.map((m) => m.name)).toEqual(names);
    const meta = await metadataOf(bytes);
    const measurementRoot = meta.roots[0]?.node.entries[0]?.offset ?? 0;
    // The node type byte comes last: walk over the entries to reach it.
    const node = new ByteReader(bytes.subarray(measurementRoot), measurementRoot);
    const count = node.uvarint();
    for (let i = 0; i < count; i++) {
      node.varString();
      node.int64();
    }
    node.int64();
    expect(node.u8()).toBe(NodeType.internalMeasurement);
  });

  test("the same seed gives the same bytes, another seed other bytes", async () => {
    const digest = async (seed: number) => {
      const { bytes } = await collect((sink) => generateTsFile(sink, { targetBytes: 200_000, devices: 3, seed }));
      return createHash("sha256").update(bytes).digest("hex");
    };
    expect(await digest(1)).toBe(await digest(1));
    expect(await digest(1)).not.toBe(await digest(2));
  });
});
