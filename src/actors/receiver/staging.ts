import { createHash, type Hash } from "node:crypto";
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { FileRef, Offer, PartKind } from "../../protocol/messages.js";
import { partFileName } from "../../protocol/parts.js";
import { writeFileAtomic } from "../durableFile.js";

/** Bytes between two fsyncs of a partial file; what a power loss can cost a resume. */
const durableEvery = 64 * 1024 * 1024;

interface PartMeta {
  readonly size: number;
  /** Bytes known to be on disk (fsynced) in the .part file. */
  readonly durable: number;
  readonly sha256?: string;
  readonly facts?: unknown;
}

export class OutsideDataDirError extends Error {}

/**
 * Per-sender staging: `<root>/<sender>/<sg>/<vg>/<tp>/<file>.part` while it arrives (with its
 * durable offset in `.meta`), `.ready` once its digest matched. Partial files survive restarts so
 * a transfer resumes where the disk left it.
 */
export class Staging {
  constructor(readonly root: string) {}

  /** Every path is built from validated segments; this is the last line of defence all the same. */
  private base(sender: string, ref: FileRef, kind: PartKind): string {
    const p = resolve(this.root, sender, ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind));
    if (!p.startsWith(resolve(this.root) + sep)) throw new OutsideDataDirError(`refusing a path outside staging: ${p}`);
    return p;
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
  async ready(sender: string, ref: FileRef, kind: PartKind, sha256?: string): Promise<{ path: string; size: number; sha256: string; facts: unknown } | undefined> {
    const path = this.readyPath(sender, ref, kind);
    const m = await this.meta(path);
    if (!m?.sha256 || (sha256 !== undefined && m.sha256 !== sha256)) return undefined;
    const s = await stat(path).catch(() => undefined);
    if (!s || s.size !== m.size) return undefined;
    return { path, size: m.size, sha256: m.sha256, facts: m.facts };
  }

  /** Opens (or resumes) the partial file for an offer; the prefix already on disk is re-hashed. */
  async begin(sender: string, offer: Offer): Promise<PartWriter> {
    const base = this.base(sender, offer, offer.kind);
    const partPath = `${base}.part`;
    await mkdir(dirname(partPath), { recursive: true });
    const m = await this.meta(partPath);
    const onDisk = (await stat(partPath).catch(() => undefined))?.size ?? 0;
    const resumeAt = m && m.size === offer.size ? Math.min(m.durable, onDisk) : 0;
    const handle = await open(partPath, resumeAt > 0 ? "r+" : "w");
    await handle.truncate(resumeAt);
    const hash = createHash("sha256");
    if (resumeAt > 0) await hashPrefix(handle, hash, resumeAt);
    await writeFileAtomic(`${partPath}.meta`, JSON.stringify({ size: offer.size, durable: resumeAt } satisfies PartMeta));
    return new PartWriter(partPath, base, offer.size, resumeAt, handle, hash);
  }

  async discard(sender: string, ref: FileRef, kind: PartKind): Promise<void> {
    const base = this.base(sender, ref, kind);
    await Promise.all([`${base}.part`, `${base}.part.meta`, `${base}.ready`, `${base}.ready.meta`].map((p) => rm(p, { force: true })));
  }

  async removeRoot(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

const hashPrefix = async (handle: FileHandle, hash: Hash, end: number): Promise<void> => {
  const buf = Buffer.allocUnsafe(Math.min(1 << 20, end));
  for (let pos = 0; pos < end; ) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
};

/** The file being received: positional writes in order, an incremental digest, periodic fsync. */
export class PartWriter {
  private durable: number;

  constructor(
    readonly partPath: string,
    private readonly base: string,
    readonly size: number,
    public received: number,
    private handle: FileHandle | undefined,
    private readonly hash: Hash,
  ) {
    this.durable = received;
  }

  get resumedFrom(): number {
    return this.durable;
  }

  async write(chunk: Uint8Array, offset: number): Promise<void> {
    if (!this.handle) throw new Error("part is closed");
    await this.handle.write(chunk, 0, chunk.length, offset);
    this.hash.update(chunk);
    this.received = offset + chunk.length;
    if (this.received - this.durable >= durableEvery) {
      await this.handle.datasync();
      this.durable = this.received;
      await writeFileAtomic(`${this.partPath}.meta`, JSON.stringify({ size: this.size, durable: this.durable } satisfies PartMeta));
    }
  }

  /** Finishes the digest; the caller compares it before `seal`. */
  digest(): string {
    return this.hash.digest("hex");
  }

  /** Makes the verified bytes durable and moves them to `.ready`. */
  async seal(sha256: string, facts: unknown): Promise<string> {
    if (!this.handle) throw new Error("part is closed");
    await this.handle.sync();
    await this.handle.close();
    this.handle = undefined;
    const ready = `${this.base}.ready`;
    await writeFileAtomic(`${ready}.meta`, JSON.stringify({ size: this.size, durable: this.size, sha256, facts } satisfies PartMeta));
    await rename(this.partPath, ready);
    await rm(`${this.partPath}.meta`, { force: true });
    return ready;
  }

  /** Drops the bytes: a digest mismatch or a refused file must not be resumed. */
  async abandon(): Promise<void> {
    await this.close();
    await Promise.all([rm(this.partPath, { force: true }), rm(`${this.partPath}.meta`, { force: true })]);
  }

  /** Keeps the bytes for a later resume (sender went away, session expired). */
  async close(): Promise<void> {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = undefined;
    await h.datasync().catch(() => undefined);
    await writeFileAtomic(`${this.partPath}.meta`, JSON.stringify({ size: this.size, durable: this.received } satisfies PartMeta)).catch(() => undefined);
    await h.close();
  }
}

export const stagingRoot = (dataDir: string): string => join(dataDir, ".tsync", "staging");
