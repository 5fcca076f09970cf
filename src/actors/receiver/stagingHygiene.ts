// Staging hygiene: how much each sender holds in staging (its quota) and the removal of parts it
// abandoned. Without it one sender could fill the receiver's disk by offering big files and never
// finishing them, and abandoned parts would stay forever across session expiry and restarts.
import { readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";

/**
 * The least a part counts against a quota: its data file and its `.meta` take a block each on
 * disk, so parts of 0 bytes are not free and the quota also bounds how many parts a sender keeps.
 */
export const minPartCharge = 4096;

export const partCharge = (size: number): number => Math.max(size, minPartCharge);

export interface StagingLimits {
  /** Most bytes one sender may hold in staging, by announced size; undefined = no quota. */
  readonly quotaBytesPerSender?: number | undefined;
  /** How long a part may stay untouched before it is abandoned; undefined = never swept. */
  readonly graceMs?: number | undefined;
}

/** A part refused because the sender's staging would go over `staging_quota_bytes_per_sender`. */
export class StagingQuotaError extends Error {
  constructor(
    readonly sender: string,
    readonly part: string,
    readonly size: number,
    /** Bytes the sender holds already (announced sizes of its partial and verified parts). */
    readonly held: number,
    readonly parts: number,
    readonly quota: number,
  ) {
    super(
      `staging_quota_bytes_per_sender: ${part} of ${size} bytes would take sender ${sender}'s staging over its quota of ${quota} bytes; ` +
        `it already holds ${held} bytes in ${parts} part${parts === 1 ? "" : "s"} arriving or waiting to be loaded. ` +
        "Those parts are kept (they resume); the quota frees up as they are loaded, or once they lie untouched for staging_grace_in_second",
    );
  }
}

export interface SweptPart {
  readonly sender: string;
  /** Relative to the sender's staging directory: `<sg>/<vg>/<tp>/<file>.part` or `.ready`. */
  readonly file: string;
  /** Bytes on disk that were freed (data file and meta). */
  readonly bytes: number;
  readonly idleMs: number;
}

/** One staged part as the tally counts it. `epoch` orders it against a sweep's walk of the disk. */
interface Entry {
  readonly charge: number;
  readonly epoch: number;
}

/** A data file (`.part`, `.ready`) and its `.meta` as found on disk. */
interface Found {
  readonly sender: string;
  readonly key: string;
  data?: { size: number; mtimeMs: number };
  meta?: { size: number; mtimeMs: number };
}

/** How often the sweeper looks: a quarter of the grace, so a part outlives it by at most 25%, but at least every 10 min. */
export const sweepIntervalMs = (graceMs: number): number => Math.max(250, Math.min(graceMs / 4, 600_000));

/** What a writer tells the hygiene when it lets its file go. */
export type PartOutcome = "sealed" | "dropped" | "kept";

export class StagingHygiene {
  /** sender → key (data file path relative to the staging root) → entry. */
  private readonly held = new Map<string, Map<string, Entry>>();
  private readonly totals = new Map<string, number>();
  private tally: Promise<void> | undefined;
  private epoch = 0;
  /** Open writers per sender: those senders' parts are being written and are never swept. */
  private readonly writing = new Map<string, number>();
  /** When each sender last used staging in this process (an offer, a load, a discard). */
  private readonly lastUse = new Map<string, number>();
  /** The sweep removing a sender's parts, which that sender's next `begin` waits for. */
  private readonly sweeping = new Map<string, Promise<void>>();
  private stopper: (() => Promise<void>) | undefined;

  constructor(
    private readonly root: string,
    readonly limits: StagingLimits,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  touch(sender: string): void {
    // Strictly increasing, so a sweep can tell the sender came back even within the same millisecond.
    this.lastUse.set(sender, Math.max(Date.now(), (this.lastUse.get(sender) ?? 0) + 0.001));
  }

  /** Bytes and parts the tally holds for `sender`. */
  async holding(sender: string): Promise<{ bytes: number; parts: number }> {
    await this.loaded();
    return { bytes: this.totals.get(sender) ?? 0, parts: this.held.get(sender)?.size ?? 0 };
  }

  private set(sender: string, key: string, entry: Entry | undefined): void {
    let mine = this.held.get(sender);
    const before = mine?.get(key)?.charge ?? 0;
    if (entry === undefined) mine?.delete(key);
    else {
      if (!mine) this.held.set(sender, (mine = new Map()));
      mine.set(key, entry);
    }
    const total = (this.totals.get(sender) ?? 0) - before + (entry?.charge ?? 0);
    if (mine === undefined || mine.size === 0) {
      this.held.delete(sender);
      this.totals.delete(sender);
    } else this.totals.set(sender, total);
  }

  /**
   * Books `size` bytes of `key` for `sender`, or throws StagingQuotaError. A part the sender holds
   * already counts once, so resuming it never needs more room. Answers how to undo the booking when
   * the part could not be opened after all.
   */
  async reserve(sender: string, key: string, size: number, label: string): Promise<() => void> {
    this.touch(sender);
    await this.loaded();
    // Removing files under a begin that is about to reopen them would lose its bytes.
    for (let s = this.sweeping.get(sender); s !== undefined; s = this.sweeping.get(sender)) await s;
    this.touch(sender);
    const before = this.held.get(sender)?.get(key);
    const charge = partCharge(size);
    const quota = this.limits.quotaBytesPerSender;
    const holding = this.totals.get(sender) ?? 0;
    if (quota !== undefined && charge > (before?.charge ?? 0) && holding - (before?.charge ?? 0) + charge > quota)
      throw new StagingQuotaError(sender, label, size, holding, this.held.get(sender)?.size ?? 0, quota);
    const entry = { charge, epoch: ++this.epoch };
    this.set(sender, key, entry);
    return () => {
      if (this.held.get(sender)?.get(key) === entry) this.set(sender, key, before);
    };
  }

  /** A writer holds `key` open until it reports how it let go; its sender's parts are not swept meanwhile. */
  opened(sender: string, key: string): (outcome: PartOutcome) => void {
    this.writing.set(sender, (this.writing.get(sender) ?? 0) + 1);
    let done = false;
    return (outcome) => {
      if (done) return;
      done = true;
      const n = (this.writing.get(sender) ?? 1) - 1;
      if (n > 0) this.writing.set(sender, n);
      else this.writing.delete(sender);
      this.touch(sender);
      const entry = this.held.get(sender)?.get(key);
      if (outcome === "kept" || entry === undefined) return;
      this.set(sender, key, undefined);
      if (outcome === "sealed") this.set(sender, readyKey(key), { charge: entry.charge, epoch: ++this.epoch });
    };
  }

  /** The part's files are gone (loaded or refused). */
  forget(sender: string, keys: ReadonlyArray<string>): void {
    this.touch(sender);
    for (const k of keys) this.set(sender, k, undefined);
  }

  forgetAll(): void {
    this.held.clear();
    this.totals.clear();
  }

  private inUse(sender: string, now: number): boolean {
    if ((this.writing.get(sender) ?? 0) > 0 || this.sweeping.has(sender)) return true;
    const last = this.lastUse.get(sender);
    return last !== undefined && now - last < (this.limits.graceMs ?? Infinity);
  }

  /** The tally is rebuilt from the disk once per process; after that every change goes through it. */
  private loaded(): Promise<void> {
    return (this.tally ??= this.walk().then(async (found) => {
      for (const f of found.values()) {
        if (!f.data) continue;
        const size = (await announcedSize(join(this.root, `${f.key}.meta`))) ?? f.data.size;
        if (!this.held.get(f.sender)?.has(f.key)) this.set(f.sender, f.key, { charge: partCharge(size), epoch: 0 });
      }
    }));
  }

  private async walk(): Promise<Map<string, Found>> {
    const found = new Map<string, Found>();
    const entries = await readdir(this.root, { withFileTypes: true, recursive: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isFile()) continue;
      const path = join(e.parentPath, e.name);
      const rel = relative(this.root, path);
      const segments = rel.split(sep);
      const sender = segments[0];
      if (sender === undefined || segments.length < 2) continue;
      const isMeta = e.name.endsWith(".part.meta") || e.name.endsWith(".ready.meta");
      const key = isMeta ? rel.slice(0, -".meta".length) : rel;
      if (!isMeta && !e.name.endsWith(".part") && !e.name.endsWith(".ready")) continue;
      const s = await stat(path).catch(() => undefined);
      if (!s) continue;
      const f = found.get(key) ?? { sender, key };
      if (isMeta) f.meta = { size: s.size, mtimeMs: s.mtimeMs };
      else f.data = { size: s.size, mtimeMs: s.mtimeMs };
      found.set(key, f);
    }
    return found;
  }

  /**
   * Removes the parts no one touched for the grace period: by the disk's mtimes, and, for senders
   * this process has seen, not while they use staging (a transfer of a big file can outlast the
   * grace while the parts already verified wait for its load). A `.ready.meta` without its data is
   * kept: it is the record that lets a restart recognise a part the storage took but the journal
   * missed (docs/faults.md), and it is a few bytes.
   */
  async sweep(now: number = Date.now()): Promise<SweptPart[]> {
    const grace = this.limits.graceMs;
    if (grace === undefined) return [];
    await this.loaded();
    const walkEpoch = this.epoch;
    const found = await this.walk();
    const stale = new Map<string, Found[]>();
    for (const f of found.values()) {
      if (!f.data && f.key.endsWith(".ready")) continue;
      const touched = Math.max(f.data?.mtimeMs ?? 0, f.meta?.mtimeMs ?? 0);
      if (now - touched < grace || this.inUse(f.sender, now)) continue;
      stale.set(f.sender, [...(stale.get(f.sender) ?? []), f]);
    }
    const swept: SweptPart[] = [];
    for (const [sender, parts] of stale) {
      if (this.inUse(sender, now)) continue;
      const seen = this.lastUse.get(sender);
      let release = () => {};
      this.sweeping.set(sender, new Promise<void>((r) => (release = r)));
      try {
        const dirs = new Set<string>();
        for (const f of parts) {
          // Re-checked per part: the sender may have come back while the previous one was removed.
          if ((this.writing.get(sender) ?? 0) > 0 || this.lastUse.get(sender) !== seen) break;
          const path = join(this.root, f.key);
          await rm(path, { force: true });
          await rm(`${path}.meta`, { force: true });
          this.set(sender, f.key, undefined);
          dirs.add(dirname(path));
          const s: SweptPart = {
            sender,
            file: f.key.slice(sender.length + 1),
            bytes: (f.data?.size ?? 0) + (f.meta?.size ?? 0),
            idleMs: now - Math.max(f.data?.mtimeMs ?? 0, f.meta?.mtimeMs ?? 0),
          };
          swept.push(s);
          this.log(
            `staging: swept an abandoned part of sender ${s.sender}: ${s.file} (${s.bytes} bytes, untouched for ${Math.round(s.idleMs / 1000)} s; staging_grace_in_second=${Math.round(grace / 1000)})`,
          );
        }
        await this.pruneDirs(dirs);
      } finally {
        this.sweeping.delete(sender);
        release();
      }
    }
    this.reconcile(found, walkEpoch, now);
    for (const [sender, last] of this.lastUse) if (now - last >= grace && !this.inUse(sender, now)) this.lastUse.delete(sender);
    return swept;
  }

  /**
   * Drops tally entries whose files vanished without telling (a seal that failed halfway, a file
   * removed by hand), so a quota is never held by bytes that are gone. Entries booked after the
   * walk began, and senders in use, are left alone: their files may not be on disk yet.
   */
  private reconcile(found: ReadonlyMap<string, Found>, walkEpoch: number, now: number): void {
    for (const [sender, mine] of [...this.held]) {
      if (this.inUse(sender, now)) continue;
      for (const [key, entry] of [...mine]) if (entry.epoch <= walkEpoch && !found.get(key)?.data) this.set(sender, key, undefined);
    }
  }

  /** Directories emptied by a sweep go too, up to (and including) the sender's own. */
  private async pruneDirs(dirs: ReadonlySet<string>): Promise<void> {
    const top = resolve(this.root);
    for (const start of dirs) {
      for (let d = resolve(start); d.startsWith(top + sep); d = dirname(d)) {
        const gone = await rmdir(d).then(
          () => true,
          () => false,
        );
        if (!gone) break;
      }
    }
  }

  private async sweepLogged(): Promise<void> {
    try {
      await this.sweep();
    } catch (e) {
      this.log(`staging: sweep failed, trying again later: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Sweeps now (leftovers of earlier runs), then every `sweepIntervalMs(grace)`. Answers how to
   * stop it; stopping waits for a sweep in progress.
   */
  async startSweeper(): Promise<() => Promise<void>> {
    const grace = this.limits.graceMs;
    if (grace === undefined || this.stopper) return this.stopper ?? (async () => undefined);
    await this.sweepLogged();
    const every = sweepIntervalMs(grace);
    let stopped = false;
    let running: Promise<void> | undefined;
    let timer: NodeJS.Timeout | undefined;
    const schedule = () => {
      timer = setTimeout(() => {
        running = this.sweepLogged().finally(() => {
          running = undefined;
          if (!stopped) schedule();
        });
      }, every);
      timer.unref();
    };
    schedule();
    const stop = async (): Promise<void> => {
      stopped = true;
      clearTimeout(timer);
      await running;
      if (this.stopper === stop) this.stopper = undefined;
    };
    this.stopper = stop;
    return stop;
  }

  async stopSweeper(): Promise<void> {
    await this.stopper?.();
  }
}

const readyKey = (partKey: string): string => `${partKey.slice(0, -".part".length)}.ready`;

const announcedSize = async (metaPath: string): Promise<number | undefined> => {
  try {
    const size: unknown = (JSON.parse(await readFile(metaPath, "utf8")) as { size?: unknown }).size;
    return typeof size === "number" && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
  } catch {
    return undefined;
  }
};
