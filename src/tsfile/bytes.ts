// Big-endian primitives of the TsFile format (docs/tsfile-format.md §2). Pure bytes: no I/O here.

/** Every malformed or unsupported input ends as this error; `reason` is meant for humans and logs. */
export class TsFileFormatError extends Error {
  override readonly name = "TsFileFormatError";
  readonly reason: string;
  /** Absolute byte offset in the file (or side file) where the problem was found, when known. */
  readonly offset: number | undefined;

  constructor(reason: string, offset?: number, options?: ErrorOptions) {
    super(reason, options);
    this.reason = reason;
    this.offset = offset;
  }
}

/** A TsFile v4 device id: a list of segments, any of which may be null. */
export type DeviceSegments = readonly (string | null)[];

// Segment names are decoded leniently: real files contain garbage segments (public/test_cpp.tsfile).
const utf8Decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

export const encodeUtf8 = (text: string): Uint8Array => utf8Encoder.encode(text);
export const decodeUtf8 = (bytes: Uint8Array): string => utf8Decoder.decode(bytes);

export const zigzagEncode = (n: number): number => ((n << 1) ^ (n >> 31)) >>> 0;
export const zigzagDecode = (u: number): number => (u >>> 1) ^ -(u & 1);

/** Display form of a device: segments joined by ".", null shown as Java shows it. */
export const deviceIdToString = (segments: DeviceSegments): string => segments.map((s) => (s === null ? "null" : s)).join(".");

/**
 * The segments the Java writer gives a tree-model path in v4 (`StringArrayDeviceID.splitDeviceIdString`):
 * up to 3 levels → [all but last joined, last]; longer → [first 3 joined, then one segment per level].
 */
export function splitDevicePath(path: string): string[] {
  const levels = path.split(".");
  if (levels.length === 1) return [path];
  if (levels.length <= 3) return [levels.slice(0, -1).join("."), levels[levels.length - 1] ?? ""];
  return [levels.slice(0, 3).join("."), ...levels.slice(3)];
}

/** Java `String.compareTo` order (UTF-16 code units), which is also JavaScript's `<` on strings. */
export const compareJavaStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** `StringArrayDeviceID.compareTo`: segment by segment, null first, a prefix before its extensions. */
export function compareDeviceSegments(a: DeviceSegments, b: DeviceSegments): number {
  for (let i = 0; i < a.length; i++) {
    if (i >= b.length) return 1;
    const x = a[i] ?? null;
    const y = b[i] ?? null;
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    const c = compareJavaStrings(x, y);
    if (c !== 0) return c;
  }
  return a.length < b.length ? -1 : 0;
}

/**
 * A bounded cursor over one buffer that came from `base` in a file. Every read past the end throws a
 * TsFileFormatError naming what was being read and the absolute offset, never a RangeError.
 */
export class ByteReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    /** Absolute file offset of `bytes[0]`, so errors and offsets speak in file positions. */
    readonly base = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Absolute offset of the next byte to read. */
  get offset(): number {
    return this.base + this.pos;
  }

  /** Absolute offset just past the buffer. */
  get end(): number {
    return this.base + this.bytes.length;
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  /** Moves to an absolute offset inside [base, end]. */
  seek(absolute: number, what = "position"): void {
    if (!Number.isSafeInteger(absolute) || absolute < this.base || absolute > this.end) {
      throw new TsFileFormatError(`${what} ${absolute} lies outside the bytes read [${this.base}, ${this.end})`, absolute);
    }
    this.pos = absolute - this.base;
  }

  private need(n: number, what: string): number {
    if (n > this.remaining) {
      throw new TsFileFormatError(`truncated ${what} at offset ${this.offset}: needs ${n} bytes, ${this.remaining} left`, this.offset);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(what = "byte"): number {
    return this.bytes[this.need(1, what)] ?? 0;
  }

  int32(what = "int32"): number {
    return this.view.getInt32(this.need(4, what));
  }

  int64(what = "int64"): bigint {
    return this.view.getBigInt64(this.need(8, what));
  }

  float32(what = "float"): number {
    return this.view.getFloat32(this.need(4, what));
  }

  float64(what = "double"): number {
    return this.view.getFloat64(this.need(8, what));
  }

  bytesOf(n: number, what = "bytes"): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new TsFileFormatError(`negative length ${n} for ${what} at offset ${this.offset}`, this.offset);
    const at = this.need(n, what);
    return this.bytes.subarray(at, at + n);
  }

  skip(n: number, what = "bytes"): void {
    this.bytesOf(n, what);
  }

  /** Java int, LEB128 style; at most 5 bytes. Returned as an unsigned 32-bit value. */
  uvarint(what = "varint"): number {
    const start = this.offset;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.remaining === 0) throw new TsFileFormatError(`truncated ${what} at offset ${start}`, start);
      const b = this.u8(what);
      value = (value | ((b & 0x7f) << (7 * i))) >>> 0;
      if ((b & 0x80) === 0) return value;
    }
    throw new TsFileFormatError(`${what} at offset ${start} is longer than 5 bytes`, start);
  }

  /** Zigzag-encoded uvarint, as a signed 32-bit value. */
  varint(what = "varint"): number {
    return zigzagDecode(this.uvarint(what));
  }

  /** `ReadWriteIOUtils.readVarIntString`: zigzag length (−1 = null), then UTF-8. */
  varString(what = "string"): string | null {
    const start = this.offset;
    const len = this.varint(`${what} length`);
    if (len === -1) return null;
    if (len < 0) throw new TsFileFormatError(`invalid ${what} length ${len} at offset ${start}`, start);
    if (len > this.remaining) {
      throw new TsFileFormatError(`truncated ${what} at offset ${start}: length ${len}, ${this.remaining} bytes left`, start);
    }
    return decodeUtf8(this.bytesOf(len, what));
  }

  /** `ReadWriteIOUtils.readString`: int32 length (−1 = null), then UTF-8. */
  intString(what = "string"): string | null {
    const bytes = this.intBytes(what);
    return bytes === null ? null : decodeUtf8(bytes);
  }

  /** int32 length (−1 = null), then that many raw bytes (TEXT statistics, `Binary`). */
  intBytes(what = "string"): Uint8Array | null {
    const start = this.offset;
    const len = this.int32(`${what} length`);
    if (len === -1) return null;
    if (len < 0) throw new TsFileFormatError(`invalid ${what} length ${len} at offset ${start}`, start);
    if (len > this.remaining) {
      throw new TsFileFormatError(`truncated ${what} at offset ${start}: length ${len}, ${this.remaining} bytes left`, start);
    }
    return this.bytesOf(len, what);
  }

  /** v3 `PlainDeviceID`: one var-string holding the whole path. */
  deviceIdV3(): string {
    const start = this.offset;
    const path = this.varString("device id");
    if (path === null) throw new TsFileFormatError(`null device id at offset ${start}`, start);
    return path;
  }

  /** v4 `StringArrayDeviceID`: uvarint segment count (0 reads as [""]), then nullable var-strings. */
  deviceIdV4(): (string | null)[] {
    const count = this.uvarint("device segment count");
    if (count === 0) return [""];
    const segments: (string | null)[] = [];
    for (let i = 0; i < count; i++) segments.push(this.varString("device segment"));
    return segments;
  }
}

/** A growable big-endian output buffer. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity));
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.len;
  }

  private reserve(n: number): number {
    const at = this.len;
    if (at + n > this.buf.length) {
      let capacity = this.buf.length * 2;
      while (capacity < at + n) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.buf.subarray(0, at));
      this.buf = grown;
      this.view = new DataView(grown.buffer);
    }
    this.len = at + n;
    return at;
  }

  u8(v: number): this {
    const at = this.reserve(1); // reserve may swap the buffer: call it first
    this.buf[at] = v & 0xff;
    return this;
  }

  int32(v: number): this {
    const at = this.reserve(4);
    this.view.setInt32(at, v);
    return this;
  }

  int64(v: bigint): this {
    const at = this.reserve(8);
    this.view.setBigInt64(at, BigInt.asIntN(64, v));
    return this;
  }

  float32(v: number): this {
    const at = this.reserve(4);
    this.view.setFloat32(at, v);
    return this;
  }

  float64(v: number): this {
    const at = this.reserve(8);
    this.view.setFloat64(at, v);
    return this;
  }

  bytes(b: Uint8Array): this {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
    return this;
  }

  uvarint(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`uvarint out of range: ${v}`);
    while (v >= 0x80) {
      this.u8((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    return this.u8(v);
  }

  varint(v: number): this {
    if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`varint out of range: ${v}`);
    return this.uvarint(zigzagEncode(v));
  }

  varString(s: string | null): this {
    if (s === null) return this.varint(-1);
    const b = encodeUtf8(s);
    return this.varint(b.length).bytes(b);
  }

  intString(s: string | null): this {
    return this.intBytes(s === null ? null : encodeUtf8(s));
  }

  intBytes(b: Uint8Array | null): this {
    if (b === null) return this.int32(-1);
    return this.int32(b.length).bytes(b);
  }

  deviceIdV3(path: string): this {
    return this.varString(path);
  }

  deviceIdV4(segments: DeviceSegments): this {
    this.uvarint(segments.length);
    for (const s of segments) this.varString(s);
    return this;
  }

  /** A copy of everything written so far. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** Hands over everything written so far and starts empty; the result is never touched again. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.len);
    this.len = 0;
    return out;
  }
}

// Format constants shared by the reader and the writer (§3, §4, §5.2).

export const MAGIC = encodeUtf8("TsFile");

/** TSDataType codes in code order; the index is the byte on disk. */
export const DATA_TYPES = [
  "BOOLEAN",
  "INT32",
  "INT64",
  "FLOAT",
  "DOUBLE",
  "TEXT",
  "VECTOR",
  "UNKNOWN",
  "TIMESTAMP",
  "DATE",
  "BLOB",
  "STRING",
] as const;
export type TsDataType = (typeof DATA_TYPES)[number];

export const dataTypeCode = (t: TsDataType): number => DATA_TYPES.indexOf(t);

export const Marker = { chunkGroupHeader: 0x00, separator: 0x02, operationIndexRange: 0x04, onlyOnePageChunkHeader: 0x05 } as const;

export const NodeType = { internalDevice: 0, leafDevice: 1, internalMeasurement: 2, leafMeasurement: 3 } as const;

/** `TSFileConfig.maxDegreeOfIndexNode` default. */
export const MAX_DEGREE_OF_INDEX_NODE = 256;
