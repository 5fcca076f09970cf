import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { FileRef } from "../../protocol/messages.js";
import type { TsFileFacts } from "../../plugins/storage.js";

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

type Line = ({ op: "loaded" } & CatalogEntry) | { op: "deleted"; sender: string; ref: FileRef };

const key = (sender: string, r: FileRef) => `${sender}\u0000${r.sg}/${r.vg}/${r.tp}/${r.name}`;

/**
 * What has arrived from whom, covering which devices and time: one line per loaded or deleted
 * TsFile, written by the receiver whatever the storage plugin, read by `tsync catalog`.
 */
export class Catalog {
  constructor(
    readonly path: string,
    readonly maxDevicesPerLine = maxCatalogDevicesPerLine,
  ) {}

  async loaded(entry: CatalogEntry): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const total = entry.devicesTotal ?? entry.devices.length;
    const line: Line =
      entry.devices.length > this.maxDevicesPerLine
        ? { op: "loaded", ...entry, devices: entry.devices.slice(0, this.maxDevicesPerLine), devicesTotal: total, devicesTruncated: true }
        : { op: "loaded", ...entry };
    await appendFile(this.path, JSON.stringify(line) + "\n");
  }

  async deleted(sender: string, ref: FileRef): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await appendFile(this.path, JSON.stringify({ op: "deleted", sender, ref } satisfies Line) + "\n");
  }

  async entries(): Promise<ReadonlyArray<CatalogEntry>> {
    const map = new Map<string, CatalogEntry>();
    const text = await readFile(this.path, "utf8").catch(() => "");
    for (const raw of text.split("\n")) {
      if (!raw) continue;
      let line: Line;
      try {
        line = JSON.parse(raw) as Line;
      } catch {
        continue;
      }
      if (line.op === "loaded") {
        const { op: _op, ...entry } = line;
        map.set(key(line.sender, line.ref), entry);
      } else map.delete(key(line.sender, line.ref));
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
