// TsFile facts flattened to strings, for storages that keep metadata or environment variables.
import type { TsFileFacts } from "./storage.js";

/** A device list longer than this is given as a count only (object metadata, environment variables). */
export const maxDeviceListChars = 32 * 1024;

export interface FactsSummary {
  readonly deviceCount: number;
  /** Device ids separated by commas, unless the list is longer than `maxDeviceListChars`. */
  readonly devices: string | undefined;
  /** Earliest and latest timestamp over all devices (ms since the epoch, as IoTDB stores them). */
  readonly startTime: string | undefined;
  readonly endTime: string | undefined;
  readonly version: number;
}

/** The facts the verify step found in a TsFile, flattened for storages that only keep strings. */
export const summarizeFacts = (facts: TsFileFacts): FactsSummary => {
  const ids = facts.devices.map((d) => d.id).join(",");
  let min: bigint | undefined;
  let max: bigint | undefined;
  for (const d of facts.devices) {
    if (d.startTime !== null && (min === undefined || BigInt(d.startTime) < min)) min = BigInt(d.startTime);
    if (d.endTime !== null && (max === undefined || BigInt(d.endTime) > max)) max = BigInt(d.endTime);
  }
  return {
    deviceCount: facts.devices.length,
    devices: ids.length <= maxDeviceListChars ? ids : undefined,
    startTime: min === undefined ? undefined : String(min),
    endTime: max === undefined ? undefined : String(max),
    version: facts.version,
  };
};
