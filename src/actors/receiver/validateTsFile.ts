// The verify step's TsFile check on the receiver, bounded in memory by configurable limits.
import { TsFileFormatError } from "../../tsfile/bytes.js";
import { TsFileLimitError, type TsFileLimit } from "../../tsfile/reader.js";
import type { ReceiverConfig } from "../../config/receiver.js";
import { inspectTsFile } from "../tsfileFiles.js";
import type { TsFileCheck } from "./core.js";

/**
 * What the verify step may take on for one TsFile. A sender chooses the file, so everything the check keeps
 * in memory is bounded by these, and each is checked before what it counts is read.
 */
export interface TsFileCheckLimits {
  /** Bytes of the index section (metadata offset to TsFileMetadata). The index is read in 1 MiB windows, so this bounds time. */
  readonly maxIndexBytes?: number;
  /** Devices the index may list; each costs a few hundred bytes while the check runs and in the staged facts. */
  readonly maxDevices?: number;
  /** Bytes the device ids of the index may take together, since every id is kept. */
  readonly maxDeviceIdBytes?: number;
  /** TimeseriesMetadata records (series) the index may hold; they are read one by one and not kept. */
  readonly maxSeries?: number;
  /** Largest single piece of index read at once: the TsFileMetadata block, one index node or one record. */
  readonly maxRecordBytes?: number;
}

/**
 * Defaults that keep the check's peak memory well under 200 MB: a node process that only verifies peaks near
 * 145 MB on a file of 100 000 devices (the most it accepts) and stays at its idle 45 MB when it refuses a root
 * that declares more (test/security/attacks/hugeIndex.test.ts). Real files are far inside them: IoTDB writes
 * index nodes of 256 entries and a TsFile per region and flush, and a device id is a path of a few dozen bytes.
 */
export const defaultTsFileCheckLimits = {
  maxIndexBytes: 256 * 2 ** 20,
  maxDevices: 100_000,
  maxDeviceIdBytes: 16 * 2 ** 20,
  maxSeries: 5_000_000,
  maxRecordBytes: 8 * 2 ** 20,
} as const satisfies Required<TsFileCheckLimits>;

/** The receiver setting behind each limit, so a refusal says what to raise. */
const SETTING: Readonly<Record<TsFileLimit, string>> = {
  indexBytes: "tsfile_max_index_bytes",
  devices: "tsfile_max_devices",
  deviceIdBytes: "tsfile_max_device_id_bytes",
  series: "tsfile_max_series",
  recordBytes: "the most index it reads in one piece",
};

/** The limits of conf/receiver.properties. */
export const tsfileCheckLimits = (c: ReceiverConfig): TsFileCheckLimits => ({
  maxIndexBytes: c.tsfile_max_index_bytes,
  maxDevices: c.tsfile_max_devices,
  maxDeviceIdBytes: c.tsfile_max_device_id_bytes,
  maxSeries: c.tsfile_max_series,
});

/**
 * The verify step's format check: header and tail magic, version 3 or 4, and an index that parses
 * to devices and time ranges (read from the end of the file, never the whole of it), within `limits`.
 */
export const validateTsFile = async (file: string | Uint8Array, limits: TsFileCheckLimits = {}): Promise<TsFileCheck> => {
  // Only the facts are kept of each device, as it is read: they are what the receiver stages and loads.
  const devices: { id: string; startTime: string | null; endTime: string | null }[] = [];
  try {
    const info = await inspectTsFile(file, {
      ...defaultTsFileCheckLimits,
      ...limits,
      measurements: false,
      onDevice: (d) =>
        devices.push({
          id: d.id,
          startTime: d.startTime === null ? null : String(d.startTime),
          endTime: d.endTime === null ? null : String(d.endTime),
        }),
    });
    return { ok: true, facts: { version: info.version, devices } };
  } catch (e) {
    if (e instanceof TsFileLimitError)
      return { ok: false, reason: `${e.subject}; the receiver accepts at most ${e.max} (${SETTING[e.limit]})` };
    if (e instanceof TsFileFormatError) return { ok: false, reason: e.message };
    throw e;
  }
};

/** `ReceiverOptions.validateTsFile` with the limits of the receiver's configuration. */
export const validateTsFileWithin =
  (c: ReceiverConfig) =>
  (file: string | Uint8Array): Promise<TsFileCheck> =>
    validateTsFile(file, tsfileCheckLimits(c));
