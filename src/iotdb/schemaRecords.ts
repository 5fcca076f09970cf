// IoTDB's schema logs (mlog.bin, mlog.txt): cut into whole records, framed, checked; bytes only.

/** CRC-32 (IEEE, as java.util.zip.CRC32 and zlib compute it), table-driven: this folder imports no node:*. */
const crcTable = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export const crc32 = (bytes: Uint8Array): number => {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

/**
 * IoTDB's schema logs. `mlog.bin` (0.12/0.13) is written by IoTDB's LogWriter: per record a
 * 4-byte big-endian length, the serialized plans, then the CRC32 of those bytes as an 8-byte
 * big-endian long. `mlog.txt` (0.10/0.11) holds one command per line.
 */
export type SchemaLogFormat = "mlog.bin" | "mlog.txt";
export const schemaLogFormats: ReadonlyArray<SchemaLogFormat> = ["mlog.bin", "mlog.txt"];

const lengthBytes = 4;
const checksumBytes = 8;
/** Far above IoTDB's mlog_buffer_size (1 MiB by default), which bounds one record. */
export const maxBinRecordBytes = 256 * 1024 * 1024;

export interface SchemaRecordSpan {
  /** Offset of the record's first byte in the bytes that were cut. */
  readonly start: number;
  readonly end: number;
}

export interface SchemaRecordCut {
  /** Bytes of whole records from the start: what may be shipped or applied. */
  readonly end: number;
  readonly records: ReadonlyArray<SchemaRecordSpan>;
  /**
   * Why the cut ends where it does: `end` (all bytes were whole records), `incomplete` (the
   * rest is the start of a record still being written, or a record that needs more bytes than
   * were given) or `damaged` with the reason (IoTDB's own reader stops there too).
   */
  readonly stop: "end" | "incomplete" | "damaged";
  readonly damage?: string;
  /** For `incomplete` in mlog.bin: the size of the whole record that begins at `end`, when known. */
  readonly nextRecordBytes?: number;
}

const cutBin = (bytes: Uint8Array): SchemaRecordCut => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: SchemaRecordSpan[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (bytes.length - pos < lengthBytes) return { end: pos, records, stop: "incomplete" };
    const size = view.getInt32(pos);
    if (size <= 0 || size > maxBinRecordBytes)
      return { end: pos, records, stop: "damaged", damage: `record at byte ${pos} claims ${size} bytes` };
    const whole = lengthBytes + size + checksumBytes;
    if (bytes.length - pos < whole) return { end: pos, records, stop: "incomplete", nextRecordBytes: whole };
    const body = bytes.subarray(pos + lengthBytes, pos + lengthBytes + size);
    const high = view.getUint32(pos + lengthBytes + size);
    const low = view.getUint32(pos + lengthBytes + size + 4);
    if (high !== 0 || low !== crc32(body))
      return { end: pos, records, stop: "damaged", damage: `record at byte ${pos} (${size} bytes) fails its CRC32` };
    records.push({ start: pos, end: pos + whole });
    pos += whole;
  }
  return { end: pos, records, stop: "end" };
};

const cutTxt = (bytes: Uint8Array): SchemaRecordCut => {
  const records: SchemaRecordSpan[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    records.push({ start, end: i + 1 });
    start = i + 1;
  }
  return { end: start, records, stop: start === bytes.length ? "end" : "incomplete" };
};

/** Finds the whole records at the start of `bytes`; never reads outside it. */
export const cutSchemaRecords = (format: SchemaLogFormat, bytes: Uint8Array): SchemaRecordCut =>
  format === "mlog.bin" ? cutBin(bytes) : cutTxt(bytes);

const utf8 = new TextDecoder("utf-8");

/** The text of each record: a line of mlog.txt (without its line end), or the plans of an mlog.bin record in base64. */
export const schemaRecordTexts = (format: SchemaLogFormat, bytes: Uint8Array, spans: ReadonlyArray<SchemaRecordSpan>): string[] =>
  spans.map((s) =>
    format === "mlog.bin"
      ? Buffer.from(bytes.buffer, bytes.byteOffset + s.start + lengthBytes, s.end - s.start - lengthBytes - checksumBytes).toString(
          "base64",
        )
      : utf8.decode(bytes.subarray(s.start, s.end)).replace(/\r?\n$/, ""),
  );

/** Splits bytes that must be whole records; throws with the reason when they are not. */
export const splitSchemaRecords = (format: SchemaLogFormat, bytes: Uint8Array): string[] => {
  const cut = cutSchemaRecords(format, bytes);
  if (cut.stop !== "end")
    throw new Error(`${format} bytes are not whole records: ${cut.damage ?? `a record starting at byte ${cut.end} is cut off`}`);
  return schemaRecordTexts(format, bytes, cut.records);
};

/** One mlog.bin record around serialized plans, as IoTDB's LogWriter frames it. */
export const frameMlogRecord = (plans: Uint8Array): Uint8Array => {
  const out = new Uint8Array(lengthBytes + plans.length + checksumBytes);
  const view = new DataView(out.buffer);
  view.setInt32(0, plans.length);
  out.set(plans, lengthBytes);
  view.setUint32(lengthBytes + plans.length, 0);
  view.setUint32(lengthBytes + plans.length + 4, crc32(plans));
  return out;
};
