// The sender's work directory: its lock, identity, confirmed journal and the round's pinned snapshot.
import { randomUUID } from "node:crypto";
import { copyFileSync, linkSync, statSync } from "node:fs";
import { mkdir, open, readFile, rm, stat, copyFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Schema } from "effect";
import { FileRef, PartKind } from "../../protocol/messages.js";
import { fileKey, isSideKind, partFileName } from "../../protocol/parts.js";
import { writeFileAtomic } from "../../files/durableFile.js";
import { creatingParent, removeFile } from "../../files/optimistic.js";
import { AppendLog } from "../../files/appendLog.js";
import { ConfirmedSet, type ConfirmedUnit, type ConfirmedView } from "./confirmedSet.js";

export type { ConfirmedPart, ConfirmedUnit } from "./confirmedSet.js";

const JournalRecord = Schema.Union([
  Schema.Struct({
    op: Schema.Literal("add"),
    unit: Schema.Struct({
      ref: FileRef,
      parts: Schema.Array(Schema.Struct({ kind: PartKind, size: Schema.Number, sha256: Schema.String, mtimeMs: Schema.Number })),
    }),
  }),
  // By `fileKey(ref)`, as the journal has always stored it.
  Schema.Struct({ op: Schema.Literal("del"), key: Schema.String }),
]);
type JournalRecord = typeof JournalRecord.Type;

/**
 * Compaction on open rewrites the whole journal from memory, which costs the journal's size again
 * in memory for a moment: worth it once the log is mostly dead records, not at every start.
 */
const worthCompacting = (records: number, live: number): boolean => records - live > Math.max(1000, live);

export class SenderLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`another sender (pid ${pid}) is already running for ${dir}`);
  }
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * The sender's durable state for one receiver: `<data_directory>/sync-sender/<receiver>/`.
 * - `sender-id`: identity presented to the receiver
 * - `lock`: pid of the running sender, so one sender runs per data directory and receiver
 * - `confirmed.jsonl`: append-only journal of loads the receiver confirmed; compacted on open
 * - `snapshot/`: hard links to the files of the round, so compaction on the edge cannot pull
 *   a file away mid-transfer
 * - `schema-position.json`: how far the schema log (mlog) has been shipped (see schemaLog.ts)
 */
export class WorkDir {
  private constructor(
    readonly dir: string,
    readonly senderId: string,
    private readonly confirmedSet: ConfirmedSet,
    private readonly journal: AppendLog<JournalRecord>,
  ) {}

  /**
   * Takes the lock and replays the confirmed journal; an unreadable or damaged journal rejects
   * (AppendLogError, naming the file) rather than forgetting what was confirmed. The journal is
   * read a chunk at a time, each record folded into the compact set as its line is read.
   */
  static async open(
    dir: string,
    configuredName: string | undefined,
    log: (line: string) => void = (line) => process.stderr.write(line + "\n"),
  ): Promise<WorkDir> {
    await mkdir(join(dir, "snapshot"), { recursive: true });
    await WorkDir.lock(dir);
    try {
      const senderId = configuredName ?? (await WorkDir.identity(dir));
      const confirmed = new ConfirmedSet();
      const opened = await AppendLog.openFolding(join(dir, "confirmed.jsonl"), JournalRecord, log, (rec) => {
        if (rec.op === "add") confirmed.add(rec.unit);
        else confirmed.deleteKey(rec.key);
      });
      if (worthCompacting(opened.records, confirmed.size))
        await opened.log.compact(Array.from(confirmed.units(), (unit): JournalRecord => ({ op: "add", unit })));
      return new WorkDir(dir, senderId, confirmed, opened.log);
    } catch (e) {
      await rm(join(dir, "lock"), { force: true });
      throw e;
    }
  }

  private static async lock(dir: string): Promise<void> {
    const path = join(dir, "lock");
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const h = await open(path, "wx");
        await h.writeFile(String(process.pid));
        await h.close();
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) throw new SenderLockedError(dir, pid);
        // The holder died (kill -9, power loss): its lock is stale.
        await rm(path, { force: true });
      }
    }
    throw new Error(`cannot take the lock ${path}`);
  }

  private static async identity(dir: string): Promise<string> {
    const path = join(dir, "sender-id");
    const existing = (await readFile(path, "utf8").catch(() => "")).trim();
    if (/^[A-Za-z0-9_-]{1,64}$/.test(existing)) return existing;
    const id = randomUUID().replaceAll("-", "");
    await writeFileAtomic(path, id + "\n");
    return id;
  }

  /** What the receiver confirmed, by time partition; changed only through `confirm` and `forget`. */
  get confirmed(): ConfirmedView {
    return this.confirmedSet;
  }

  /**
   * Records a load the receiver confirmed. Not fsynced per file: after a power loss the receiver's
   * own journal answers "have" for anything this list forgot, so nothing is loaded twice.
   */
  async confirm(unit: ConfirmedUnit): Promise<void> {
    this.confirmedSet.add(unit);
    await this.journal.write([{ op: "add", unit }]);
  }

  async forget(ref: FileRef): Promise<void> {
    this.confirmedSet.deleteKey(fileKey(ref));
    await this.journal.write([{ op: "del", key: fileKey(ref) }]);
  }

  async flush(): Promise<void> {
    await this.journal.sync();
  }

  snapshotPath(ref: FileRef, kind: PartKind): string {
    return join(this.dir, "snapshot", ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind));
  }

  /**
   * Pins a part for the round. TsFiles and resources never change once sealed, so a hard link is
   * enough; side files grow with deletions, so they are copied to freeze what is sent.
   */
  async pin(ref: FileRef, kind: PartKind, source: string): Promise<{ path: string; size: number; mtimeMs: number }> {
    const target = this.snapshotPath(ref, kind);
    // Synchronous: a few metadata calls per file, cheaper than their promise forms (see files/optimistic.ts).
    const s = statSync(source);
    if (isSideKind(kind)) {
      creatingParent(target, () => copyFileSync(source, target));
      return { path: target, size: statSync(target).size, mtimeMs: s.mtimeMs };
    }
    try {
      creatingParent(target, () => linkOver(source, target));
      // A hard link is the same inode: its size is the one just read.
      return { path: target, size: s.size, mtimeMs: s.mtimeMs };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EXDEV" && code !== "EPERM") throw e;
      await copyFile(source, target);
      return { path: target, size: (await stat(target)).size, mtimeMs: s.mtimeMs };
    }
  }

  async unpin(ref: FileRef, kinds: ReadonlyArray<PartKind>): Promise<void> {
    for (const k of kinds) removeFile(this.snapshotPath(ref, k));
  }

  /** Recovery before the diff: snapshots of an interrupted round are made again by the next scan. */
  async clearSnapshots(): Promise<void> {
    await rm(join(this.dir, "snapshot"), { recursive: true, force: true });
    await mkdir(join(this.dir, "snapshot"), { recursive: true });
  }

  async close(): Promise<void> {
    await this.journal.sync().catch(() => undefined);
    await this.journal.close();
    await rm(join(this.dir, "lock"), { force: true });
  }
}

/** Hard-links `source` at `target`, replacing a snapshot an interrupted round left there. */
const linkOver = (source: string, target: string): void => {
  try {
    linkSync(source, target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    removeFile(target);
    linkSync(source, target);
  }
};
