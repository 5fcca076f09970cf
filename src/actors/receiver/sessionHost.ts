// Runs one sender's session machine over NATS: decodes requests into machine events and supplies the actors that touch disk and JetStream.
import { createHash, randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { Effect, Result, type Schema } from "effect";
import { abortable, fromEffect } from "../runtime.js";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { createActor, type ActorRefFrom } from "xstate";
import {
  receiverSession,
  defaultFilesInFlight,
  type Chunk,
  type PutRequest,
  type Respond,
  type SchemaRequest,
  type SessionEvent,
  type SessionInput,
  type Transfer,
} from "../../machines/receiverSession.js";
import {
  ChunkAck,
  Commit,
  decodeJson,
  Delete,
  encodeReply,
  HelloReply,
  Load,
  Offer,
  OfferReply,
  PlainReply,
  Put,
  SchemaAck,
  type FileRef,
  type PartKind,
  type ReplySchema,
} from "../../protocol/messages.js";
import { describeBadName, describeBadTsFileName, isNumericSegment, isSegment, isTsFileName } from "../../protocol/names.js";
import { partOrder } from "../../protocol/parts.js";
import { Code, reply, type Reply } from "../../protocol/status.js";
import { ChunkHeader, Feature, isSenderInbox, PutHeader } from "../../protocol/subjects.js";
import type { Carried, ReceiverCore } from "./core.js";
import { applySchemaPiece, decodeSchemaRequest, schemaStateDir } from "./schemaSync.js";
import { safely, schemaSafeStorage, type SafeFailureScope } from "./safeFailure.js";
import { StagingFullError, type PartWriter } from "./staging.js";
import { StagingQuotaError } from "./stagingHygiene.js";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export const newId = (): string => randomBytes(9).toString("base64url");

/** The schema each operation's reply is encoded with. */
const replySchemaOf: Readonly<Record<string, ReplySchema>> = {
  offer: OfferReply,
  chunk: ChunkAck,
  commit: PlainReply,
  load: PlainReply,
  put: PlainReply,
  delete: PlainReply,
  schema: SchemaAck,
  bye: PlainReply,
};

const closedReply = reply(Code.unknownSession, "session is closed; say hello again");

/**
 * When a message that failed to decode names a file, says which name broke which rule: a bad
 * name is a `badName`, not just any malformed message.
 */
const badNameIn = (data: Uint8Array): Reply | undefined => {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const problems: string[] = [];
  if ("sg" in o && !isSegment(o["sg"])) problems.push(describeBadName("storage group", o["sg"]));
  for (const f of ["vg", "tp"] as const)
    if (f in o && !isNumericSegment(o[f])) problems.push(`${f} ${JSON.stringify(o[f])} is not a partition number`);
  if ("name" in o && !isTsFileName(o["name"])) problems.push(describeBadTsFileName(o["name"]));
  return problems.length > 0 ? reply(Code.badName, problems.join("; ")) : undefined;
};

/**
 * A `put` as its headers and body say: the ref and digests (JSON in the `Tsync-Put` header), each
 * kind once, sizes that add up to the body, all within one message.
 */
const decodePut = (m: Msg, maxBytes: number): Result.Result<PutRequest, Reply> => {
  const header = m.headers?.get(PutHeader) ?? "";
  if (header === "") return Result.fail(reply(Code.badMessage, `a put carries its file's ref and part digests in the ${PutHeader} header`));
  const decoded = decodeJson(Put)(new TextEncoder().encode(header));
  if (Result.isFailure(decoded))
    return Result.fail(badNameIn(new TextEncoder().encode(header)) ?? reply(Code.badMessage, `${PutHeader}: ${decoded.failure}`));
  const put = decoded.success;
  const kinds = put.parts.map((p) => p.kind);
  if (kinds.length === 0 || new Set(kinds).size !== kinds.length)
    return Result.fail(
      reply(Code.badMessage, `a put names each of its parts once (got ${JSON.stringify(kinds)}; parts are ${partOrder.join(", ")})`),
    );
  const held = new Set(put.held ?? []);
  if ([...held].some((k) => !kinds.includes(k)))
    return Result.fail(reply(Code.badMessage, `a put holds back only parts it lists (held ${JSON.stringify(put.held)})`));
  const total = put.parts.reduce((n, p) => n + (held.has(p.kind) ? 0 : p.size), 0);
  if (total > maxBytes) return Result.fail(reply(Code.tooLarge, `a put of ${total} bytes exceeds ${maxBytes}; offer the file instead`));
  if (total !== m.data.length)
    return Result.fail(reply(Code.sizeMismatch, `${put.name}: the parts add up to ${total} bytes, the put carries ${m.data.length}`));
  return Result.succeed({ put, bytes: m.data });
};

/**
 * One connected sender: a receiverSession actor fed by the session's subscription. Each request
 * goes to the machine as an event carrying its responder; the machine decides every reply. The
 * host takes the next request once the machine answered this one, so requests (and the chunks of
 * a file, and their writes) are handled one at a time in arrival order; whole-file `put`s are the
 * exception: each is handed over and answered when done, so a session stores several at once.
 */
export class SessionHost {
  readonly actor: ActorRefFrom<typeof receiverSession>;
  private readonly writers = new Map<string, PartWriter>();
  private readonly owned = new Set<string>();
  private sub: Subscription | undefined;
  /** Ends the waits for the replies to the requests (or hello) the machine is handling. */
  private readonly pending = new Set<Respond>();
  /** The hello's responder: the machine answers admission to it. */
  private admission: Respond | undefined;
  readonly prefix: string;
  readonly startedAt = Date.now();
  /** The address the NATS server saw for this sender's connection, once admitted. */
  address: string | undefined;

  /**
   * `admit` decides whether the hello is let in (the receiver's admission rules with the
   * hello's reply subject); the session is not served before it answers ok.
   */
  constructor(
    private readonly core: ReceiverCore,
    private readonly nc: NatsConnection,
    readonly input: SessionInput,
    private readonly admit: () => Promise<Reply>,
    private readonly onEnd: (host: SessionHost) => void,
  ) {
    this.prefix = core.sessionPrefix(input.senderId, input.sessionId);
    this.actor = createActor(this.machine(), {
      input: { ...input, maxChunkBytes: core.maxChunkBytes, hello: (r) => this.admission?.(r) },
      id: `session-${input.sessionId}`,
      ...core.inspectOption(input.sessionId),
    });
  }

  /**
   * Every actor goes through `safely`: a failure is logged in full and reaches the sender only as
   * a message that shows nothing of this machine (no path, no stack); see safeFailure.ts.
   */
  private machine() {
    const core = this.core;
    const scope: SafeFailureScope = {
      session: `session ${this.input.sessionId}`,
      log: (line) => core.log(line),
      dataDir: dirname(dirname(core.staging.root)),
    };
    const storage = schemaSafeStorage(core.storage, scope);
    const schemaDir = schemaStateDir(dirname(core.staging.root));
    // Admission and offers are interrupted when the session leaves their state; commits, loads,
    // deletes and schema pieces change what is stored, so once begun they finish (their steps are journaled).
    const step = <I>(operation: string, run: (input: I) => Promise<Reply>, commits: boolean) =>
      fromEffect<Reply, I>((input) => {
        const work = abortable(() => safely(scope, operation, run)(input));
        return commits ? Effect.uninterruptible(work) : work;
      });
    return receiverSession.provide({
      actors: {
        admit: step<SessionInput>("hello", () => this.admit(), false),
        acceptOffer: step<{ session: SessionInput; offer: Offer }>("offer", (input) => this.acceptOffer(input.offer), false),
        verify: step<{ session: SessionInput; transfer: Transfer; commit: Commit }>(
          "commit",
          (input) => this.verify(input.transfer, input.commit),
          true,
        ),
        load: step<{ session: SessionInput; load: Load }>("load", (input) => this.load(input.load), true),
        remove: step<{ session: SessionInput; ref: FileRef }>("delete", (input) => this.remove(input.ref), true),
        storeFile: step<{ session: SessionInput; request: PutRequest }>("put", (input) => this.store(input.request), true),
        applySchema: step<{ session: SessionInput; request: SchemaRequest }>(
          "schema",
          (input) => applySchemaPiece(storage, schemaDir, input.session.senderId, input.request),
          true,
        ),
      },
      actions: {
        countRejected: () => {
          core.stats.rejected++;
        },
        write: (_, chunk) => this.write(chunk),
      },
    });
  }

  /** Waits for the machine's answer to what it is handling; the session's end answers it too. */
  private answer(): { respond: Respond; answered: Promise<Reply> } {
    let respond!: Respond;
    const answered = new Promise<Reply>((resolve) => {
      respond = (r) => {
        this.pending.delete(respond);
        resolve(r);
      };
    });
    this.pending.add(respond);
    return { respond, answered };
  }

  /** Starts the actor and answers the hello with the admission decision. */
  async start(hello: Msg): Promise<boolean> {
    const { respond, answered } = this.answer();
    this.admission = respond;
    this.actor.subscribe({ complete: () => void this.end(), error: () => void this.end() });
    this.actor.start();
    const r = await answered;
    if (r.code !== Code.ok) {
      this.send(hello, HelloReply, r);
      return false;
    }
    this.address = typeof r["address"] === "string" ? r["address"] : undefined;
    this.sub = this.nc.subscribe(`${this.prefix}.>`);
    void this.serve(this.sub).catch((e: unknown) => {
      // The subscription itself failed (connection closed, permissions): the session cannot go on.
      this.core.log(`session ${this.input.sessionId}: subscription ended: ${e instanceof Error ? e.message : String(e)}`);
      void this.stop();
    });
    this.send(hello, HelloReply, {
      ...r,
      sessionPrefix: this.prefix,
      sessionId: this.input.sessionId,
      maxChunkBytes: this.core.maxChunkBytes,
      idleTimeoutMs: this.input.idleTimeoutMs,
      features: [Feature.put],
      maxFilesInFlight: defaultFilesInFlight,
    });
    return true;
  }

  /**
   * Sends `r` encoded with its schema. A reply the schema refuses is a bug here: it is logged and
   * the sender gets `internal` instead, never a message of the wrong shape.
   */
  private send(m: Msg, schema: ReplySchema, r: Reply): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeReply(schema)(r);
    } catch (e) {
      this.core.log(
        `session ${this.input.sessionId}: a reply did not fit its schema: ${e instanceof Error ? e.message : String(e)}: ${JSON.stringify(r)}`,
      );
      bytes = encodeReply(PlainReply)(reply(Code.internal, "internal error; see the receiver log"));
    }
    m.respond(bytes);
  }

  private async serve(sub: Subscription): Promise<void> {
    for await (const m of sub) {
      if (!m.reply || !isSenderInbox(m.reply, this.input.senderId)) {
        // Answering would publish wherever the request says, with the receiver's rights: a
        // request that is not asking from this sender's own inbox is not served at all.
        this.core.stats.droppedReplies++;
        if (this.core.stats.droppedReplies % 1000 === 1)
          this.core.log(
            `session ${this.input.sessionId}: dropped a request whose reply subject is not sender ${this.input.senderId}'s inbox: ${JSON.stringify(m.reply ?? "")}`,
          );
        continue;
      }
      const op = m.subject.slice(this.prefix.length + 1);
      const schema = replySchemaOf[op] ?? PlainReply;
      try {
        const decoded = this.request(m, op);
        if (Result.isFailure(decoded)) {
          this.send(m, schema, decoded.failure);
          continue;
        }
        const event = decoded.success;
        if (this.actor.getSnapshot().status !== "active") {
          this.send(m, schema, closedReply);
          continue;
        }
        const { respond, answered } = this.answer();
        this.actor.send({ ...event, respond } as SessionEvent);
        if (event.type === "put") void answered.then((r) => this.send(m, schema, r));
        else this.send(m, schema, await answered);
      } catch (e) {
        this.core.log(`session ${this.input.sessionId}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        this.send(m, PlainReply, reply(Code.internal, "internal error; see the receiver log"));
      }
    }
  }

  private decode<S extends Schema.Codec<unknown, unknown>>(schema: S, m: Msg): Result.Result<S["Type"], Reply> {
    const r = decodeJson(schema)(m.data);
    return Result.isSuccess(r) ? Result.succeed(r.success) : Result.fail(badNameIn(m.data) ?? reply(Code.badMessage, r.failure));
  }

  /** The request a message makes, as the machine's event; or, for a message that cannot be decoded, its refusal. */
  private request(m: Msg, op: string): Result.Result<DistributiveOmit<SessionEvent, "respond">, Reply> {
    switch (op) {
      case "chunk": {
        const offsetText = m.headers?.get(ChunkHeader.offset) ?? "";
        return Result.succeed({
          type: "chunk",
          fileId: m.headers?.get(ChunkHeader.file) ?? "",
          offsetText,
          offset: /^[0-9]{1,16}$/.test(offsetText) ? Number(offsetText) : Number.NaN,
          data: m.data,
        });
      }
      case "offer": {
        const r = this.decode(Offer, m);
        return Result.isFailure(r) ? Result.fail(this.rejectBad(r.failure)) : Result.succeed({ type: "offer", offer: r.success });
      }
      case "commit": {
        const r = this.decode(Commit, m);
        return Result.isFailure(r) ? Result.fail(this.rejectBad(r.failure)) : Result.succeed({ type: "commit", commit: r.success });
      }
      case "load": {
        const r = this.decode(Load, m);
        if (Result.isFailure(r)) return Result.fail(this.rejectBad(r.failure));
        const kinds = r.success.parts.map((p) => p.kind);
        if (kinds.length === 0 || new Set(kinds).size !== kinds.length)
          return Result.fail(
            this.rejectBad(
              reply(
                Code.badMessage,
                `a load names each of its parts once (got ${JSON.stringify(kinds)}; parts are ${partOrder.join(", ")})`,
              ),
            ),
          );
        return Result.succeed({ type: "load", load: r.success });
      }
      case "put": {
        const r = decodePut(m, this.core.maxChunkBytes);
        return Result.isFailure(r) ? Result.fail(this.rejectBad(r.failure)) : Result.succeed({ type: "put", ...r.success });
      }
      case "delete": {
        const r = this.decode(Delete, m);
        return Result.isFailure(r) ? Result.fail(this.rejectBad(r.failure)) : Result.succeed({ type: "delete", ref: r.success });
      }
      case "schema": {
        const r = decodeSchemaRequest(m.headers, m.data, this.core.maxChunkBytes);
        return Result.isFailure(r) ? Result.fail(this.rejectBad(r.failure)) : Result.succeed({ type: "schema", request: r.success });
      }
      case "bye":
        return Result.succeed({ type: "bye" });
      default:
        return Result.fail(this.rejectBad(reply(Code.badMessage, `unknown operation ${JSON.stringify(op)}`)));
    }
  }

  private rejectBad(r: Reply): Reply {
    this.core.stats.rejected++;
    return r;
  }

  /**
   * The machine's `write`: the chunk at its offset in the file's part. The machine checked it
   * against the transfer; the host takes no other request until `progress` answers it.
   */
  private write(chunk: Chunk & { readonly respond?: Respond | undefined }): void {
    const { fileId, offset, data, respond } = chunk;
    const writer = this.writers.get(fileId);
    if (!writer) {
      this.actor.send({ type: "writeFailed", fileId, reason: "closed", respond });
      return;
    }
    writer.write(data, offset).then(
      () => {
        this.core.stats.bytes += data.length;
        this.actor.send({ type: "progress", fileId, received: writer.received, bytes: data.length, respond });
      },
      (e: unknown) => {
        this.core.log(`session ${this.input.sessionId}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        this.actor.send({ type: "writeFailed", fileId, reason: "failed", respond });
      },
    );
  }

  /**
   * The ownership check of an offer. It never claims: only a load does, so offers (and deletes)
   * of groups nobody owns leave the registry as it is. Offers may trust what this session learnt
   * (staging writes nothing visible); loads and deletes ask the registry every time, in the core,
   * so a group released and claimed by another sender mid-session is never written by its former
   * owner. A file another sender loaded under the same name is refused here already, before its
   * bytes travel.
   */
  private async claim(offer: Offer): Promise<Reply | undefined> {
    const sender = this.input.senderId;
    if (!this.owned.has(offer.sg)) {
      const owner = await this.core.ownerOf(offer.sg);
      if (owner && owner.senderId !== sender) return this.core.groupConflict(owner);
      if (owner) this.owned.add(offer.sg);
    }
    return this.core.overwriteConflict(sender, offer);
  }

  private async acceptOffer(offer: Offer): Promise<Reply> {
    const sender = this.input.senderId;
    if (offer.size > this.core.maxFileBytes)
      return reply(
        Code.tooLarge,
        `${offer.name} (${offer.kind}) is ${offer.size} bytes; the receiver accepts at most ${this.core.maxFileBytes}`,
      );
    const conflict = await this.claim(offer);
    if (conflict) return conflict;
    const loaded = this.core.journal.find(sender, offer, offer.kind);
    if (loaded && loaded.size === offer.size && (offer.sha256 === undefined || offer.sha256 === loaded.sha256))
      return reply(Code.have, "already loaded", { sha256: loaded.sha256 });
    const ready = await this.core.staging.ready(sender, offer, offer.kind, offer.sha256);
    if (ready && ready.size === offer.size) return reply(Code.have, "already received, waiting to be loaded", { sha256: ready.sha256 });
    const placed = await this.core.recoverPlaced(sender, offer, offer.kind, offer.size, offer.sha256);
    if (placed) return reply(Code.have, "already loaded (recovered)", { sha256: placed.sha256 });
    await this.closeWriters();
    let writer: PartWriter;
    try {
      writer = await this.core.staging.begin(sender, offer);
    } catch (e) {
      if (e instanceof StagingFullError) return reply(Code.storageFailed, e.message);
      // Not retryable: the quota frees up only as the sender's parts load or are swept, so retrying
      // at once would hammer; the file is quarantined for the round and the next round tries again.
      if (e instanceof StagingQuotaError) return reply(Code.tooLarge, e.message);
      throw e;
    }
    const fileId = newId();
    this.writers.set(fileId, writer);
    const resumed = writer.received > 0;
    return reply(resumed ? Code.resume : Code.start, resumed ? `resume at ${writer.received}` : "send", {
      fileId,
      offset: writer.received,
    });
  }

  private async verify(transfer: Transfer, commit: Commit): Promise<Reply> {
    const writer = this.writers.get(transfer.fileId);
    if (!writer) return reply(Code.unknownFile, `file ${transfer.fileId} is closed`);
    this.writers.delete(transfer.fileId);
    const offer = transfer.offer;
    if (commit.size !== offer.size || writer.received !== offer.size) {
      await writer.abandon();
      return reply(
        Code.sizeMismatch,
        `${offer.name} (${offer.kind}): announced ${offer.size} bytes, received ${writer.received}, commit says ${commit.size}`,
      );
    }
    const digest = writer.digest();
    if (digest !== commit.sha256 || (offer.sha256 !== undefined && offer.sha256 !== digest)) {
      await writer.abandon();
      this.core.stats.digestMismatches++;
      return reply(
        Code.digestMismatch,
        `${offer.name} (${offer.kind}): SHA-256 of the received bytes is ${digest}, the sender's is ${commit.sha256}`,
      );
    }
    let facts: unknown;
    if (offer.kind === "tsfile") {
      const check = await this.core.validateTsFile(writer.partPath);
      if (!check.ok) {
        await writer.abandon();
        return reply(Code.badTsFile, `${offer.name} is not a sound TsFile: ${check.reason}`);
      }
      facts = check.facts;
    }
    await writer.seal(digest, facts);
    return reply(Code.ok, "verified");
  }

  private async load(load: Load, carried?: ReadonlyMap<PartKind, Carried>): Promise<Reply> {
    const r = await this.core.load(this.input.senderId, load, carried);
    if (r.code === Code.ok) this.owned.add(load.sg);
    else if (r["owner"] !== undefined) this.owned.delete(load.sg);
    return r;
  }

  /**
   * A whole file in one request: each part is checked as an offer would be and verified in memory as
   * a commit would be, then the file is loaded. Parts already here are not sent again.
   */
  private async store({ put, bytes }: PutRequest): Promise<Reply> {
    const sender = this.input.senderId;
    const held = new Set(put.held ?? []);
    const carried = new Map<PartKind, Carried>();
    let at = 0;
    for (const part of put.parts) {
      const data = held.has(part.kind) ? undefined : bytes.subarray(at, at + part.size);
      if (data) at += part.size;
      const offer: Offer = { sg: put.sg, vg: put.vg, tp: put.tp, name: put.name, kind: part.kind, size: part.size, sha256: part.sha256 };
      if (part.size > this.core.maxFileBytes)
        return reply(
          Code.tooLarge,
          `${put.name} (${part.kind}) is ${part.size} bytes; the receiver accepts at most ${this.core.maxFileBytes}`,
        );
      const conflict = await this.claim(offer);
      if (conflict) return conflict;
      const loaded = this.core.journal.find(sender, offer, part.kind);
      if (loaded && loaded.size === part.size && loaded.sha256 === part.sha256) continue;
      if (data === undefined) {
        // A held part must be here already.
        if (await this.core.staging.ready(sender, offer, part.kind, part.sha256)) continue;
        return reply(Code.notReady, `${put.name} (${part.kind}) is not here with digest ${part.sha256.slice(0, 12)}…; send it`);
      }
      const verified = await this.verifyCarried(offer, data);
      if ("code" in verified) return verified;
      carried.set(part.kind, verified);
    }
    try {
      return await this.load({ sg: put.sg, vg: put.vg, tp: put.tp, name: put.name, parts: put.parts }, carried);
    } catch (e) {
      // A storage that takes no bytes gets them through staging, which has its limits.
      if (e instanceof StagingFullError) return reply(Code.storageFailed, e.message);
      if (e instanceof StagingQuotaError) return reply(Code.tooLarge, e.message);
      throw e;
    }
  }

  /** One part of a put, checked in memory: its digest and, for a TsFile, its format. */
  private async verifyCarried(offer: Offer, data: Uint8Array): Promise<Reply | Carried> {
    const digest = createHash("sha256").update(data).digest("hex");
    if (digest !== offer.sha256) {
      this.core.stats.digestMismatches++;
      return reply(
        Code.digestMismatch,
        `${offer.name} (${offer.kind}): SHA-256 of the received bytes is ${digest}, the sender's is ${offer.sha256 ?? "missing"}`,
      );
    }
    let facts: unknown;
    if (offer.kind === "tsfile") {
      const check = await this.core.validateTsFile(data);
      if (!check.ok) return reply(Code.badTsFile, `${offer.name} is not a sound TsFile: ${check.reason}`);
      facts = check.facts;
    }
    this.core.stats.bytes += data.length;
    return { kind: offer.kind, bytes: data, size: data.length, sha256: digest, facts };
  }

  private async remove(ref: FileRef): Promise<Reply> {
    const r = await this.core.remove(this.input.senderId, ref);
    if (r["owner"] !== undefined) this.owned.delete(ref.sg);
    return r;
  }

  private async closeWriters(): Promise<void> {
    for (const w of this.writers.values()) await w.close();
    this.writers.clear();
  }

  private ended = false;
  private async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    // A request (or the hello) the machine will not answer any more: told to say hello again.
    for (const waiting of [...this.pending])
      waiting(this.admission === waiting ? reply(Code.internal, "session ended before admission") : closedReply);
    // Drain, not unsubscribe: requests already delivered are still answered (unknownSession, so
    // the sender says hello again at once) instead of being dropped to wait out their timeout.
    void this.sub?.drain().catch(() => undefined);
    await this.closeWriters();
    this.onEnd(this);
  }

  /** Ends the session from outside (receiver stop, superseded by a new hello). */
  async stop(): Promise<void> {
    this.actor.stop();
    await this.end();
  }
}
