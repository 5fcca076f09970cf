// Append-only JSON-lines logs that survive crashes: fsynced appends, torn-tail repair, atomic compaction.
import { appendFile, open, readdir, readFile, rm, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Data, Result, Schema } from "effect";
import { isTempOf, writeFileAtomic } from "./durableFile.js";

/**
 * A log that cannot be replayed as it is: unreadable, or damaged before its last line. `line` is
 * 1-based. Replaying around the damage would forget what the log promised (a load done once), so
 * the owner refuses to start and the message tells the operator which file and why.
 */
export class AppendLogError extends Data.TaggedError("AppendLogError")<{
  readonly file: string;
  readonly line?: number;
  readonly message: string;
  readonly cause?: unknown;
}> {}

/** How a line's JSON becomes a record: a Schema, or a function that throws on a wrong shape. */
export type LineDecoder<A> = Schema.ConstraintDecoder<A> | ((json: unknown) => A);

/** A last line cut short by a crash mid-append: never acknowledged, so dropping it loses nothing promised. */
export interface TornTail {
  /** Its line number, 1-based. */
  readonly line: number;
  readonly bytes: number;
}

export interface Replay<A> {
  readonly records: ReadonlyArray<A>;
  readonly torn: TornTail | undefined;
}

const oneLine = (s: string) => s.replace(/\s*\n\s*/g, "; ");

const decoderOf = <A>(decode: LineDecoder<A>): ((json: unknown) => Result.Result<A, string>) => {
  if (Schema.isSchema(decode)) {
    const run = Schema.decodeUnknownResult(decode as Schema.ConstraintDecoder<A>);
    return (json) => Result.mapError(run(json), (e) => oneLine(e.message));
  }
  const f = decode as (json: unknown) => A;
  return (json) => {
    try {
      return Result.succeed(f(json));
    } catch (e) {
      return Result.fail(oneLine(e instanceof Error ? e.message : String(e)));
    }
  };
};

const lineFeed = 0x0a;

/**
 * Where the torn last line of `bytes` starts, if it has one: a line without its "\n" (each append
 * writes whole lines, so that append never finished) or a last line that is not JSON at all.
 */
const tornTailAt = (bytes: Buffer): number | undefined => {
  if (bytes.length === 0) return undefined;
  if (bytes[bytes.length - 1] !== lineFeed) return bytes.lastIndexOf(lineFeed) + 1;
  // (lastIndexOf counts a negative offset from the end, hence the guard.)
  const start = bytes.length >= 2 ? bytes.lastIndexOf(lineFeed, bytes.length - 2) + 1 : 0;
  const text = bytes.toString("utf8", start, bytes.length - 1);
  if (text.trim() === "") return undefined;
  try {
    JSON.parse(text);
    return undefined;
  } catch {
    return start;
  }
};

const countLines = (bytes: Buffer, end: number): number => {
  let n = 0;
  for (let i = bytes.indexOf(lineFeed); i !== -1 && i < end; i = bytes.indexOf(lineFeed, i + 1)) n++;
  return n;
};

const tornTailOf = (bytes: Buffer): (TornTail & { readonly start: number }) | undefined => {
  const start = tornTailAt(bytes);
  return start === undefined ? undefined : { start, line: countLines(bytes, start) + 1, bytes: bytes.length - start };
};

/** One line's record; undefined for a blank line. A line that is not JSON or not a record rejects, naming its number. */
const parseLine = <A>(file: string, text: string, line: number, decodeLine: (json: unknown) => Result.Result<A, string>): A | undefined => {
  if (text.trim() === "") return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AppendLogError({
      file,
      line,
      message: `${file}, line ${line}: not a JSON record (${e instanceof Error ? e.message : String(e)}); a log damaged before its end is not replayed`,
      cause: e,
    });
  }
  const decoded = decodeLine(json);
  if (Result.isFailure(decoded))
    throw new AppendLogError({ file, line, message: `${file}, line ${line}: not a record of this log: ${decoded.failure}` });
  return decoded.success;
};

/** Decodes every line of `bytes` before `end`; a line that is not JSON or not a record rejects, naming its number. */
const parse = <A>(file: string, bytes: Buffer, end: number, decode: LineDecoder<A>): ReadonlyArray<A> => {
  const decodeLine = decoderOf(decode);
  const records: A[] = [];
  for (let start = 0, line = 1; start < end; line++) {
    const stop = bytes.indexOf(lineFeed, start);
    const record = parseLine(file, bytes.toString("utf8", start, stop), line, decodeLine);
    start = stop + 1;
    if (record !== undefined) records.push(record);
  }
  return records;
};

const readBytes = async (file: string): Promise<Buffer> => {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
    throw new AppendLogError({ file, message: `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, cause: e });
  }
};

/**
 * Every record of the log, without changing the file: for readers beside a running writer, whose
 * torn tail may be an append still in flight. A missing file is an empty log; any other read
 * failure or a damaged line before the last rejects with an AppendLogError.
 */
export const readLog = async <A>(file: string, decode: LineDecoder<A>): Promise<Replay<A>> => {
  const bytes = await readBytes(file);
  const torn = tornTailOf(bytes);
  return { records: parse(file, bytes, torn?.start ?? bytes.length, decode), torn: torn && { line: torn.line, bytes: torn.bytes } };
};

/**
 * `readLog` for the log's one writer, before it appends: a torn tail is cut off (and told), so the
 * next append starts a line of its own; temp files of a compaction a crash interrupted go too.
 */
export const repairLog = async <A>(file: string, decode: LineDecoder<A>, log: (line: string) => void): Promise<ReadonlyArray<A>> => {
  const bytes = await readBytes(file);
  const torn = tornTailOf(bytes);
  const records = parse(file, bytes, torn?.start ?? bytes.length, decode);
  await cutTornTail(file, torn, log);
  await removeTemps(file);
  return records;
};

const removeTemps = async (file: string): Promise<void> => {
  const entries = await readdir(dirname(file)).catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return [];
    throw e;
  });
  await Promise.all(entries.filter((e) => isTempOf(file, e)).map((e) => rm(join(dirname(file), e), { force: true })));
};

const foldChunkBytes = 1 << 20;

const cannotRead = (file: string, e: unknown): AppendLogError =>
  new AppendLogError({ file, message: `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, cause: e });

/**
 * `repairLog` for a log too large to hold as records (the sender's confirmed journal, a line per
 * file): read a chunk at a time, each record handed to `onRecord` as its line is read and not
 * kept. The same torn tail is cut and the same damage rejects (a bad line is known not to be the
 * last only once the next one is read, so each line is handled one line late). Resolves to the
 * number of records.
 */
export const foldLog = async <A>(
  file: string,
  decode: LineDecoder<A>,
  log: (line: string) => void,
  onRecord: (record: A) => void,
): Promise<number> => {
  const decodeLine = decoderOf(decode);
  let records = 0;
  const handle = (text: string, line: number) => {
    const record = parseLine(file, text, line, decodeLine);
    if (record === undefined) return;
    onRecord(record);
    records++;
  };
  let h: FileHandle | undefined;
  try {
    h = await open(file, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw cannotRead(file, e);
  }
  let torn: (TornTail & { readonly start: number }) | undefined;
  if (h) {
    try {
      const chunk = Buffer.allocUnsafe(foldChunkBytes);
      let carry = Buffer.alloc(0);
      let carryAt = 0; // file offset of carry[0]
      let lines = 0;
      let pending: { text: string; line: number; start: number } | undefined;
      for (;;) {
        const { bytesRead } = await h.read(chunk, 0, chunk.length, carryAt + carry.length).catch((e: unknown) => {
          throw cannotRead(file, e);
        });
        if (bytesRead === 0) break;
        const bytes = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, bytesRead)]) : chunk.subarray(0, bytesRead);
        let start = 0;
        for (let stop = bytes.indexOf(lineFeed); stop !== -1; stop = bytes.indexOf(lineFeed, start)) {
          if (pending) handle(pending.text, pending.line);
          pending = { text: bytes.toString("utf8", start, stop), line: ++lines, start: carryAt + start };
          start = stop + 1;
        }
        carry = Buffer.from(bytes.subarray(start));
        carryAt += start;
      }
      const size = carryAt + carry.length;
      if (carry.length > 0) {
        // A last line without its "\n": that append never finished.
        if (pending) handle(pending.text, pending.line);
        torn = { start: carryAt, line: lines + 1, bytes: carry.length };
      } else if (pending) {
        const last = pending;
        let json = true;
        try {
          JSON.parse(last.text);
        } catch {
          json = last.text.trim() === "";
        }
        if (json) handle(last.text, last.line);
        else torn = { start: last.start, line: last.line, bytes: size - last.start };
      }
    } finally {
      await h.close();
    }
  }
  await cutTornTail(file, torn, log);
  await removeTemps(file);
  return records;
};

/**
 * Only the torn-tail repair of `repairLog`, the lines before it unread: for a log whose damage
 * should not stop its writer (the catalog: its readers report that damage).
 */
export const repairTail = async (file: string, log: (line: string) => void): Promise<void> => {
  await cutTornTail(file, tornTailOf(await readBytes(file)), log);
};

const cutTornTail = async (
  file: string,
  torn: (TornTail & { readonly start: number }) | undefined,
  log: (line: string) => void,
): Promise<void> => {
  if (torn === undefined) return;
  const h = await open(file, "r+");
  try {
    await h.truncate(torn.start);
    await h.sync();
  } finally {
    await h.close();
  }
  log(
    `${file}: dropped its torn last line (line ${torn.line}, ${torn.bytes} bytes), an append a crash cut short; the log now ends at byte ${torn.start}`,
  );
};

const encode = (records: ReadonlyArray<unknown>): string => records.map((r) => JSON.stringify(r) + "\n").join("");

/**
 * Appends whole lines in one call, opening and closing the file: for logs written now and then
 * (the catalog), after `repairTail`. Not fsynced.
 */
export const appendToLog = async (file: string, records: ReadonlyArray<unknown>): Promise<void> => {
  if (records.length > 0) await appendFile(file, encode(records));
};

/**
 * The writer's side of a log, opened after its replay and repair. Writes land in call order; an
 * `append` returns once its lines are on disk, sharing one fsync with appends made meanwhile
 * (group commit).
 */
export class AppendLog<A> {
  private queue: Promise<unknown> = Promise.resolve();
  private pendingSync: Promise<void> | undefined;
  private dirty = false;

  private constructor(
    readonly file: string,
    private handle: FileHandle,
  ) {}

  /** Replays and repairs `file` (see `repairLog`), then opens it for appends. */
  static async open<A>(
    file: string,
    decode: LineDecoder<A>,
    log: (line: string) => void,
  ): Promise<{ readonly log: AppendLog<A>; readonly records: ReadonlyArray<A> }> {
    const records = await repairLog(file, decode, log);
    return { log: new AppendLog<A>(file, await open(file, "a")), records };
  }

  /** `open` through `foldLog`: each record goes to `onRecord` as it is read, none kept. */
  static async openFolding<A>(
    file: string,
    decode: LineDecoder<A>,
    log: (line: string) => void,
    onRecord: (record: A) => void,
  ): Promise<{ readonly log: AppendLog<A>; readonly records: number }> {
    const records = await foldLog(file, decode, log, onRecord);
    return { log: new AppendLog<A>(file, await open(file, "a")), records };
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Appends without waiting for the disk: for records whose loss in a power failure costs work, not correctness. */
  async write(records: ReadonlyArray<A>): Promise<void> {
    if (records.length === 0) return;
    await this.serial(() => this.handle.appendFile(encode(records)));
    this.dirty = true;
  }

  /** Appends and returns once the lines are on disk. */
  async append(records: ReadonlyArray<A>): Promise<void> {
    await this.write(records);
    await this.sync();
  }

  /** Returns once everything written so far is on disk. */
  sync(): Promise<void> {
    // One fsync in flight at a time; writes that land meanwhile ride on the next one.
    if (this.pendingSync) return this.pendingSync.then(() => (this.dirty ? this.sync() : undefined));
    this.dirty = false;
    this.pendingSync = this.handle.datasync().finally(() => {
      this.pendingSync = undefined;
    });
    return this.pendingSync;
  }

  /**
   * Replaces the log with `live`, every record that still matters (what was written before and is
   * not in it is gone), atomically: a crash leaves the old log or the new one, and at worst a temp
   * file the next `open` removes. Later appends go to the new file.
   */
  compact(live: ReadonlyArray<A>): Promise<void> {
    return this.serial(async () => {
      await this.pendingSync;
      await writeFileAtomic(this.file, encode(live));
      const old = this.handle;
      this.handle = await open(this.file, "a");
      this.dirty = false;
      // A sync begun on the old handle meanwhile must end before that handle closes.
      await this.pendingSync?.catch(() => undefined);
      await old.close();
    });
  }

  async close(): Promise<void> {
    await this.queue;
    await this.pendingSync;
    await this.handle.close();
  }
}
