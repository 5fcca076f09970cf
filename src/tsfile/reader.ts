// Validating TsFile v3/v4 reader (docs/tsfile-format.md §3, §5, §5.4). It reads the 7 head bytes, the 10 tail
// bytes, the TsFileMetadata block and the index section, never the data section, and it never asks the
// source for a byte outside [0, size).

import {
  ByteReader,
  DATA_TYPES,
  MAGIC,
  Marker,
  NodeType,
  TsFileFormatError,
  deviceIdToString,
  type DeviceSegments,
  type TsDataType,
} from "./bytes.js";

/** Random access to a file's bytes; the reader never needs the whole file. */
export interface TsFileSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface TsFileMeasurement {
  readonly name: string;
  readonly dataType: TsDataType;
}

export interface TsFileDevice {
  /** Segments joined by "." (v3: the path as stored). */
  readonly id: string;
  /** v4: the stored segments; v3: the path as its only segment. */
  readonly segments: DeviceSegments;
  /** v4: the table (tree model: the path prefix) whose index holds the device. */
  readonly table?: string;
  /** Has an aligned time or value column. The time column itself is not listed as a measurement. */
  readonly aligned: boolean;
  /** null when every series of the device is empty. */
  readonly startTime: bigint | null;
  readonly endTime: bigint | null;
  readonly measurements: readonly TsFileMeasurement[];
}

export type ColumnCategory = "TAG" | "FIELD" | "ATTRIBUTE" | "UNKNOWN";

export interface TsFileColumnSchema {
  readonly name: string | null;
  readonly dataType: TsDataType | "UNKNOWN";
  readonly category: ColumnCategory;
  /** As stored, also when unknown: newer writers may add categories. */
  readonly categoryCode: number;
}

export interface TsFileTableSchema {
  readonly name: string | null;
  readonly columns: readonly TsFileColumnSchema[];
}

export interface TsFileInfo {
  readonly version: 3 | 4;
  readonly size: number;
  /** Offset of the SEPARATOR: the data section is [7, metaOffset). */
  readonly metaOffset: number;
  readonly devices: readonly TsFileDevice[];
  /** v4 only: table-model schemas (empty for tree-model files). */
  readonly tables?: readonly TsFileTableSchema[];
}

export interface TsFileTail {
  readonly version: 3 | 4;
  readonly size: number;
  /** Start of the TsFileMetadata block, which ends at size − 10. */
  readonly metaPos: number;
  readonly metaSize: number;
}

const HEAD_SIZE = MAGIC.length + 1;
const TAIL_SIZE = 4 + MAGIC.length;
/** A real index tree is a few levels deep; anything deeper is corrupt and must not blow the stack. */
const MAX_INDEX_DEPTH = 32;

/** Reads `[offset, offset+length)`, refusing any range outside the file and any short answer. */
async function readRange(source: TsFileSource, offset: number, length: number, what: string): Promise<ByteReader> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new TsFileFormatError(`${what} [${offset}, ${offset + length}) lies outside the file (size ${source.size})`, offset);
  }
  const bytes = length === 0 ? new Uint8Array() : await source.read(offset, length);
  if (bytes.length !== length) {
    throw new TsFileFormatError(`short read of ${what} at offset ${offset}: got ${bytes.length} of ${length} bytes (file changed?)`, offset);
  }
  return new ByteReader(bytes, offset);
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The cheap check (§3 steps 1–4, 17 bytes): head magic and version, tail magic, metadata size. It says the file
 * is a sealed v3/v4 TsFile, not that its index is intact; `readTsFile` checks that.
 */
export async function readTsFileTail(source: TsFileSource): Promise<TsFileTail> {
  const size = source.size;
  if (!Number.isSafeInteger(size) || size < 2 * MAGIC.length + 1) {
    throw new TsFileFormatError(`file too short: ${size} bytes, a sealed TsFile has at least ${2 * MAGIC.length + 1}`, 0);
  }
  const head = await readRange(source, 0, HEAD_SIZE, "head");
  if (!sameBytes(head.bytesOf(MAGIC.length), MAGIC)) throw new TsFileFormatError("not a TsFile (bad head magic)", 0);
  const versionByte = head.u8();
  // A 12-byte legacy signature continues with ASCII "000001"/"000002" or "v0.x.y" here.
  if (versionByte === 0x30 || versionByte === 0x76) {
    throw new TsFileFormatError("legacy TsFile format v0.x/v1/v2 is not supported", MAGIC.length);
  }
  if (versionByte !== 3 && versionByte !== 4) throw new TsFileFormatError(`unsupported version ${versionByte}`, MAGIC.length);

  const tail = await readRange(source, size - TAIL_SIZE, TAIL_SIZE, "tail");
  const metaSize = tail.int32("metadata size");
  if (!sameBytes(tail.bytesOf(MAGIC.length), MAGIC)) {
    throw new TsFileFormatError("missing tail magic: file is unsealed or truncated", size - MAGIC.length);
  }
  const metaPos = size - TAIL_SIZE - metaSize;
  // The data section holds at least the SEPARATOR, so the metadata starts after byte 7.
  if (metaSize <= 0 || metaPos <= HEAD_SIZE) {
    throw new TsFileFormatError(`metadata size ${metaSize} out of range for a file of ${size} bytes`, size - TAIL_SIZE);
  }
  return { version: versionByte, size, metaPos, metaSize };
}

// ── TsFileMetadata (§5.3) ─────────────────────────────────────────────────────────────────────────────

export interface BloomFilterInfo {
  readonly bytes: Uint8Array;
  readonly bitCount: number;
  readonly hashCount: number;
}

export interface TsFileMetadataBlock {
  /** v3: one root with table null; v4: one root per table. */
  readonly roots: readonly { readonly table: string | null; readonly offset: number; readonly node: IndexNode }[];
  readonly tables: readonly TsFileTableSchema[];
  readonly metaOffset: number;
  /** null when the stored filter has length 0. */
  readonly bloom: BloomFilterInfo | null;
  readonly properties: ReadonlyMap<string | null, string | null>;
}

export type IndexEntry = { readonly key: string | DeviceSegments | null; readonly offset: number };

export interface IndexNode {
  readonly type: number;
  readonly entries: readonly IndexEntry[];
  readonly endOffset: number;
}

type NodeLevel = "device" | "measurement";

function readOffset(r: ByteReader, what: string): number {
  const at = r.offset;
  const v = r.int64(what);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TsFileFormatError(`${what} ${v} out of range at offset ${at}`, at);
  return Number(v);
}

/** The type byte comes last, so the caller says which level it expects (§5.2). */
function readIndexNode(r: ByteReader, version: 3 | 4, level: NodeLevel): IndexNode {
  const start = r.offset;
  const count = r.uvarint("index node child count");
  const entries: IndexEntry[] = [];
  for (let i = 0; i < count; i++) {
    const key = level === "measurement" ? r.varString("index entry name") : version === 3 ? r.deviceIdV3() : r.deviceIdV4();
    entries.push({ key, offset: readOffset(r, "index node offset") });
  }
  const endOffset = readOffset(r, "index node end offset");
  const typeAt = r.offset;
  const type = r.u8("index node type");
  const allowed: readonly number[] = level === "device"
    ? [NodeType.internalDevice, NodeType.leafDevice]
    : [NodeType.internalMeasurement, NodeType.leafMeasurement];
  if (!allowed.includes(type)) {
    throw new TsFileFormatError(`index node at offset ${start} has type ${type}, expected a ${level}-level node`, typeAt);
  }
  return { type, entries, endOffset };
}

const COLUMN_CATEGORIES: readonly ColumnCategory[] = ["TAG", "FIELD", "ATTRIBUTE"];

function readTableSchema(r: ByteReader, name: string | null): TsFileTableSchema {
  const count = r.uvarint("table column count");
  const columns: TsFileColumnSchema[] = [];
  for (let i = 0; i < count; i++) {
    const columnName = r.intString("column name");
    const typeCode = r.u8("column data type");
    r.skip(2, "column encoding and compression");
    const propertyCount = r.int32("column property count");
    for (let p = 0; p < propertyCount; p++) {
      r.intString("column property key");
      r.intString("column property value");
    }
    const categoryCode = r.int32("column category");
    columns.push({
      name: columnName,
      dataType: DATA_TYPES[typeCode] ?? "UNKNOWN",
      category: COLUMN_CATEGORIES[categoryCode] ?? "UNKNOWN",
      categoryCode,
    });
  }
  return { name, columns };
}

/** Parses `[metaPos, size − 10)`; `r` must start at metaPos and end where the block ends. */
export function parseTsFileMetadata(r: ByteReader, version: 3 | 4): TsFileMetadataBlock {
  const roots: { table: string | null; offset: number; node: IndexNode }[] = [];
  const tables: TsFileTableSchema[] = [];
  if (version === 3) {
    const offset = r.offset;
    roots.push({ table: null, offset, node: readIndexNode(r, 3, "device") });
  } else {
    const tableCount = r.uvarint("table count");
    for (let i = 0; i < tableCount; i++) {
      const table = r.varString("table name");
      const offset = r.offset;
      roots.push({ table, offset, node: readIndexNode(r, 4, "device") });
    }
    const schemaCount = r.uvarint("table schema count");
    for (let i = 0; i < schemaCount; i++) tables.push(readTableSchema(r, r.varString("table name")));
  }
  const metaOffset = readOffset(r, "metadata offset");
  const bloomLength = r.uvarint("bloom filter length");
  let bloom: BloomFilterInfo | null = null;
  if (bloomLength > 0) {
    const bytes = r.bytesOf(bloomLength, "bloom filter");
    bloom = { bytes, bitCount: r.uvarint("bloom filter bit count"), hashCount: r.uvarint("bloom filter hash count") };
  }
  const properties = new Map<string | null, string | null>();
  if (version === 4 && r.remaining > 0) {
    // The Java writer writes a zigzag count and its reader reads it unsigned (§5.3). An even byte is a
    // zigzag count ≥ 0; an odd one would be negative as zigzag, so take it as an unsigned count. Either way
    // the end of the block bounds the loop.
    const raw = r.uvarint("property count");
    const count = raw & 1 ? raw : raw >>> 1;
    for (let i = 0; i < count && r.remaining > 0; i++) properties.set(r.varString("property key"), r.varString("property value"));
  }
  if (r.remaining > 0) {
    throw new TsFileFormatError(`${r.remaining} unexpected bytes at the end of the TsFileMetadata at offset ${r.offset}`, r.offset);
  }
  return { roots, tables, metaOffset, bloom, properties };
}

// ── TimeseriesMetadata and statistics (§5.1, §6) ──────────────────────────────────────────────────────

interface TimeRange {
  readonly count: number;
  readonly start: bigint;
  readonly end: bigint;
}

/** Reads the common header and skips the type-specific part; that part's size depends on the type. */
function readStatistics(r: ByteReader, dataType: TsDataType): TimeRange {
  const count = r.uvarint("statistics count");
  const start = r.int64("statistics start time");
  const end = r.int64("statistics end time");
  switch (dataType) {
    case "BOOLEAN":
      r.skip(1 + 1 + 8, "BOOLEAN statistics");
      break;
    case "INT32":
    case "DATE":
      r.skip(4 * 4 + 8, `${dataType} statistics`);
      break;
    case "INT64":
    case "TIMESTAMP":
      r.skip(8 * 4 + 8, `${dataType} statistics`);
      break;
    case "FLOAT":
      r.skip(4 * 4 + 8, "FLOAT statistics");
      break;
    case "DOUBLE":
      r.skip(8 * 5, "DOUBLE statistics");
      break;
    case "TEXT":
      for (let i = 0; i < 2; i++) r.intBytes("TEXT statistics value");
      break;
    case "STRING":
      for (let i = 0; i < 4; i++) r.intBytes("STRING statistics value");
      break;
    case "BLOB":
    case "VECTOR":
      break;
    case "UNKNOWN":
      throw new TsFileFormatError(`statistics of data type UNKNOWN at offset ${r.offset} cannot be read`, r.offset);
  }
  return { count, start, end };
}

interface SeriesRecord {
  readonly name: string;
  readonly dataType: TsDataType;
  readonly isTimeColumn: boolean;
  readonly isValueColumn: boolean;
  readonly range: TimeRange;
}

const TIME_COLUMN_FLAG = 0x80;
const VALUE_COLUMN_FLAG = 0x40;
const CHUNK_COUNT_MASK = 0x3f;

function readTimeseriesMetadata(r: ByteReader, end: number, metaOffset: number): SeriesRecord {
  const start = r.offset;
  const type = r.u8("TimeseriesMetadata type");
  const name = r.varString("measurement name");
  if (name === null) throw new TsFileFormatError(`null measurement name in TimeseriesMetadata at offset ${start}`, start);
  const typeAt = r.offset;
  const code = r.u8("data type");
  const dataType = DATA_TYPES[code];
  if (dataType === undefined) throw new TsFileFormatError(`unknown data type code ${code} at offset ${typeAt}`, typeAt);
  const listSize = r.uvarint("chunk metadata list size");
  const range = readStatistics(r, dataType);
  const listStart = r.offset;
  if (listStart + listSize > end) {
    throw new TsFileFormatError(`chunk metadata list of "${name}" at offset ${listStart} runs past its index range end ${end}`, listStart);
  }
  // Each entry is a chunk header offset, plus that chunk's statistics when the series has several chunks.
  const withStatistics = (type & CHUNK_COUNT_MASK) !== 0;
  while (r.offset < listStart + listSize) {
    const at = r.offset;
    const chunkOffset = readOffset(r, "chunk header offset");
    if (chunkOffset < HEAD_SIZE || chunkOffset >= metaOffset) {
      throw new TsFileFormatError(`chunk header offset ${chunkOffset} of "${name}" at offset ${at} is outside the data section`, at);
    }
    if (withStatistics) readStatistics(r, dataType);
  }
  if (r.offset !== listStart + listSize) {
    throw new TsFileFormatError(`chunk metadata list of "${name}" at offset ${listStart} does not end at its declared size ${listSize}`, listStart);
  }
  return {
    name,
    dataType,
    isTimeColumn: (type & TIME_COLUMN_FLAG) !== 0 || dataType === "VECTOR",
    isValueColumn: (type & VALUE_COLUMN_FLAG) !== 0,
    range,
  };
}

// ── walking the index tree (§5.2, §5.4) ───────────────────────────────────────────────────────────────

/** A run of TimeseriesMetadata records pointed at by one LEAF_MEASUREMENT entry. */
interface SeriesRun {
  readonly start: number;
  readonly end: number;
  readonly firstName: string | null;
  readonly device: number;
}

interface DeviceRef {
  readonly segments: DeviceSegments;
  readonly table: string | null;
}

class IndexWalker {
  readonly devices: DeviceRef[] = [];
  readonly runs: SeriesRun[] = [];
  private readonly visited = new Set<number>();

  constructor(
    private readonly index: ByteReader,
    private readonly version: 3 | 4,
    private readonly metaOffset: number,
  ) {}

  /** Children live before their parent and after the SEPARATOR (children are written first). */
  private childNode(offset: number, parentStart: number, level: NodeLevel, depth: number): IndexNode {
    if (offset <= this.metaOffset || offset >= parentStart) {
      throw new TsFileFormatError(`index node offset ${offset} out of range (${this.metaOffset}, ${parentStart})`, offset);
    }
    if (depth > MAX_INDEX_DEPTH) throw new TsFileFormatError(`index tree deeper than ${MAX_INDEX_DEPTH} levels at offset ${offset}`, offset);
    // Offsets only decrease downwards, so there are no cycles; this also rules out shared subtrees.
    if (this.visited.has(offset)) throw new TsFileFormatError(`index node at offset ${offset} is referenced twice`, offset);
    this.visited.add(offset);
    this.index.seek(offset, "index node offset");
    const node = readIndexNode(this.index, this.version, level);
    // Only a root may be empty (a file without devices); an empty child would mean a dangling branch.
    if (node.entries.length === 0) throw new TsFileFormatError(`index node at offset ${offset} has no entries`, offset);
    return node;
  }

  private checkEntries(node: IndexNode, nodeStart: number): void {
    let previous = this.metaOffset;
    for (const e of node.entries) {
      if (e.offset <= previous || e.offset >= nodeStart) {
        throw new TsFileFormatError(`index node offset ${e.offset} out of range in the node at offset ${nodeStart}`, nodeStart);
      }
      previous = e.offset;
    }
    if (node.endOffset <= previous || node.endOffset > nodeStart) {
      throw new TsFileFormatError(`index node end offset ${node.endOffset} out of range in the node at offset ${nodeStart}`, nodeStart);
    }
  }

  deviceLevel(node: IndexNode, nodeStart: number, table: string | null, depth: number): void {
    this.checkEntries(node, nodeStart);
    for (const e of node.entries) {
      if (node.type === NodeType.internalDevice) {
        this.deviceLevel(this.childNode(e.offset, nodeStart, "device", depth + 1), e.offset, table, depth + 1);
        continue;
      }
      const segments = typeof e.key === "string" ? [e.key] : e.key;
      if (segments === null) throw new TsFileFormatError(`null device id in the index node at offset ${nodeStart}`, nodeStart);
      this.devices.push({ segments, table });
      const device = this.devices.length - 1;
      this.measurementLevel(this.childNode(e.offset, nodeStart, "measurement", depth + 1), e.offset, device, depth + 1);
    }
  }

  private measurementLevel(node: IndexNode, nodeStart: number, device: number, depth: number): void {
    this.checkEntries(node, nodeStart);
    node.entries.forEach((e, i) => {
      if (node.type === NodeType.internalMeasurement) {
        this.measurementLevel(this.childNode(e.offset, nodeStart, "measurement", depth + 1), e.offset, device, depth + 1);
      } else {
        const end = node.entries[i + 1]?.offset ?? node.endOffset;
        this.runs.push({ start: e.offset, end, firstName: typeof e.key === "string" ? e.key : null, device });
      }
    });
  }
}

function summarizeDevice(ref: DeviceRef, records: readonly SeriesRecord[], version: 3 | 4): TsFileDevice {
  const timeColumn = records.find((s) => s.isTimeColumn && s.range.count > 0);
  // Empty series carry start = Long.MAX_VALUE and end = Long.MIN_VALUE: they must not widen the range.
  const ranged = timeColumn ? [timeColumn] : records.filter((s) => s.range.count > 0);
  let startTime: bigint | null = null;
  let endTime: bigint | null = null;
  for (const s of ranged) {
    if (startTime === null || s.range.start < startTime) startTime = s.range.start;
    if (endTime === null || s.range.end > endTime) endTime = s.range.end;
  }
  return {
    id: deviceIdToString(ref.segments),
    segments: ref.segments,
    ...(version === 4 && ref.table !== null ? { table: ref.table } : {}),
    aligned: records.some((s) => s.isTimeColumn || s.isValueColumn),
    startTime,
    endTime,
    measurements: records.filter((s) => !s.isTimeColumn).map((s) => ({ name: s.name, dataType: s.dataType })),
  };
}

export interface ReadTsFileOptions {
  /**
   * Largest index section read in one piece (default 512 MiB). Real indexes are a tiny fraction of the file;
   * the limit keeps a corrupt metadata offset from pulling gigabytes of data section into memory.
   */
  readonly maxIndexBytes?: number;
}

const DEFAULT_MAX_INDEX_BYTES = 512 * 2 ** 20;

/**
 * Validates a TsFile and lists its devices, their time ranges and measurements. Rejects with a
 * TsFileFormatError whose `reason` says what is wrong; any other rejection comes from the source itself.
 */
export async function readTsFile(source: TsFileSource, options: ReadTsFileOptions = {}): Promise<TsFileInfo> {
  const tail = await readTsFileTail(source);
  const { version, size, metaPos, metaSize } = tail;
  const meta = parseTsFileMetadata(await readRange(source, metaPos, metaSize, "TsFileMetadata"), version);
  const { metaOffset } = meta;
  if (metaOffset < HEAD_SIZE || metaOffset >= metaPos) {
    throw new TsFileFormatError(`metadata offset ${metaOffset} out of range [${HEAD_SIZE}, ${metaPos})`, metaPos);
  }
  const maxIndexBytes = options.maxIndexBytes ?? DEFAULT_MAX_INDEX_BYTES;
  if (metaPos - metaOffset > maxIndexBytes) {
    throw new TsFileFormatError(`index section of ${metaPos - metaOffset} bytes at offset ${metaOffset} exceeds the limit of ${maxIndexBytes} bytes`, metaOffset);
  }
  const index = await readRange(source, metaOffset, metaPos - metaOffset, "index section");
  const separator = index.u8();
  if (separator !== Marker.separator) {
    throw new TsFileFormatError(`metadata offset ${metaOffset} does not point at a separator (found 0x${separator.toString(16).padStart(2, "0")})`, metaOffset);
  }

  const walker = new IndexWalker(index, version, metaOffset);
  for (const root of meta.roots) walker.deviceLevel(root.node, metaPos, root.table, 0);

  // Runs must not overlap: that bounds the work by the index size, whatever the offsets say.
  const runs = [...walker.runs].sort((a, b) => a.start - b.start);
  const records: SeriesRecord[][] = walker.devices.map(() => []);
  let previousEnd = metaOffset + 1;
  for (const run of runs) {
    if (run.start < previousEnd) throw new TsFileFormatError(`index ranges overlap at offset ${run.start}`, run.start);
    previousEnd = run.end;
    index.seek(run.start, "TimeseriesMetadata offset");
    let first = true;
    while (index.offset < run.end) {
      const at = index.offset;
      const record = readTimeseriesMetadata(index, run.end, metaOffset);
      if (index.offset > run.end) throw new TsFileFormatError(`TimeseriesMetadata at offset ${at} runs past its index range end ${run.end}`, at);
      if (first && run.firstName !== null && record.name !== run.firstName) {
        throw new TsFileFormatError(`index entry "${run.firstName}" points at TimeseriesMetadata "${record.name}" at offset ${at}`, at);
      }
      first = false;
      records[run.device]?.push(record);
    }
  }

  const devices = walker.devices.map((ref, i) => summarizeDevice(ref, records[i] ?? [], version));
  return { version, size, metaOffset, devices, ...(version === 4 ? { tables: meta.tables } : {}) };
}
