import { mkdir, open, readFile, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { FileRef, PartKind } from "../../protocol/messages.js";
import { writeFileAtomic } from "../durableFile.js";

export interface LoadedPart {
  readonly sender: string;
  readonly ref: FileRef;
  readonly kind: PartKind;
  readonly size: number;
  readonly sha256: string;
  readonly at: number;
}

type Record_ = ({ op: "loaded" } & LoadedPart) | { op: "deleted"; sender: string; ref: FileRef; at: number };

const unitKey = (sender: string, r: FileRef) => `${sender}\u0000${r.sg}/${r.vg}/${r.tp}/${r.name}`;
const partKey = (sender: string, r: FileRef, kind: PartKind) => `${unitKey(sender, r)}\u0000${kind}`;
// Names are checked segments (no "/"), so this is one-to-one.
const fileKey = (r: FileRef) => `${r.sg}/${r.vg}/${r.tp}/${r.name}`;

/**
 * The receiver's record of what it loaded, keyed by (sender, storage group, file, part) with the
 * digest: the authority that makes a load happen once. Appended per load and fsynced before the
 * sender hears "loaded"; concurrent sessions share one fsync (group commit).
 */
export class Journal {
  private readonly loaded = new Map<string, LoadedPart>();
  /** File → the senders with a part of it loaded: storage places by name, so these share a path. */
  private readonly loaders = new Map<string, Set<string>>();
  private pendingSync: Promise<void> | undefined;
  private dirty = false;

  private constructor(
    private readonly path: string,
    private handle: FileHandle,
  ) {}

  static async open(path: string): Promise<Journal> {
    await mkdir(dirname(path), { recursive: true });
    const j = new Journal(path, undefined as unknown as FileHandle);
    const text = await readFile(path, "utf8").catch(() => "");
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        j.apply(JSON.parse(line) as Record_);
      } catch {
        // torn last line after a crash: that load was never acknowledged to the sender
      }
    }
    // Compact on open so the journal stays proportional to what is stored, not to history.
    await writeFileAtomic(path, [...j.loaded.values()].map((p) => JSON.stringify({ op: "loaded", ...p }) + "\n").join(""));
    j.handle = await open(path, "a");
    return j;
  }

  private apply(r: Record_): void {
    const file = fileKey(r.ref);
    if (r.op === "loaded") {
      this.loaded.set(partKey(r.sender, r.ref, r.kind), { sender: r.sender, ref: r.ref, kind: r.kind, size: r.size, sha256: r.sha256, at: r.at });
      const senders = this.loaders.get(file) ?? new Set<string>();
      senders.add(r.sender);
      this.loaders.set(file, senders);
    } else {
      for (const k of ["resource", "tsfile", "mods", "mods2"] as const) this.loaded.delete(partKey(r.sender, r.ref, k));
      const senders = this.loaders.get(file);
      senders?.delete(r.sender);
      if (senders?.size === 0) this.loaders.delete(file);
    }
  }

  find(sender: string, ref: FileRef, kind: PartKind): LoadedPart | undefined {
    return this.loaded.get(partKey(sender, ref, kind));
  }

  /** The senders that loaded (a part of) this file and have not deleted it, sorted. */
  loadersOf(ref: FileRef): ReadonlyArray<string> {
    return [...(this.loaders.get(fileKey(ref)) ?? [])].sort();
  }

  /** Every loaded part, for the catalog and recovery. */
  all(): ReadonlyArray<LoadedPart> {
    return [...this.loaded.values()];
  }

  async recordLoaded(p: Omit<LoadedPart, "at">): Promise<void> {
    const rec: Record_ = { op: "loaded", ...p, at: Date.now() };
    this.apply(rec);
    await this.append(rec);
  }

  /** The parts of one file in one append and one fsync. */
  async recordLoadedAll(parts: ReadonlyArray<Omit<LoadedPart, "at">>): Promise<void> {
    const at = Date.now();
    const recs: Record_[] = parts.map((p) => ({ op: "loaded", ...p, at }));
    for (const r of recs) this.apply(r);
    await this.handle.write(recs.map((r) => JSON.stringify(r) + "\n").join(""));
    this.dirty = true;
    await this.sync();
  }

  async recordDeleted(sender: string, ref: FileRef): Promise<void> {
    const rec: Record_ = { op: "deleted", sender, ref, at: Date.now() };
    this.apply(rec);
    await this.append(rec);
  }

  private async append(rec: Record_): Promise<void> {
    await this.handle.write(JSON.stringify(rec) + "\n");
    this.dirty = true;
    await this.sync();
  }

  private sync(): Promise<void> {
    // One fsync in flight at a time; writes that land meanwhile ride on the next one.
    if (this.pendingSync) return this.pendingSync.then(() => (this.dirty ? this.sync() : undefined));
    this.dirty = false;
    this.pendingSync = this.handle.datasync().finally(() => {
      this.pendingSync = undefined;
    });
    return this.pendingSync;
  }

  async close(): Promise<void> {
    await this.pendingSync;
    await this.handle.close();
  }

  get file(): string {
    return this.path;
  }
}
