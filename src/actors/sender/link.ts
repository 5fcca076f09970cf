// The sender's side of the protocol over NATS: hello, offer, chunks, commit, load and delete.
import { createHash, type Hash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { Result, type Schema } from "effect";
import {
  ChunkAck,
  decodeJson,
  encodeJson,
  HelloReply,
  OfferReply,
  PlainReply,
  protocolVersion,
  type FileRef,
  type Offer,
  type PartDigest,
  type PartKind,
} from "../../protocol/messages.js";
import { failureFor, Retryable, Stopped, Unsendable } from "../../protocol/failures.js";
import { Code } from "../../protocol/status.js";
import { ChunkHeader, chunkSizeFor, Feature, helloSubject, PutHeader, sessionSubject, type SessionOp } from "../../protocol/subjects.js";
import { isSideKind, type LocalPart } from "../../protocol/parts.js";
import { asStepFailure, type SentPart, type SessionInfo, type StepFailure } from "../../machines/senderTypes.js";
import { tsyncVersion } from "../../version.js";
import { hashFilePrefix } from "../../files/fileDigest.js";
import { natsFailure, type RequestOp } from "../natsFailures.js";

export interface LinkOptions {
  readonly group: string;
  readonly senderId: string;
  readonly senderName?: string | undefined;
  /** Chunks in flight: enough to cover the link's bandwidth-delay product. */
  readonly window: number;
  /** Small files put at once (`files_in_flight`), when the receiver takes puts. */
  readonly filesInFlight?: number;
  /** 0 = from the server's max_payload. */
  readonly chunkBytes: number;
  readonly requestTimeoutMs?: number;
  /** Waits before sending `bytes` more; the bandwidth limit plugs in here. */
  readonly pace?: (bytes: number) => Promise<void>;
  /** Tests only: lets a fault test corrupt a chunk on the wire. */
  readonly transformChunk?: (chunk: Buffer, offset: number) => Buffer;
}

/** The sender's side of the protocol over one NATS connection. */
export class SenderLink {
  constructor(
    private readonly nc: NatsConnection,
    private readonly options: LinkOptions,
  ) {}

  private async call<S extends Schema.Codec<unknown, unknown>>(
    op: RequestOp,
    subject: string,
    body: unknown,
    schema: S,
    timeout: number,
  ): Promise<S["Type"]> {
    let bytes: Uint8Array;
    try {
      bytes = (await this.nc.request(subject, encodeJson(body), { timeout })).data;
    } catch (e) {
      throw natsFailure(op, e);
    }
    const decoded = decodeJson(schema)(bytes);
    if (Result.isFailure(decoded))
      throw new Retryable({ code: Code.badMessage, message: `receiver sent a bad ${op} reply: ${decoded.failure}` });
    return decoded.success;
  }

  private get timeout(): number {
    return this.options.requestTimeoutMs ?? 30_000;
  }

  async hello(storageGroups: ReadonlyArray<string>, partitionInterval?: number): Promise<SessionInfo> {
    const r = await this.call(
      "hello",
      helloSubject(this.options.group, this.options.senderId),
      {
        protocol: protocolVersion,
        senderId: this.options.senderId,
        ...(this.options.senderName ? { senderName: this.options.senderName } : {}),
        tsyncVersion,
        ...(partitionInterval === undefined ? {} : { partitionInterval }),
        storageGroups,
      },
      HelloReply,
      this.timeout,
    );
    if (r.code !== Code.ok || !r.sessionPrefix || !r.sessionId) throw failureFor(r);
    const maxPayload = this.nc.info?.max_payload ?? 1 << 20;
    const takesPuts = r.features?.includes(Feature.put) === true;
    return {
      prefix: r.sessionPrefix,
      sessionId: r.sessionId,
      chunkBytes: chunkSizeFor(Math.min(maxPayload, r.maxChunkBytes ?? maxPayload), this.options.chunkBytes),
      filesInFlight: takesPuts ? Math.max(0, Math.min(this.options.filesInFlight ?? 1, r.maxFilesInFlight ?? 1)) : 0,
    };
  }

  private subject(session: SessionInfo, op: SessionOp): string {
    return sessionSubject(session.prefix, op);
  }

  /** Offers one part and streams what the receiver lacks, hashing as it reads. */
  async sendPart(session: SessionInfo, ref: FileRef, part: LocalPart, signal?: AbortSignal): Promise<SentPart> {
    const offer: Offer = { ...ref, kind: part.kind, size: part.size, ...(part.sha256 ? { sha256: part.sha256 } : {}) };
    const r = await this.call("offer", this.subject(session, "offer"), offer, OfferReply, this.timeout);
    if (r.code === Code.have) {
      return {
        kind: part.kind,
        fileId: undefined,
        size: part.size,
        sha256: r.sha256 ?? part.sha256 ?? "",
        had: true,
        bytesSent: 0,
        resumedFrom: 0,
      };
    }
    if ((r.code !== Code.start && r.code !== Code.resume) || r.fileId === undefined) throw failureFor(r);
    const from = Math.min(r.offset ?? 0, part.size);
    const hash = createHash("sha256");
    const file = await open(part.path, "r");
    try {
      if ((await hashFilePrefix(file, hash, from)) < from)
        throw new Unsendable({ message: `file shorter than the receiver's partial copy (${from} bytes)` });
      const bytesSent = await this.stream(session, r.fileId, file, hash, from, part.size, signal);
      return { kind: part.kind, fileId: r.fileId, size: part.size, sha256: hash.digest("hex"), had: false, bytesSent, resumedFrom: from };
    } finally {
      await file.close();
    }
  }

  private async stream(
    session: SessionInfo,
    fileId: string,
    file: Awaited<ReturnType<typeof open>>,
    hash: Hash,
    from: number,
    size: number,
    signal: AbortSignal | undefined,
  ): Promise<number> {
    const subject = this.subject(session, "chunk");
    const inflight = new Set<Promise<void>>();
    let firstError: StepFailure | undefined;
    let pos = from;
    const send = (chunk: Buffer, offset: number) => {
      const h = headers();
      h.set(ChunkHeader.file, fileId);
      h.set(ChunkHeader.offset, String(offset));
      const wire = this.options.transformChunk ? this.options.transformChunk(chunk, offset) : chunk;
      const end = offset + chunk.length;
      const p: Promise<void> = this.nc
        .request(subject, wire, { headers: h, timeout: this.timeout })
        .then(
          (m) => {
            const ack = decodeJson(ChunkAck)(m.data);
            if (Result.isFailure(ack)) throw new Retryable({ code: Code.badMessage, message: `bad chunk ack: ${ack.failure}` });
            if (ack.success.code !== Code.ok) throw failureFor(ack.success);
            if (ack.success.offset !== end)
              throw new Retryable({ code: Code.outOfOrder, message: `chunk at ${offset} acked as ${ack.success.offset}` });
          },
          (e: unknown) => {
            throw natsFailure("chunk", e);
          },
        )
        .catch((e: unknown) => {
          firstError ??= asStepFailure(e);
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    };
    const stopped = () => signal?.aborted === true;
    while ((pos < size || inflight.size > 0) && firstError === undefined && !stopped()) {
      while (inflight.size < this.options.window && pos < size && firstError === undefined && !stopped()) {
        const len = Math.min(session.chunkBytes, size - pos);
        const chunk = Buffer.allocUnsafe(len);
        const { bytesRead } = await file.read(chunk, 0, len, pos);
        if (bytesRead !== len) throw new Unsendable({ message: `file shrank while sending: read ${bytesRead} of ${len} bytes at ${pos}` });
        hash.update(chunk);
        if (this.options.pace) await this.options.pace(len);
        send(chunk, pos);
        pos += len;
      }
      if (inflight.size > 0) await Promise.race(inflight);
    }
    // The first failure decides the attempt: chunks still in flight cannot change that, and waiting
    // out their timeouts (a receiver that died holding them) would only delay the retry. A stop lets
    // them land instead, so the receiver keeps every byte already sent.
    if (firstError) throw firstError;
    await Promise.all(inflight);
    if (firstError) throw firstError;
    if (stopped()) throw new Stopped({ message: "stopped" });
    return pos - from;
  }

  /**
   * A whole small file in one request: every part read, hashed and sent together; the receiver
   * stores, verifies and loads it and answers as a load does. A part that changed size since the
   * scan is not sent (the next round sees it anew).
   */
  async put(session: SessionInfo, ref: FileRef, parts: ReadonlyArray<LocalPart>, holdBack = true): Promise<SentPart[]> {
    // A TsFile or .resource never changes under its name: a digest known from its confirmation
    // means the receiver loaded these very bytes (only a side file changed).
    const heldDigest = (part: LocalPart) => (holdBack && !isSideKind(part.kind) ? part.sha256 : undefined);
    const body = Buffer.allocUnsafe(parts.reduce((n, p) => n + (heldDigest(p) === undefined ? p.size : 0), 0));
    const digests: PartDigest[] = [];
    const held: PartKind[] = [];
    let at = 0;
    for (const part of parts) {
      const known = heldDigest(part);
      if (known !== undefined) {
        held.push(part.kind);
        digests.push({ kind: part.kind, size: part.size, sha256: known });
        continue;
      }
      const data = body.subarray(at, at + part.size);
      at += part.size;
      // Synchronous: a small file from the page cache, read faster than its promise form is set up.
      const fd = openSync(part.path, "r");
      try {
        const bytesRead = readSync(fd, data, 0, part.size, 0);
        if (bytesRead !== part.size)
          throw new Unsendable({ message: `${ref.name} (${part.kind}) shrank since the scan: read ${bytesRead} of ${part.size} bytes` });
      } finally {
        closeSync(fd);
      }
      digests.push({ kind: part.kind, size: part.size, sha256: createHash("sha256").update(data).digest("hex") });
    }
    // The bandwidth limit holds for small files too.
    if (this.options.pace && body.length > 0) await this.options.pace(body.length);
    const h = headers();
    h.set(PutHeader, JSON.stringify({ ...ref, parts: digests, ...(held.length > 0 ? { held } : {}) }));
    let bytes: Uint8Array;
    try {
      bytes = (await this.nc.request(this.subject(session, "put"), body, { headers: h, timeout: Math.max(this.timeout, 120_000) })).data;
    } catch (e) {
      throw natsFailure("put", e);
    }
    const decoded = decodeJson(PlainReply)(bytes);
    if (Result.isFailure(decoded))
      throw new Retryable({ code: Code.badMessage, message: `receiver sent a bad put reply: ${decoded.failure}` });
    const r = decoded.success;
    // The receiver lost what was held back (its data directory restored, say): send it all.
    if (r.code === Code.notReady && held.length > 0) return this.put(session, ref, parts, false);
    if (r.code !== Code.ok && r.code !== Code.have) throw failureFor(r);
    const had = r.code === Code.have;
    return digests.map((d) => {
      const sent = !had && !held.includes(d.kind);
      return { ...d, fileId: undefined, had: !sent, bytesSent: sent ? d.size : 0, resumedFrom: 0 };
    });
  }

  async commit(session: SessionInfo, part: SentPart): Promise<void> {
    const r = await this.call(
      "commit",
      this.subject(session, "commit"),
      { fileId: part.fileId, size: part.size, sha256: part.sha256 },
      PlainReply,
      Math.max(this.timeout, 120_000),
    );
    if (r.code !== Code.ok && r.code !== Code.have) throw failureFor(r);
  }

  async load(session: SessionInfo, ref: FileRef, parts: ReadonlyArray<PartDigest>): Promise<void> {
    const r = await this.call("load", this.subject(session, "load"), { ...ref, parts }, PlainReply, Math.max(this.timeout, 120_000));
    if (r.code !== Code.ok && r.code !== Code.have) throw failureFor(r);
  }

  async delete(session: SessionInfo, ref: FileRef): Promise<void> {
    const r = await this.call("delete", this.subject(session, "delete"), ref, PlainReply, this.timeout);
    if (r.code !== Code.ok) throw failureFor(r);
  }

  async bye(session: SessionInfo): Promise<void> {
    await this.call("bye", this.subject(session, "bye"), {}, PlainReply, 5_000);
  }
}
