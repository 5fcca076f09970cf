// Valid v3 TsFiles whose index lists a very large number of devices, streamed to disk so that 1.5 million
// devices take a second or two and little memory. The data section is one real chunk from the project's
// writer and every device's TimeseriesMetadata points at it: the reader never reads the data section, so
// such a file is valid to it at any size, which is what makes the attack cheap for a sender.

import { open, rename, writeFile } from "node:fs/promises";
import { serializeTsFileResource } from "../../../src/tsfile/resource.js";
import { TsFileStreamWriter } from "../../../src/tsfile/writer.js";

export interface HugeIndexOptions {
  readonly devices: number;
  /**
   * "flat" (default): one LEAF_DEVICE root listing every device, as in the security finding.
   * "tree": LEAF_DEVICE nodes of 256 devices under one INTERNAL_DEVICE root, so no single node is large
   * and only a running count can notice the device total.
   */
  readonly shape?: "flat" | "tree";
  /** Device ids are `${prefix}.d0000000`, … (sorted, as the index requires). */
  readonly prefix?: string;
}

export interface HugeIndexFile {
  readonly size: number;
  readonly metaOffset: number;
  readonly devices: number;
}

export const hugeIndexDeviceId = (prefix: string, i: number): string => `${prefix}.d${String(i).padStart(7, "0")}`;

const TSM_BYTES = 40; // type, "s", BOOLEAN, list size, statistics (27), chunk offset
const MEASUREMENT_NODE_BYTES = 20; // count, "s", offset, end offset, LEAF_MEASUREMENT
const PER_DEVICE = TSM_BYTES + MEASUREMENT_NODE_BYTES;
const FANOUT = 256;

class FileOut {
  private buf = Buffer.alloc(1 << 20);
  private len = 0;
  position = 0;
  constructor(private readonly handle: Awaited<ReturnType<typeof open>>) {}

  private async room(n: number): Promise<void> {
    if (this.len + n <= this.buf.length) return;
    await this.flush();
    if (n > this.buf.length) this.buf = Buffer.alloc(n);
  }

  async flush(): Promise<void> {
    let done = 0;
    while (done < this.len) done += (await this.handle.write(this.buf, done, this.len - done)).bytesWritten;
    this.len = 0;
  }

  async bytes(b: Uint8Array): Promise<void> {
    await this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    this.position += b.length;
  }

  /** Callers reserve room first with `reserve`; these write without checks so the per-device loop stays cheap. */
  async reserve(n: number): Promise<void> {
    await this.room(n);
  }
  u8(v: number): void {
    this.buf[this.len++] = v;
    this.position++;
  }
  int64(v: number): void {
    this.buf.writeUInt32BE(Math.floor(v / 2 ** 32), this.len);
    this.buf.writeUInt32BE(v >>> 0, this.len + 4);
    this.len += 8;
    this.position += 8;
  }
  uvarint(v: number): void {
    while (v >= 0x80) {
      this.u8((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.u8(v);
  }
  ascii(s: string): void {
    this.uvarint(s.length * 2); // zigzag length of a var-string
    this.len += this.buf.write(s, this.len, "latin1");
    this.position += s.length;
  }
}

/** Writes `path` and, like IoTDB, `path.resource` after it (a sender ships only sealed files). */
export async function writeHugeIndexTsFile(path: string, options: HugeIndexOptions, resource = false): Promise<HugeIndexFile> {
  const n = options.devices;
  const prefix = options.prefix ?? "root.atk";
  const id = (i: number) => hugeIndexDeviceId(prefix, i);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`devices must be ≥ 1, got ${n}`);

  // The data section: one chunk group of one one-page chunk, written by the project's writer.
  const pieces: Uint8Array[] = [];
  const writer = new TsFileStreamWriter(async (p) => void pieces.push(p));
  await writer.writeChunkGroup(id(0), [{ name: "s", dataType: "BOOLEAN", timestamps: [1n], values: [true] }]);
  const { metaOffset } = await writer.close();
  const data = Buffer.concat(pieces).subarray(0, metaOffset);
  const chunkOffset = 7 + 1 + 1 + id(0).length; // head, chunk group marker, device id (one-byte length)

  const handle = await open(path, "w");
  let size: number;
  try {
    const out = new FileOut(handle);
    await out.bytes(data);
    await out.reserve(1);
    out.u8(0x02); // SEPARATOR
    const tsmAt = (i: number) => metaOffset + 1 + i * PER_DEVICE;
    const nodeAt = (i: number) => tsmAt(i) + TSM_BYTES;
    for (let i = 0; i < n; i++) {
      await out.reserve(PER_DEVICE);
      // TimeseriesMetadata: one chunk, "s", BOOLEAN, chunk metadata list of 8 bytes, statistics, chunk offset.
      out.u8(0);
      out.ascii("s");
      out.u8(0);
      out.u8(8);
      out.u8(1); // count
      out.int64(1); // start time
      out.int64(1); // end time
      out.u8(1); // first
      out.u8(1); // last
      out.int64(1); // sum
      out.int64(chunkOffset);
      // LEAF_MEASUREMENT with one entry; its run ends where the node starts.
      out.u8(1);
      out.ascii("s");
      out.int64(tsmAt(i));
      out.int64(nodeAt(i));
      out.u8(3);
    }
    const deviceEntries = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await out.reserve(32 + prefix.length);
        out.ascii(id(i));
        out.int64(nodeAt(i));
      }
    };
    let rootEntries: { first: number; offset: number }[] | undefined;
    if (options.shape === "tree") {
      rootEntries = [];
      for (let from = 0; from < n; from += FANOUT) {
        const leafAt = out.position;
        rootEntries.push({ first: from, offset: leafAt });
        const to = Math.min(n, from + FANOUT);
        await out.reserve(5);
        out.uvarint(to - from);
        await deviceEntries(from, to);
        await out.reserve(9);
        out.int64(leafAt);
        out.u8(1); // LEAF_DEVICE
      }
    }
    const metaPos = out.position;
    await out.reserve(5);
    if (rootEntries) {
      out.uvarint(rootEntries.length);
      for (const e of rootEntries) {
        await out.reserve(32 + prefix.length);
        out.ascii(id(e.first));
        out.int64(e.offset);
      }
      await out.reserve(9);
      out.int64(metaPos);
      out.u8(0); // INTERNAL_DEVICE
    } else {
      out.uvarint(n);
      await deviceEntries(0, n);
      await out.reserve(9);
      out.int64(metaPos);
      out.u8(1); // LEAF_DEVICE
    }
    await out.reserve(64);
    out.int64(metaOffset);
    out.uvarint(32);
    for (let i = 0; i < 32; i++) out.u8(0xff);
    out.uvarint(256);
    out.uvarint(5);
    const metaSize = out.position - metaPos;
    out.u8((metaSize >>> 24) & 0xff);
    out.u8((metaSize >>> 16) & 0xff);
    out.u8((metaSize >>> 8) & 0xff);
    out.u8(metaSize & 0xff);
    await out.bytes(Buffer.from("TsFile"));
    await out.flush();
    size = out.position;
  } finally {
    await handle.close();
  }
  if (resource) {
    const bytes = serializeTsFileResource({
      timeIndexType: 1,
      devices: Array.from({ length: n }, (_, i) => ({ id: id(i), startTime: 1n, endTime: 1n })),
    });
    await writeFile(`${path}.resource.temp`, bytes);
    await rename(`${path}.resource.temp`, `${path}.resource`);
  }
  return { size, metaOffset, devices: n };
}
