// The receiver's staging area: partial and verified parts per sender, with positional writes, quotas and resumes.
import { createHash, type Hash } from "node:crypto";
import { renameSync, writeFileSync, writeSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, writeFile, type FileHandle } from "node:fs/promises";
import { uptime } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import type { FileRef, Offer, PartKind } from "../../protocol/messages.js";
import { partFileName } from "../../protocol/parts.js";
import { replaceFile, writeFileAtomic } from "../../files/durableFile.js";
import { fsFailure } from "../../files/fsFailure.js";
import { hashFilePrefix } from "../../files/fileDigest.js";
import { removeFile, writeSynced } from "../../files/optimistic.js";
import { StagingHygiene, type PartOutcome, type StagingLimits } from "./stagingHygiene.js";

/** Bytes between two fsyncs of a partial file; what a reboot (not a killed process) can cost a resume. */
const durableEvery = 64 * 1024 * 1024;

export interface PartMeta {
  readonly size: number;
  /** Bytes known to be on disk (fsynced) in the .part file. */
  readonly durable: number;
  /** The boot the bytes past `durable` were written in; see `resumeOffset`. */
  readonly boot?: string;
  readonly sha256?: string;
  readonly facts?: unknown;
}

/** A verified part in staging, waiting to be loaded. */
export interface ReadyPart {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly facts: unknown;
}

export class OutsideDataDirError extends Error {}

/**
 * Staging failed on a part. Its message reaches the sender, so it names the part as the protocol
 * does, never by its local path; the error with the path is the `cause`, and goes to the log.
 */
export class StagingIoError extends Error {}

const partLabel = (ref: FileRef, kind: PartKind): string => `${ref.sg}/${ref.vg}/${ref.tp}/${ref.name} (${kind})`;

/** The staging disk cannot hold the part: the partial copy was dropped to free the space for other files. */
export class StagingFullError extends Error {
  readonly code = "ENOSPC";
}

let bootIdentity: Promise<string> | undefined;

/**
 * Names this boot of the machine. Linux gives a random id per boot; elsewhere the boot time in
 * minutes stands in (a wrong "different boot" only costs a resume from the fsynced offset).
 */
export const currentBoot = (): Promise<string> =>
  (bootIdentity ??= readFile("/proc/sys/kernel/random/boot_id", "utf8").then(
    (id) => id.trim(),
    () => `up-${Math.round((Date.now() / 1000 - uptime()) / 60)}`,
  ));

/**
 * Where a partial file resumes. A killed process (kill -9, a crash, an OOM kill) loses nothing it
 * wrote: its writes sit in the kernel's page cache, which outlives the process and reaches the disk
 * anyway. Writes are positional and in order, so within one boot every byte of the `.part` file is
 * a byte that was received, and the transfer resumes after the last of them, whatever the fsync
 * schedule. A reboot (power loss, kernel panic) can drop or garble anything past the last fsync,
 * so after one only the fsynced prefix counts. Either way the end-to-end SHA-256 at commit has the
 * last word: a bad prefix fails it, the partial copy is dropped, and the file starts over.
 */
export const resumeOffset = (meta: PartMeta | undefined, offerSize: number, onDisk: number, boot: string): number => {
  if (!meta || meta.size !== offerSize) return 0;
  const trusted = meta.boot === boot ? onDisk : Math.min(meta.durable, onDisk);
  return Math.max(0, Math.min(trusted, offerSize));
};

/**
 * Fault tests only: makes staging behave as if it lived on a filesystem of `bytes` bytes, for
 * machines where a small filesystem cannot be mounted. The CLI sets it when fault injection is armed.
 */
let emulatedCapacity: number | undefined;
export const emulateStagingCapacity = (bytes: number | undefined): void => {
  emulatedCapacity = bytes;
};

const bytesUnder = async (dir: string): Promise<number> => {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
};

const isNoSpace = (e: unknown): boolean => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT";
};

/**
 * Per-sender staging: `<root>/<sender>/<sg>/<vg>/<tp>/<file>.part` while it arrives (with its
 * durable offset in `.meta`), `.ready` once its digest matched. Partial files survive restarts so
 * a transfer resumes where the disk left it.
 */
export class Staging {
  constructor(
    readonly root: string,
    private readonly log?: (line: string) => void,
    limits: StagingLimits = {},
  ) {
    this.hygiene = new StagingHygiene(root, limits, log);
  }

  /** Per-sender quota and the sweep of abandoned parts. */
  readonly hygiene: StagingHygiene;

  /** How the hygiene names a part's file: its path under the staging root. */
  private keyOf(base: string): string {
    return base.slice(resolve(this.root).length + 1);
  }

  /** Every path is built from validated segments; this is the last line of defence all the same. */
  private base(sender: string, ref: FileRef, kind: PartKind): string {
    const p = resolve(this.root, sender, ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind));
    if (!p.startsWith(resolve(this.root) + sep)) {
      this.log?.(`staging: refusing ${p}, outside ${this.root}`);
      throw new OutsideDataDirError(`refusing ${partLabel(ref, kind)}: its path leads outside staging`);
    }
    return p;
  }

  private failed(label: string, e: unknown): unknown {
    if (e instanceof StagingFullError || e instanceof StagingIoError || e instanceof OutsideDataDirError) return e;
    this.log?.(`staging ${label}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return new StagingIoError(`staging ${label} failed: ${fsFailure(e)}`, { cause: e });
  }

  readyPath(sender: string, ref: FileRef, kind: PartKind): string {
    return `${this.base(sender, ref, kind)}.ready`;
  }

  private async meta(path: string): Promise<PartMeta | undefined> {
    try {
      return JSON.parse(await readFile(`${path}.meta`, "utf8")) as PartMeta;
    } catch {
      return undefined;
    }
  }

  /** A verified part waiting to be loaded, if its digest is the one asked for. */
  async ready(sender: string, ref: FileRef, kind: PartKind, sha256?: string): Promise<ReadyPart | undefined> {
    this.hygiene.touch(sender);
    const path = this.readyPath(sender, ref, kind);
    const m = await this.meta(path);
    if (!m?.sha256 || (sha256 !== undefined && m.sha256 !== sha256)) return undefined;
    const s = await stat(path).catch(() => undefined);
    if (!s || s.size !== m.size) return undefined;
    return { path, size: m.size, sha256: m.sha256, facts: m.facts };
  }

  /**
   * The digest a part was verified with, even when the storage has already taken the `.ready`
   * file away: the `.meta` stays until the journal records the load, so recovery can ask the
   * storage whether it holds that digest.
   */
  async verified(sender: string, ref: FileRef, kind: PartKind): Promise<{ size: number; sha256: string; facts: unknown } | undefined> {
    this.hygiene.touch(sender);
    const m = await this.meta(this.readyPath(sender, ref, kind));
    return m?.sha256 ? { size: m.size, sha256: m.sha256, facts: m.facts } : undefined;
  }

  /** Bytes the staging disk can still take. */
  async freeBytes(): Promise<number> {
    await mkdir(this.root, { recursive: true });
    const s = await statfs(this.root);
    const real = s.bavail * s.bsize;
    return emulatedCapacity === undefined ? real : Math.min(real, Math.max(0, emulatedCapacity - (await bytesUnder(this.root))));
  }

  /**
   * Opens (or resumes) the partial file for an offer; the prefix already on disk is re-hashed.
   * Refuses with StagingFullError, before touching anything, when the rest of the part cannot fit,
   * and with StagingQuotaError when it would take the sender over its quota.
   */
  async begin(sender: string, offer: Offer): Promise<PartWriter> {
    const key = `${this.keyOf(this.base(sender, offer, offer.kind))}.part`;
    const undo = await this.hygiene.reserve(sender, key, offer.size, partLabel(offer, offer.kind));
    try {
      const writer = await this.openPart(sender, offer);
      writer.released = this.hygiene.opened(sender, key);
      return writer;
    } catch (e) {
      undo();
      throw this.failed(partLabel(offer, offer.kind), e);
    }
  }

  private async openPart(sender: string, offer: Offer): Promise<PartWriter> {
    const base = this.base(sender, offer, offer.kind);
    const partPath = `${base}.part`;
    await mkdir(dirname(partPath), { recursive: true });
    const m = await this.meta(partPath);
    const onDisk = (await stat(partPath).catch(() => undefined))?.size ?? 0;
    const boot = await currentBoot();
    const resumeAt = resumeOffset(m, offer.size, onDisk, boot);
    const free = (await this.freeBytes()) + (onDisk > resumeAt ? onDisk - resumeAt : 0);
    if (free < offer.size - resumeAt)
      throw new StagingFullError(
        `the receiver's staging disk is full: ${offer.name} (${offer.kind}) needs ${offer.size - resumeAt} more bytes, ${free} are free`,
      );
    const handle = await open(partPath, resumeAt > 0 ? "r+" : "w");
    try {
      await handle.truncate(resumeAt);
      const hash = createHash("sha256");
      await hashFilePrefix(handle, hash, resumeAt);
      // The prefix is now claimed durable: make it so before saying it.
      if (resumeAt > (m?.durable ?? 0)) await handle.datasync();
      // A hint, not a promise: losing it to a power cut restarts the part, which the digest allows.
      await replaceFile(`${partPath}.meta`, JSON.stringify({ size: offer.size, durable: resumeAt, boot } satisfies PartMeta));
      return new PartWriter(
        partPath,
        base,
        offer.size,
        resumeAt,
        handle,
        hash,
        boot,
        () => this.freeBytes(),
        (e) => this.failed(partLabel(offer, offer.kind), e),
      );
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /**
   * A part that arrived whole, in one message (a put): checked in memory by `check` (which may
   * refuse it), written once, synced, and moved to `.ready` as a sealed part would be. Nothing of it
   * is resumable, so it keeps no `.part.meta` and pays no durable points on the way. Resolves to the
   * staged part, for a load that follows at once.
   */
  async whole(
    sender: string,
    ref: FileRef,
    kind: PartKind,
    data: Uint8Array,
    sha256: string,
    check: (data: Uint8Array) => Promise<{ readonly ok: true; readonly facts?: unknown } | { readonly ok: false; readonly reason: string }>,
  ): Promise<{ readonly ok: true; readonly ready: ReadyPart } | { readonly ok: false; readonly reason: string }> {
    const label = partLabel(ref, kind);
    const verdict = await check(data);
    if (!verdict.ok) return verdict;
    const base = this.base(sender, ref, kind);
    const key = `${this.keyOf(base)}.part`;
    const undo = await this.hygiene.reserve(sender, key, data.length, label);
    const released = this.hygiene.opened(sender, key);
    const partPath = `${base}.part`;
    try {
      await writeSynced(partPath, data);
      // The bytes are synced; the meta is a hint (lost, the part is simply sent again).
      writeFileSync(
        `${base}.ready.meta`,
        JSON.stringify({ size: data.length, durable: data.length, sha256, facts: verdict.facts } satisfies PartMeta),
      );
      renameSync(partPath, `${base}.ready`);
      // Left by an earlier chunked offer of the same part, if any.
      removeFile(`${partPath}.meta`);
      released("sealed");
      return { ok: true, ready: { path: `${base}.ready`, size: data.length, sha256, facts: verdict.facts } };
    } catch (e) {
      released("dropped");
      undo();
      try {
        removeFile(partPath);
      } catch {
        // The part is dropped either way: the sweep removes what this could not.
      }
      if (isNoSpace(e)) throw new StagingFullError(`the receiver's staging disk is full: ${label} needs ${data.length} bytes`);
      throw this.failed(label, e);
    }
  }

  async discard(sender: string, ref: FileRef, kind: PartKind): Promise<void> {
    const base = this.base(sender, ref, kind);
    try {
      for (const p of [`${base}.part`, `${base}.part.meta`, `${base}.ready`, `${base}.ready.meta`]) removeFile(p);
    } catch (e) {
      throw this.failed(partLabel(ref, kind), e);
    }
    this.hygiene.forget(sender, [`${this.keyOf(base)}.part`, `${this.keyOf(base)}.ready`]);
  }

  /** Sweeps leftovers older than the grace now, then periodically; see StagingHygiene.startSweeper. */
  startSweeper(): Promise<() => Promise<void>> {
    return this.hygiene.startSweeper();
  }

  stopSweeper(): Promise<void> {
    return this.hygiene.stopSweeper();
  }

  async removeRoot(): Promise<void> {
    this.hygiene.forgetAll();
    await rm(this.root, { recursive: true, force: true });
  }
}

/** The file being received: positional writes in order, an incremental digest, periodic fsync. */
export class PartWriter {
  private durable: number;
  /** Tells staging's hygiene how the file was let go (its quota and sweep count open writers). */
  released: ((outcome: PartOutcome) => void) | undefined;

  constructor(
    readonly partPath: string,
    private readonly base: string,
    readonly size: number,
    public received: number,
    private handle: FileHandle | undefined,
    private readonly hash: Hash,
    private readonly boot: string,
    private readonly freeBytes: () => Promise<number>,
    /** Turns a failure into one that names the part without its path (see StagingIoError). */
    private readonly failed: (e: unknown) => unknown = (e) => e,
  ) {
    this.durable = received;
  }

  get resumedFrom(): number {
    return this.durable;
  }

  private metaText(durable: number): string {
    return JSON.stringify({ size: this.size, durable, boot: this.boot } satisfies PartMeta);
  }

  /** The fsync of the last durable point while it runs, and how the last one failed. */
  private syncing: Promise<void> | undefined;
  private syncError: unknown;

  async write(chunk: Uint8Array, offset: number): Promise<void> {
    if (!this.handle) throw new Error("part is closed");
    if (this.syncError !== undefined) throw this.syncError;
    try {
      if (emulatedCapacity !== undefined && (await this.freeBytes()) < chunk.length)
        throw Object.assign(new Error("no space left on device (emulated staging capacity)"), { code: "ENOSPC" });
      // A synchronous write into the page cache costs less than half the CPU of FileHandle.write
      // per chunk (no thread-pool round trip, and the chunk dies young instead of outliving a GC).
      for (let done = 0; done < chunk.length; ) done += writeSync(this.handle.fd, chunk, done, chunk.length - done, offset + done);
    } catch (e) {
      if (!isNoSpace(e)) throw e;
      // Keeping a partial copy nobody can finish would starve every other file of space.
      await this.abandon();
      throw new StagingFullError(
        `the receiver's staging disk is full at ${offset} of ${this.size} bytes of ${this.partPath}; the partial copy was dropped`,
      );
    }
    this.hash.update(chunk);
    this.received = offset + chunk.length;
    if (this.received - this.durable >= durableEvery && this.syncing === undefined) {
      // The durable point is made in the background: the chunks after it need not wait for the
      // disk. The meta records an offset only once the bytes up to it are synced.
      const upTo = this.received;
      const h = this.handle;
      this.syncing = h
        .datasync()
        .then(async () => {
          this.durable = upTo;
          await writeFileAtomic(`${this.partPath}.meta`, this.metaText(upTo));
        })
        .catch((e: unknown) => {
          this.syncError ??= e;
        })
        .finally(() => {
          this.syncing = undefined;
        });
    }
  }

  /** Finishes the digest; the caller compares it before `seal`. */
  digest(): string {
    return this.hash.digest("hex");
  }

  /** Makes the verified bytes durable and moves them to `.ready`. */
  async seal(sha256: string, facts: unknown): Promise<string> {
    try {
      const ready = await this.sealPart(sha256, facts);
      this.released?.("sealed");
      return ready;
    } catch (e) {
      this.released?.("kept");
      throw this.failed(e);
    }
  }

  private async sealPart(sha256: string, facts: unknown): Promise<string> {
    if (!this.handle) throw new Error("part is closed");
    await this.syncing;
    if (this.syncError !== undefined) throw this.syncError;
    await this.handle.sync();
    await this.handle.close();
    this.handle = undefined;
    const ready = `${this.base}.ready`;
    // The bytes are synced above; the meta is a hint (lost, the part is simply offered again).
    await replaceFile(`${ready}.meta`, JSON.stringify({ size: this.size, durable: this.size, sha256, facts } satisfies PartMeta));
    await rename(this.partPath, ready);
    removeFile(`${this.partPath}.meta`);
    return ready;
  }

  /** Drops the bytes: a digest mismatch or a refused file must not be resumed. */
  async abandon(): Promise<void> {
    const released = this.released;
    this.released = undefined;
    try {
      await this.close();
      removeFile(this.partPath);
      removeFile(`${this.partPath}.meta`);
    } finally {
      released?.("dropped");
    }
  }

  /** Keeps the bytes for a later resume (sender went away, session expired). */
  async close(): Promise<void> {
    await this.syncing;
    if (!this.handle) return;
    const h = this.handle;
    this.handle = undefined;
    // Best effort: a failed fsync only means a reboot would resume from the previous durable offset.
    const synced = await h.datasync().then(
      () => true,
      () => false,
    );
    if (synced) await writeFileAtomic(`${this.partPath}.meta`, this.metaText(this.received)).catch(() => undefined);
    await h.close().finally(() => this.released?.("kept"));
  }
}

export const stagingRoot = (dataDir: string): string => join(dataDir, ".tsync", "staging");
