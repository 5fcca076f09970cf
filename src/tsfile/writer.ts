// TsFile v3/v4 (tree model) writer following docs/tsfile-format.md §9: one-page PLAIN/UNCOMPRESSED chunks,
// TS_2DIFF times, and an index laid out exactly as the Java `MetadataIndexConstructor` lays it out, so that
// small files match the Java writer byte for byte. Pure bytes: the caller owns the sink.

import {
  ByteWriter,
  MAGIC,
  MAX_DEGREE_OF_INDEX_NODE,
  Marker,
  NodeType,
  compareDeviceSegments,
  compareJavaStrings,
  dataTypeCode,
  encodeUtf8,
  splitDevicePath,
  type DeviceSegments,
} from "./bytes.js";

export type WritableDataType = "BOOLEAN" | "INT32" | "INT64" | "FLOAT" | "DOUBLE" | "TEXT";

export type ValueColumn =
  | { readonly dataType: "BOOLEAN"; readonly values: readonly boolean[] }
  | { readonly dataType: "INT32"; readonly values: readonly number[] }
  | { readonly dataType: "INT64"; readonly values: readonly bigint[] }
  | { readonly dataType: "FLOAT"; readonly values: readonly number[] }
  | { readonly dataType: "DOUBLE"; readonly values: readonly number[] }
  | { readonly dataType: "TEXT"; readonly values: readonly string[] };

/** One series of one device: strictly increasing timestamps and one value per timestamp. */
export type MeasurementSpec = ValueColumn & { readonly name: string; readonly timestamps: readonly bigint[] };

export interface DeviceSpec {
  /** Full tree-model path, e.g. `root.sg1.d1`. */
  readonly path: string;
  readonly measurements: readonly MeasurementSpec[];
}

export interface TsFileSpec {
  readonly devices: readonly DeviceSpec[];
}

export interface BloomFilterBytes {
  readonly bytes: Uint8Array;
  readonly bitCount: number;
  readonly hashCount: number;
}

export interface TsFileWriterOptions {
  readonly version?: 3 | 4;
  /**
   * Bloom filter override. A bare Uint8Array is the bit-set bytes with 256 bits and 5 hashes. The default is
   * 32 bytes of 0xFF: every lookup answers "maybe", which is always safe and needs no Murmur3.
   */
  readonly bloom?: Uint8Array | BloomFilterBytes;
}

export interface TsFileWriteSummary {
  readonly size: number;
  readonly metaOffset: number;
  readonly devices: number;
  readonly series: number;
  readonly chunks: number;
}

// ── statistics (§6) ────────────────────────────────────────────────────────────────────────────────

export type ValueStatistics =
  | { readonly dataType: "BOOLEAN"; readonly first: boolean; readonly last: boolean; readonly sum: bigint }
  | {
      readonly dataType: "INT32";
      readonly min: number;
      readonly max: number;
      readonly first: number;
      readonly last: number;
      readonly sum: bigint;
    }
  | {
      readonly dataType: "INT64";
      readonly min: bigint;
      readonly max: bigint;
      readonly first: bigint;
      readonly last: bigint;
      readonly sum: number;
    }
  | {
      readonly dataType: "FLOAT" | "DOUBLE";
      readonly min: number;
      readonly max: number;
      readonly first: number;
      readonly last: number;
      readonly sum: number;
    }
  | { readonly dataType: "TEXT"; readonly first: Uint8Array; readonly last: Uint8Array };

interface SeriesStatistics {
  readonly count: number;
  readonly start: bigint;
  readonly end: bigint;
  readonly values: ValueStatistics;
}

const minOf = <T extends number | bigint>(a: T, b: T): T => (b < a ? b : a);
const maxOf = <T extends number | bigint>(a: T, b: T): T => (b > a ? b : a);

/** Statistics of `earlier` followed by `later` (chunks of one series are written in time order). */
function mergeValueStatistics(earlier: ValueStatistics, later: ValueStatistics): ValueStatistics {
  switch (earlier.dataType) {
    case "BOOLEAN":
      if (later.dataType !== "BOOLEAN") break;
      return { dataType: "BOOLEAN", first: earlier.first, last: later.last, sum: earlier.sum + later.sum };
    case "INT32":
      if (later.dataType !== "INT32") break;
      return {
        dataType: "INT32",
        min: minOf(earlier.min, later.min),
        max: maxOf(earlier.max, later.max),
        first: earlier.first,
        last: later.last,
        sum: earlier.sum + later.sum,
      };
    case "INT64":
      if (later.dataType !== "INT64") break;
      return {
        dataType: "INT64",
        min: minOf(earlier.min, later.min),
        max: maxOf(earlier.max, later.max),
        first: earlier.first,
        last: later.last,
        sum: earlier.sum + later.sum,
      };
    case "FLOAT":
    case "DOUBLE":
      if (later.dataType !== earlier.dataType) break;
      return {
        dataType: earlier.dataType,
        min: minOf(earlier.min, later.min),
        max: maxOf(earlier.max, later.max),
        first: earlier.first,
        last: later.last,
        sum: earlier.sum + later.sum,
      };
    case "TEXT":
      if (later.dataType !== "TEXT") break;
      return { dataType: "TEXT", first: earlier.first, last: later.last };
  }
  throw new TypeError(`cannot merge ${earlier.dataType} statistics with ${later.dataType}`);
}

function writeStatistics(w: ByteWriter, s: SeriesStatistics): void {
  w.uvarint(s.count).int64(s.start).int64(s.end);
  const v = s.values;
  switch (v.dataType) {
    case "BOOLEAN":
      w.u8(v.first ? 1 : 0)
        .u8(v.last ? 1 : 0)
        .int64(v.sum);
      return;
    case "INT32":
      w.int32(v.min).int32(v.max).int32(v.first).int32(v.last).int64(v.sum);
      return;
    case "INT64":
      w.int64(v.min).int64(v.max).int64(v.first).int64(v.last).float64(v.sum);
      return;
    case "FLOAT":
      w.float32(v.min).float32(v.max).float32(v.first).float32(v.last).float64(v.sum);
      return;
    case "DOUBLE":
      w.float64(v.min).float64(v.max).float64(v.first).float64(v.last).float64(v.sum);
      return;
    case "TEXT":
      w.intBytes(v.first).intBytes(v.last);
      return;
  }
}

// ── TS_2DIFF time encoding (§9 rule 4) ───────────────────────────────────────────────────────────────

export interface EncodedTimes {
  readonly bytes: Uint8Array;
  readonly count: number;
  readonly start: bigint;
  readonly end: bigint;
}

const LONG_MAX = 0x7fffffffffffffffn;
const TWO_POW_32 = 0x1_0000_0000;
/** A block holds the first value plus up to this many deltas (`DeltaBinaryEncoder` block size). */
const TS2DIFF_BLOCK_DELTAS = 128;

/** Packs unsigned values MSB first, as `BytesUtils.longToBytes` does; the last byte is zero-padded. */
class BitPacker {
  private acc = 0;
  private bits = 0;
  constructor(private readonly w: ByteWriter) {}

  /** `bits` ≤ 32 low bits of `value` (an unsigned 32-bit number). */
  push32(value: number, bits: number): void {
    while (bits > 0) {
      const take = Math.min(bits, 8 - this.bits);
      const chunk = (value >>> (bits - take)) & ((1 << take) - 1);
      this.acc = (this.acc << take) | chunk;
      this.bits += take;
      bits -= take;
      if (this.bits === 8) {
        this.w.u8(this.acc);
        this.acc = 0;
        this.bits = 0;
      }
    }
  }

  push(value: number, width: number): void {
    if (width > 32) {
      this.push32(Math.floor(value / TWO_POW_32) >>> 0, width - 32);
      this.push32(value >>> 0, 32);
    } else {
      this.push32(value >>> 0, width);
    }
  }

  pushBig(value: bigint, width: number): void {
    if (width > 32) {
      this.push32(Number((value >> 32n) & 0xffffffffn), width - 32);
      this.push32(Number(value & 0xffffffffn), 32);
    } else {
      this.push32(Number(value), width);
    }
  }

  flush(): void {
    if (this.bits > 0) this.w.u8(this.acc << (8 - this.bits));
    this.acc = 0;
    this.bits = 0;
  }
}

const bitWidth = (v: number): number => (v < TWO_POW_32 ? 32 - Math.clz32(v) : 64 - Math.clz32(Math.floor(v / TWO_POW_32)));
const bitWidthBig = (v: bigint): number => (v === 0n ? 0 : v.toString(2).length);

/** Safe-integer fast path; the caller guarantees every delta is a safe integer. */
function writeTs2DiffNumbers(w: ByteWriter, ts: ArrayLike<number>): void {
  const deltas = new Float64Array(TS2DIFF_BLOCK_DELTAS);
  const packer = new BitPacker(w);
  for (let i = 0; i < ts.length; i += TS2DIFF_BLOCK_DELTAS + 1) {
    const n = Math.min(TS2DIFF_BLOCK_DELTAS, ts.length - i - 1);
    let minDelta = Infinity;
    for (let k = 0; k < n; k++) {
      const d = (ts[i + k + 1] ?? 0) - (ts[i + k] ?? 0);
      deltas[k] = d;
      if (d < minDelta) minDelta = d;
    }
    let width = 0;
    for (let k = 0; k < n; k++) width = Math.max(width, bitWidth((deltas[k] ?? 0) - minDelta));
    w.int32(n)
      .int32(width)
      .int64(n === 0 ? LONG_MAX : BigInt(minDelta))
      .int64(BigInt(ts[i] ?? 0));
    for (let k = 0; k < n; k++) packer.push((deltas[k] ?? 0) - minDelta, width);
    packer.flush();
  }
}

/** General path with Java `long` wrap-around semantics. */
function writeTs2DiffBigInts(w: ByteWriter, ts: readonly bigint[]): void {
  const packer = new BitPacker(w);
  for (let i = 0; i < ts.length; i += TS2DIFF_BLOCK_DELTAS + 1) {
    const n = Math.min(TS2DIFF_BLOCK_DELTAS, ts.length - i - 1);
    const deltas: bigint[] = [];
    let minDelta = LONG_MAX;
    for (let k = 0; k < n; k++) {
      const d = BigInt.asIntN(64, (ts[i + k + 1] ?? 0n) - (ts[i + k] ?? 0n));
      deltas.push(d);
      if (d < minDelta) minDelta = d;
    }
    const adjusted = deltas.map((d) => BigInt.asUintN(64, d - minDelta));
    const width = adjusted.reduce((m, v) => Math.max(m, bitWidthBig(v)), 0);
    w.int32(n)
      .int32(width)
      .int64(minDelta)
      .int64(ts[i] ?? 0n);
    for (const v of adjusted) packer.pushBig(v, width);
    packer.flush();
  }
}

function checkIncreasing(count: number, at: (i: number) => bigint | number): void {
  if (count === 0) throw new RangeError("a series needs at least one timestamp");
  for (let i = 1; i < count; i++) {
    if (at(i) <= at(i - 1)) throw new RangeError(`timestamps must be strictly increasing: index ${i} (${at(i)}) after ${at(i - 1)}`);
  }
}

const SAFE_SPAN = BigInt(Number.MAX_SAFE_INTEGER);

export function encodeTimestamps(timestamps: readonly bigint[]): EncodedTimes {
  checkIncreasing(timestamps.length, (i) => timestamps[i] ?? 0n);
  const start = timestamps[0] ?? 0n;
  const end = timestamps[timestamps.length - 1] ?? 0n;
  for (const t of timestamps) if (BigInt.asIntN(64, t) !== t) throw new RangeError(`timestamp ${t} does not fit in int64`);
  const w = new ByteWriter(timestamps.length * 2 + 32);
  // Sorted input: every delta and every delta-minus-minDelta is bounded by the span.
  if (end - start <= SAFE_SPAN && start >= -SAFE_SPAN && end <= SAFE_SPAN) writeTs2DiffNumbers(w, timestamps.map(Number));
  else writeTs2DiffBigInts(w, timestamps);
  return { bytes: w.toBytes(), count: timestamps.length, start, end };
}

/** Same bytes as `encodeTimestamps`, for safe-integer millisecond times held as numbers (no BigInt per point). */
export function encodeTimestampNumbers(timestamps: ArrayLike<number>): EncodedTimes {
  checkIncreasing(timestamps.length, (i) => timestamps[i] ?? 0);
  for (let i = 0; i < timestamps.length; i++) {
    if (!Number.isSafeInteger(timestamps[i])) throw new RangeError(`timestamp ${timestamps[i]} is not a safe integer`);
  }
  const first = timestamps[0] ?? 0;
  const last = timestamps[timestamps.length - 1] ?? 0;
  if (!Number.isSafeInteger(last - first)) return encodeTimestamps(Array.from(timestamps, (t) => BigInt(t)));
  const w = new ByteWriter(timestamps.length * 2 + 32);
  writeTs2DiffNumbers(w, timestamps);
  return { bytes: w.toBytes(), count: timestamps.length, start: BigInt(first), end: BigInt(last) };
}

/** `count` times `start, start+step, …` in O(blocks): with one delta value every block has bit width 0. */
export function encodeRegularTimestamps(start: bigint, step: bigint, count: number): EncodedTimes {
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`count must be a positive integer, got ${count}`);
  if (step <= 0n) throw new RangeError(`step must be positive, got ${step}`);
  const end = start + step * BigInt(count - 1);
  if (BigInt.asIntN(64, start) !== start || BigInt.asIntN(64, end) !== end) throw new RangeError("timestamps do not fit in int64");
  const w = new ByteWriter(Math.ceil(count / (TS2DIFF_BLOCK_DELTAS + 1)) * 24);
  for (let i = 0; i < count; i += TS2DIFF_BLOCK_DELTAS + 1) {
    const n = Math.min(TS2DIFF_BLOCK_DELTAS, count - i - 1);
    w.int32(n)
      .int32(0)
      .int64(n === 0 ? LONG_MAX : step)
      .int64(start + step * BigInt(i));
  }
  return { bytes: w.toBytes(), count, start, end };
}

// ── PLAIN value encoding (§9 rule 5) ────────────────────────────────────────────────────────────────

export interface EncodedValues {
  readonly dataType: WritableDataType;
  readonly bytes: Uint8Array;
  readonly count: number;
  readonly statistics: ValueStatistics;
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

export function encodeValues(column: ValueColumn): EncodedValues {
  const count = column.values.length;
  if (count === 0) throw new RangeError("a series needs at least one value");
  const w = new ByteWriter(count * 8 + 16);
  switch (column.dataType) {
    case "BOOLEAN": {
      let sum = 0n;
      for (const v of column.values) {
        w.u8(v ? 1 : 0);
        if (v) sum += 1n;
      }
      const statistics: ValueStatistics = {
        dataType: "BOOLEAN",
        first: column.values[0] ?? false,
        last: column.values[count - 1] ?? false,
        sum,
      };
      return { dataType: "BOOLEAN", bytes: w.toBytes(), count, statistics };
    }
    case "INT32": {
      let min = Infinity,
        max = -Infinity,
        sum = 0n;
      for (const v of column.values) {
        if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw new RangeError(`INT32 value out of range: ${v}`);
        w.varint(v);
        min = Math.min(min, v);
        max = Math.max(max, v);
        sum += BigInt(v);
      }
      const statistics: ValueStatistics = {
        dataType: "INT32",
        min,
        max,
        first: column.values[0] ?? 0,
        last: column.values[count - 1] ?? 0,
        sum,
      };
      return { dataType: "INT32", bytes: w.toBytes(), count, statistics };
    }
    case "INT64": {
      let min = column.values[0] ?? 0n,
        max = min,
        sum = 0;
      for (const v of column.values) {
        if (BigInt.asIntN(64, v) !== v) throw new RangeError(`INT64 value out of range: ${v}`);
        w.int64(v);
        if (v < min) min = v;
        if (v > max) max = v;
        sum += Number(v); // Java adds each long to a double sum
      }
      const statistics: ValueStatistics = {
        dataType: "INT64",
        min,
        max,
        first: column.values[0] ?? 0n,
        last: column.values[count - 1] ?? 0n,
        sum,
      };
      return { dataType: "INT64", bytes: w.toBytes(), count, statistics };
    }
    case "FLOAT":
    case "DOUBLE": {
      const isFloat = column.dataType === "FLOAT";
      const values = isFloat ? column.values.map(Math.fround) : column.values;
      let min = Infinity,
        max = -Infinity,
        sum = 0;
      for (const v of values) {
        if (isFloat) w.float32(v);
        else w.float64(v);
        min = Math.min(min, v);
        max = Math.max(max, v);
        sum += v;
      }
      const statistics: ValueStatistics = { dataType: column.dataType, min, max, first: values[0] ?? 0, last: values[count - 1] ?? 0, sum };
      return { dataType: column.dataType, bytes: w.toBytes(), count, statistics };
    }
    case "TEXT": {
      const encoded = column.values.map(encodeUtf8);
      for (const b of encoded) w.varint(b.length).bytes(b);
      const statistics: ValueStatistics = {
        dataType: "TEXT",
        first: encoded[0] ?? new Uint8Array(),
        last: encoded[count - 1] ?? new Uint8Array(),
      };
      return { dataType: "TEXT", bytes: w.toBytes(), count, statistics };
    }
  }
}

// ── chunks ──────────────────────────────────────────────────────────────────────────────────────────

/** A chunk ready to be written: encoded times and values of one series. */
export interface PreparedChunk {
  readonly name: string;
  readonly times: EncodedTimes;
  readonly values: EncodedValues;
}

export function prepareChunk(m: MeasurementSpec): PreparedChunk {
  if (m.timestamps.length !== m.values.length) {
    throw new RangeError(`series ${m.name}: ${m.timestamps.length} timestamps but ${m.values.length} values`);
  }
  return { name: m.name, times: encodeTimestamps(m.timestamps), values: encodeValues(m) };
}

const uvarintSize = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5);

/** A one-page chunk (marker 0x05): the page header then carries no statistics. */
function writeChunk(w: ByteWriter, c: PreparedChunk): void {
  const bodySize = uvarintSize(c.times.bytes.length) + c.times.bytes.length + c.values.bytes.length;
  if (bodySize > INT32_MAX) throw new RangeError(`chunk ${c.name} is larger than 2 GiB`);
  const dataSize = 2 * uvarintSize(bodySize) + bodySize;
  w.u8(Marker.onlyOnePageChunkHeader).varString(c.name).uvarint(dataSize);
  w.u8(dataTypeCode(c.values.dataType)).u8(0 /* UNCOMPRESSED */).u8(0 /* PLAIN */);
  w.uvarint(bodySize).uvarint(bodySize);
  w.uvarint(c.times.bytes.length).bytes(c.times.bytes).bytes(c.values.bytes);
}

// ── the encoder: data section streamed, index kept in memory ───────────────────────────────────────

interface SeriesIndex {
  readonly name: string;
  readonly dataType: WritableDataType;
  chunks: number;
  /** Each chunk's ChunkMetadata with statistics (offset + stats); a one-chunk series writes only the offset. */
  readonly chunkMetadata: ByteWriter;
  statistics: SeriesStatistics;
}

interface DeviceIndex {
  readonly path: string;
  readonly segments: DeviceSegments;
  readonly series: Map<string, SeriesIndex>;
}

type IndexKey = string | DeviceIndex;

interface IndexNode {
  readonly type: number;
  readonly entries: { readonly key: IndexKey; readonly offset: number }[];
  end: number;
}

const DEFAULT_BLOOM: BloomFilterBytes = { bytes: new Uint8Array(32).fill(0xff), bitCount: 256, hashCount: 5 };

// The Java writer always sets these; the key order is that of its HashMap, as seen in gen_v4_min.tsfile.
const V4_PROPERTIES: readonly (readonly [string, string])[] = [
  ["encryptLevel", "0"],
  ["encryptKey", ""],
  ["encryptType", "UNENCRYPTED"],
];

/** Synchronous core shared by `writeTsFileBytes` and `TsFileStreamWriter`. */
class TsFileEncoder {
  private readonly out = new ByteWriter(1 << 16);
  private taken = 0;
  private readonly devices = new Map<string, DeviceIndex>();
  private chunkCount = 0;
  private indexEstimate = 64;
  private summary: TsFileWriteSummary | undefined;
  readonly version: 3 | 4;
  private readonly bloom: BloomFilterBytes;

  constructor(options: TsFileWriterOptions) {
    this.version = options.version ?? 3;
    if (this.version !== 3 && this.version !== 4) throw new RangeError(`unsupported TsFile version ${String(this.version)}`);
    const bloom = options.bloom ?? DEFAULT_BLOOM;
    this.bloom = bloom instanceof Uint8Array ? { bytes: bloom, bitCount: 256, hashCount: 5 } : bloom;
    this.out.bytes(MAGIC).u8(this.version);
  }

  get position(): number {
    return this.taken + this.out.length;
  }

  get pending(): number {
    return this.out.length;
  }

  /** Rough size of the index still to be written; lets a generator aim at a target file size. */
  get indexBytesEstimate(): number {
    return this.indexEstimate;
  }

  take(): Uint8Array {
    const bytes = this.out.take();
    this.taken += bytes.length;
    return bytes;
  }

  chunkGroup(path: string, chunks: readonly PreparedChunk[]): void {
    if (this.summary) throw new Error("the TsFile is already finished");
    if (path.length === 0) throw new RangeError("device path must not be empty");
    if (chunks.length === 0) throw new RangeError(`device ${path}: a chunk group needs at least one chunk`);
    const device = this.devices.get(path);
    const names = new Set<string>();
    for (const c of chunks) {
      if (c.name.length === 0) throw new RangeError(`device ${path}: the measurement name "" is reserved for aligned time columns`);
      if (names.has(c.name)) throw new RangeError(`device ${path}: measurement ${c.name} appears twice in one chunk group`);
      names.add(c.name);
      if (c.times.count !== c.values.count)
        throw new RangeError(`${path}.${c.name}: ${c.times.count} timestamps but ${c.values.count} values`);
      const known = device?.series.get(c.name);
      if (known && known.dataType !== c.values.dataType)
        throw new RangeError(`${path}.${c.name}: data type ${c.values.dataType} after ${known.dataType}`);
      if (known && c.times.start <= known.statistics.end) {
        throw new RangeError(
          `${path}.${c.name}: chunk starts at ${c.times.start}, not after the previous chunk's end ${known.statistics.end}`,
        );
      }
    }

    const target = device ?? this.addDevice(path);
    this.out.u8(Marker.chunkGroupHeader);
    if (this.version === 3) this.out.deviceIdV3(path);
    else this.out.deviceIdV4(target.segments);
    for (const c of chunks) {
      const offset = this.position;
      writeChunk(this.out, c);
      this.record(target, c, offset);
    }
  }

  private addDevice(path: string): DeviceIndex {
    const device: DeviceIndex = { path, segments: splitDevicePath(path), series: new Map() };
    this.devices.set(path, device);
    this.indexEstimate += 2 * path.length + 48;
    return device;
  }

  private record(device: DeviceIndex, c: PreparedChunk, offset: number): void {
    const statistics: SeriesStatistics = { count: c.times.count, start: c.times.start, end: c.times.end, values: c.values.statistics };
    let series = device.series.get(c.name);
    if (!series) {
      series = { name: c.name, dataType: c.values.dataType, chunks: 0, chunkMetadata: new ByteWriter(64), statistics };
      device.series.set(c.name, series);
      this.indexEstimate += c.name.length + 80;
    } else {
      const s = series.statistics;
      series.statistics = {
        count: s.count + statistics.count,
        start: minOf(s.start, statistics.start),
        end: maxOf(s.end, statistics.end),
        values: mergeValueStatistics(s.values, statistics.values),
      };
    }
    const before = series.chunkMetadata.length;
    series.chunkMetadata.int64(BigInt(offset));
    writeStatistics(series.chunkMetadata, statistics);
    series.chunks += 1;
    this.chunkCount += 1;
    this.indexEstimate += series.chunkMetadata.length - before;
  }

  /** SEPARATOR, TimeseriesMetadata, index nodes, TsFileMetadata, its size and the tail magic. */
  finish(): TsFileWriteSummary {
    if (this.summary) return this.summary;
    const out = this.out;
    const metaOffset = this.position;
    out.u8(Marker.separator);

    const devices = [...this.devices.values()].sort((a, b) =>
      this.version === 3 ? compareJavaStrings(a.path, b.path) : compareDeviceSegments(a.segments, b.segments),
    );
    const measurementRoots = new Map<DeviceIndex, IndexNode>();
    let seriesCount = 0;
    for (const device of devices) {
      measurementRoots.set(device, this.writeTimeseriesMetadata(device));
      seriesCount += device.series.size;
    }

    const roots: { table: string; node: IndexNode }[] = [];
    if (this.version === 3) {
      roots.push({ table: "", node: this.buildDeviceLevel(devices, measurementRoots) });
    } else {
      const byTable = new Map<string, DeviceIndex[]>();
      for (const d of devices) {
        const table = d.segments[0] ?? "";
        byTable.set(table, [...(byTable.get(table) ?? []), d]);
      }
      for (const table of [...byTable.keys()].sort(compareJavaStrings)) {
        roots.push({ table, node: this.buildDeviceLevel(byTable.get(table) ?? [], measurementRoots) });
      }
    }

    const metaPos = this.position;
    if (this.version === 3) {
      this.writeNode(roots[0]?.node ?? { type: NodeType.leafDevice, entries: [], end: metaPos });
    } else {
      out.uvarint(roots.length);
      for (const r of roots) {
        out.varString(r.table);
        this.writeNode(r.node);
      }
      out.uvarint(0); // no table schemas in a tree-model file
    }
    out.int64(BigInt(metaOffset));
    out.uvarint(this.bloom.bytes.length);
    if (this.bloom.bytes.length > 0) out.bytes(this.bloom.bytes).uvarint(this.bloom.bitCount).uvarint(this.bloom.hashCount);
    if (this.version === 4) {
      out.varint(V4_PROPERTIES.length); // zigzag, as the Java writer does (§5.3)
      for (const [k, v] of V4_PROPERTIES) out.varString(k).varString(v);
    }
    out.int32(this.position - metaPos);
    out.bytes(MAGIC);
    this.summary = { size: this.position, metaOffset, devices: devices.length, series: seriesCount, chunks: this.chunkCount };
    return this.summary;
  }

  /** The device's TimeseriesMetadata records, sorted by name; returns its (not yet written) measurement root. */
  private writeTimeseriesMetadata(device: DeviceIndex): IndexNode {
    const out = this.out;
    const queue: IndexNode[] = [];
    let leaf: IndexNode = { type: NodeType.leafMeasurement, entries: [], end: 0 };
    const series = [...device.series.values()].sort((a, b) => compareJavaStrings(a.name, b.name));
    series.forEach((s, i) => {
      if (i % MAX_DEGREE_OF_INDEX_NODE === 0) {
        if (leaf.entries.length >= MAX_DEGREE_OF_INDEX_NODE) {
          leaf.end = this.position;
          queue.push(leaf);
          leaf = { type: NodeType.leafMeasurement, entries: [], end: 0 };
        }
        leaf.entries.push({ key: s.name, offset: this.position });
      }
      const multiChunk = s.chunks > 1;
      const metadata = s.chunkMetadata.toBytes();
      const list = multiChunk ? metadata : metadata.subarray(0, 8);
      out
        .u8(multiChunk ? 1 : 0)
        .varString(s.name)
        .u8(dataTypeCode(s.dataType))
        .uvarint(list.length);
      writeStatistics(out, s.statistics);
      out.bytes(list);
    });
    leaf.end = this.position;
    queue.push(leaf);
    return this.generateRoot(queue, NodeType.internalMeasurement);
  }

  /** `MetadataIndexConstructor.checkAndBuildLevelIndex`: one LEAF_DEVICE, or leaves under INTERNAL_DEVICE nodes. */
  private buildDeviceLevel(devices: readonly DeviceIndex[], measurementRoots: Map<DeviceIndex, IndexNode>): IndexNode {
    const queue: IndexNode[] = [];
    let leaf: IndexNode = { type: NodeType.leafDevice, entries: [], end: 0 };
    const few = devices.length <= MAX_DEGREE_OF_INDEX_NODE;
    for (const d of devices) {
      if (!few && leaf.entries.length >= MAX_DEGREE_OF_INDEX_NODE) {
        leaf.end = this.position;
        queue.push(leaf);
        leaf = { type: NodeType.leafDevice, entries: [], end: 0 };
      }
      leaf.entries.push({ key: d, offset: this.position });
      const root = measurementRoots.get(d);
      if (root) this.writeNode(root);
    }
    leaf.end = this.position;
    if (few) return leaf;
    queue.push(leaf);
    const root = this.generateRoot(queue, NodeType.internalDevice);
    root.end = this.position;
    return root;
  }

  /** `MetadataIndexConstructor.generateRootNode`: write full levels until one node is left, and return it unwritten. */
  private generateRoot(queue: IndexNode[], type: number): IndexNode {
    let level = queue;
    while (level.length !== 1) {
      const next: IndexNode[] = [];
      let current: IndexNode = { type, entries: [], end: 0 };
      for (const node of level) {
        if (current.entries.length >= MAX_DEGREE_OF_INDEX_NODE) {
          current.end = this.position;
          next.push(current);
          current = { type, entries: [], end: 0 };
        }
        const first = node.entries[0];
        if (!first) throw new Error("internal error: empty index node");
        current.entries.push({ key: first.key, offset: this.position });
        this.writeNode(node);
      }
      current.end = this.position;
      next.push(current);
      level = next;
    }
    const root = level[0];
    if (!root) throw new Error("internal error: empty index level");
    return root;
  }

  private writeNode(node: IndexNode): void {
    const out = this.out;
    out.uvarint(node.entries.length);
    for (const e of node.entries) {
      if (typeof e.key === "string") out.varString(e.key);
      else if (this.version === 3) out.deviceIdV3(e.key.path);
      else out.deviceIdV4(e.key.segments);
      out.int64(BigInt(e.offset));
    }
    out.int64(BigInt(node.end)).u8(node.type);
  }
}

// ── public writers ──────────────────────────────────────────────────────────────────────────────────

/** A whole small TsFile in memory: one chunk group per device, one chunk per series, in spec order. */
export function writeTsFileBytes(spec: TsFileSpec, options: TsFileWriterOptions = {}): Uint8Array {
  const encoder = new TsFileEncoder(options);
  for (const device of spec.devices) encoder.chunkGroup(device.path, device.measurements.map(prepareChunk));
  encoder.finish();
  return encoder.take();
}

/** Receives the file in order; a piece is never modified after it is handed over. */
export type TsFileSink = (piece: Uint8Array) => Promise<void>;

export interface TsFileStreamWriterOptions extends TsFileWriterOptions {
  /** Pieces are handed to the sink once this many bytes are pending (default 1 MiB). */
  readonly bufferBytes?: number;
}

/**
 * Writes a TsFile of any size through an async sink. Only the index (one ChunkMetadata per chunk) stays
 * in memory. A device may get many chunk groups; each series' chunks must follow each other in time.
 * Calls must not overlap: await each one.
 */
export class TsFileStreamWriter {
  private readonly encoder: TsFileEncoder;
  private readonly bufferBytes: number;
  private busy = false;

  constructor(
    private readonly sink: TsFileSink,
    options: TsFileStreamWriterOptions = {},
  ) {
    this.encoder = new TsFileEncoder(options);
    this.bufferBytes = options.bufferBytes ?? 1 << 20;
  }

  get version(): 3 | 4 {
    return this.encoder.version;
  }

  /** Bytes produced so far, including those not yet handed to the sink. */
  get bytesWritten(): number {
    return this.encoder.position;
  }

  get indexBytesEstimate(): number {
    return this.encoder.indexBytesEstimate;
  }

  writeChunkGroup(devicePath: string, measurements: readonly MeasurementSpec[]): Promise<void> {
    return this.writePreparedChunkGroup(devicePath, measurements.map(prepareChunk));
  }

  async writePreparedChunkGroup(devicePath: string, chunks: readonly PreparedChunk[]): Promise<void> {
    await this.exclusive(async () => {
      this.encoder.chunkGroup(devicePath, chunks);
      if (this.encoder.pending >= this.bufferBytes) await this.sink(this.encoder.take());
    });
  }

  /** Writes the index and the tail, and hands over the rest. */
  async close(): Promise<TsFileWriteSummary> {
    return this.exclusive(async () => {
      const summary = this.encoder.finish();
      while (this.encoder.pending > 0) await this.sink(this.encoder.take());
      return summary;
    });
  }

  private async exclusive<T>(f: () => Promise<T>): Promise<T> {
    if (this.busy) throw new Error("TsFileStreamWriter: the previous call has not finished; await it first");
    this.busy = true;
    try {
      return await f();
    } finally {
      this.busy = false;
    }
  }
}

// ── deterministic test-data generator ───────────────────────────────────────────────────────────────

export interface GenerateTsFileOptions {
  /** The file ends up within a few percent of this size (at least one chunk group per device). */
  readonly targetBytes: number;
  readonly devices?: number;
  readonly seed?: number;
  readonly version?: 3 | 4;
  readonly bufferBytes?: number;
}

/** mulberry32: tiny, fast, and identical on every platform, so a seed always gives the same file. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const GENERATED_SERIES: readonly { readonly name: string; readonly dataType: WritableDataType }[] = [
  { name: "s_bool", dataType: "BOOLEAN" },
  { name: "s_double", dataType: "DOUBLE" },
  { name: "s_float", dataType: "FLOAT" },
  { name: "s_int", dataType: "INT32" },
  { name: "s_long", dataType: "INT64" },
  { name: "s_text", dataType: "TEXT" },
];

function randomColumn(dataType: WritableDataType, count: number, random: () => number): ValueColumn {
  let walk = Math.round(random() * 1000);
  const next = (): number => (walk += Math.round((random() - 0.5) * 20));
  switch (dataType) {
    case "BOOLEAN":
      return { dataType, values: Array.from({ length: count }, () => random() < 0.5) };
    case "INT32":
      return { dataType, values: Array.from({ length: count }, next) };
    case "INT64":
      return { dataType, values: Array.from({ length: count }, () => 1_000_000_000_000n + BigInt(next())) };
    case "FLOAT":
    case "DOUBLE":
      return { dataType, values: Array.from({ length: count }, () => next() / 8 + random()) };
    case "TEXT":
      return { dataType, values: Array.from({ length: count }, () => `v${Math.floor(random() * 1e9).toString(36)}`) };
  }
}

export const generatedDevicePath = (i: number): string => `root.sg${i % 2}.d${String(i).padStart(4, "0")}`;

const MAX_POINTS_PER_CHUNK = 4096;
const VALUE_POOL_SIZE = 4;

/**
 * Streams a valid TsFile of about `targetBytes` with pseudo-random data from `seed`: every device gets the six
 * GENERATED_SERIES, chunk group after chunk group, so big files have many chunks per series. Value pages are
 * drawn from a small pool per series so that gigabytes cost little CPU; times are fresh for every chunk.
 */
export async function generateTsFile(sink: TsFileSink, options: GenerateTsFileOptions): Promise<TsFileWriteSummary> {
  const { targetBytes } = options;
  const deviceCount = options.devices ?? 10;
  if (!Number.isSafeInteger(targetBytes) || targetBytes < 0)
    throw new RangeError(`targetBytes must be a non-negative integer, got ${targetBytes}`);
  if (!Number.isSafeInteger(deviceCount) || deviceCount < 1) throw new RangeError(`devices must be a positive integer, got ${deviceCount}`);
  const random = seededRandom(options.seed ?? 1);
  const writer = new TsFileStreamWriter(sink, {
    ...(options.version === undefined ? {} : { version: options.version }),
    ...(options.bufferBytes === undefined ? {} : { bufferBytes: options.bufferBytes }),
  });

  // Aim at about four chunk groups per device so that series get several chunks even in small files.
  const points = Math.max(1, Math.min(MAX_POINTS_PER_CHUNK, Math.floor(targetBytes / (deviceCount * 36 * 4))));
  const pools = GENERATED_SERIES.map((s) =>
    Array.from({ length: VALUE_POOL_SIZE }, () => encodeValues(randomColumn(s.dataType, points, random))),
  );
  const rowBytes = 0.5 + pools.reduce((sum, pool) => sum + (pool[0]?.bytes.length ?? 0) / points, 0);
  const chunkGroupOverhead = GENERATED_SERIES.length * 100;
  const nextTime = Array.from({ length: deviceCount }, (_, i) => 1_700_000_000_000 + i * 7);

  for (let round = 0; ; round++) {
    for (let d = 0; d < deviceCount; d++) {
      const projected = writer.bytesWritten + writer.indexBytesEstimate + chunkGroupOverhead;
      if (round > 0 && projected >= targetBytes) return writer.close();
      const rows = Math.max(1, Math.min(points, Math.ceil((targetBytes - projected) / rowBytes)));
      const start = nextTime[d] ?? 0;
      const step = [10, 20, 50, 100, 1000][Math.floor(random() * 5)] ?? 1000;
      const times = random() < 0.25 ? jitteredTimes(start, step, rows, random) : encodeRegularTimestamps(BigInt(start), BigInt(step), rows);
      nextTime[d] = Number(times.end) + step + Math.floor(random() * 1000);
      const chunks = GENERATED_SERIES.map((s, i): PreparedChunk => {
        const pooled = pools[i]?.[Math.floor(random() * VALUE_POOL_SIZE)];
        const values = rows === points && pooled ? pooled : encodeValues(randomColumn(s.dataType, rows, random));
        return { name: s.name, times, values };
      });
      await writer.writePreparedChunkGroup(generatedDevicePath(d), chunks);
    }
  }
}

function jitteredTimes(start: number, step: number, count: number, random: () => number): EncodedTimes {
  const times = new Float64Array(count);
  // A jitter below one step keeps the times strictly increasing.
  for (let k = 0; k < count; k++) times[k] = start + k * step + Math.floor((random() * step) / 2);
  return encodeTimestampNumbers(times);
}
