// A receiver model and a simulated NATS transport for the sender machine's tests: the real
// SenderLink talks to it through a fake `request`, and every request may be hit by a fault from a
// plan (dropped, reply lost, chunk corrupted, receiver restarted). The model keeps the books the
// invariants are checked against: what it holds, what it acknowledged as new data, what it loaded.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { NoRespondersError, TimeoutError, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { fromPromise } from "xstate";
import { SenderLink } from "../../src/actors/sender/link.js";
import { senderRound, type SchemaSyncOutput } from "../../src/machines/senderRound.js";
import {
  refKey,
  type DeleteOutput,
  type LoadInput,
  type ScanResult,
  type SentPart,
  type SessionInfo,
  type TransferInput,
  type VerifyInput,
} from "../../src/machines/senderTypes.js";
import type { SyncUnit } from "../../src/protocol/parts.js";
import type { FileRef, PartKind } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";
import { ChunkHeader } from "../../src/protocol/subjects.js";

/** What can happen to one request. */
export type Fault = "ok" | "drop" | "lostReply" | "corrupt" | "restart";

export interface SimFile {
  readonly ref: FileRef;
  readonly parts: ReadonlyArray<{ readonly kind: PartKind; readonly path: string; readonly size: number; readonly sha256: string }>;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const decode = (b: Uint8Array): Record<string, unknown> => JSON.parse(new TextDecoder().decode(b)) as Record<string, unknown>;
const partKey = (ref: FileRef, kind: PartKind) => `${refKey(ref)}:${kind}`;

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

interface Writer {
  readonly key: string;
  readonly size: number;
}

/**
 * The receiver's side of the protocol as `sessionHost`, `staging` and `core` implement it, with
 * one liberty: a chunk that starts inside bytes already held is written and acknowledged (a real
 * receiver says outOfOrder), so a sender that re-sends held bytes shows up as a double acknowledgement.
 */
export class SimReceiver {
  /** Bytes held per part (a partial copy), and whether a corrupted chunk is among them. */
  readonly partial = new Map<string, { held: number; size: number; corrupt: boolean }>();
  readonly ready = new Map<string, string>();
  readonly journal = new Map<string, string>();
  /** Completed loads per part: must never pass 1. */
  readonly loads = new Map<string, number>();
  /** Byte ranges acknowledged as new data per part, since its partial copy was last dropped. */
  private readonly acked = new Map<string, Array<[number, number]>>();
  readonly violations: string[] = [];
  private sessions = 0;
  private liveSession = "";
  private writers = new Map<string, Writer>();
  private nextId = 0;
  /**
   * Parts that always fail: "retryable" refuses their offer (as a full staging disk does), "fatal"
   * rejects them at commit (as a TsFile that does not parse).
   */
  readonly poison = new Map<string, "retryable" | "fatal">();

  constructor(private readonly plan: Fault[]) {}

  private nextFault(): Fault {
    return this.plan.shift() ?? "ok";
  }

  get faultsLeft(): number {
    return this.plan.length;
  }

  private restart(): void {
    // A restarted receiver keeps its disk (partials, ready parts, journal) and forgets its sessions.
    this.liveSession = "";
    this.writers = new Map();
  }

  /** A NatsConnection that serves `request` from this model, one request at a time, in order. */
  connection(): NatsConnection {
    const nc = {
      info: { max_payload: 2048 },
      request: (subject: string, payload: Uint8Array, opts?: { headers?: MsgHdrs }) => {
        const fault = this.nextFault();
        if (fault === "restart") this.restart();
        if (fault === "drop") return Promise.reject(new TimeoutError());
        let reply: Record<string, unknown>;
        try {
          reply = this.handle(subject, payload, opts?.headers, fault === "corrupt");
        } catch (e) {
          return Promise.reject(e);
        }
        if (fault === "lostReply") return Promise.reject(new TimeoutError());
        return Promise.resolve({ data: encode(reply) });
      },
    };
    return nc as unknown as NatsConnection;
  }

  private handle(subject: string, payload: Uint8Array, h: MsgHdrs | undefined, corrupt: boolean): Record<string, unknown> {
    if (subject.includes(".hello.")) {
      this.liveSession = `sim${++this.sessions}`;
      this.writers = new Map();
      return { code: Code.ok, message: "welcome", sessionPrefix: this.liveSession, sessionId: this.liveSession, maxChunkBytes: 2048 };
    }
    const dot = subject.lastIndexOf(".");
    const prefix = subject.slice(0, dot);
    const op = subject.slice(dot + 1);
    if (prefix !== this.liveSession) throw new NoRespondersError(subject);
    switch (op) {
      case "offer":
        return this.offer(decode(payload));
      case "chunk":
        return this.chunk(h?.get(ChunkHeader.file) ?? "", Number(h?.get(ChunkHeader.offset)), payload, corrupt);
      case "commit":
        return this.commit(decode(payload));
      case "load":
        return this.load(decode(payload));
      case "bye":
        return { code: Code.ok, message: "bye" };
      default:
        return { code: Code.badMessage, message: `no ${op} here` };
    }
  }

  private offer(o: Record<string, unknown>): Record<string, unknown> {
    const ref = { sg: String(o["sg"]), vg: String(o["vg"]), tp: String(o["tp"]), name: String(o["name"]) };
    const key = partKey(ref, o["kind"] as PartKind);
    const size = Number(o["size"]);
    const wanted = o["sha256"] as string | undefined;
    if (this.poison.get(key) === "retryable") return { code: Code.storageFailed, message: "the receiver's staging disk is full" };
    const loaded = this.journal.get(key);
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

  private load(l: Record<string, unknown>): Record<string, unknown> {
    const ref = { sg: String(l["sg"]), vg: String(l["vg"]), tp: String(l["tp"]), name: String(l["name"]) };
    const parts = l["parts"] as Array<{ kind: PartKind; sha256: string }>;
    const toLoad: string[] = [];
    for (const part of parts) {
      const key = partKey(ref, part.kind);
      if (this.journal.get(key) === part.sha256) continue;
      if (this.ready.get(key) !== part.sha256) return { code: Code.notReady, message: `${key} not received with that digest` };
      toLoad.push(key);
    }
    if (toLoad.length === 0) return { code: Code.have, message: "already loaded" };
    for (const key of toLoad) {
      this.loads.set(key, (this.loads.get(key) ?? 0) + 1);
      this.journal.set(key, this.ready.get(key)!);
      this.ready.delete(key);
    }
    return { code: Code.ok, message: "loaded" };
  }
}

/** The sender's memory of what the receiver confirmed, per file: the digests of its parts. */
export type Synced = Map<string, Record<string, string>>;

export interface RoundLog {
  /** Attempts started per file (transfers of its first part). */
  readonly attempts: Map<string, number>;
}

/**
 * The real sender round machine, with the real SenderLink over the simulated transport and an
 * in-memory work dir; no delays (the backoff is the machine's decision, not the test's time).
 */
export const poisonKey = (f: SimFile): string => partKey(f.ref, "tsfile");

export const simulatedRound = (files: ReadonlyArray<SimFile>, receiver: SimReceiver, synced: Synced, log: RoundLog, window: number) => {
  const link = new SenderLink(receiver.connection(), { group: "g", senderId: "s1", window, chunkBytes: 1024, requestTimeoutMs: 1000 });
  const units = (): SyncUnit[] =>
    files
      .filter((f) => !synced.has(refKey(f.ref)))
      .map((f) => ({ ref: f.ref, parts: f.parts.map((p) => ({ kind: p.kind, path: p.path, size: p.size, mtimeMs: 0 })) }));
  return senderRound.provide({
    actors: {
      recover: fromPromise<void, void>(async () => undefined),
      scan: fromPromise<ScanResult, void>(async () => ({ units: units(), deletions: [], ignored: 0 })),
      handshake: fromPromise<SessionInfo, void>(() => link.hello([])),
      syncSchema: fromPromise<SchemaSyncOutput | undefined, { session: SessionInfo }>(async () => undefined),
      transfer: fromPromise<SentPart, TransferInput>(({ input, signal }) => {
        if (input.partIndex === 0) log.attempts.set(refKey(input.unit.ref), (log.attempts.get(refKey(input.unit.ref)) ?? 0) + 1);
        return link.sendPart(input.session, input.unit.ref, input.unit.parts[input.partIndex]!, signal);
      }),
      verify: fromPromise<void, VerifyInput>(({ input }) => link.commit(input.session, input.part)),
      load: fromPromise<void, LoadInput>(({ input }) =>
        link.load(
          input.session,
          input.unit.ref,
          input.parts.map((p) => ({ kind: p.kind, size: p.size, sha256: p.sha256 })),
        ),
      ),
      confirm: fromPromise<void, LoadInput>(async ({ input }) => {
        synced.set(refKey(input.unit.ref), Object.fromEntries(input.parts.map((p) => [p.kind, p.sha256])));
      }),
      deleteFiles: fromPromise<DeleteOutput, { session: SessionInfo; deletions: ReadonlyArray<FileRef> }>(async () => ({
        deleted: [],
        failed: [],
      })),
      bye: fromPromise<void, { session: SessionInfo | undefined }>(async ({ input }) => {
        if (input.session) await link.bye(input.session).catch(() => undefined);
      }),
    },
    delays: { backoff: 0, handshakeBackoff: 0 },
  });
};
