// Schema sync, sender side: ships IoTDB's schema log from the offset the receiver acknowledged.
import { createHash } from "node:crypto";
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { Result } from "effect";
import { decodeJson, SchemaAck } from "../../protocol/messages.js";
import { failureFor, Retryable, Unsendable } from "../../protocol/failures.js";
import { Code } from "../../protocol/status.js";
import { SchemaHeader, sessionSubject } from "../../protocol/subjects.js";
import type { SchemaSyncOutput } from "../../machines/senderRound.js";
import type { SessionInfo } from "../../machines/senderTypes.js";
import { cutSchemaRecords, type SchemaLogFormat } from "../../iotdb/schemaRecords.js";
import { writeFileAtomic } from "../../files/durableFile.js";
import { natsFailure } from "../natsFailures.js";

/**
 * Schema sync, sender side: ships IoTDB's schema log (`mlog.bin`, or `mlog.txt` before 0.12)
 * from the offset the receiver acknowledged, before the data files of the round.
 *
 * Pieces travel like data chunks: raw bytes with (log, generation, offset, SHA-256) in headers,
 * no JSON and no base64, so the receiver's copy is byte for byte the sender's log. Each piece
 * ends on a record boundary (a whole mlog.bin record by its length and CRC32, a whole line of
 * mlog.txt), so a record IoTDB is still appending is never sent half and the offset never
 * moves past it. The receiver holds the authoritative position; ours
 * (`schema-position.json` in the work dir) saves a question per round and detects a rewritten
 * log: IoTDB's schema snapshot deletes mlog.bin and starts a new one, so a different inode, a
 * shorter file or a different first 4 KiB starts a new generation from byte 0.
 */

export interface SchemaLogOptions {
  readonly nc: NatsConnection;
  /** The sender's work directory, where the position is kept. */
  readonly workDir: string;
  /** `iotdb_schema_directory`: the log itself, or the directory that holds mlog.bin or mlog.txt. */
  readonly path: string;
  readonly requestTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

interface SavedPosition {
  readonly format: SchemaLogFormat;
  readonly epoch: number;
  readonly offset: number;
  readonly ino: number;
  readonly headLength: number;
  readonly headSha256: string;
}

const headBytes = 4096;
/** Times the receiver may move us to another offset in one round before we call it a failure. */
const maxRepositions = 4;

export const positionFile = (workDir: string): string => join(workDir, "schema-position.json");

/** The log named by `iotdb_schema_directory`, if it exists: a file, or mlog.bin / mlog.txt in a directory. */
export const locateSchemaLog = async (path: string): Promise<{ path: string; format: SchemaLogFormat } | undefined> => {
  const s = await stat(path).catch(() => undefined);
  if (!s) return undefined;
  if (s.isFile()) return { path, format: path.endsWith(".txt") ? "mlog.txt" : "mlog.bin" };
  for (const format of ["mlog.bin", "mlog.txt"] as const) {
    const inside = join(path, format);
    if ((await stat(inside).catch(() => undefined))?.isFile()) return { path: inside, format };
  }
  return undefined;
};

const readAt = async (fh: FileHandle, offset: number, length: number): Promise<Uint8Array> => {
  const buf = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await fh.read(buf, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
};

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

const loadPosition = async (workDir: string): Promise<SavedPosition | undefined> => {
  try {
    return JSON.parse(await readFile(positionFile(workDir), "utf8")) as SavedPosition;
  } catch {
    return undefined; // none yet, or unreadable: the receiver's answer tells where to go on
  }
};

/** Ships what is new in the schema log; resolves with what it did or rejects with a StepFailure. */
export const syncSchemaLog = async (o: SchemaLogOptions, session: SessionInfo): Promise<SchemaSyncOutput> => {
  const found = await locateSchemaLog(o.path);
  if (!found) return { file: "log", bytesSent: 0, fromOffset: 0, note: `no mlog.bin or mlog.txt at ${o.path} yet` };
  const { format } = found;
  const fh = await open(found.path, "r");
  try {
    const st = await fh.stat();
    const saved = await loadPosition(o.workDir);
    let epoch = 0;
    let offset = 0;
    let note: string | undefined;
    if (saved && saved.format === format) {
      const head = saved.headLength > 0 ? sha256(await readAt(fh, 0, saved.headLength)) : saved.headSha256;
      const rewritten = st.ino !== saved.ino || st.size < saved.offset || head !== saved.headSha256;
      epoch = saved.epoch + (rewritten ? 1 : 0);
      offset = rewritten ? 0 : saved.offset;
      if (rewritten) note = `${format} was rewritten by IoTDB: generation ${epoch} sent from its start`;
    }

    const subject = sessionSubject(session.prefix, "schema");
    const send = async (bytes: Uint8Array) => {
      const h = headers();
      h.set(SchemaHeader.file, format);
      h.set(SchemaHeader.epoch, String(epoch));
      h.set(SchemaHeader.offset, String(offset));
      h.set(SchemaHeader.sha256, sha256(bytes));
      let data: Uint8Array;
      try {
        data = (await o.nc.request(subject, bytes, { headers: h, timeout: o.requestTimeoutMs ?? 30_000 })).data;
      } catch (e) {
        throw natsFailure("schema", e);
      }
      const ack = decodeJson(SchemaAck)(data);
      if (Result.isFailure(ack))
        throw new Retryable({ code: Code.badMessage, message: `receiver sent a bad schema reply: ${ack.failure}` });
      return ack.success;
    };

    /** The receiver's position wins; one we cannot continue from means the log is not the one it saw. */
    const adopt = async (at: { epoch?: number | undefined; offset?: number | undefined }, size: number) => {
      const e = at.epoch ?? epoch;
      const off = at.offset ?? 0;
      if (e === epoch && off === offset) return;
      let continuable = off <= size;
      if (continuable && off > 0 && off < size) {
        const probe = await readAt(fh, off - (format === "mlog.txt" ? 1 : 0), Math.min(64 * 1024, size - off + 1));
        continuable = format === "mlog.txt" ? probe[0] === 0x0a : cutSchemaRecords(format, probe).stop !== "damaged";
      }
      if (continuable) {
        epoch = e;
        offset = off;
      } else {
        epoch = e + 1;
        offset = 0;
        note = `${format} is not the log the receiver saw (its position ${off} of generation ${e} does not fit): generation ${epoch} sent from its start`;
      }
    };

    const save = async () => {
      const headLength = Math.min(headBytes, offset);
      const position: SavedPosition = {
        format,
        epoch,
        offset,
        ino: st.ino,
        headLength,
        headSha256: sha256(await readAt(fh, 0, headLength)),
      };
      await writeFileAtomic(positionFile(o.workDir), JSON.stringify(position));
    };

    // Where is the receiver? (An empty piece applies nothing.)
    const first = await send(new Uint8Array(0));
    if (first.code !== Code.ok && first.code !== Code.outOfOrder) throw failureFor(first);
    await adopt(first, st.size);
    const fromOffset = offset;
    let bytesSent = 0;
    let repositions = 0;
    const ship = async () => {
      for (;;) {
        const size = (await fh.stat()).size;
        if (offset >= size) return;
        const want = Math.min(session.chunkBytes, size - offset);
        const buf = await readAt(fh, offset, want);
        const cut = cutSchemaRecords(format, buf);
        if (cut.end === 0) {
          if (cut.stop === "damaged")
            throw new Unsendable({
              message: `${found.path} is damaged at byte ${offset}: ${cut.damage}; IoTDB's own reader stops there too`,
            });
          if ((cut.nextRecordBytes ?? 0) > session.chunkBytes || (format === "mlog.txt" && want === session.chunkBytes))
            throw new Unsendable({
              message: `${found.path} has a record at byte ${offset} larger than a schema piece (${session.chunkBytes} bytes); raise the server's max_payload`,
            });
          return; // the rest is a record IoTDB is still writing: next round
        }
        const piece = buf.subarray(0, cut.end);
        const ack = await send(piece);
        if (ack.code === Code.ok && ack.offset === offset + piece.length && (ack.epoch ?? epoch) === epoch) {
          offset += piece.length;
          bytesSent += piece.length;
          continue;
        }
        if (ack.code !== Code.ok && ack.code !== Code.outOfOrder) throw failureFor(ack);
        if (++repositions > maxRepositions)
          throw new Retryable({ code: ack.code, message: `the receiver keeps moving the ${format} position (last: ${ack.message})` });
        await adopt(ack, size);
      }
    };
    try {
      await ship();
    } finally {
      // Saved once, also after a failed piece. The receiver's answer is what counts: a position
      // lost in a crash costs one question next round, not a resend.
      if (bytesSent > 0 || saved?.offset !== offset || saved.epoch !== epoch || saved.format !== format) await save();
    }
    if (note) o.log?.(`schema: ${note}`);
    if (bytesSent > 0) o.log?.(`schema: sent ${bytesSent} bytes of ${format} from byte ${fromOffset} (generation ${epoch})`);
    return { file: format, bytesSent, fromOffset, ...(note ? { note } : {}) };
  } finally {
    await fh.close();
  }
};
