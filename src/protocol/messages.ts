// Every message on the wire as an Effect Schema: what senders send, what the receiver answers, decoded before use.
import { Result, Schema } from "effect";
import { describeBadName, describeBadTsFileName, isNumericSegment, isSegment, isToken, isTsFileName } from "./names.js";
import { CodeSchema } from "./status.js";

export const protocolVersion = 1;

const Segment = Schema.String.pipe(Schema.check(Schema.makeFilter((s: string) => isSegment(s) || describeBadName("name", s))));
const Numeric = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => isNumericSegment(s) || `${JSON.stringify(s)} is not a partition number`)),
);
const TsFileName = Schema.String.pipe(Schema.check(Schema.makeFilter((s: string) => isTsFileName(s) || describeBadTsFileName(s))));
const Token = Schema.String.pipe(
  Schema.check(Schema.makeFilter((s: string) => isToken(s) || `${JSON.stringify(s)} is not an id of 1-64 letters, digits, '_' or '-'`)),
);
const Sha256 = Schema.String.pipe(Schema.check(Schema.isPattern(/^[0-9a-f]{64}$/)));
const Size = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)));

/** The parts of one sealed TsFile that travel together; the resource goes first, like IoTDB writes it last. */
export const PartKind = Schema.Literals(["resource", "tsfile", "mods", "mods2"]);
export type PartKind = typeof PartKind.Type;

/** Where a TsFile lives: storage group, virtual group (or region), time partition, file name. */
export const FileRef = Schema.Struct({ sg: Segment, vg: Numeric, tp: Numeric, name: TsFileName });
export type FileRef = typeof FileRef.Type;

export const Hello = Schema.Struct({
  protocol: Schema.Int,
  senderId: Token,
  senderName: Schema.optional(Schema.String),
  tsyncVersion: Schema.String,
  partitionInterval: Schema.optional(Schema.Number),
  storageGroups: Schema.Array(Segment),
});
export type Hello = typeof Hello.Type;

/** `sha256` is sent when the sender knows it already, so the receiver can answer "have" on content. */
export const Offer = Schema.Struct({ ...FileRef.fields, kind: PartKind, size: Size, sha256: Schema.optional(Sha256) });
export type Offer = typeof Offer.Type;

export const Commit = Schema.Struct({ fileId: Token, size: Size, sha256: Sha256 });
export type Commit = typeof Commit.Type;

export const PartDigest = Schema.Struct({ kind: PartKind, size: Size, sha256: Sha256 });
export type PartDigest = typeof PartDigest.Type;

export const Load = Schema.Struct({ ...FileRef.fields, parts: Schema.Array(PartDigest) });
export type Load = typeof Load.Type;

/**
 * A whole small file in one request: its parts' digests travel in the `Tsync-Put` header (this
 * schema), their bytes back to back in the body, in the order listed; the receiver stores,
 * verifies and loads it, and answers as it answers a load. `held` names parts the sender knows
 * were loaded before (a TsFile whose .mods changed): listed with their digests, not carried.
 */
export const Put = Schema.Struct({ ...Load.fields, held: Schema.optional(Schema.Array(PartKind)) });
export type Put = typeof Put.Type;

export const Delete = FileRef;
export type Delete = FileRef;

/**
 * A piece of the sender's schema log, as read from the headers of a `schema` message (the
 * payload is the bytes): which log, which generation of it, where the bytes start, their digest.
 */
export const SchemaPiece = Schema.Struct({
  file: Schema.Literals(["mlog.bin", "mlog.txt"]),
  epoch: Size,
  offset: Size,
  sha256: Sha256,
});
export type SchemaPiece = typeof SchemaPiece.Type;

// A code outside `Code` fails to decode: the sender treats such a reply as a bad message.
const Reply = { code: CodeSchema, message: Schema.String };

export const HelloReply = Schema.Struct({
  ...Reply,
  sessionPrefix: Schema.optional(Schema.String),
  sessionId: Schema.optional(Schema.String),
  maxChunkBytes: Schema.optional(Schema.Int),
  idleTimeoutMs: Schema.optional(Schema.Int),
  /** The sender's address as the NATS server saw it, and its enrolled key: told back at admission. */
  address: Schema.optional(Schema.String),
  user: Schema.optional(Schema.String),
  /** What this receiver takes beyond protocol 1's requests (`put`); an older one sends none. */
  features: Schema.optional(Schema.Array(Schema.String)),
  /** With `put`: how many files one session may have in flight at once. */
  maxFilesInFlight: Schema.optional(Schema.Int),
});
export type HelloReply = typeof HelloReply.Type;

export const OfferReply = Schema.Struct({
  ...Reply,
  fileId: Schema.optional(Schema.String),
  offset: Schema.optional(Schema.Int),
  owner: Schema.optional(Schema.String),
  /** With a conflict over one file: the sender that loaded it (the group itself is not refused). */
  loader: Schema.optional(Schema.String),
  /** With a conflict over one file: which file (sg/vg/tp/name). */
  file: Schema.optional(Schema.String),
  sha256: Schema.optional(Schema.String),
});
export type OfferReply = typeof OfferReply.Type;

/** Ack of one chunk: `offset` is the next byte the receiver expects. */
export const ChunkAck = Schema.Struct({ ...Reply, offset: Schema.optional(Schema.Int) });
export type ChunkAck = typeof ChunkAck.Type;

/** Answer to a schema piece: the generation and byte the receiver expects next for that log. */
export const SchemaAck = Schema.Struct({ ...Reply, epoch: Schema.optional(Schema.Int), offset: Schema.optional(Schema.Int) });
export type SchemaAck = typeof SchemaAck.Type;

export const PlainReply = Schema.Struct({
  ...Reply,
  owner: Schema.optional(Schema.String),
  loader: Schema.optional(Schema.String),
  file: Schema.optional(Schema.String),
});
export type PlainReply = typeof PlainReply.Type;

/** Decodes JSON from the wire; the error is a sentence fit for a badMessage status. */
export const decodeJson =
  <S extends Schema.Codec<unknown, unknown>>(schema: S) =>
  (bytes: Uint8Array): Result.Result<S["Type"], string> => {
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch {
      return Result.fail("message is not valid UTF-8 JSON");
    }
    const decoded = Schema.decodeUnknownResult(schema as unknown as Schema.Codec<S["Type"], unknown>)(value);
    return Result.isSuccess(decoded) ? Result.succeed(decoded.success) : Result.fail(decoded.failure.message);
  };

const encoder = new TextEncoder();
export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

/** The schemas a receiver's reply is encoded with. */
export type ReplySchema = typeof HelloReply | typeof OfferReply | typeof ChunkAck | typeof SchemaAck | typeof PlainReply;

/**
 * Encodes a reply through its schema: a code outside `Code`, a field of the wrong type or a field
 * the schema does not have throws (a `SchemaError`), so a reply of the wrong shape is never sent.
 */
export const encodeReply = (schema: ReplySchema) => {
  const encode = Schema.encodeUnknownSync(schema, { onExcessProperty: "error" });
  return (reply: { readonly code: number; readonly message: string }): Uint8Array => encodeJson(encode(reply));
};
