// Disk I/O for the TsFile layer: random-access sources over files, inspection, test-data generation and
// sealed TsFile + .resource pairs. Everything format-related lives in src/tsfile, which has no I/O.

import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { readTsFile, type ReadTsFileOptions, type TsFileInfo, type TsFileSource } from "../tsfile/reader.js";
import { serializeTsFileResource, type ResourceTimeIndexType } from "../tsfile/resource.js";
import {
  generateTsFile,
  writeTsFileBytes,
  type GenerateTsFileOptions,
  type TsFileSpec,
  type TsFileWriteSummary,
  type TsFileWriterOptions,
} from "../tsfile/writer.js";

export interface FileTsFileSource extends TsFileSource {
  /** Idempotent. */
  close(): Promise<void>;
}

/** A random-access source over one open file; its size is fixed at open time. Close it when done. */
export async function openTsFileSource(path: string): Promise<FileTsFileSource> {
  const handle = await open(path, "r");
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (error) {
    await handle.close();
    throw error;
  }
  let closed = false;
  return {
    size,
    async read(offset, length) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(`read [${offset}, ${offset + length}) outside ${path} (size ${size})`);
      }
      const buffer = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
        if (bytesRead === 0) break; // the file shrank: the reader reports the short read
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

export async function withTsFileSource<T>(path: string, use: (source: TsFileSource) => Promise<T>): Promise<T> {
  const source = await openTsFileSource(path);
  try {
    return await use(source);
  } finally {
    await source.close();
  }
}

/** A TsFile already in memory (a small file that arrived in one message). */
export const bytesTsFileSource = (bytes: Uint8Array): TsFileSource => ({
  size: bytes.length,
  read: async (offset, length) => {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > bytes.length)
      throw new RangeError(`read [${offset}, ${offset + length}) outside the received bytes (size ${bytes.length})`);
    return bytes.subarray(offset, offset + length);
  },
});

/**
 * Validates the file (at a path, or its bytes) and lists its devices; rejects with TsFileFormatError when it is
 * not a usable TsFile, or (a TsFileLimitError) when it is over one of the options' limits.
 */
export const inspectTsFile = (file: string | Uint8Array, options: ReadTsFileOptions = {}): Promise<TsFileInfo> =>
  typeof file === "string" ? withTsFileSource(file, (source) => readTsFile(source, options)) : readTsFile(bytesTsFileSource(file), options);

async function writeFully(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
    written += bytesWritten;
  }
}

const WRITE_BUFFER_BYTES = 1 << 20;

/**
 * Writes a deterministic, valid TsFile of about `targetBytes` to `path` in 1 MiB pieces, so memory stays small
 * whatever the size. A failed run removes its partial file.
 */
export async function generateTsFileToPath(path: string, options: Omit<GenerateTsFileOptions, "bufferBytes">): Promise<TsFileWriteSummary> {
  const handle = await open(path, "w");
  let complete = false;
  try {
    const summary = await generateTsFile((piece) => writeFully(handle, piece), { ...options, bufferBytes: WRITE_BUFFER_BYTES });
    complete = true;
    return summary;
  } finally {
    try {
      await handle.close();
    } finally {
      if (!complete) await rm(path, { force: true });
    }
  }
}

async function writeFileDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, "w");
  try {
    await writeFully(handle, bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface SealedTsFileOptions extends TsFileWriterOptions {
  /** Defaults to what IoTDB writes for the version: 1 (≤1.3) for v3, 3 (2.x) for v4. */
  readonly resourceType?: ResourceTimeIndexType;
}

export interface SealedTsFile {
  readonly tsfilePath: string;
  readonly resourcePath: string;
  readonly size: number;
}

/** Per-device [first, last] timestamp over all measurements of the spec, in first-seen order. */
function deviceRanges(spec: TsFileSpec): { id: string; startTime: bigint; endTime: bigint }[] {
  const ranges = new Map<string, { id: string; startTime: bigint; endTime: bigint }>();
  for (const device of spec.devices) {
    for (const m of device.measurements) {
      const first = m.timestamps[0];
      const last = m.timestamps[m.timestamps.length - 1];
      if (first === undefined || last === undefined) continue;
      const known = ranges.get(device.path);
      ranges.set(device.path, {
        id: device.path,
        startTime: known && known.startTime < first ? known.startTime : first,
        endTime: known && known.endTime > last ? known.endTime : last,
      });
    }
  }
  return [...ranges.values()];
}

/**
 * Writes `dir/name` and then `dir/name.resource`, the way IoTDB seals a file: the TsFile is complete and synced
 * before the resource appears, and the resource appears by renaming `.resource.temp`.
 */
export async function writeSealedTsFile(
  dir: string,
  name: string,
  spec: TsFileSpec,
  options: SealedTsFileOptions = {},
): Promise<SealedTsFile> {
  const bytes = writeTsFileBytes(spec, options);
  const tsfilePath = join(dir, name);
  const resourcePath = `${tsfilePath}.resource`;
  const resource = serializeTsFileResource({
    timeIndexType: options.resourceType ?? (options.version === 4 ? 3 : 1),
    devices: deviceRanges(spec),
  });
  await writeFileDurably(tsfilePath, bytes);
  await writeFileDurably(`${resourcePath}.temp`, resource);
  await rename(`${resourcePath}.temp`, resourcePath);
  return { tsfilePath, resourcePath, size: bytes.length };
}
