// The built-in `objectstore` storage: files as objects in a NATS JetStream object store.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { Effect } from "effect";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Objm, setSha256Backend, StorageType, type ObjectInfo, type ObjectStore } from "@nats-io/obj";
import { fsFailure } from "../files/fsFailure.js";
import type { FileRef, PartKind } from "../protocol/messages.js";
import { isToken } from "../protocol/names.js";
import { partFileName, partOrder, placeOrder } from "../protocol/parts.js";
import { summarizeFacts } from "./tsfileFacts.js";
import { StorageError, type SchemaBatch, type Storage, type StorageFactory, type TsFileFacts } from "./storage.js";

/** Metadata keys on every object this storage writes; readers of the bucket can rely on them. */
export const ObjectMeta = {
  sender: "tsync-sender",
  sg: "tsync-storage-group",
  vg: "tsync-virtual-group",
  tp: "tsync-time-partition",
  file: "tsync-file",
  kind: "tsync-kind",
  sha256: "tsync-sha256",
  devices: "tsync-devices",
  deviceCount: "tsync-device-count",
  startTime: "tsync-start-time",
  endTime: "tsync-end-time",
  tsfileVersion: "tsync-tsfile-version",
  schemaFormat: "tsync-schema-format",
  schemaEpoch: "tsync-schema-epoch",
  schemaOffset: "tsync-schema-offset",
  schemaRecords: "tsync-schema-records",
} as const;

/** `<sg>/<vg>/<tp>/<file>[.resource|.mods|.mods2]`: the receiver's fs layout, as object names. */
export const objectName = (ref: FileRef, kind: PartKind): string => `${ref.sg}/${ref.vg}/${ref.tp}/${partFileName(ref.name, kind)}`;

/**
 * Schema pieces get names no TsFile part can have (four levels, the last never ending in
 * `.tsfile…`), in log order when listed: `_schema/<sender>/<format>/<epoch>-<offset>`.
 */
export const schemaObjectName = (senderId: string, batch: SchemaBatch): string =>
  `_schema/${senderId}/${batch.format}/${String(batch.epoch).padStart(8, "0")}-${String(batch.offset).padStart(16, "0")}`;

/** Devices and the overall time range, as object metadata (strings only). */
export const factsMetadata = (facts: TsFileFacts | undefined): Record<string, string> => {
  if (!facts) return {};
  const f = summarizeFacts(facts);
  return {
    [ObjectMeta.deviceCount]: String(f.deviceCount),
    ...(f.devices === undefined ? {} : { [ObjectMeta.devices]: f.devices }),
    ...(f.startTime === undefined ? {} : { [ObjectMeta.startTime]: f.startTime }),
    ...(f.endTime === undefined ? {} : { [ObjectMeta.endTime]: f.endTime }),
    [ObjectMeta.tsfileVersion]: String(f.version),
  };
};

/** The object store's `SHA-256=<base64url>` digest as hex, to compare with ours. */
export const digestHex = (digest: string): string | undefined =>
  digest.startsWith("SHA-256=") ? Buffer.from(digest.slice("SHA-256=".length), "base64url").toString("hex") : undefined;

const live = (info: ObjectInfo | null): info is ObjectInfo => info !== null && !info.deleted;

/**
 * A JetStream object store bucket (`plugin.bucket`, default `tsync`). Each part of a TsFile is
 * one object; its metadata says who sent it, where it belongs, its devices and time range and our
 * SHA-256, which is compared with the digest the object store computed before the load counts.
 * The .resource is put last, as on disk, so a reader that sees it finds the TsFile complete.
 */
export const objectStoreStorage = (os: ObjectStore, maxChunkBytes: number, onClose: () => Promise<void>): Storage => {
  // A local file that fails (the staged part) is told by its errno code only: Node's message has
  // its path. The error itself stays the cause, for the receiver's log.
  const attempt = <A>(op: string, f: () => Promise<A>) =>
    Effect.tryPromise({
      try: f,
      catch: (cause) =>
        new StorageError({
          op,
          message: `objectstore ${op} failed: ${typeof (cause as NodeJS.ErrnoException | undefined)?.syscall === "string" ? fsFailure(cause) : cause instanceof Error ? cause.message : String(cause)}`,
          cause,
        }),
    });
  const putPart = async (senderId: string, ref: FileRef, kind: PartKind, path: string, sha256: string, facts: Record<string, string>) => {
    const name = objectName(ref, kind);
    const info = await os.put(
      {
        name,
        metadata: {
          [ObjectMeta.sender]: senderId,
          [ObjectMeta.sg]: ref.sg,
          [ObjectMeta.vg]: ref.vg,
          [ObjectMeta.tp]: ref.tp,
          [ObjectMeta.file]: ref.name,
          [ObjectMeta.kind]: kind,
          [ObjectMeta.sha256]: sha256,
          ...(kind === "tsfile" ? facts : {}),
        },
        options: { max_chunk_size: maxChunkBytes },
      },
      Readable.toWeb(createReadStream(path, { highWaterMark: maxChunkBytes })) as ReadableStream<Uint8Array>,
    );
    const stored = digestHex(info.digest);
    if (stored !== sha256) {
      // The bytes put are not the bytes verified: never leave them looking loaded.
      await os.delete(name);
      throw new Error(`${name}: the object store's SHA-256 is ${stored ?? info.digest}, the verified file's is ${sha256}`);
    }
  };
  return {
    name: "objectstore",
    load: (req) =>
      attempt("load", async () => {
        const facts = factsMetadata(req.facts);
        for (const kind of placeOrder) {
          const part = req.parts.find((p) => p.kind === kind);
          if (part) await putPart(req.senderId, req.ref, kind, part.path, part.sha256, facts);
        }
      }),
    remove: (_sender, ref) =>
      attempt("remove", async () => {
        let existed = false;
        for (const kind of partOrder) {
          const name = objectName(ref, kind);
          if (!live(await os.info(name))) continue;
          existed = true;
          await os.delete(name);
        }
        return existed;
      }),
    has: (ref, kind, sha256) =>
      attempt("has", async () => {
        const info = await os.info(objectName(ref, kind));
        return live(info) && info.metadata?.[ObjectMeta.sha256] === sha256 && digestHex(info.digest) === sha256;
      }),
    applySchema: (senderId, records, batch) =>
      attempt("applySchema", async () => {
        if (!isToken(senderId)) throw new Error(`refusing sender id ${JSON.stringify(senderId)} in an object name`);
        const bytes = batch?.bytes ?? Buffer.from(records.map((r) => r + "\n").join(""));
        const name = batch
          ? schemaObjectName(senderId, batch)
          : `_schema/${senderId}/records/${createHash("sha256").update(bytes).digest("hex")}`;
        // The same piece again (after a receiver crash) lands on the same name: applied once.
        await os.putBlob(
          {
            name,
            metadata: {
              [ObjectMeta.sender]: senderId,
              [ObjectMeta.schemaFormat]: batch?.format ?? "records",
              [ObjectMeta.schemaEpoch]: String(batch?.epoch ?? 0),
              [ObjectMeta.schemaOffset]: String(batch?.offset ?? 0),
              [ObjectMeta.schemaRecords]: String(records.length),
            },
            options: { max_chunk_size: maxChunkBytes },
          },
          bytes,
        );
      }),
    close: Effect.promise(onClose),
  };
};

export const createObjectStoreStorage: StorageFactory = (ctx) =>
  Effect.tryPromise({
    try: async () => {
      // node:crypto's SHA-256 instead of the library's JavaScript one: about four times faster puts.
      setSha256Backend("native");
      const bucket = ctx.options["bucket"] ?? "tsync";
      const replicas = Number(ctx.options["replicas"] ?? "1");
      if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
        throw new Error(`plugin.replicas must be 1..5, not ${ctx.options["replicas"]}`);
      let own: NatsConnection | undefined;
      const nc = ctx.nc ?? (own = await connect({ servers: ctx.natsServers.split(","), name: "tsync-objectstore", ...ctx.natsOptions }));
      try {
        const os = await new Objm(nc).create(bucket, { storage: StorageType.File, replicas });
        const maxChunkBytes = Math.min(1024 * 1024, nc.info?.max_payload ?? 1024 * 1024);
        ctx.log?.(`objectstore storage: bucket ${bucket}`);
        return objectStoreStorage(os, maxChunkBytes, async () => {
          await own
            ?.drain()
            .catch((e: unknown) => ctx.log?.(`objectstore: closing its own connection: ${e instanceof Error ? e.message : String(e)}`));
        });
      } catch (e) {
        await own?.close();
        throw e;
      }
    },
    catch: (cause) =>
      new StorageError({
        op: "open",
        message: `objectstore: cannot open bucket ${ctx.options["bucket"] ?? "tsync"}: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause,
      }),
  });
