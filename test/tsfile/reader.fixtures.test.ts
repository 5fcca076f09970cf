import { readdir } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import { inspectTsFile, openTsFileSource } from "../../src/actors/tsfileFiles.js";
import { TsFileFormatError } from "../../src/tsfile/bytes.js";
import { readTsFile, readTsFileTail, type TsFileDevice, type TsFileTableSchema } from "../../src/tsfile/reader.js";
import { parseTsFileResource } from "../../src/tsfile/resource.js";
import { writeTsFileBytes } from "../../src/tsfile/writer.js";
import { failWithoutFixturesUnderCi, fixturePath, fixturesFound, memorySource, readFixture } from "./fixtures.js";

failWithoutFixturesUnderCi();

type DataType = TsFileDevice["measurements"][number]["dataType"];

interface ExpectedDevice {
  id: string;
  segments?: (string | null)[];
  table?: string;
  aligned: boolean;
  range: [bigint, bigint] | null;
  measurements: Record<string, DataType>;
}

interface ExpectedFile {
  version: 3 | 4;
  size: number;
  devices: ExpectedDevice[];
  tables?: TsFileTableSchema[];
}

const column = (name: string, dataType: DataType, category: "TAG" | "FIELD") =>
  ({ name, dataType, category, categoryCode: category === "TAG" ? 0 : 1 }) as const;

const treeDevices = (v4: boolean): ExpectedDevice[] => {
  const devices: ExpectedDevice[] = [
    { id: "root.sg1.d1", aligned: false, range: [1000n, 1009n], measurements: { s_long: "INT64", s_double: "DOUBLE" } },
    { id: "root.sg1.d2", aligned: false, range: [2000n, 2400n], measurements: { temperature: "DOUBLE", counter: "INT64" } },
    { id: "root.sg1.d3", aligned: true, range: [3000n, 3002n], measurements: { a_long: "INT64", a_double: "DOUBLE" } },
  ];
  return v4 ? devices.map((d) => ({ ...d, segments: ["root.sg1", d.id.slice("root.sg1.".length)], table: "root.sg1" })) : devices;
};

/** What PROVENANCE.md says each valid fixture holds. */
const VALID: Record<string, ExpectedFile> = {
  "public/v3TsFile.tsfile": {
    version: 3,
    size: 378,
    devices: [
      { id: "d1", aligned: false, range: [10000n, 10000n], measurements: { s1: "FLOAT", s2: "INT32" } },
      // One empty aligned value chunk: count 0 with the MAX/MIN sentinels gives no range at all.
      { id: "d2", aligned: true, range: null, measurements: { s1: "TEXT" } },
    ],
  },
  "public/smoke_test.write_record.tsfile": {
    version: 3,
    size: 1273,
    devices: [{ id: "root.db001.dev001", aligned: false, range: [1n, 16n], measurements: { m001: "INT32", m002: "INT32", m003: "INT32" } }],
  },
  "public/test_cpp.tsfile": {
    version: 4,
    size: 447,
    devices: [
      {
        // The third segment is 11 bytes of garbage from a C++ example bug, decoded leniently.
        id: "table1.id1_filed_2._\uFFFD\u0016Z\u0005\0\0\0\0\0\0",
        segments: ["table1", "id1_filed_2", "_\uFFFD\u0016Z\u0005\0\0\0\0\0\0"],
        table: "table1",
        aligned: true,
        range: [0n, 4n],
        measurements: { s1: "INT64" },
      },
    ],
    tables: [{ name: "table1", columns: [column("id1", "STRING", "TAG"), column("id2", "STRING", "TAG"), column("s1", "INT64", "FIELD")] }],
  },
  "generated/gen_v3_min.tsfile": {
    version: 3,
    size: 385,
    devices: [{ id: "root.sg1.d1", aligned: false, range: [1n, 3n], measurements: { s1: "INT64", s2: "DOUBLE" } }],
  },
  "generated/gen_v4_min.tsfile": {
    version: 4,
    size: 450,
    devices: [
      {
        id: "root.sg1.d1",
        segments: ["root.sg1", "d1"],
        table: "root.sg1",
        aligned: false,
        range: [1n, 3n],
        measurements: { s1: "INT64", s2: "DOUBLE" },
      },
    ],
    tables: [],
  },
  "generated/gen_v3_tree.tsfile": { version: 3, size: 1256, devices: treeDevices(false) },
  "generated/gen_v4_tree.tsfile": { version: 4, size: 1325, devices: treeDevices(true), tables: [] },
  "generated/gen_v4_table.tsfile": {
    version: 4,
    size: 921,
    devices: [
      {
        id: "meters.north.p1",
        segments: ["meters", "north", "p1"],
        table: "meters",
        aligned: true,
        range: [5000n, 5002n],
        measurements: { power: "DOUBLE", energy: "INT64" },
      },
      {
        id: "meters.south.p7",
        segments: ["meters", "south", "p7"],
        table: "meters",
        aligned: true,
        range: [5003n, 5004n],
        measurements: { power: "DOUBLE", energy: "INT64" },
      },
    ],
    tables: [
      {
        name: "meters",
        columns: [
          column("region", "STRING", "TAG"),
          column("plant", "STRING", "TAG"),
          column("power", "DOUBLE", "FIELD"),
          column("energy", "INT64", "FIELD"),
        ],
      },
    ],
  },
};

const INVALID: Record<string, { reason: string | RegExp; passesCheapCheck: boolean }> = {
  "invalid/tsfile_test.tsfile": { reason: "missing tail magic: file is unsealed or truncated", passesCheapCheck: false },
  "invalid/legacy_v0.0.1_test.tsfile": { reason: "legacy TsFile format v0.x/v1/v2 is not supported", passesCheapCheck: false },
  // Its string writer emitted len+2 as a raw byte, so the index is misaligned from the first device id on.
  "invalid/1653988688846-1-0-0.tsfile": { reason: /^index node offset \d+ out of range at offset 504$/, passesCheapCheck: true },
};

const asExpected = (d: TsFileDevice): ExpectedDevice => ({
  id: d.id,
  ...(d.segments.length > 1 || d.table !== undefined ? { segments: [...d.segments] } : {}),
  ...(d.table === undefined ? {} : { table: d.table }),
  aligned: d.aligned,
  range: d.startTime === null || d.endTime === null ? null : [d.startTime, d.endTime],
  measurements: Object.fromEntries(d.measurements.map((m) => [m.name, m.dataType])),
});

describe.skipIf(!fixturesFound)("fixtures", () => {
  test("every .tsfile fixture is covered by an expectation here", async () => {
    const files: string[] = [];
    for (const dir of ["public", "generated", "invalid"]) {
      for (const f of await readdir(fixturePath(dir))) if (f.endsWith(".tsfile")) files.push(`${dir}/${f}`);
    }
    expect(files.sort()).toEqual([...Object.keys(VALID), ...Object.keys(INVALID)].sort());
  });

  for (const [file, expected] of Object.entries(VALID)) {
    test(`${file}: v${expected.version}, devices, measurement types and time ranges as in PROVENANCE.md`, async () => {
      const bytes = await readFixture(file);
      const info = await readTsFile(memorySource(bytes));
      expect(info.version).toBe(expected.version);
      expect(info.size).toBe(expected.size);
      expect(info.devices.map(asExpected)).toEqual(expected.devices);
      expect(info.tables).toEqual(expected.tables);
    });

    test(`${file}: only the head, the tail and the index section are read, each at most once`, async () => {
      const source = memorySource(await readFixture(file));
      const info = await readTsFile(source);
      expect(source.outOfBounds).toEqual([]);
      for (const r of source.reads) expect(r.offset + r.length <= 7 || r.offset >= info.metaOffset).toBe(true);
      const total = source.reads.reduce((sum, r) => sum + r.length, 0);
      expect(total).toBe(7 + (source.size - info.metaOffset));
    });
  }

  for (const [file, { reason, passesCheapCheck }] of Object.entries(INVALID)) {
    test(`${file} is rejected with the reason ${String(reason)}`, async () => {
      const source = memorySource(await readFixture(file));
      const error = await readTsFile(source).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TsFileFormatError);
      expect((error as TsFileFormatError).reason).toMatch(reason);
      expect(source.outOfBounds).toEqual([]);
      if (passesCheapCheck) await expect(readTsFileTail(memorySource(await readFixture(file)))).resolves.toMatchObject({ version: 3 });
      else await expect(readTsFileTail(memorySource(await readFixture(file)))).rejects.toThrow(TsFileFormatError);
    });
  }

  const RESOURCES: Record<string, { type: 1 | 3; devices: [string, bigint, bigint][] }> = {
    "generated/gen_v3_tree.tsfile.resource": {
      type: 1,
      devices: [
        ["root.sg1.d1", 1000n, 1009n],
        ["root.sg1.d2", 2000n, 2400n],
        ["root.sg1.d3", 3000n, 3002n],
      ],
    },
    "generated/gen_v4_tree.tsfile.resource": {
      type: 3,
      devices: [
        ["root.sg1.d1", 1000n, 1009n],
        ["root.sg1.d2", 2000n, 2400n],
        ["root.sg1.d3", 3000n, 3002n],
      ],
    },
    "generated/gen_v4_table.tsfile.resource": {
      type: 3,
      devices: [
        ["meters.north.p1", 5000n, 5002n],
        ["meters.south.p7", 5003n, 5004n],
      ],
    },
  };

  for (const [file, expected] of Object.entries(RESOURCES)) {
    test(`${file}: time index type ${expected.type}, device ranges as in PROVENANCE.md and as in its TsFile`, async () => {
      const resource = parseTsFileResource(await readFixture(file));
      expect(resource.timeIndexType).toBe(expected.type);
      expect(resource.devices.map((d) => [d.id, d.startTime, d.endTime])).toEqual(expected.devices);
      expect(resource.modsFileName).toBeNull();
      const info = await readTsFile(memorySource(await readFixture(file.replace(/\.resource$/, ""))));
      expect(info.devices.map((d) => [d.id, d.startTime, d.endTime])).toEqual(expected.devices);
    });
  }

  test("inspectTsFile reads a fixture from disk through a FileHandle source", async () => {
    const info = await inspectTsFile(fixturePath("generated/gen_v4_tree.tsfile"));
    expect(info.devices.map((d) => d.id)).toEqual(["root.sg1.d1", "root.sg1.d2", "root.sg1.d3"]);
  });

  test("inspectTsFile rejects the unsealed fixture with a TsFileFormatError", async () => {
    await expect(inspectTsFile(fixturePath("invalid/tsfile_test.tsfile"))).rejects.toThrow(
      "missing tail magic: file is unsealed or truncated",
    );
  });

  test("a file source refuses reads outside the file and can be closed twice", async () => {
    const source = await openTsFileSource(fixturePath("generated/gen_v3_min.tsfile"));
    try {
      expect(source.size).toBe(385);
      expect(Buffer.from(await source.read(379, 6)).toString()).toBe("TsFile");
      await expect(source.read(380, 6)).rejects.toThrow(RangeError);
      await expect(source.read(-1, 1)).rejects.toThrow(RangeError);
    } finally {
      await source.close();
    }
    await source.close();
    await expect(source.read(0, 1)).rejects.toThrow();
  });
});

describe("reader errors that need no fixture", () => {
  const reasonOf = async (bytes: Uint8Array): Promise<string> => {
    const error: unknown = await readTsFile(memorySource(bytes)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TsFileFormatError);
    return (error as TsFileFormatError).reason;
  };
  const ascii = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
  const withTail = (head: string, metaSize: number) => {
    const b = Buffer.alloc(40);
    b.write(head, 0, "latin1");
    b.writeInt32BE(metaSize, 30);
    b.write("TsFile", 34, "latin1");
    return new Uint8Array(b);
  };

  test("fewer than 13 bytes", async () => {
    expect(await reasonOf(ascii("TsFile\x03TsFil"))).toBe("file too short: 12 bytes, a sealed TsFile has at least 13");
  });

  test("bad head magic", async () => {
    expect(await reasonOf(ascii("NotAFile\x03...TsFile"))).toBe("not a TsFile (bad head magic)");
  });

  test("legacy v1/v2 signature", async () => {
    expect(await reasonOf(ascii("TsFile000002....TsFile"))).toBe("legacy TsFile format v0.x/v1/v2 is not supported");
  });

  test("unknown version byte", async () => {
    expect(await reasonOf(ascii("TsFile\x05.......TsFile"))).toBe("unsupported version 5");
  });

  test("metadata size that does not fit", async () => {
    expect(await reasonOf(withTail("TsFile\x03", 30))).toBe("metadata size 30 out of range for a file of 40 bytes");
    expect(await reasonOf(withTail("TsFile\x03", 0))).toBe("metadata size 0 out of range for a file of 40 bytes");
    expect(await reasonOf(withTail("TsFile\x03", -5))).toBe("metadata size -5 out of range for a file of 40 bytes");
  });

  /** Replaces the last occurrence of `value` as an int64 BE in the TsFileMetadata block. */
  const patchInt64 = (bytes: Uint8Array, value: number, replacement: bigint): Uint8Array => {
    const copy = Buffer.from(bytes);
    const needle = Buffer.alloc(8);
    needle.writeBigInt64BE(BigInt(value));
    const at = copy.lastIndexOf(needle);
    expect(at).toBeGreaterThan(0);
    copy.writeBigInt64BE(replacement, at);
    return new Uint8Array(copy);
  };
  const small = writeTsFileBytes({
    devices: [{ path: "root.sg.d", measurements: [{ name: "s", dataType: "INT64", timestamps: [1n], values: [7n] }] }],
  });

  test("a metadata offset that does not point at the SEPARATOR", async () => {
    const { metaOffset } = await readTsFile(memorySource(small));
    expect(await reasonOf(patchInt64(small, metaOffset, BigInt(metaOffset - 1)))).toBe(
      `metadata offset ${metaOffset - 1} does not point at a separator (found 0x07)`, // the last byte of the value 7,
    );
  });

  test("a device entry pointing past its node", async () => {
    const tail = await readTsFileTail(memorySource(small));
    // The root LEAF_DEVICE entry is followed by the root's endOffset, which equals metaPos.
    const patched = Buffer.from(small);
    const end = Buffer.alloc(8);
    end.writeBigInt64BE(BigInt(tail.metaPos));
    const endAt = patched.indexOf(end, tail.metaPos);
    patched.writeBigInt64BE(BigInt(tail.metaPos + 3), endAt - 8);
    expect(await reasonOf(new Uint8Array(patched))).toBe(
      `index node offset ${tail.metaPos + 3} out of range in the node at offset ${tail.metaPos}`,
    );
  });

  test("an index section larger than the configured limit is refused before it is read", async () => {
    const source = memorySource(small);
    const { metaOffset } = await readTsFile(memorySource(small));
    const tail = await readTsFileTail(memorySource(small));
    await expect(readTsFile(source, { maxIndexBytes: 10 })).rejects.toThrow(
      `index section of ${tail.metaPos - metaOffset} bytes at offset ${metaOffset} exceeds the limit of 10 bytes`,
    );
    expect(source.reads.every((r) => r.offset !== metaOffset)).toBe(true);
  });

  test("a source that answers short is reported, not trusted", async () => {
    const source = { size: 100, read: (_o: number, l: number) => Promise.resolve(new Uint8Array(Math.max(0, l - 1))) };
    await expect(readTsFile(source)).rejects.toThrow("short read of head at offset 0: got 6 of 7 bytes (file changed?)");
  });
});
