// A receiver model and a simulated NATS transport for the sender machine's retry properties: the
// real sender round (its real actors: SenderLink's hello, offers, chunks, commits, loads and puts)
// talks to it through a fake `request`, and a fault plan keyed by request index hits requests
// anywhere in the run (timeouts, no responders, a dropped connection, a receiver restart, a
// corrupted chunk or put). The model's load journal is the receiver's real one on disk: a restart
// replays it, so a load it forgot would be loaded twice, and counted.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ClosedConnectionError, NoRespondersError, TimeoutError, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { fromPromise, SimulatedClock } from "xstate";
import { Journal } from "../../src/actors/receiver/journal.js";
import { SenderLink } from "../../src/actors/sender/link.js";
import { senderRoundWith } from "../../src/actors/sender/roundActors.js";
import type { WorkDir } from "../../src/actors/sender/workDir.js";
import type { Source } from "../../src/plugins/source.js";
import { roundDelays } from "../../src/machines/senderRound.js";
import { refKey, type ScanResult, type SentPart, type TransferInput } from "../../src/machines/senderTypes.js";
import type { RandomSource } from "../../src/machines/backoff.js";
import type { SyncUnit } from "../../src/protocol/parts.js";
import type { FileRef, PartKind } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";
import { ChunkHeader, PutHeader } from "../../src/protocol/subjects.js";

/**
 * What can happen to one request: `timeout` (it never reached the receiver), `lostReply` (handled,
 * the answer lost), `noResponders`, `disconnect` (the connection closed under it), `restart` (the
 * receiver restarts just before it: sessions forgotten, disk and journal kept), `corrupt` (the next
 * request carrying file bytes, a chunk or a put, has one byte flipped).
 */
export type FaultKind = "timeout" | "lostReply" | "noResponders" | "disconnect" | "restart" | "corrupt";
export const faultKinds: ReadonlyArray<FaultKind> = ["timeout", "lostReply", "noResponders", "disconnect", "restart", "corrupt"];

/** Request index (counted over the whole run, every round) → the fault that hits it. */
export type FaultPlan = ReadonlyMap<number, FaultKind>;

export interface SimFile {
  readonly ref: FileRef;
  readonly parts: ReadonlyArray<{ readonly kind: PartKind; readonly path: string; readonly size: number; readonly sha256: string }>;
}

/** The one sender id the simulated receiver serves. */
export const simSender = "s1";
/** The simulated server's max_payload; with 1 KiB chunks, a file whose parts add up to 1 KiB or less goes as a put. */
export const simChunkBytes = 1024;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const decode = (b: Uint8Array): Record<string, unknown> => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
const partKey = (ref: FileRef, kind: PartKind) => `${refKey(ref)}:${kind}`;
const refOf = (o: Record<string, unknown>): FileRef => ({
  sg: String(o["sg"]),
  vg: String(o["vg"]),
  tp: String(o["tp"]),
  name: String(o["name"]),
});

/** Writes `sizes.length` sealed-file stand-ins (a resource and a TsFile of random bytes each) under `dir`. */
export const writeSimFiles = async (dir: string, sizes: ReadonlyArray<number>, seed: number): Promise<SimFile[]> => {
  await mkdir(dir, { recursive: true });
  let x = seed >>> 0 || 1;
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16) & 0xff);
  const files: SimFile[] = [];
  for (const [i, size] of sizes.entries()) {
    const ref: FileRef = { sg: i % 3 === 2 ? "root.b" : "root.a", vg: "0", tp: "0", name: `${1000 + i}-${i + 1}-0-0.tsfile` };
    const parts = [];
    for (const [kind, n] of [
      ["resource", 20 + (i % 7)],
      ["tsfile", size],
    ] as const) {
      const content = bytes(n);
      const path = join(dir, `${ref.sg}-${ref.name}.${kind}`);
      await writeFile(path, content);
      parts.push({ kind, path, size: n, sha256: sha(content) });
    }
    files.push({ ref, parts });
  }
  return files;
};

/** Requests a round of these files makes without faults: the scale the fault plan's indices are drawn on. */
export const requestsPerRound = (sizes: ReadonlyArray<number>): number =>
  2 +
  sizes.reduce((n, size, i) => {
    const resource = 20 + (i % 7);
    return n + (resource + size <= simChunkBytes ? 1 : 2 + 1 + Math.ceil(size / simChunkBytes) + 2 + 1);
  }, 0);

interface Writer {
  readonly key: string;
  readonly size: number;
}

/**
 * The receiver's side of the protocol as `sessionHost`, `staging` and `core` implement it, with
 * one liberty: a chunk that starts inside bytes already held is written and acknowledged (a real
 * receiver says outOfOrder), so a sender that re-sends held bytes shows up as a double acknowledgement.
 * Requests are served one at a time in arrival order; puts may be several in flight from the sender.
 */
export class SimReceiver {
  /** Bytes held per part (a partial copy), and whether a corrupted chunk is among them. */
  readonly partial = new Map<string, { held: number; size: number; corrupt: boolean }>();
  readonly ready = new Map<string, string>();
  /** Parts placed in storage per part key: must never pass 1. */
  readonly loads = new Map<string, number>();
  /** Byte ranges acknowledged as new data per part, since its partial copy was last dropped. */
  private readonly acked = new Map<string, Array<[number, number]>>();
  readonly violations: string[] = [];
  /** Requests served so far, over every round: the index the fault plan is keyed by. */
  served = 0;
  /** Faults that hit a request; `corrupt` counts when it lands on a chunk or put. */
  readonly hits = new Map<FaultKind, number>();
  /** Puts per file, and unanswered hellos in a row (the longest streak), since `newRound`. */
  putsThisRound = new Map<string, number>();
  helloStreak = 0;
  longestHelloStreak = 0;
  private sessions = 0;
  private liveSession = "";
  private writers = new Map<string, Writer>();
  private nextId = 0;
  private corruptNext = false;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Parts that always fail: "retryable" refuses their offer or put (as a full staging disk does),
   * "fatal" rejects them at commit (as a TsFile that does not parse).
   */
  readonly poison = new Map<string, "retryable" | "fatal">();

  private constructor(
    private readonly plan: FaultPlan,
    private readonly journalPath: string,
    private journal: Journal,
  ) {}

  static async open(plan: FaultPlan, dir: string): Promise<SimReceiver> {
    const path = join(dir, "receiver", "journal.jsonl");
    return new SimReceiver(plan, path, await Journal.open(path, () => undefined));
  }

  /** Faults of the plan not yet reached (a pending corruption included). */
  get faultsLeft(): number {
    let n = this.corruptNext ? 1 : 0;
    for (const i of this.plan.keys()) if (i >= this.served) n++;
    return n;
  }

  newRound(): void {
    this.putsThisRound = new Map();
    this.helloStreak = 0;
    this.longestHelloStreak = 0;
  }

  /** What the journal on disk says was loaded (part key → digest), replayed from the file as a restart would. */
  async journalOnDisk(): Promise<Map<string, string>> {
    await this.journal.close();
    this.journal = await Journal.open(this.journalPath, () => undefined);
    return new Map(this.journal.all().map((p) => [partKey(p.ref, p.kind), p.sha256]));
  }

  async close(): Promise<void> {
    await this.journal.close();
  }

  private hit(kind: FaultKind): void {
    this.hits.set(kind, (this.hits.get(kind) ?? 0) + 1);
  }

  private async restart(): Promise<void> {
    // A restarted receiver keeps its disk (partials, ready parts) and replays its journal; it forgets its sessions.
    this.liveSession = "";
    this.writers = new Map();
    await this.journal.close();
    this.journal = await Journal.open(this.journalPath, () => undefined);
  }

  /** A NatsConnection whose `request` this model serves, one request at a time, in order. */
  connection(): NatsConnection {
    const nc = {
      info: { max_payload: 2048 },
      request: (subject: string, payload: Uint8Array, opts?: { headers?: MsgHdrs }) => {
        const served = this.queue.then(() => this.serve(subject, payload, opts?.headers));
        this.queue = served.catch(() => undefined);
        return served;
      },
    };
    return nc as unknown as NatsConnection;
  }

  private async serve(subject: string, payload: Uint8Array, h: MsgHdrs | undefined): Promise<{ data: Uint8Array }> {
    let fault = this.plan.get(this.served++);
    const hello = subject.includes(".hello.");
    if (hello) this.longestHelloStreak = Math.max(this.longestHelloStreak, ++this.helloStreak);
    if (fault === "corrupt") {
      this.corruptNext = true;
      fault = undefined;
    }
    if (fault !== undefined) this.hit(fault);
    if (fault === "restart") await this.restart();
    if (fault === "timeout") throw new TimeoutError();
    if (fault === "noResponders") throw new NoRespondersError(subject);
    if (fault === "disconnect") throw new ClosedConnectionError();
    const op = subject.slice(subject.lastIndexOf(".") + 1);
    const corrupt = this.corruptNext && (op === "chunk" || op === "put");
    if (corrupt) {
      this.corruptNext = false;
      this.hit("corrupt");
    }
    const reply = await this.handle(subject, op, payload, h, corrupt);
    if (fault === "lostReply") throw new TimeoutError();
    if (hello && reply["code"] === Code.ok) this.helloStreak = 0;
    return { data: encode(reply) };
  }

  private async handle(
    subject: string,
    op: string,
    payload: Uint8Array,
    h: MsgHdrs | undefined,
    corrupt: boolean,
  ): Promise<Record<string, unknown>> {
    if (subject.includes(".hello.")) {
      this.liveSession = `sim${++this.sessions}`;
      this.writers = new Map();
      return {
        code: Code.ok,
        message: "welcome",
        sessionPrefix: this.liveSession,
        sessionId: this.liveSession,
        maxChunkBytes: 2048,
        features: ["put"],
        maxFilesInFlight: 4,
      };
    }
    if (subject.slice(0, subject.lastIndexOf(".")) !== this.liveSession) throw new NoRespondersError(subject);
    switch (op) {
      case "offer":
        return this.offer(decode(payload));
      case "chunk":
        return this.chunk(h?.get(ChunkHeader.file) ?? "", Number(h?.get(ChunkHeader.offset)), payload, corrupt);
      case "commit":
        return this.commit(decode(payload));
      case "load":
        return this.load(decode(payload));
      case "put":
        return this.put(JSON.parse(h?.get(PutHeader) ?? "{}") as Record<string, unknown>, payload, corrupt);
      case "bye":
        return { code: Code.ok, message: "bye" };
      default:
        return { code: Code.badMessage, message: `no ${op} here` };
    }
  }

  private loaded(ref: FileRef, kind: PartKind): string | undefined {
    return this.journal.find(simSender, ref, kind)?.sha256;
  }

  private offer(o: Record<string, unknown>): Record<string, unknown> {
    const ref = refOf(o);
    const kind = o["kind"] as PartKind;
    const key = partKey(ref, kind);
    const size = Number(o["size"]);
    const wanted = o["sha256"] as string | undefined;
    if (this.poison.get(key) === "retryable") return { code: Code.storageFailed, message: "the receiver's staging disk is full" };
    const loaded = this.loaded(ref, kind);
    if (loaded !== undefined && (wanted === undefined || wanted === loaded))
      return { code: Code.have, message: "already loaded", sha256: loaded };
    const ready = this.ready.get(key);
    if (ready !== undefined && (wanted === undefined || wanted === ready))
      return { code: Code.have, message: "waiting to be loaded", sha256: ready };
    let p = this.partial.get(key);
    if (!p || p.size !== size) {
      p = { held: 0, size, corrupt: false };
      this.partial.set(key, p);
      this.acked.delete(key);
    }
    const fileId = `f${++this.nextId}`;
    this.writers = new Map([[fileId, { key, size }]]);
    return { code: p.held > 0 ? Code.resume : Code.start, message: "", fileId, offset: p.held };
  }

  private chunk(fileId: string, offset: number, data: Uint8Array, corrupt: boolean): Record<string, unknown> {
    const w = this.writers.get(fileId);
    const p = w ? this.partial.get(w.key) : undefined;
    if (!w || !p) return { code: Code.unknownFile, message: `no file ${fileId}` };
    if (offset > p.held) return { code: Code.outOfOrder, message: `chunk at ${offset}, expected ${p.held}`, offset: p.held };
    const end = offset + data.length;
    if (end > p.size) return { code: Code.tooLarge, message: "past the announced size" };
    const ranges = this.acked.get(w.key) ?? [];
    for (const [a, b] of ranges)
      if (offset < b && a < end)
        this.violations.push(`${w.key}: bytes [${Math.max(a, offset)}, ${Math.min(b, end)}) acknowledged twice as new data`);
    ranges.push([offset, end]);
    this.acked.set(w.key, ranges);
    p.held = Math.max(p.held, end);
    if (corrupt) p.corrupt = true;
    return { code: Code.ok, message: "", offset: p.held };
  }

  private commit(c: Record<string, unknown>): Record<string, unknown> {
    const w = this.writers.get(String(c["fileId"]));
    const p = w ? this.partial.get(w.key) : undefined;
    if (!w || !p) return { code: Code.unknownFile, message: "no such file" };
    this.writers.delete(String(c["fileId"]));
    const drop = () => {
      this.partial.delete(w.key);
      this.acked.delete(w.key);
    };
    if (p.held !== p.size || Number(c["size"]) !== p.size) {
      drop();
      return { code: Code.sizeMismatch, message: `received ${p.held} of ${p.size}` };
    }
    if (this.poison.get(w.key) === "fatal") {
      drop();
      return { code: Code.badTsFile, message: "not a sound TsFile" };
    }
    if (p.corrupt) {
      drop();
      return { code: Code.digestMismatch, message: "SHA-256 of the received bytes differs" };
    }
    drop();
    this.ready.set(w.key, String(c["sha256"]));
    return { code: Code.ok, message: "verified" };
  }

  /** As `SessionHost.store`: each part checked as an offer and a commit would check it, then the file loaded. */
  private async put(header: Record<string, unknown>, payload: Uint8Array, corrupt: boolean): Promise<Record<string, unknown>> {
    const ref = refOf(header);
    const parts = header["parts"] as Array<{ kind: PartKind; size: number; sha256: string }>;
    this.putsThisRound.set(refKey(ref), (this.putsThisRound.get(refKey(ref)) ?? 0) + 1);
    const bytes = corrupt && payload.length > 0 ? Uint8Array.from(payload, (b, i) => (i === 0 ? b ^ 0xff : b)) : payload;
    let at = 0;
    for (const part of parts) {
      const key = partKey(ref, part.kind);
      const data = bytes.subarray(at, at + part.size);
      at += part.size;
      if (this.poison.get(key) === "retryable") return { code: Code.storageFailed, message: "the receiver's staging disk is full" };
      if (this.loaded(ref, part.kind) === part.sha256) continue;
      if (sha(data) !== part.sha256) return { code: Code.digestMismatch, message: "SHA-256 of the received bytes differs" };
      if (this.poison.get(key) === "fatal") return { code: Code.badTsFile, message: "not a sound TsFile" };
      this.ready.set(key, part.sha256);
    }
    return this.load({ ...ref, parts });
  }

  private async load(l: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ref = refOf(l);
    const parts = l["parts"] as Array<{ kind: PartKind; size: number; sha256: string }>;
    const toLoad: Array<{ kind: PartKind; size: number; sha256: string }> = [];
    for (const part of parts) {
      const key = partKey(ref, part.kind);
      // The real journal decides what is loaded already: the model keeps no books of its own here.
      if (this.loaded(ref, part.kind) === part.sha256) continue;
      if (this.ready.get(key) !== part.sha256) return { code: Code.notReady, message: `${key} not received with that digest` };
      toLoad.push(part);
    }
    if (toLoad.length === 0) return { code: Code.have, message: "already loaded" };
    for (const part of toLoad) {
      const key = partKey(ref, part.kind);
      this.loads.set(key, (this.loads.get(key) ?? 0) + 1);
      this.ready.delete(key);
    }
    await this.journal.recordLoadedAll(toLoad.map((p) => ({ sender: simSender, ref, kind: p.kind, size: p.size, sha256: p.sha256 })));
    return { code: Code.ok, message: "loaded" };
  }
}

/** The sender's memory of what the receiver confirmed, per file: the digests of its parts. */
export type Synced = Map<string, Record<string, string>>;

export interface RoundLog {
  /** Offer-way attempts started per file (transfers of its first part). */
  readonly attempts: Map<string, number>;
}

export const poisonKey = (f: SimFile): string => partKey(f.ref, "tsfile");

/** A SimulatedClock that remembers the delay of every timer set on it: the round's waits. */
export class RecordingClock extends SimulatedClock {
  readonly scheduled: number[] = [];
  override setTimeout(fn: (...args: unknown[]) => void, timeout: number): number {
    this.scheduled.push(timeout);
    return super.setTimeout(fn, timeout);
  }
}

/** A seeded uniform source in [0, 1): the runtime's randomness, reproducible from the case's seed. */
export const seededRandom = (seed: number): RandomSource => {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
};

export interface SimRoundOptions {
  readonly window: number;
  readonly filesInFlight: number;
  /** Jitter for the round's waits (`roundDelays(random)`, as the runtime provides them). */
  readonly random: RandomSource;
}

/**
 * The sender round with its real actors (`senderRoundWith`: hello, transfer, commit, load, puts,
 * deletes, bye over the real SenderLink) on the simulated transport. Only the work directory and
 * the source are stand-ins: the scan lists the files not yet in `synced`, and confirming a file
 * records it there.
 */
export const simulatedRound = (files: ReadonlyArray<SimFile>, receiver: SimReceiver, synced: Synced, log: RoundLog, o: SimRoundOptions) => {
  const link = new SenderLink(receiver.connection(), {
    group: "g",
    senderId: simSender,
    window: o.window,
    filesInFlight: o.filesInFlight,
    chunkBytes: simChunkBytes,
    requestTimeoutMs: 1000,
  });
  const work = {
    confirm: async (c: { ref: FileRef; parts: ReadonlyArray<{ kind: PartKind; sha256: string }> }) => {
      synced.set(refKey(c.ref), Object.fromEntries(c.parts.map((p) => [p.kind, p.sha256])));
    },
    unpin: async () => undefined,
    flush: async () => undefined,
    clearSnapshots: async () => undefined,
    forget: async () => undefined,
  } as unknown as WorkDir;
  const units = (): SyncUnit[] =>
    files
      .filter((f) => !synced.has(refKey(f.ref)))
      .map((f) => ({ ref: f.ref, parts: f.parts.map((p) => ({ kind: p.kind, path: p.path, size: p.size, mtimeMs: 0 })) }));
  return senderRoundWith({ link, work, source: {} as Source, storageGroups: [] }).provide({
    actors: {
      scan: fromPromise<ScanResult, void>(async () => ({ units: units(), deletions: [], ignored: 0 })),
      transfer: fromPromise<SentPart, TransferInput>(({ input, signal }) => {
        if (input.partIndex === 0) log.attempts.set(refKey(input.unit.ref), (log.attempts.get(refKey(input.unit.ref)) ?? 0) + 1);
        return link.sendPart(input.session, input.unit.ref, input.unit.parts[input.partIndex]!, signal);
      }),
    },
    delays: roundDelays(o.random),
  });
};
