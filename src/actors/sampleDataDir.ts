// Builds an IoTDB-style data directory of valid TsFiles for the demo, tests and benchmarks.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DeviceSpec, MeasurementSpec, TsFileSpec } from "../tsfile/writer.js";
import { writeSealedTsFile } from "./tsfileFiles.js";

export interface SampleLayout {
  /** Storage group → its devices (last path levels after the group). */
  readonly groups: Readonly<Record<string, ReadonlyArray<string>>>;
  readonly virtualGroups: number;
  readonly partitions: number;
  readonly filesPerPartition: number;
  readonly pointsPerSeries: number;
  /** Also write one TsFile without its .resource (still being written: must not be sent). */
  readonly withUnsealed: boolean;
}

export const demoLayout: SampleLayout = {
  groups: {
    "root.north_plant": ["line1.press", "line1.oven", "line2.press"],
    "root.south_plant": ["packing.scale", "packing.sealer"],
    "root.utilities": ["boiler", "chiller"],
  },
  virtualGroups: 2,
  partitions: 2,
  filesPerPartition: 2,
  pointsPerSeries: 200,
  withUnsealed: true,
};

/** A week, as IoTDB's default time partition interval. */
const partitionMs = 7n * 24n * 3600n * 1000n;
const epoch = 1_700_000_000_000n;

const series = (name: string, dataType: "DOUBLE" | "INT64", start: bigint, n: number, seed: number): MeasurementSpec => {
  const timestamps = Array.from({ length: n }, (_, i) => start + BigInt(i) * 1000n);
  return dataType === "DOUBLE"
    ? { name, dataType, timestamps, values: timestamps.map((_, i) => Math.round((20 + 5 * Math.sin((i + seed) / 7)) * 100) / 100) }
    : { name, dataType, timestamps, values: timestamps.map((_, i) => BigInt(seed * 1000 + i)) };
};

export interface SampleFile {
  readonly sg: string;
  readonly vg: string;
  readonly tp: string;
  readonly name: string;
  readonly path: string;
  readonly sealed: boolean;
}

/**
 * An IoTDB 0.13-style data directory (`sequence/<sg>/<vg>/<tp>/`) of valid TsFiles written by our
 * own writer, each with its `.resource`: the demo's data and the tests' and benchmarks'.
 */
export const buildSampleDataDir = async (dataDir: string, layout: SampleLayout = demoLayout): Promise<ReadonlyArray<SampleFile>> => {
  const files: SampleFile[] = [];
  let version = 1;
  for (const [sg, devices] of Object.entries(layout.groups)) {
    for (let vg = 0; vg < layout.virtualGroups; vg++) {
      for (let tp = 0; tp < layout.partitions; tp++) {
        const dir = join(dataDir, "sequence", sg, String(vg), String(tp));
        await mkdir(dir, { recursive: true });
        for (let f = 0; f < layout.filesPerPartition; f++) {
          const start = epoch + BigInt(tp) * partitionMs + BigInt(f) * 3_600_000n;
          const spec: TsFileSpec = {
            devices: devices
              .filter((_, i) => i % layout.virtualGroups === vg)
              .map(
                (d, i): DeviceSpec => ({
                  path: `${sg}.${d}`,
                  measurements: [
                    series("temperature", "DOUBLE", start, layout.pointsPerSeries, i + f),
                    series("count", "INT64", start, layout.pointsPerSeries, i + tp),
                  ],
                }),
              ),
          };
          if (spec.devices.length === 0) continue;
          const name = `${Number(start)}-${version++}-0-0.tsfile`;
          const w = await writeSealedTsFile(dir, name, spec);
          files.push({ sg, vg: String(vg), tp: String(tp), name, path: w.tsfilePath, sealed: true });
        }
      }
    }
  }
  if (layout.withUnsealed) {
    const [sg] = Object.keys(layout.groups);
    if (sg) {
      const dir = join(dataDir, "sequence", sg, "0", "0");
      const name = `${Number(epoch + partitionMs - 1000n)}-${version++}-0-0.tsfile`;
      // A TsFile still being written: IoTDB has not written its .resource yet.
      await writeFile(join(dir, name), new Uint8Array([0x54, 0x73, 0x46, 0x69, 0x6c, 0x65, 0x03, 0x00]));
      files.push({ sg, vg: "0", tp: "0", name, path: join(dir, name), sealed: false });
    }
  }
  return files;
};
