// Validating TsFile v3/v4 reader (docs/tsfile-format.md §3, §5, §5.4). It reads the 7 head bytes, the 10 tail
// bytes, the TsFileMetadata block and the index section (in bounded windows), never the data section, and it
// never asks the source for a byte outside [0, size). A sender chooses what it sends, so the options bound
// what a file may make the reader keep, and each bound is checked before what it counts is read.

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

/** The budgets of `ReadTsFileOptions`, by what they count. */
export type TsFileLimit = "indexBytes" | "devices" | "deviceIdBytes" | "series" | "recordBytes";

const OPTION_OF_LIMIT: Readonly<Record<TsFileLimit, string>> = {
  indexBytes: "maxIndexBytes",
  devices: "maxDevices",
  deviceIdBytes: "maxDeviceIdBytes",
  series: "maxSeries",
  recordBytes: "maxRecordBytes",
};

/**
 * A file refused for being larger than the reader was allowed to take on, not (as far as it was read) for
 * being malformed. `subject` says what the file holds ("index lists at least 1500000 devices") so that a
 * caller can word the refusal with its own name for the setting behind `limit`.
 */
export class TsFileLimitError extends TsFileFormatError {
  constructor(
    readonly limit: TsFileLimit,
    readonly subject: string,
    readonly max: number,
    offset?: number,
    reason = `${subject}; the limit is ${max} (${OPTION_OF_LIMIT[limit]})`,
  ) {
    super(reason, offset);
  }
}

/** The count-based budgets; undefined means no limit. */
export interface TsFileIndexLimits {
  readonly maxDevices?: number | undefined;
  readonly maxDeviceIdBytes?: number | undefined;
  readonly maxSeries?: number | undefined;
}

/**
 * Counts what the index walk keeps. Each check runs before what it counts is read or allocated: a node's
 * declared child count is a lower bound on what lies below it (the walk refuses empty nodes), so a node
 * that would go over the budget is refused before its first entry.
 */
class IndexBudget {
  private devices = 0;
  private deviceIdBytes = 0;
  private series = 0;

  constructor(private readonly limits: TsFileIndexLimits) {}

  expectDevices(count: number, at: number): void {
    const max = this.limits.maxDevices;
    if (max !== undefined && this.devices + count > max) {
      throw new TsFileLimitError("devices", `index lists at least ${this.devices + count} devices`, max, at);
    }
  }

  addDevice(idBytes: number, at: number): void {
    this.expectDevices(1, at);
    this.devices++;
    this.deviceIdBytes += idBytes;
    const max = this.limits.maxDeviceIdBytes;
    if (max !== undefined && this.deviceIdBytes > max) {
      throw new TsFileLimitError("deviceIdBytes", `device ids in the index take at least ${this.deviceIdBytes} bytes`, max, at);
    }
  }

  expectSeries(count: number, at: number): void {
    const max = this.limits.maxSeries;
    if (max !== undefined && this.series + count > max) {
      throw new TsFileLimitError("series", `index lists at least ${this.series + count} time series`, max, at);
    }
  }

  addSeries(at: number): void {
    this.expectSeries(1, at);
    this.series++;
  }
}

/** Reads `[offset, offset+length)`, refusing any range outside the file and any short answer. */
async function readRange(source: TsFileSource, offset: number, length: number, what: string): Promise<ByteReader> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new TsFileFormatError(`${what} [${offset}, ${offset + length}) lies outside the file (size ${source.size})`, offset);
  }
  const bytes = length === 0 ? new Uint8Array() : await source.read(offset, length);
  if (bytes.length !== length) {
    throw new TsFileFormatError(
      `short read of ${what} at offset ${offset}: got ${bytes.length} of ${length} bytes (file changed?)`,
      offset,
    );
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

const readIndexKey = (r: ByteReader, version: 3 | 4, level: NodeLevel): IndexEntry["key"] =>
  level === "measurement" ? r.varString("index entry name") : version === 3 ? r.deviceIdV3() : r.deviceIdV4();

/** The type byte comes last, so the caller says which level it expects (§5.2). */
function readIndexNode(r: ByteReader, version: 3 | 4, level: NodeLevel, checkCount?: (count: number) => void): IndexNode {
  const entries: IndexEntry[] = [];
  const { type, endOffset } = scanIndexNode(r, version, level, checkCount, (key, offset) => entries.push({ key, offset }));
  return { type, entries, endOffset };
}

/** Checks a var-string as `ByteReader.varString` does, without decoding it. */
function skipVarString(r: ByteReader, what: string): boolean {
  const start = r.offset;
  const len = r.varint(`${what} length`);
  if (len === -1) return false;
  if (len < 0) throw new TsFileFormatError(`invalid ${what} length ${len} at offset ${start}`, start);
  if (len > r.remaining)
    throw new TsFileFormatError(`truncated ${what} at offset ${start}: length ${len}, ${r.remaining} bytes left`, start);
  r.seek(r.offset + len, what); // no view of the bytes, unlike skip()
  return true;
}

/** `readIndexKey` for a walk that decodes the keys later, when it needs them. */
function skipIndexKey(r: ByteReader, version: 3 | 4, level: NodeLevel): void {
  if (level === "measurement") {
    skipVarString(r, "index entry name");
  } else if (version === 3) {
    const start = r.offset;
    if (!skipVarString(r, "device id")) throw new TsFileFormatError(`null device id at offset ${start}`, start);
  } else {
    const count = r.uvarint("device segment count");
    for (let i = 0; i < count; i++) skipVarString(r, "device segment");
  }
}

/**
 * Reads a node through its type byte. `checkCount` sees the declared child count before any entry is read, so
 * a budget can refuse a huge node before it costs memory; `entry` sees each entry (its key only if `decode`).
 */
function scanIndexNode(
  r: ByteReader,
  version: 3 | 4,
  level: NodeLevel,
  checkCount: ((count: number) => void) | undefined,
  entry: (key: IndexEntry["key"], offset: number) => void,
  decode = true,
): { readonly type: number; readonly count: number; readonly endOffset: number } {
  const start = r.offset;
  const count = r.uvarint("index node child count");
  checkCount?.(count);
  for (let i = 0; i < count; i++) {
    let key: IndexEntry["key"] = null;
    if (decode) key = readIndexKey(r, version, level);
    else skipIndexKey(r, version, level);
    entry(key, readOffset(r, "index node offset"));
  }
  const endOffset = readOffset(r, "index node end offset");
  const typeAt = r.offset;
  const type = r.u8("index node type");
  const allowed: readonly number[] =
    level === "device" ? [NodeType.internalDevice, NodeType.leafDevice] : [NodeType.internalMeasurement, NodeType.leafMeasurement];
  if (!allowed.includes(type)) {
    throw new TsFileFormatError(`index node at offset ${start} has type ${type}, expected a ${level}-level node`, typeAt);
  }
  return { type, count, endOffset };
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

/**
 * Parses `[metaPos, size − 10)`; `r` must start at metaPos and end where the block ends. With `limits`, the
 * roots' declared child counts are held against `maxDevices` before their entries are read.
 */
export function parseTsFileMetadata(r: ByteReader, version: 3 | 4, limits: TsFileIndexLimits = {}): TsFileMetadataBlock {
  return parseMetadataBlock(r, version, limits, (at, check) => readIndexNode(at, version, "device", check));
}

/** A root as the walk keeps it: its entries stay in the block's bytes until they are walked. */
interface StoredRoot {
  readonly type: number;
  readonly count: number;
  readonly endOffset: number;
  readonly size: number;
}

type MetadataBlock<Root> = Omit<TsFileMetadataBlock, "roots"> & {
  readonly roots: readonly { readonly table: string | null; readonly offset: number; readonly node: Root }[];
};

/** `parseTsFileMetadata` with the roots read by `readRoot`, which sees each root's declared count first. */
function parseMetadataBlock<Root>(
  r: ByteReader,
  version: 3 | 4,
  limits: TsFileIndexLimits,
  readRoot: (r: ByteReader, checkCount: (count: number) => void) => Root,
): MetadataBlock<Root> {
  const roots: { table: string | null; offset: number; node: Root }[] = [];
  const tables: TsFileTableSchema[] = [];
  const budget = new IndexBudget(limits);
  let declared = 0;
  const checkRoot = (offset: number) => (count: number) => budget.expectDevices((declared += count), offset);
  if (version === 3) {
    const offset = r.offset;
    roots.push({ table: null, offset, node: readRoot(r, checkRoot(offset)) });
  } else {
    const tableCount = r.uvarint("table count");
    for (let i = 0; i < tableCount; i++) {
      const table = r.varString("table name");
      const offset = r.offset;
      roots.push({ table, offset, node: readRoot(r, checkRoot(offset)) });
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
    throw new TsFileFormatError(
      `chunk metadata list of "${name}" at offset ${listStart} does not end at its declared size ${listSize}`,
      listStart,
    );
  }
  return {
    name,
    dataType,
    isTimeColumn: (type & TIME_COLUMN_FLAG) !== 0 || dataType === "VECTOR",
    isValueColumn: (type & VALUE_COLUMN_FLAG) !== 0,
    range,
  };
}

// ── reading the index in windows ──────────────────────────────────────────────────────────────────────

/** Bytes read at a time from the index; a record that does not fit is read again whole, up to maxRecordBytes. */
const WINDOW_BYTES = 1 << 20;
/** The walk alternates between the device nodes (late in the index) and each device's own records (early). */
const CACHED_WINDOWS = 3;

/**
 * The index section `[start, end)` read through a few bounded windows rather than in one piece, so memory follows
 * the largest record, not the index. Parsers stay synchronous: an item that runs off the end of its window is
 * parsed again from a larger one, until it fits, the window reaches the end of the index (the item really is
 * truncated) or a larger window fails the same way (its bytes are wrong).
 */
class IndexSection {
  private windows: ByteReader[] = [];

  constructor(
    private readonly source: TsFileSource,
    readonly start: number,
    readonly end: number,
    private readonly maxRecordBytes: number,
  ) {}

  /** A window already read that holds `[offset, offset + length)`, or all of it up to the end of the index. */
  private cached(offset: number, length: number): ByteReader | undefined {
    const need = Math.min(offset + length, this.end);
    const w = this.windows.find((w) => w.base <= offset && need <= w.end);
    if (w && this.windows[0] !== w) this.windows = [w, ...this.windows.filter((x) => x !== w)];
    return w;
  }

  private async load(offset: number, length: number): Promise<void> {
    const w = await readRange(this.source, offset, Math.min(this.end, offset + Math.max(length, WINDOW_BYTES)) - offset, "index section");
    this.windows = [w, ...this.windows].slice(0, CACHED_WINDOWS);
  }

  cursor(offset: number, what: string): Cursor {
    if (offset < this.start || offset >= this.end) {
      throw new TsFileFormatError(`${what} offset ${offset} lies outside the index section [${this.start}, ${this.end})`, offset);
    }
    return { at: offset, want: 1, failed: undefined };
  }

  /**
   * Parses items from `c.at` on while `more(at)` holds, from windows already read, and hands each to `take` with
   * its start and end. `take` runs once per item, outside the retry, so it may count, keep and throw. False when
   * a window must be read first (`c.want` bytes at `c.at`): `finish` does that.
   */
  drain<T>(
    c: Cursor,
    more: (at: number) => boolean,
    what: string,
    parse: (r: ByteReader) => T,
    take: (item: T, at: number, end: number) => void,
  ): boolean {
    while (more(c.at)) {
      const r = this.cached(c.at, c.want);
      if (!r) return false;
      r.seek(c.at);
      let item: T;
      try {
        item = parse(r);
      } catch (e) {
        if (!(e instanceof TsFileFormatError) || e instanceof TsFileLimitError || r.end >= this.end) throw e;
        const signature = `${e.offset}:${e.reason}`;
        if (signature === c.failed) throw e;
        c.failed = signature;
        const held = r.end - c.at;
        if (held >= this.maxRecordBytes) {
          throw new TsFileLimitError(
            "recordBytes",
            `${what} at offset ${c.at} is larger than ${this.maxRecordBytes} bytes`,
            this.maxRecordBytes,
            c.at,
          );
        }
        // A window read for this item holds WINDOW_BYTES, so each retry holds more than the last.
        c.want = held < WINDOW_BYTES ? WINDOW_BYTES : Math.min(this.maxRecordBytes, held * 4);
        continue;
      }
      const end = r.offset;
      take(item, c.at, end);
      c.at = end;
      c.want = 1;
      c.failed = undefined;
    }
    return true;
  }

  async finish<T>(
    c: Cursor,
    more: (at: number) => boolean,
    what: string,
    parse: (r: ByteReader) => T,
    take: (item: T, at: number, end: number) => void,
  ): Promise<void> {
    while (!this.drain(c, more, what, parse, take)) await this.load(c.at, c.want);
  }

  /** The item at `offset`: at once when a window already read holds it, else once one has been read. */
  one<T>(offset: number, what: string, parse: (r: ByteReader) => T): { readonly value: T } | Promise<{ readonly value: T }> {
    const r = this.windows[0];
    if (r && r.base <= offset && offset < r.end) {
      // The common case, without the cursor: the item lies in the window the walk is in.
      r.seek(offset);
      try {
        return { value: parse(r) };
      } catch (e) {
        if (!(e instanceof TsFileFormatError) || e instanceof TsFileLimitError) throw e;
      }
    }
    const c = this.cursor(offset, what);
    let got: { value: T } | undefined;
    const more = () => got === undefined;
    const take = (value: T) => void (got = { value });
    const done = (): { value: T } => got ?? { value: undefined as T }; // unreachable: drain ends only with an item
    return this.drain(c, more, what, parse, take) ? done() : this.finish(c, more, what, parse, take).then(done);
  }
}

interface Cursor {
  at: number;
  want: number;
  /** Offset and reason of the last failure, to tell a window that was too short from bytes that are wrong. */
  failed: string | undefined;
}

// ── walking the index tree (§5.2, §5.4) ───────────────────────────────────────────────────────────────

interface WalkEntry {
  readonly key: IndexEntry["key"];
  readonly offset: number;
  /** Where the child's byte range ends: the next entry's offset, or the node's end offset. */
  readonly next: number;
  /** Bytes the key takes in the index. */
  readonly keyBytes: number;
}

/** A node being walked: checked whole when read, then its entries are decoded one at a time. */
interface WalkNode {
  readonly start: number;
  readonly type: number;
  readonly count: number;
  readonly endOffset: number;
  /** Bytes held while the node is walked. */
  readonly size: number;
  entries(): Iterable<WalkEntry>;
}

/**
 * A node decoded again entry by entry from the window it was read from. The window's reader is shared, so each
 * step seeks back to where the last one stopped; nothing else runs between a seek and its reads.
 */
function storedNode(
  r: ByteReader,
  at: number,
  version: 3 | 4,
  level: NodeLevel,
  scan: { type: number; count: number; endOffset: number; size: number },
  /** Where the node's children must end: the node itself, or for a root the TsFileMetadata. */
  start = at,
): WalkNode {
  return {
    start,
    ...scan,
    *entries() {
      r.seek(at);
      r.uvarint("index node child count");
      let pos = r.offset;
      let key: IndexEntry["key"] = null;
      let offset = -1;
      let keyBytes = 0;
      for (let i = 0; i < scan.count; i++) {
        r.seek(pos);
        const nextKey = readIndexKey(r, version, level);
        const nextKeyBytes = r.offset - pos;
        const nextOffset = readOffset(r, "index node offset");
        pos = r.offset;
        if (i > 0) yield { key, offset, next: nextOffset, keyBytes };
        key = nextKey;
        offset = nextOffset;
        keyBytes = nextKeyBytes;
      }
      if (scan.count > 0) yield { key, offset, next: scan.endOffset, keyBytes };
    },
  };
}

const NO_MEASUREMENTS: readonly TsFileMeasurement[] = Object.freeze([]);

/** What a device's TimeseriesMetadata records add up to; the records themselves are not kept. */
class DeviceSummary {
  private aligned = false;
  private timeColumn: TimeRange | undefined;
  private startTime: bigint | null = null;
  private endTime: bigint | null = null;
  private readonly measurements: TsFileMeasurement[] | undefined;

  constructor(withMeasurements: boolean) {
    this.measurements = withMeasurements ? [] : undefined;
  }

  add(s: SeriesRecord): void {
    if (s.isTimeColumn || s.isValueColumn) this.aligned = true;
    if (!s.isTimeColumn) this.measurements?.push({ name: s.name, dataType: s.dataType });
    // Empty series carry start = Long.MAX_VALUE and end = Long.MIN_VALUE: they must not widen the range.
    if (s.range.count === 0) return;
    if (s.isTimeColumn) this.timeColumn ??= s.range;
    if (this.startTime === null || s.range.start < this.startTime) this.startTime = s.range.start;
    if (this.endTime === null || s.range.end > this.endTime) this.endTime = s.range.end;
  }

  finish(segments: DeviceSegments, table: string | null, version: 3 | 4): TsFileDevice {
    // For aligned devices the time column's statistics are authoritative (§5.4).
    const time = this.timeColumn;
    return {
      id: deviceIdToString(segments),
      segments,
      ...(version === 4 && table !== null ? { table } : {}),
      aligned: this.aligned,
      startTime: time ? time.start : this.startTime,
      endTime: time ? time.end : this.endTime,
      measurements: this.measurements ?? NO_MEASUREMENTS,
    };
  }
}

class IndexWalker {
  readonly devices: TsFileDevice[] = [];
  /** Bytes of the stored nodes on the path from the root to where the walk is. */
  private held = 0;
  /** Runs are read in index order and must follow each other: that bounds the work by the index size. */
  private previousEnd: number;

  constructor(
    private readonly index: IndexSection,
    private readonly version: 3 | 4,
    private readonly metaOffset: number,
    private readonly budget: IndexBudget,
    private readonly maxRecordBytes: number,
    private readonly withMeasurements: boolean,
    private readonly onDevice: ((device: TsFileDevice) => void) | undefined,
  ) {
    this.previousEnd = metaOffset + 1;
  }

  /**
   * Children live before their parent and after the SEPARATOR (children are written first). Like the other steps
   * of the walk it answers at once when the windows already read hold what it needs: most devices then cost no
   * promise at all.
   */
  private childNode(offset: number, parentStart: number, level: NodeLevel, depth: number): WalkNode | Promise<WalkNode> {
    if (offset <= this.metaOffset || offset >= parentStart) {
      throw new TsFileFormatError(`index node offset ${offset} out of range (${this.metaOffset}, ${parentStart})`, offset);
    }
    if (depth > MAX_INDEX_DEPTH)
      throw new TsFileFormatError(`index tree deeper than ${MAX_INDEX_DEPTH} levels at offset ${offset}`, offset);
    // Offsets only decrease downwards, so there are no cycles. A subtree reached twice would read its runs again,
    // which the order of runs refuses (every subtree has one), so no set of visited nodes is kept.
    const parsed = this.index.one(offset, "index node", (r) => {
      let previous = this.metaOffset;
      const scan = scanIndexNode(
        r,
        this.version,
        level,
        (count) => {
          // Only a root may be empty (a file without devices); an empty child would mean a dangling branch.
          if (count === 0) throw new TsFileFormatError(`index node at offset ${offset} has no entries`, offset);
          if (level === "device") this.budget.expectDevices(count, offset);
          else this.budget.expectSeries(count, offset);
        },
        (_key, entryOffset) => {
          if (entryOffset <= previous || entryOffset >= offset) {
            throw new TsFileFormatError(`index node offset ${entryOffset} out of range in the node at offset ${offset}`, offset);
          }
          previous = entryOffset;
        },
        false,
      );
      if (scan.endOffset <= previous || scan.endOffset > offset) {
        throw new TsFileFormatError(`index node end offset ${scan.endOffset} out of range in the node at offset ${offset}`, offset);
      }
      return { r, scan: { ...scan, size: r.offset - offset } };
    });
    const stored = ({ value: { r, scan } }: Awaited<typeof parsed>) => storedNode(r, offset, this.version, level, scan);
    return parsed instanceof Promise ? parsed.then(stored) : stored(parsed);
  }

  /** Counts a stored node's bytes against maxRecordBytes while the walk is below it. */
  private hold(node: WalkNode): void {
    if (this.held + node.size > this.maxRecordBytes) {
      throw new TsFileLimitError(
        "recordBytes",
        `index nodes on one path from the root take more than ${this.maxRecordBytes} bytes`,
        this.maxRecordBytes,
        node.start,
      );
    }
    this.held += node.size;
  }

  /** Walks below `node` (`walk` answers undefined when it took no wait) and releases it. */
  private below(node: WalkNode, walk: (node: WalkNode) => Promise<void> | undefined): Promise<void> | undefined {
    this.hold(node);
    let walking: Promise<void> | undefined;
    try {
      walking = walk(node);
    } finally {
      if (!walking) this.held -= node.size;
    }
    return walking?.finally(() => void (this.held -= node.size));
  }

  async deviceLevel(node: WalkNode, table: string | null, depth: number): Promise<void> {
    this.budget.expectDevices(node.count, node.start);
    for (const e of node.entries()) {
      if (node.type === NodeType.internalDevice) {
        const pending = this.childNode(e.offset, node.start, "device", depth + 1);
        const child = pending instanceof Promise ? await pending : pending;
        await this.below(child, (n) => this.deviceLevel(n, table, depth + 1));
        continue;
      }
      const segments = typeof e.key === "string" ? [e.key] : e.key;
      if (segments === null) throw new TsFileFormatError(`null device id in the index node at offset ${node.start}`, node.start);
      this.budget.addDevice(e.keyBytes, node.start);
      const device = new DeviceSummary(this.withMeasurements);
      const pending = this.childNode(e.offset, node.start, "measurement", depth + 1);
      const child = pending instanceof Promise ? await pending : pending;
      const walking = this.below(child, (n) => this.measurementLevel(n, n.entries()[Symbol.iterator](), device, depth + 1));
      if (walking) await walking;
      const summary = device.finish(segments, table, this.version);
      if (this.onDevice) this.onDevice(summary);
      else this.devices.push(summary);
    }
  }

  /** Walks the entries `it` has left; undefined when that took no wait. */
  private measurementLevel(node: WalkNode, it: Iterator<WalkEntry>, device: DeviceSummary, depth: number): Promise<void> | undefined {
    for (let step = it.next(); !step.done; step = it.next()) {
      const e = step.value;
      let pending: Promise<void> | undefined;
      if (node.type === NodeType.internalMeasurement) {
        const walk = (child: WalkNode) =>
          this.below(child, (n) => this.measurementLevel(n, n.entries()[Symbol.iterator](), device, depth + 1));
        const child = this.childNode(e.offset, node.start, "measurement", depth + 1);
        pending = child instanceof Promise ? child.then(walk) : walk(child);
      } else {
        pending = this.run(e.offset, e.next, typeof e.key === "string" ? e.key : null, device);
      }
      if (pending) return pending.then(() => this.measurementLevel(node, it, device, depth));
    }
    return undefined;
  }

  /** The TimeseriesMetadata records pointed at by one LEAF_MEASUREMENT entry; undefined when that took no wait. */
  private run(start: number, end: number, firstName: string | null, device: DeviceSummary): Promise<void> | undefined {
    if (start < this.previousEnd) throw new TsFileFormatError(`index ranges overlap at offset ${start}`, start);
    this.previousEnd = end;
    let first = true;
    const more = (at: number) => at < end;
    const parse = (r: ByteReader) => readTimeseriesMetadata(r, end, this.metaOffset);
    const take = (record: SeriesRecord, at: number, recordEnd: number) => {
      if (recordEnd > end) throw new TsFileFormatError(`TimeseriesMetadata at offset ${at} runs past its index range end ${end}`, at);
      if (first && firstName !== null && record.name !== firstName) {
        throw new TsFileFormatError(`index entry "${firstName}" points at TimeseriesMetadata "${record.name}" at offset ${at}`, at);
      }
      first = false;
      this.budget.addSeries(at);
      device.add(record);
    };
    const c = this.index.cursor(start, "TimeseriesMetadata");
    return this.index.drain(c, more, "TimeseriesMetadata", parse, take)
      ? undefined
      : this.index.finish(c, more, "TimeseriesMetadata", parse, take);
  }
}

export interface ReadTsFileOptions extends TsFileIndexLimits {
  /**
   * Largest index section (default 512 MiB), checked before any of it is read. The index is read in windows,
   * so this bounds the work rather than the memory; it also keeps a corrupt metadata offset from sending the
   * reader through gigabytes of data section.
   */
  readonly maxIndexBytes?: number;
  /**
   * Largest piece read at once (default 64 MiB): the TsFileMetadata block, and an index node or TimeseriesMetadata
   * record too large for the 1 MiB window the index is read in; also the nodes on one path from a root
   * together. Real ones are kilobytes.
   */
  readonly maxRecordBytes?: number;
  /** false: devices are listed without their measurements, which then cost no memory. Default true. */
  readonly measurements?: boolean;
  /**
   * Receives each device as soon as its records are read, instead of the result's `devices` (then empty): a
   * caller that keeps less of each device than TsFileDevice holds then needs only that much memory.
   */
  readonly onDevice?: (device: TsFileDevice) => void;
}

const DEFAULT_MAX_INDEX_BYTES = 512 * 2 ** 20;
const DEFAULT_MAX_RECORD_BYTES = 64 * 2 ** 20;
/** Roots come first in the TsFileMetadata block: this much of it shows whether they list too many devices. */
const METADATA_PEEK_BYTES = 64 * 1024;

async function readMetadataBlock(
  source: TsFileSource,
  tail: TsFileTail,
  limits: TsFileIndexLimits,
  maxRecordBytes: number,
): Promise<MetadataBlock<StoredRoot> & { readonly block: ByteReader }> {
  const { version, metaPos, metaSize } = tail;
  const storedRoot = (r: ByteReader, checkCount: (count: number) => void): StoredRoot => {
    const start = r.offset;
    const scan = scanIndexNode(r, version, "device", checkCount, () => undefined, false);
    return { ...scan, size: r.offset - start };
  };
  if (metaSize > METADATA_PEEK_BYTES) {
    // Only a limit error counts from a prefix: a parse of part of the block proves nothing else.
    try {
      parseMetadataBlock(await readRange(source, metaPos, METADATA_PEEK_BYTES, "TsFileMetadata"), version, limits, storedRoot);
    } catch (e) {
      if (e instanceof TsFileLimitError) throw e;
    }
    if (metaSize > maxRecordBytes) {
      throw new TsFileLimitError("recordBytes", `TsFileMetadata is ${metaSize} bytes`, maxRecordBytes, metaPos);
    }
  }
  const block = await readRange(source, metaPos, metaSize, "TsFileMetadata");
  return { ...parseMetadataBlock(block, version, limits, storedRoot), block };
}

/**
 * Validates a TsFile and lists its devices, their time ranges and measurements. Rejects with a
 * TsFileFormatError whose `reason` says what is wrong (a TsFileLimitError when the file is over one of the
 * options' limits); any other rejection comes from the source itself. Memory follows the devices listed (and
 * their measurements, unless `measurements: false`), not the size of the index.
 */
export async function readTsFile(source: TsFileSource, options: ReadTsFileOptions = {}): Promise<TsFileInfo> {
  const tail = await readTsFileTail(source);
  const { version, size, metaPos } = tail;
  const maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const { roots, tables, metaOffset, block } = await readMetadataBlock(source, tail, options, maxRecordBytes);
  if (metaOffset < HEAD_SIZE || metaOffset >= metaPos) {
    throw new TsFileFormatError(`metadata offset ${metaOffset} out of range [${HEAD_SIZE}, ${metaPos})`, metaPos);
  }
  const maxIndexBytes = options.maxIndexBytes ?? DEFAULT_MAX_INDEX_BYTES;
  const indexBytes = metaPos - metaOffset;
  if (indexBytes > maxIndexBytes) {
    throw new TsFileLimitError(
      "indexBytes",
      `index section is ${indexBytes} bytes`,
      maxIndexBytes,
      metaOffset,
      `index section of ${indexBytes} bytes at offset ${metaOffset} exceeds the limit of ${maxIndexBytes} bytes`,
    );
  }
  const index = new IndexSection(source, metaOffset, metaPos, maxRecordBytes);
  const first = index.one(metaOffset, "SEPARATOR", (r) => r.u8());
  const separator = (first instanceof Promise ? await first : first).value;
  if (separator !== Marker.separator) {
    throw new TsFileFormatError(
      `metadata offset ${metaOffset} does not point at a separator (found 0x${separator.toString(16).padStart(2, "0")})`,
      metaOffset,
    );
  }

  const walker = new IndexWalker(
    index,
    version,
    metaOffset,
    new IndexBudget(options),
    maxRecordBytes,
    options.measurements ?? true,
    options.onDevice,
  );
  for (const { table, offset, node } of roots) {
    // Checked now that metaOffset is known; a root's children lie before the TsFileMetadata.
    block.seek(offset);
    let previous = metaOffset;
    scanIndexNode(
      block,
      version,
      "device",
      undefined,
      (_key, entryOffset) => {
        if (entryOffset <= previous || entryOffset >= metaPos) {
          throw new TsFileFormatError(`index node offset ${entryOffset} out of range in the node at offset ${metaPos}`, metaPos);
        }
        previous = entryOffset;
      },
      false,
    );
    if (node.endOffset <= previous || node.endOffset > metaPos) {
      throw new TsFileFormatError(`index node end offset ${node.endOffset} out of range in the node at offset ${metaPos}`, metaPos);
    }
    await walker.deviceLevel(storedNode(block, offset, version, "device", node, metaPos), table, 0);
  }
  return { version, size, metaOffset, devices: walker.devices, ...(version === 4 ? { tables } : {}) };
}
