import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { inspectTsFile, writeSealedTsFile } from "../../src/actors/tsfileFiles.js";
import { TsFileFormatError } from "../../src/tsfile/bytes.js";
import { parseTsFileResource, serializeTsFileResource, type TsFileResourceSpec } from "../../src/tsfile/resource.js";
import type { TsFileSpec } from "../../src/tsfile/writer.js";
import { failWithoutFixturesUnderCi, fixturesFound, readFixture } from "./fixtures.js";

failWithoutFixturesUnderCi();

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;

const treeDevices = [
  { id: "root.sg1.d1", startTime: 1000n, endTime: 1009n },
  { id: "root.sg1.d2", startTime: 2000n, endTime: 2400n },
  { id: "root.sg1.d3", startTime: 3000n, endTime: 3002n },
];

describe.skipIf(!fixturesFound)("the serializer reproduces the synthetic fixtures byte for byte", () => {
  test("type 1 (IoTDB ≤1.3): gen_v3_tree.tsfile.resource", async () => {
    expect(hex(serializeTsFileResource({ timeIndexType: 1, devices: treeDevices }))).toBe(
      hex(await readFixture("generated/gen_v3_tree.tsfile.resource")),
    );
  });

  test("type 3 (IoTDB 2.x) with the Java tree split: gen_v4_tree.tsfile.resource", async () => {
    expect(hex(serializeTsFileResource({ timeIndexType: 3, devices: treeDevices }))).toBe(
      hex(await readFixture("generated/gen_v4_tree.tsfile.resource")),
    );
  });

  test("type 3 with table-model segments: gen_v4_table.tsfile.resource", async () => {
    const devices = [
      { id: "meters.north.p1", segments: ["meters", "north", "p1"], startTime: 5000n, endTime: 5002n },
      { id: "meters.south.p7", segments: ["meters", "south", "p7"], startTime: 5003n, endTime: 5004n },
    ];
    expect(hex(serializeTsFileResource({ timeIndexType: 3, devices }))).toBe(
      hex(await readFixture("generated/gen_v4_table.tsfile.resource")),
    );
  });
});

const int64 = fc.bigInt({ min: LONG_MIN, max: LONG_MAX });
const resourceSpec: fc.Arbitrary<TsFileResourceSpec> = fc.record({
  timeIndexType: fc.constantFrom(1 as const, 3 as const),
  devices: fc.uniqueArray(fc.record({ id: fc.stringMatching(/^root(\.[a-z0-9_]{1,6}){1,5}$/), startTime: int64, endTime: int64 }), {
    selector: (d) => d.id,
    maxLength: 20,
  }),
  modsFileName: fc.option(fc.stringMatching(/^[0-9]{1,13}-[0-9]-[0-9]-[0-9]\.tsfile\.mods2?$/), { nil: null }),
  maxPlanIndex: int64,
  minPlanIndex: int64,
});

describe("round trips and rejections", () => {
  test.prop([resourceSpec])("parse(serialize(spec)) gives back every device id, time range, plan index and mods name, in order", (spec) => {
    const parsed = parseTsFileResource(serializeTsFileResource(spec));
    expect(parsed.timeIndexType).toBe(spec.timeIndexType);
    expect(parsed.devices.map((d) => [d.id, d.startTime, d.endTime])).toEqual(spec.devices.map((d) => [d.id, d.startTime, d.endTime]));
    expect([parsed.maxPlanIndex, parsed.minPlanIndex, parsed.modsFileName]).toEqual([
      spec.maxPlanIndex,
      spec.minPlanIndex,
      spec.modsFileName,
    ]);
  });

  test.prop([resourceSpec, fc.nat()])("every prefix that cuts into the seven required fields is a TsFileFormatError", (spec, cut) => {
    const bytes = serializeTsFileResource(spec);
    // The trailing EMPTY_BLOCK byte is optional to the reader: only fields 1–7 are required.
    const prefix = bytes.subarray(0, cut % (bytes.length - 1));
    expect(() => parseTsFileResource(prefix)).toThrow(TsFileFormatError);
  });

  test("the map order does not matter: each device is paired with its times by array index", () => {
    const bytes = Buffer.from(
      serializeTsFileResource({
        devices: [
          { id: "a", startTime: 1n, endTime: 2n },
          { id: "b", startTime: 3n, endTime: 4n },
        ],
      }),
    );
    // Swap the two map entries ("a",0) and ("b",1) → ("b",1) and ("a",0).
    const mapStart = 2 + 4 + 2 * 16;
    const entry = 4 + 1 + 4;
    const swapped = Buffer.concat([
      bytes.subarray(0, mapStart),
      bytes.subarray(mapStart + entry, mapStart + 2 * entry),
      bytes.subarray(mapStart, mapStart + entry),
      bytes.subarray(mapStart + 2 * entry),
    ]);
    expect(parseTsFileResource(new Uint8Array(swapped)).devices.map((d) => [d.id, d.startTime])).toEqual([
      ["a", 1n],
      ["b", 3n],
    ]);
  });

  const patched = (offset: number, write: (b: Buffer) => void): Uint8Array => {
    const b = Buffer.from(serializeTsFileResource({ devices: [{ id: "root.sg.d", startTime: 1n, endTime: 2n }] }));
    write(b.subarray(offset));
    return new Uint8Array(b);
  };

  test("unknown versions and time index types are refused with a precise reason", () => {
    expect(() => parseTsFileResource(patched(0, (b) => b.writeUInt8(2)))).toThrow("unsupported resource version 2");
    expect(() => parseTsFileResource(patched(1, (b) => b.writeUInt8(2)))).toThrow(
      "resource time index type 2 (file time index) is never serialized by IoTDB",
    );
    expect(() => parseTsFileResource(patched(1, (b) => b.writeUInt8(0)))).toThrow("unsupported resource time index type 0");
  });

  test("device counts and indexes must be consistent", () => {
    expect(() => parseTsFileResource(patched(2, (b) => b.writeInt32BE(-1)))).toThrow("resource device count -1 does not fit");
    expect(() => parseTsFileResource(patched(2, (b) => b.writeInt32BE(1000)))).toThrow("resource device count 1000 does not fit in");
    const indexAt = 2 + 4 + 16 + 4 + "root.sg.d".length;
    expect(() => parseTsFileResource(patched(indexAt, (b) => b.writeInt32BE(1)))).toThrow(
      `resource device index 1 out of range [0, 1) at offset ${indexAt}`,
    );
  });

  test("the mods file name is read when present", () => {
    const bytes = serializeTsFileResource({ devices: [], modsFileName: "1700000000000-1-0-0.tsfile.mods" });
    expect(parseTsFileResource(bytes)).toEqual({
      timeIndexType: 1,
      devices: [],
      maxPlanIndex: LONG_MIN,
      minPlanIndex: LONG_MAX,
      modsFileName: "1700000000000-1-0-0.tsfile.mods",
    });
  });
});

describe("writeSealedTsFile", () => {
  const spec: TsFileSpec = {
    devices: [
      {
        path: "root.sg1.d1",
        measurements: [
          { name: "s1", dataType: "INT64", timestamps: [5n, 9n], values: [1n, 2n] },
          { name: "s2", dataType: "DOUBLE", timestamps: [1n, 7n], values: [0.5, 1] },
        ],
      },
      { path: "root.sg1.d2", measurements: [{ name: "t", dataType: "TEXT", timestamps: [100n], values: ["x"] }] },
    ],
  };

  for (const version of [3, 4] as const) {
    test(`v${version}: writes NAME and NAME.resource (type ${version === 3 ? 1 : 3}, ranges from the spec), leaving no .temp`, async () => {
      const dir = await mkdtemp(join(tmpdir(), "tsync-sealed-"));
      try {
        const name = "1700000000000-1-0-0.tsfile";
        const sealed = await writeSealedTsFile(dir, name, spec, { version });
        expect((await readdir(dir)).sort()).toEqual([name, `${name}.resource`]);
        const resource = parseTsFileResource(new Uint8Array(await readFile(sealed.resourcePath)));
        expect(resource.timeIndexType).toBe(version === 3 ? 1 : 3);
        const expected = [
          ["root.sg1.d1", 1n, 9n],
          ["root.sg1.d2", 100n, 100n],
        ];
        expect(resource.devices.map((d) => [d.id, d.startTime, d.endTime])).toEqual(expected);
        const info = await inspectTsFile(sealed.tsfilePath);
        expect(info.version).toBe(version);
        expect(info.size).toBe(sealed.size);
        expect(info.devices.map((d) => [d.id, d.startTime, d.endTime])).toEqual(expected);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
