// An example third-party storage for tsync: every received part is copied into one directory
// (`plugin.directory`) as `<sender>/<storage group>/<vg>/<tp>/<file>`, and `manifest.json` there
// says what is held, from whom, with its digest, devices and time range. Load it with
//
//   storage_plugin=./examples/storage-plugin/index.ts     (or the package name, once installed)
//   plugin.directory=/srv/tsync-files
//   plugin.label=plant-7                                   (optional, written into the manifest)
//
// It depends on `effect` only (a peer dependency: it must be the copy tsync runs with) and takes
// tsync's contract as types, so nothing of tsync is loaded twice.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { appendFile, copyFile, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { Data, Effect } from "effect";
import type { LoadRequest, SchemaBatch, Storage, StorageFactory } from "../../src/plugins/storage.js";

/** tsync matches errors by their tag; this one has the StorageError shape the contract asks for. */
class StorageError extends Data.TaggedError("StorageError")<{ readonly op: string; readonly message: string; readonly cause?: unknown }> {}

export interface ManifestEntry {
  readonly sender: string;
  readonly sg: string;
  readonly vg: string;
  readonly tp: string;
  readonly file: string;
  readonly kind: string;
  readonly size: number;
  readonly sha256: string;
  readonly devices: ReadonlyArray<{ readonly id: string; readonly startTime: string | null; readonly endTime: string | null }>;
  readonly label: string | undefined;
  readonly loadedAt: string;
}

export type Manifest = Record<string, ManifestEntry>;

const partName = (file: string, kind: string) => (kind === "tsfile" ? file : `${file}.${kind}`);
const keyOf = (r: { sg: string; vg: string; tp: string; name: string }, kind: string) =>
  `${r.sg}/${r.vg}/${r.tp}/${partName(r.name, kind)}`;

const sha256Of = async (path: string): Promise<string> => {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest("hex");
};

const writeDurably = async (path: string, text: string) => {
  const tmp = `${path}.tmp`;
  const h = await open(tmp, "w");
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, path);
};

export const createStorage: StorageFactory = (ctx) =>
  Effect.gen(function* () {
    const directory = ctx.options["directory"];
    if (!directory) return yield* Effect.fail(new StorageError({ op: "open", message: "plugin.directory is required" }));
    const root = resolve(directory);
    const label = ctx.options["label"];
    const manifestPath = join(root, "manifest.json");
    const attempt = <A>(op: string, f: () => Promise<A>) =>
      Effect.tryPromise({ try: f, catch: (cause) => new StorageError({ op, message: `example storage ${op}: ${String(cause)}`, cause }) });
    yield* attempt("open", () => mkdir(root, { recursive: true }));
    const manifest: Manifest = yield* attempt("open", () =>
      readFile(manifestPath, "utf8").then(
        (t) => JSON.parse(t) as Manifest,
        () => ({}),
      ),
    );
    const pathOf = (sender: string, key: string) => {
      const p = resolve(root, sender, key);
      if (!p.startsWith(root + sep)) throw new Error(`refusing ${p}: outside ${root}`);
      return p;
    };

    const load = async (req: LoadRequest) => {
      for (const part of req.parts) {
        const key = keyOf(req.ref, part.kind);
        const dest = pathOf(req.senderId, key);
        await mkdir(dirname(dest), { recursive: true });
        // Copy, never move: the staged file is tsync's until the load returns.
        await copyFile(part.path, `${dest}.tmp`);
        const copied = await sha256Of(`${dest}.tmp`);
        if (copied !== part.sha256) {
          await rm(`${dest}.tmp`, { force: true });
          throw new Error(`${key}: copy has SHA-256 ${copied}, expected ${part.sha256}`);
        }
        await rename(`${dest}.tmp`, dest);
        manifest[key] = {
          sender: req.senderId,
          sg: req.ref.sg,
          vg: req.ref.vg,
          tp: req.ref.tp,
          file: req.ref.name,
          kind: part.kind,
          size: part.size,
          sha256: part.sha256,
          devices: part.kind === "tsfile" ? (req.facts?.devices ?? []) : [],
          label,
          loadedAt: new Date().toISOString(),
        };
      }
      await writeDurably(manifestPath, JSON.stringify(manifest, null, 2));
    };

    const remove = async (_sender: string, ref: { sg: string; vg: string; tp: string; name: string }) => {
      let existed = false;
      for (const kind of ["resource", "tsfile", "mods", "mods2"]) {
        const entry = manifest[keyOf(ref, kind)];
        if (!entry) continue;
        existed = true;
        await rm(pathOf(entry.sender, keyOf(ref, kind)), { force: true });
        delete manifest[keyOf(ref, kind)];
      }
      if (existed) await writeDurably(manifestPath, JSON.stringify(manifest, null, 2));
      return existed;
    };

    // Schema records are kept as text, one per line, per sender: enough for an operator to read.
    const applySchema = async (sender: string, records: ReadonlyArray<string>, batch?: SchemaBatch) => {
      const path = pathOf(sender, `schema.${batch?.format ?? "records"}.txt`);
      await mkdir(dirname(path), { recursive: true });
      await appendFile(path, records.map((r) => `${batch ? `${batch.epoch}:${batch.offset} ` : ""}${r}\n`).join(""));
    };

    const storage: Storage = {
      name: "example-directory",
      load: (req) => attempt("load", () => load(req)),
      remove: (sender, ref) => attempt("remove", () => remove(sender, ref)),
      has: (ref, kind, sha256) => Effect.sync(() => manifest[keyOf(ref, kind)]?.sha256 === sha256),
      applySchema: (sender, records, batch) => attempt("applySchema", () => applySchema(sender, records, batch)),
      close: Effect.void,
    };
    ctx.log?.(`example storage: files go to ${root}`);
    return storage;
  });

export default createStorage;
