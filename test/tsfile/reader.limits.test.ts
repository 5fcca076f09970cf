// The reader's budgets: each is checked before what it counts is read, and the index is read in windows, so a
// file with a huge index costs what the budgets allow, not what the file asks for.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { readTsFile, readTsFileTail, TsFileLimitError, type TsFileDevice } from "../../src/tsfile/reader.js";
import { generateTsFile, writeTsFileBytes, type MeasurementSpec } from "../../src/tsfile/writer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { writeHugeIndexTsFile } from "../security/attacks/hugeIndexFile.js";
import { memorySource } from "./fixtures.js";

let dir: string;
/** 20 000 devices under one LEAF_DEVICE root, as the security finding's file had them. */
let flat: Uint8Array;
/** 300 devices from the project's writer: an INTERNAL_DEVICE root over LEAF_DEVICE nodes of at most 256. */
let tree: Uint8Array;

beforeAll(async () => {
  dir = await tempRoot("tsync-reader-limits-");
  await writeHugeIndexTsFile(join(dir, "flat.tsfile"), { devices: 20_000 });
  flat = new Uint8Array(await readFile(join(dir, "flat.tsfile")));
  const pieces: Uint8Array[] = [];
  await generateTsFile(async (p) => void pieces.push(p), { targetBytes: 120_000, devices: 300, seed: 5 });
  tree = new Uint8Array(Buffer.concat(pieces));
});
afterAll(async () => {
  await removeAll(dir);
});

const refusal = async (bytes: Uint8Array, options: Parameters<typeof readTsFile>[1]): Promise<TsFileLimitError> => {
  const error = await readTsFile(memorySource(bytes), options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TsFileLimitError);
  return error as TsFileLimitError;
};

const series = (count: number): MeasurementSpec[] =>
  Array.from({ length: count }, (_, i) => ({
    name: `s${String(i).padStart(4, "0")}`,
    dataType: "INT64" as const,
    timestamps: [1n],
    values: [BigInt(i)],
  }));

describe("device budget", () => {
  test("a root that declares more devices than maxDevices is refused from the first 64 KiB of the TsFileMetadata", async () => {
    const source = memorySource(flat);
    const error = await readTsFile(source, { maxDevices: 1000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TsFileLimitError);
    expect(error).toMatchObject({ limit: "devices", max: 1000, subject: "index lists at least 20000 devices" });
    expect((error as TsFileLimitError).reason).toBe("index lists at least 20000 devices; the limit is 1000 (maxDevices)");
    // Head, tail and a 64 KiB look at a TsFileMetadata block of about 500 KB: none of the index.
    const { metaSize } = await readTsFileTail(memorySource(flat));
    expect(metaSize).toBeGreaterThan(400_000);
    expect(source.reads.reduce((n, r) => n + r.length, 0)).toBeLessThanOrEqual(7 + 10 + 64 * 1024);
  });

  test("the same file is read whole without a limit, and at a limit equal to its device count", async () => {
    expect((await readTsFile(memorySource(flat))).devices).toHaveLength(20_000);
    expect((await readTsFile(memorySource(flat), { maxDevices: 20_000 })).devices).toHaveLength(20_000);
  });

  test("a tree of small nodes is refused by the count of devices walked so far, before the node that would go over", async () => {
    expect((await readTsFile(memorySource(tree), { maxDevices: 300 })).devices).toHaveLength(300);
    const error = await refusal(tree, { maxDevices: 299 });
    expect(error.limit).toBe("devices");
    // The second LEAF_DEVICE node declares the devices that go over: 256 + its count.
    expect(error.subject).toMatch(/^index lists at least (\d+) devices$/);
    expect(Number(/(\d+)/.exec(error.subject)?.[1])).toBeGreaterThan(299);
  });

  test("device ids are counted in bytes against maxDeviceIdBytes", async () => {
    const info = await readTsFile(memorySource(tree));
    // Each id is stored as a var-string: one length byte and its ASCII bytes.
    const idBytes = info.devices.reduce((n, d) => n + 1 + d.id.length, 0);
    expect((await readTsFile(memorySource(tree), { maxDeviceIdBytes: idBytes })).devices).toHaveLength(300);
    const error = await refusal(tree, { maxDeviceIdBytes: idBytes - 1 });
    expect(error).toMatchObject({
      limit: "deviceIdBytes",
      max: idBytes - 1,
      subject: `device ids in the index take at least ${idBytes} bytes`,
    });
  });
});

describe("series budget", () => {
  const wide = writeTsFileBytes({
    devices: [
      { path: "root.sg.wide", measurements: series(600) },
      { path: "root.sg.narrow", measurements: series(3) },
    ],
  });

  test("TimeseriesMetadata records are counted against maxSeries", async () => {
    expect((await readTsFile(memorySource(wide), { maxSeries: 603 })).devices.map((d) => d.measurements.length)).toEqual([3, 600]);
    const error = await refusal(wide, { maxSeries: 602 });
    expect(error).toMatchObject({ limit: "series", max: 602, subject: "index lists at least 603 time series" });
  });

  test("a measurement node declaring more entries than the series left in the budget is refused before its entries", async () => {
    // root.sg.narrow comes first; the wide device's LEAF_MEASUREMENT declares 3 entries (one per 256 series).
    const error = await refusal(wide, { maxSeries: 5 });
    expect(error.subject).toBe("index lists at least 6 time series");
  });
});

describe("record budget and windows", () => {
  test("a TsFileMetadata block larger than maxRecordBytes is refused before it is read", async () => {
    const { metaSize, metaPos } = await readTsFileTail(memorySource(flat));
    const source = memorySource(flat);
    const error = await readTsFile(source, { maxRecordBytes: 100_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ limit: "recordBytes", subject: `TsFileMetadata is ${metaSize} bytes` });
    expect(source.reads.some((r) => r.offset === metaPos && r.length === metaSize)).toBe(false);
  });

  test("a TimeseriesMetadata record larger than a window is read whole up to maxRecordBytes, and refused beyond", async () => {
    // TEXT statistics hold the first and last value: a 1.5 MiB value makes a 3 MiB record.
    const big = "x".repeat(1.5 * 2 ** 20);
    const bytes = writeTsFileBytes({
      devices: [{ path: "root.sg.text", measurements: [{ name: "t", dataType: "TEXT", timestamps: [1n, 2n], values: [big, big] }] }],
    });
    const read = await readTsFile(memorySource(bytes));
    expect(read.devices[0]?.measurements).toEqual([{ name: "t", dataType: "TEXT" }]);
    const error = await refusal(bytes, { maxRecordBytes: 2 ** 20 });
    expect(error.limit).toBe("recordBytes");
    expect(error.subject).toMatch(/^TimeseriesMetadata at offset \d+ is larger than 1048576 bytes$/);
  });

  test("the index is read in windows of 1 MiB, not in one piece", async () => {
    const source = memorySource(flat);
    const { metaPos, metaSize } = await readTsFileTail(memorySource(flat));
    const info = await readTsFile(source);
    expect(info.devices).toHaveLength(20_000);
    expect(metaPos - info.metaOffset).toBeGreaterThan(2 ** 20); // the index section alone is larger than a window
    const indexReads = source.reads.filter((r) => r.offset >= info.metaOffset && r.offset < metaPos);
    expect(indexReads.length).toBeGreaterThan(1);
    expect(Math.max(...indexReads.map((r) => r.length))).toBeLessThanOrEqual(2 ** 20);
    // The TsFileMetadata block itself is read once whole, after a 64 KiB look at its roots.
    expect(source.reads.filter((r) => r.offset === metaPos).map((r) => r.length)).toEqual([64 * 1024, metaSize]);
  });
});

describe("what the result keeps", () => {
  const strip = (d: TsFileDevice) => ({ ...d, measurements: [] });

  test("measurements: false lists the same devices and time ranges without their measurements", async () => {
    const full = await readTsFile(memorySource(tree));
    const lean = await readTsFile(memorySource(tree), { measurements: false });
    expect(full.devices.every((d) => d.measurements.length === 6)).toBe(true);
    expect(lean.devices).toEqual(full.devices.map(strip));
  });

  test("onDevice receives every device in index order instead of the result", async () => {
    const full = await readTsFile(memorySource(tree));
    const seen: TsFileDevice[] = [];
    const streamed = await readTsFile(memorySource(tree), { onDevice: (d) => seen.push(d) });
    expect(streamed.devices).toEqual([]);
    expect(seen).toEqual(full.devices);
  });
});
