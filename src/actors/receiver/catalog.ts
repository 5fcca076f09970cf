// The receiver's catalog: which sender's TsFiles arrived, with their devices and time range, for `tsync catalog`.
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { Schema } from "effect";
import { FileRef } from "../../protocol/messages.js";
import { fileKey } from "../../protocol/parts.js";
import type { TsFileFacts } from "../../plugins/storage.js";
import { appendToLog, readLog, repairTail } from "../../files/appendLog.js";

export interface CatalogEntry {
  readonly sender: string;
  readonly ref: FileRef;
  /** The file's devices, or the first `maxDevicesPerLine` of them when `devicesTruncated`. */
  readonly devices: TsFileFacts["devices"];
  readonly version: number;
  readonly loadedAt: string;
  /** How many devices the file has; only on lines whose device list was cut (older lines never are). */
  readonly devicesTotal?: number;
  readonly devicesTruncated?: true;
}

/** A catalog line stays small whatever a sender's file lists: the rest of its devices are counted, not named. */
export const maxCatalogDevicesPerLine = 1000;

const Time = Schema.NullOr(Schema.String);
const Line = Schema.Union([
  Schema.Struct({
    op: Schema.Literal("loaded"),
    sender: Schema.String,
    ref: FileRef,
    devices: Schema.Array(Schema.Struct({ id: Schema.String, startTime: Time, endTime: Time })),
    version: Schema.Number,
    loadedAt: Schema.String,
    devicesTotal: Schema.optionalKey(Schema.Number),
    devicesTruncated: Schema.optionalKey(Schema.Literal(true)),
  }),
  Schema.Struct({ op: Schema.Literal("deleted"), sender: Schema.String, ref: FileRef }),
]);
type Line = typeof Line.Type;

/**
 * What has arrived from whom, covering which devices and time: one line per loaded or deleted
 * TsFile, written by the receiver whatever the storage plugin, read by `tsync catalog`.
 */
export class Catalog {
  private repaired: Promise<unknown> | undefined;

  constructor(
    readonly path: string,
    readonly maxDevicesPerLine = maxCatalogDevicesPerLine,
    private readonly log: (line: string) => void = (line) => process.stderr.write(line + "\n"),
  ) {}

  /** Lines go after a torn tail is cut off, or the first of them would be glued to it and spoil both. */
  private async append(line: Line): Promise<void> {
    this.repaired ??= mkdir(dirname(this.path), { recursive: true })
      .then(() => repairTail(this.path, this.log))
      .catch((e: unknown) => {
        this.repaired = undefined;
        throw e;
      });
    await this.repaired;
    await appendToLog(this.path, [line]);
  }

  async loaded(entry: CatalogEntry): Promise<void> {
    const total = entry.devicesTotal ?? entry.devices.length;
    const line: Line =
      entry.devices.length > this.maxDevicesPerLine
        ? { op: "loaded", ...entry, devices: entry.devices.slice(0, this.maxDevicesPerLine), devicesTotal: total, devicesTruncated: true }
        : { op: "loaded", ...entry };
    await this.append(line);
  }

  async deleted(sender: string, ref: FileRef): Promise<void> {
    await this.append({ op: "deleted", sender, ref });
  }

  /** What the catalog holds; it may be read while the receiver appends, so a torn tail is an append in flight and is left alone. */
  async entries(): Promise<ReadonlyArray<CatalogEntry>> {
    const map = new Map<string, CatalogEntry>();
    for (const line of (await readLog(this.path, Line)).records) {
      if (line.op === "loaded") {
        const { op: _op, ...entry } = line;
        map.set(fileKey(line.ref, { sender: line.sender }), entry);
      } else map.delete(fileKey(line.ref, { sender: line.sender }));
    }
    return [...map.values()];
  }
}

/** Devices the file has, also those its line does not name. */
export const deviceCount = (e: CatalogEntry): number => e.devicesTotal ?? e.devices.length;

export interface CatalogQuery {
  readonly group?: string | undefined;
  readonly device?: string | undefined;
}

export const queryCatalog = (entries: ReadonlyArray<CatalogEntry>, q: CatalogQuery): ReadonlyArray<CatalogEntry> =>
  entries.filter(
    (e) =>
      (q.group === undefined || e.ref.sg === q.group) &&
      (q.device === undefined || e.devices.some((d) => d.id === q.device || d.id.startsWith(`${q.device}.`))),
  );
