// What the receiver confirmed, in memory: one record per time partition, a packed string per file, small enough for a million files.
import type { FileRef, PartKind } from "../../protocol/messages.js";
import { partOrder } from "../../protocol/parts.js";

/** What the receiver confirmed it loaded, per part: the sender's memory of "already there". */
export interface ConfirmedPart {
  readonly kind: PartKind;
  readonly size: number;
  readonly sha256: string;
  readonly mtimeMs: number;
}

export interface ConfirmedUnit {
  readonly ref: FileRef;
  readonly parts: ReadonlyArray<ConfirmedPart>;
}

/** A time partition: where a file lives, without its name. */
export interface PartitionRef {
  readonly sg: string;
  readonly vg: string;
  readonly tp: string;
}

/** `sg/vg/tp`: the prefix of `fileKey` (segments hold no "/"), so a journal key splits at its last "/". */
export const partitionKey = (p: PartitionRef): string => `${p.sg}/${p.vg}/${p.tp}`;

/**
 * A file's parts packed into one Latin-1 string: a count byte, then per part its kind (1 byte), size
 * and mtime (float64 each) and SHA-256 (32 bytes): 99 characters for a TsFile and its resource,
 * against about 600 bytes of objects and hex strings. Doubles hold every size and mtime exactly.
 */
type Packed = string;
const partBytes = 1 + 8 + 8 + 32;
const scratch = Buffer.allocUnsafe(1 + partBytes * partOrder.length);
const kindIndex: ReadonlyMap<PartKind, number> = new Map(partOrder.map((k, i) => [k, i]));
const hexDigest = /^[0-9a-f]{64}$/;

/** undefined when the parts do not fit the packed form (a digest that is not lowercase hex); those stay objects. */
const pack = (parts: ReadonlyArray<ConfirmedPart>): Packed | undefined => {
  if (parts.length > partOrder.length) return undefined;
  let at = 0;
  scratch[at++] = parts.length;
  for (const p of parts) {
    const kind = kindIndex.get(p.kind);
    if (kind === undefined || !hexDigest.test(p.sha256)) return undefined;
    scratch[at] = kind;
    scratch.writeDoubleLE(p.size, at + 1);
    scratch.writeDoubleLE(p.mtimeMs, at + 9);
    scratch.write(p.sha256, at + 17, "hex");
    at += partBytes;
  }
  return scratch.toString("latin1", 0, at);
};

/** Fields in the journal's order, so a compacted journal reads as the lines first written. */
const unpack = (packed: Packed): ConfirmedPart[] => {
  const b = Buffer.from(packed, "latin1");
  const parts: ConfirmedPart[] = [];
  for (let i = 0, at = 1; i < (b[0] ?? 0); i++, at += partBytes) {
    parts.push({
      kind: partOrder[b[at] ?? 0] ?? "tsfile",
      size: b.readDoubleLE(at + 1),
      sha256: b.toString("hex", at + 17, at + 17 + 32),
      mtimeMs: b.readDoubleLE(at + 9),
    });
  }
  return parts;
};

/** The confirmed files of one time partition: its ref once, then name → packed parts. */
export class ConfirmedPartition {
  private readonly files = new Map<string, Packed | ReadonlyArray<ConfirmedPart>>();
  /** Changes whenever a file of this partition is confirmed or forgotten (a clock shared by the set). */
  version = 0;

  constructor(readonly ref: PartitionRef) {}

  get size(): number {
    return this.files.size;
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  names(): IterableIterator<string> {
    return this.files.keys();
  }

  parts(name: string): ReadonlyArray<ConfirmedPart> | undefined {
    const f = this.files.get(name);
    return typeof f === "string" ? unpack(f) : f;
  }

  unit(name: string): ConfirmedUnit | undefined {
    const parts = this.parts(name);
    return parts && { ref: { ...this.ref, name }, parts };
  }

  set(name: string, parts: ReadonlyArray<ConfirmedPart>): void {
    this.files.set(name, pack(parts) ?? parts.map((p) => ({ ...p })));
  }

  delete(name: string): boolean {
    return this.files.delete(name);
  }

  /** How the files are held, for tests and the bench: packed characters and files left as objects. */
  footprint(): { readonly files: number; readonly packed: number; readonly packedChars: number; readonly loose: number } {
    let packed = 0;
    let packedChars = 0;
    for (const f of this.files.values()) {
      if (typeof f === "string") {
        packed++;
        packedChars += f.length;
      }
    }
    return { files: this.files.size, packed, packedChars, loose: this.files.size - packed };
  }
}

/** Every confirmed file, grouped by time partition: what the scan diffs a partition against. */
export class ConfirmedSet {
  private readonly byPartition = new Map<string, ConfirmedPartition>();
  private clock = 0;
  private count = 0;

  /** Files confirmed. */
  get size(): number {
    return this.count;
  }

  partition(key: string): ConfirmedPartition | undefined {
    return this.byPartition.get(key);
  }

  partitions(): IterableIterator<ConfirmedPartition> {
    return this.byPartition.values();
  }

  /** Changes whenever the partition's confirmed files change; 0 while it has none. */
  versionOf(key: string): number {
    return this.byPartition.get(key)?.version ?? 0;
  }

  get(ref: FileRef): ConfirmedUnit | undefined {
    return this.byPartition.get(partitionKey(ref))?.unit(ref.name);
  }

  add(unit: ConfirmedUnit): void {
    const key = partitionKey(unit.ref);
    let p = this.byPartition.get(key);
    if (!p) {
      p = new ConfirmedPartition({ sg: unit.ref.sg, vg: unit.ref.vg, tp: unit.ref.tp });
      this.byPartition.set(key, p);
    }
    if (!p.has(unit.ref.name)) this.count++;
    p.set(unit.ref.name, unit.parts);
    p.version = ++this.clock;
  }

  /** By `fileKey(ref)`, the form the journal's deletions are stored in. */
  deleteKey(key: string): void {
    const slash = key.lastIndexOf("/");
    const partKey = key.slice(0, slash);
    const p = this.byPartition.get(partKey);
    if (!p || !p.delete(key.slice(slash + 1))) return;
    this.count--;
    // A partition emptied goes (TTL drops whole partitions); the clock keeps its version from repeating.
    if (p.size === 0) this.byPartition.delete(partKey);
    else p.version = ++this.clock;
  }

  /** Every file, materialized one at a time: for compaction and tests. */
  *units(): IterableIterator<ConfirmedUnit> {
    for (const p of this.byPartition.values()) {
      for (const name of p.names()) {
        const u = p.unit(name);
        if (u) yield u;
      }
    }
  }
}

/** The set as the scan sees it: changed only by the work directory, which journals every change. */
export type ConfirmedView = Omit<ConfirmedSet, "add" | "deleteKey">;
