import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { appendFile, copyFile, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Effect } from "effect";
import type { FileRef, PartKind } from "../protocol/messages.js";
import { partFileName, placeOrder } from "../protocol/parts.js";
import { StorageError, type Storage, type StorageFactory } from "./storage.js";

const fsyncDir = async (dir: string) => {
  const h = await open(dir, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
};

const sha256Of = async (path: string): Promise<string> => {
  const h = createHash("sha256");
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest("hex");
};

/**
 * IoTDB's own layout under the receiver's data directory, `sequence/<sg>/<vg>/<tp>/<file>`, so an
 * IoTDB instance (or its load tool) can take the files from there. Each part arrives by an atomic
 * rename; the .resource comes last because its presence is what says "sealed".
 */
export const fsStorage = (dataDir: string): Storage => {
  const root = resolve(dataDir, "sequence");
  const target = (ref: FileRef, kind: PartKind) => {
    const p = resolve(root, ref.sg, ref.vg, ref.tp, partFileName(ref.name, kind));
    if (!p.startsWith(root + sep)) throw new Error(`refusing a path outside ${root}: ${p}`);
    return p;
  };
  const attempt = <A>(op: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (cause) => new StorageError({ op, message: `${op} failed: ${String(cause)}`, cause }) });
  return {
    name: "fs",
    load: (req) =>
      attempt("load", async () => {
        const dir = dirname(target(req.ref, "tsfile"));
        await mkdir(dir, { recursive: true });
        for (const kind of placeOrder) {
          const part = req.parts.find((p) => p.kind === kind);
          if (!part) continue;
          const dest = target(req.ref, kind);
          const tmp = join(dir, `.${partFileName(req.ref.name, kind)}.tsync-tmp`);
          // The staged file is already fsynced and on the same disk: moving it costs no copy. From
          // another filesystem it is copied and synced again.
          try {
            await rename(part.path, tmp);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
            await copyFile(part.path, tmp);
            const h = await open(tmp, "r+");
            await h.sync();
            await h.close();
          }
          await rename(tmp, dest);
        }
        await fsyncDir(dir);
      }),
    remove: (_sender, ref) =>
      attempt("remove", async () => {
        let existed = false;
        for (const kind of ["resource", "tsfile", "mods", "mods2"] as const) {
          const p = target(ref, kind);
          if (await stat(p).then(() => true, () => false)) {
            existed = true;
            await rm(p, { force: true });
          }
        }
        if (existed) await fsyncDir(dirname(target(ref, "tsfile")));
        return existed;
      }),
    has: (ref, kind, sha256) =>
      attempt("has", async () => {
        const p = target(ref, kind);
        if (!(await stat(p).then(() => true, () => false))) return false;
        return (await sha256Of(p)) === sha256;
      }),
    applySchema: (senderId, records) =>
      attempt("applySchema", async () => {
        const log = resolve(dataDir, "schema", `${senderId}.mlog.txt`);
        await mkdir(dirname(log), { recursive: true });
        await appendFile(log, records.map((r) => r + "\n").join(""));
      }),
    close: Effect.void,
  };
};

export const createFsStorage: StorageFactory = (ctx) => Effect.succeed(fsStorage(ctx.dataDir));
