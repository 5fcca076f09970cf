// IoTDB `.tsfile.resource` side files (docs/tsfile-format.md §7.2): per-device time ranges and the mods-file
// name. Type 1 is IoTDB ≤1.3 (int-string device paths), type 3 is IoTDB 2.x (v4 device ids).

import { ByteReader, ByteWriter, TsFileFormatError, deviceIdToString, splitDevicePath, type DeviceSegments } from "./bytes.js";

export type ResourceTimeIndexType = 1 | 3;

export interface ResourceDevice {
  /** Type 1: the stored path; type 3: segments joined by ".". */
  readonly id: string;
  readonly segments: DeviceSegments;
  readonly startTime: bigint;
  /** Long.MIN_VALUE in an unsealed sequence file. */
  readonly endTime: bigint;
}

export interface TsFileResource {
  readonly timeIndexType: ResourceTimeIndexType;
  /** In array-index order, which pairs each device with its times. */
  readonly devices: readonly ResourceDevice[];
  readonly maxPlanIndex: bigint;
  readonly minPlanIndex: bigint;
  /** Resolved relative to the TsFile's directory; null when the resource names none. */
  readonly modsFileName: string | null;
}

const RESOURCE_VERSION = 1;
const LONG_MIN = -0x8000000000000000n;
const LONG_MAX = 0x7fffffffffffffffn;

/** Reads fields 1–7; the trailing blocks (progress index, pipe marks, …) are not needed and are ignored. */
export function parseTsFileResource(bytes: Uint8Array): TsFileResource {
  const r = new ByteReader(bytes);
  const version = r.u8("resource version");
  if (version !== RESOURCE_VERSION) throw new TsFileFormatError(`unsupported resource version ${version}`, 0);
  const type = r.u8("resource time index type");
  if (type === 2) throw new TsFileFormatError("resource time index type 2 (file time index) is never serialized by IoTDB", 1);
  if (type !== 1 && type !== 3) throw new TsFileFormatError(`unsupported resource time index type ${type}`, 1);

  const countAt = r.offset;
  const count = r.int32("resource device count");
  // Each device needs 16 bytes of times alone: refuse counts the buffer cannot hold before allocating.
  if (count < 0 || count * 16 > r.remaining) {
    throw new TsFileFormatError(`resource device count ${count} does not fit in ${bytes.length} bytes`, countAt);
  }
  const times: { start: bigint; end: bigint }[] = [];
  for (let i = 0; i < count; i++) times.push({ start: r.int64("resource start time"), end: r.int64("resource end time") });

  const devices: (ResourceDevice | undefined)[] = new Array<ResourceDevice | undefined>(count).fill(undefined);
  for (let i = 0; i < count; i++) {
    const at = r.offset;
    let segments: DeviceSegments;
    if (type === 1) {
      const path = r.intString("resource device path");
      if (path === null) throw new TsFileFormatError(`null device path in resource at offset ${at}`, at);
      segments = [path];
    } else {
      segments = r.deviceIdV4();
    }
    const indexAt = r.offset;
    const index = r.int32("resource device index");
    const t = times[index];
    if (t === undefined)
      throw new TsFileFormatError(`resource device index ${index} out of range [0, ${count}) at offset ${indexAt}`, indexAt);
    if (devices[index] !== undefined)
      throw new TsFileFormatError(`resource device index ${index} appears twice at offset ${indexAt}`, indexAt);
    devices[index] = { id: deviceIdToString(segments), segments, startTime: t.start, endTime: t.end };
  }

  const maxPlanIndex = r.int64("resource max plan index");
  const minPlanIndex = r.int64("resource min plan index");
  const modsFileName = r.intString("resource mods file name");
  return {
    timeIndexType: type,
    devices: devices.filter((d): d is ResourceDevice => d !== undefined),
    maxPlanIndex,
    minPlanIndex,
    modsFileName,
  };
}

export interface ResourceDeviceSpec {
  /** Full path, e.g. `root.sg1.d1`. */
  readonly id: string;
  /** Type 3 only; defaults to the Java split of `id` (§2). */
  readonly segments?: DeviceSegments;
  readonly startTime: bigint;
  readonly endTime: bigint;
}

export interface TsFileResourceSpec {
  readonly devices: readonly ResourceDeviceSpec[];
  readonly timeIndexType?: ResourceTimeIndexType;
  readonly modsFileName?: string | null;
  readonly maxPlanIndex?: bigint;
  readonly minPlanIndex?: bigint;
}

/** What IoTDB's `TsFileResource.serialize` writes, with an EMPTY_BLOCK as the only trailing block. */
export function serializeTsFileResource(spec: TsFileResourceSpec): Uint8Array {
  const type = spec.timeIndexType ?? 1;
  const w = new ByteWriter(64 + spec.devices.length * 48);
  w.u8(RESOURCE_VERSION).u8(type).int32(spec.devices.length);
  for (const d of spec.devices) w.int64(d.startTime).int64(d.endTime);
  spec.devices.forEach((d, i) => {
    if (type === 1) w.intString(d.id);
    else w.deviceIdV4(d.segments ?? splitDevicePath(d.id));
    w.int32(i);
  });
  // An IoTDB file never written through a consensus plan keeps the initial (MIN, MAX) plan indexes.
  w.int64(spec.maxPlanIndex ?? LONG_MIN).int64(spec.minPlanIndex ?? LONG_MAX);
  w.intString(spec.modsFileName ?? null);
  w.u8(0); // EMPTY_BLOCK
  return w.toBytes();
}
