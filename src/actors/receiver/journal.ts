// The receiver's load journal: what was loaded per (sender, file, part, digest), so a load happens once.
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { Schema } from "effect";
import { FileRef, PartKind } from "../../protocol/messages.js";
import { fileKey } from "../../protocol/parts.js";
import { AppendLog } from "../../files/appendLog.js";

export interface LoadedPart {
  readonly sender: string;
  readonly ref: FileRef;
  readonly kind: PartKind;
  readonly size: number;
  readonly sha256: string;
  readonly at: number;
}

const JournalRecord = Schema.Union([
  Schema.Struct({
    op: Schema.Literal("loaded"),
    sender: Schema.String,
    ref: FileRef,
    kind: PartKind,
    size: Schema.Number,
    sha256: Schema.String,
    at: Schema.Number,
  }),
  Schema.Struct({ op: Schema.Literal("deleted"), sender: Schema.String, ref: FileRef, at: Schema.Number }),
]);
type JournalRecord = typeof JournalRecord.Type;

/**
 * The receiver's record of what it loaded, keyed by (sender, storage group, file, part) with the
 * digest: the authority that makes a load happen once. Appended per load and fsynced before the
 * sender hears "loaded"; concurrent sessions share one fsync (group commit).
 */
export class Journal {
  private readonly loaded = new Map<string, LoadedPart>();
  /** File → the senders with a part of it loaded: storage places by name, so these share a path. */
  private readonly loaders = new Map<string, Set<string>>();

  private constructor(private readonly log: AppendLog<JournalRecord>) {}

  /**
   * Replays the journal; an unreadable or damaged one rejects (AppendLogError, naming the file)
   * rather than starting from empty, which would load everything again.
   */
  static async open(path: string, log: (line: string) => void = (line) => process.stderr.write(line + "\n")): Promise<Journal> {
    await mkdir(dirname(path), { recursive: true });
    const opened = await AppendLog.open(path, JournalRecord, log);
    const j = new Journal(opened.log);
    for (const r of opened.records) j.apply(r);
    // Compact on open so the journal stays proportional to what is stored, not to history.
    await opened.log.compact([...j.loaded.values()].map((p) => ({ op: "loaded", ...p })));
    return j;
  }

  private apply(r: JournalRecord): void {
    const file = fileKey(r.ref);
    if (r.op === "loaded") {
      this.loaded.set(fileKey(r.ref, { sender: r.sender, kind: r.kind }), {
        sender: r.sender,
        ref: r.ref,
        kind: r.kind,
        size: r.size,
        sha256: r.sha256,
        at: r.at,
      });
      const senders = this.loaders.get(file) ?? new Set<string>();
      senders.add(r.sender);
      this.loaders.set(file, senders);
    } else {
      for (const kind of PartKind.literals) this.loaded.delete(fileKey(r.ref, { sender: r.sender, kind }));
      const senders = this.loaders.get(file);
      senders?.delete(r.sender);
      if (senders?.size === 0) this.loaders.delete(file);
    }
  }

  find(sender: string, ref: FileRef, kind: PartKind): LoadedPart | undefined {
    return this.loaded.get(fileKey(ref, { sender, kind }));
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
    await this.record([{ op: "loaded", ...p, at: Date.now() }]);
  }

  /** The parts of one file in one append and one fsync. */
  async recordLoadedAll(parts: ReadonlyArray<Omit<LoadedPart, "at">>): Promise<void> {
    const at = Date.now();
    await this.record(parts.map((p) => ({ op: "loaded", ...p, at })));
  }

  async recordDeleted(sender: string, ref: FileRef): Promise<void> {
    await this.record([{ op: "deleted", sender, ref, at: Date.now() }]);
  }

  private async record(recs: ReadonlyArray<JournalRecord>): Promise<void> {
    for (const r of recs) this.apply(r);
    await this.log.append(recs);
  }

  async close(): Promise<void> {
    await this.log.close();
  }

  get file(): string {
    return this.log.file;
  }
}
