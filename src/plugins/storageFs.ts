// The built-in `fs` storage: an IoTDB-style sequence folder on the receiver's disk.
import { renameSync } from "node:fs";
import { copyFile, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Effect } from "effect";
import type { FileRef, PartKind } from "../protocol/messages.js";
import { partFileName, partOrder, placeOrder } from "../protocol/parts.js";
import { isToken } from "../protocol/names.js";
import { fsyncDir, fsyncDirShared } from "../files/durableFile.js";
import { fsFailure } from "../files/fsFailure.js";
import { creatingParent, writeSynced } from "../files/optimistic.js";
import { sha256OfFile } from "../files/fileDigest.js";
import { StorageError, type SchemaBatch, type Storage, type StorageFactory } from "./storage.js";

interface SchemaLogState {
  readonly epoch: number;
  /** Where the sender's log is, in that epoch, after the last batch kept. */
  readonly offset: number;
  /** Bytes of our copy that the state vouches for; anything after them is a torn append. */
  readonly size: number;
}

/**
 * `schema/<sender>/mlog.bin` (or `mlog.txt`): the sender's schema records appended in order, byte
 * for byte, so IoTDB's own log reader can replay the copy. A batch seen before is not appended
 * twice: the log is cut back to what `.state` vouches for, then the new part is appended.
 */
export const appendSchemaLog = async (root: string, senderId: string, records: ReadonlyArray<string>, batch: SchemaBatch | undefined) => {
  if (!isToken(senderId)) throw new Error(`refusing sender id ${JSON.stringify(senderId)} as a folder name`);
  const dir = join(root, senderId);
  await mkdir(dir, { recursive: true });
  const b: SchemaBatch = batch ?? { format: "mlog.txt", epoch: 0, offset: -1, bytes: Buffer.from(records.map((r) => r + "\n").join("")) };
  const log = join(dir, b.format);
  const statePath = `${log}.state`;
  const state = await readFile(statePath, "utf8").then(
    (t) => JSON.parse(t) as SchemaLogState,
    () => undefined,
  );
  let bytes = b.bytes;
  if (state && b.offset >= 0 && b.epoch === state.epoch) {
    if (b.offset + bytes.length <= state.offset) return;
    if (b.offset < state.offset) bytes = bytes.subarray(state.offset - b.offset);
  }
  const size = state?.size ?? 0;
  const h = await open(log, "a+");
  try {
    if ((await h.stat()).size !== size) await h.truncate(size);
    await h.write(bytes, 0, bytes.length, size);
    await h.sync();
  } finally {
    await h.close();
  }
  const next: SchemaLogState = { epoch: b.epoch, offset: b.offset < 0 ? 0 : b.offset + b.bytes.length, size: size + bytes.length };
  const tmp = `${statePath}.tmp`;
  const t = await open(tmp, "w");
  try {
    await t.writeFile(JSON.stringify(next));
    await t.sync();
  } finally {
    await t.close();
  }
  await rename(tmp, statePath);
  await fsyncDir(dir);
};

/**
 * IoTDB's own layout under the receiver's data directory, `sequence/<sg>/<vg>/<tp>/<file>`, so an
 * IoTDB instance (or its load tool) can take the files from there. Each part arrives by an atomic
 * rename; the .resource comes last because its presence is what says "sealed".
 */
export const fsStorage = (dataDir: string, log?: (line: string) => void): Storage => {
  const root = resolve(dataDir, "sequence");
  const target = (ref: FileRef, kind: PartKind) => {
    const p = resolve(root, ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind));
    if (!p.startsWith(root + sep)) throw new Error(`refusing a path outside ${root}: ${p}`);
    return p;
  };
  // The message is the sender's reply: it names the file as the protocol does; the path goes to the log.
  const attempt = <A>(op: string, what: string, f: () => Promise<A>) =>
    Effect.tryPromise({
      try: f,
      catch: (cause) => {
        log?.(`fs storage: ${op} of ${what} failed: ${cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)}`);
        return new StorageError({ op, message: `${op} of ${what} failed: ${fsFailure(cause)}`, cause });
      },
    });
  const named = (ref: FileRef, kind?: PartKind) => `${ref.sg}/${ref.vg}/${ref.tp}/${ref.name}${kind ? ` (${kind})` : ""}`;
  return {
    name: "fs",
    load: (req) =>
      attempt("load", named(req.ref), async () => {
        const dir = dirname(target(req.ref, "tsfile"));
        for (const kind of placeOrder) {
          const part = req.parts.find((p) => p.kind === kind);
          if (!part) continue;
          const dest = target(req.ref, kind);
          // The staged file is already fsynced and on the same disk: one rename puts it in place
          // atomically, with no copy. From another filesystem it is copied, synced and renamed.
          try {
            creatingParent(dest, () => renameSync(part.path, dest));
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
            await mkdir(dir, { recursive: true });
            const tmp = join(dir, `.${partFileName(req.ref.name, kind)}.tsync-tmp`);
            await copyFile(part.path, tmp);
            const h = await open(tmp, "r+");
            await h.sync();
            await h.close();
            await rename(tmp, dest);
          }
        }
        // Files loaded at once into one directory share its fsync.
        await fsyncDirShared(dir);
      }),
    loadBytes: (req) =>
      attempt("load", named(req.ref), async () => {
        const dir = dirname(target(req.ref, "tsfile"));
        const temp = (kind: PartKind) => join(dir, `.${partFileName(req.ref.name, kind)}.tsync-tmp`);
        // Every part durable under a temporary name first (their syncs overlap), then each renamed
        // into place, the .resource last.
        await Promise.all(req.parts.map((p) => writeSynced(temp(p.kind), p.bytes)));
        for (const kind of placeOrder) if (req.parts.some((p) => p.kind === kind)) renameSync(temp(kind), target(req.ref, kind));
        await fsyncDirShared(dir);
      }),
    remove: (_sender, ref) =>
      attempt("remove", named(ref), async () => {
        let existed = false;
        for (const kind of partOrder) {
          const p = target(ref, kind);
          if (
            await stat(p).then(
              () => true,
              () => false,
            )
          ) {
            existed = true;
            await rm(p, { force: true });
          }
        }
        if (existed) await fsyncDir(dirname(target(ref, "tsfile")));
        return existed;
      }),
    has: (ref, kind, sha256) =>
      attempt("has", named(ref, kind), async () => {
        const p = target(ref, kind);
        if (
          !(await stat(p).then(
            () => true,
            () => false,
          ))
        )
          return false;
        return (await sha256OfFile(p)) === sha256;
      }),
    applySchema: (senderId, records, batch) =>
      attempt("applySchema", `the schema log of sender ${senderId}`, () =>
        appendSchemaLog(resolve(dataDir, "schema"), senderId, records, batch),
      ),
    close: Effect.void,
  };
};

export const createFsStorage: StorageFactory = (ctx) => Effect.succeed(fsStorage(ctx.dataDir, ctx.log));
