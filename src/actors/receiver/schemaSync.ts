// Keeps each sender's IoTDB schema log (mlog) in step on the receiver, replaying only records not yet applied.
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { MsgHdrs } from "@nats-io/transport-node";
import { Effect, Result, Schema } from "effect";
import type { SchemaRequest } from "../../machines/receiverSession.js";
import { SchemaPiece } from "../../protocol/messages.js";
import { isToken } from "../../protocol/names.js";
import { runEffect } from "../runtime.js";
import { Code, reply as replyOf, type CodeValue, type Reply } from "../../protocol/status.js";
import { SchemaHeader } from "../../protocol/subjects.js";
import { cutSchemaRecords, schemaRecordTexts } from "../../iotdb/schemaRecords.js";
import type { Storage } from "../../plugins/storage.js";
import { writeFileAtomic } from "../../files/durableFile.js";
import type { ReceiverCore } from "./core.js";

/**
 * Schema sync, receiver side. A sender's schema log arrives as raw pieces of whole records with
 * (log, generation, offset, digest) in the headers. This receiver remembers, per sender and log,
 * the generation and byte it expects next (`.tsync/schema-sync/<sender>.json`) and is the
 * authority on it: a piece that starts later is answered `outOfOrder` with the offset wanted, so
 * a receiver that lost its state gets the log again from the start (the original tool never
 * re-sent it, and a wiped receiver never got its time series back). Records go to the storage's
 * `applySchema` in log order; the position moves on only after the storage accepted them.
 */

interface Position {
  readonly epoch: number;
  readonly offset: number;
}

type Positions = Readonly<Record<string, Position>>;

export const schemaStateDir = (receiverStateDir: string): string => join(receiverStateDir, "schema-sync");

const positionsPath = (stateDir: string, senderId: string): string => {
  if (!isToken(senderId)) throw new Error(`refusing sender id ${JSON.stringify(senderId)} as a file name`);
  return join(stateDir, `${senderId}.json`);
};

const readPositions = async (stateDir: string, senderId: string): Promise<Positions> => {
  const text = await readFile(positionsPath(stateDir, senderId), "utf8").catch((e: NodeJS.ErrnoException) => {
    if (e.code === "ENOENT") return "{}";
    throw e;
  });
  return JSON.parse(text) as Positions;
};

const writePositions = async (stateDir: string, senderId: string, p: Positions): Promise<void> => {
  await mkdir(stateDir, { recursive: true });
  await writeFileAtomic(positionsPath(stateDir, senderId), JSON.stringify(p));
};

/** A reply that tells where the log stands (`SchemaAck`). */
const reply = (code: CodeValue, message: string, at?: Position): Reply =>
  replyOf(code, message, at ? { epoch: at.epoch, offset: at.offset } : {});

/** Headers and payload of a `schema` message, checked; a bad one becomes a badMessage reply. */
export const decodeSchemaRequest = (
  headers: MsgHdrs | undefined,
  data: Uint8Array,
  maxBytes: number,
): Result.Result<SchemaRequest, Reply> => {
  const num = (name: string) => {
    const v = headers?.get(name) ?? "";
    return /^[0-9]{1,16}$/.test(v) ? Number(v) : v;
  };
  const decoded = Schema.decodeUnknownResult(SchemaPiece)({
    file: headers?.get(SchemaHeader.file) ?? "",
    epoch: num(SchemaHeader.epoch),
    offset: num(SchemaHeader.offset),
    sha256: headers?.get(SchemaHeader.sha256) ?? "",
  });
  if (Result.isFailure(decoded)) return Result.fail(reply(Code.badMessage, `bad schema piece headers: ${decoded.failure.message}`));
  if (data.length > maxBytes) return Result.fail(reply(Code.tooLarge, `schema piece of ${data.length} bytes exceeds ${maxBytes}`));
  return Result.succeed({ piece: decoded.success, bytes: data });
};

/** Applies what is new in one piece and answers where the log stands now. */
export const applySchemaPiece = async (storage: Storage, stateDir: string, senderId: string, req: SchemaRequest): Promise<Reply> => {
  const { piece, bytes } = req;
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (digest !== piece.sha256)
    return reply(
      Code.digestMismatch,
      `${piece.file} piece at byte ${piece.offset}: SHA-256 of the received bytes is ${digest}, the sender's is ${piece.sha256}`,
    );
  const positions = await readPositions(stateDir, senderId);
  const held = positions[piece.file] ?? { epoch: 0, offset: 0 };
  if (piece.epoch < held.epoch)
    return reply(
      Code.outOfOrder,
      `this receiver holds generation ${held.epoch} of ${piece.file}, the piece is of generation ${piece.epoch}`,
      held,
    );
  // A newer generation (IoTDB rewrote its log) starts from its first byte.
  const at = piece.epoch > held.epoch ? { epoch: piece.epoch, offset: 0 } : held;
  if (piece.offset > at.offset)
    return reply(Code.outOfOrder, `${piece.file} piece starts at byte ${piece.offset}, this receiver expects ${at.offset}`, at);
  if (bytes.length === 0) return reply(Code.ok, "position", at);
  const skip = at.offset - piece.offset;
  if (skip >= bytes.length) return reply(Code.ok, "already applied", at);
  const cut = cutSchemaRecords(piece.file, bytes);
  if (cut.stop !== "end")
    return reply(
      Code.badMessage,
      `${piece.file} piece at byte ${piece.offset} is not whole records: ${cut.damage ?? `a record at byte ${piece.offset + cut.end} is cut off`}`,
    );
  const first = cut.records.findIndex((r) => r.start === skip);
  if (first < 0)
    return reply(Code.badMessage, `${piece.file} piece at byte ${piece.offset}: byte ${at.offset} is not the start of a record`);
  const spans = cut.records.slice(first);
  const records = schemaRecordTexts(piece.file, bytes, spans);
  const failed = await runEffect(
    storage.applySchema(senderId, records, { format: piece.file, epoch: at.epoch, offset: at.offset, bytes: bytes.subarray(skip) }).pipe(
      Effect.as(undefined),
      Effect.catch((e) => Effect.succeed(e)),
    ),
  );
  if (failed) return reply(Code.storageFailed, `${piece.file}: ${failed.message}`, at);
  const next = { epoch: at.epoch, offset: piece.offset + bytes.length };
  await writePositions(stateDir, senderId, { ...positions, [piece.file]: next });
  return reply(Code.ok, `applied ${records.length} schema record(s)`, next);
};

/** The session host's entry: the receiver's storage and its state directory beside staging. */
export const receiveSchemaPiece = (core: ReceiverCore, senderId: string, req: SchemaRequest): Promise<Reply> =>
  applySchemaPiece(core.storage, schemaStateDir(dirname(core.staging.root)), senderId, req);
