import { appendFile } from "node:fs/promises";
import { Effect } from "effect";
import type { FileRef } from "../../src/protocol/messages.js";
import type { StorageFactory } from "../../src/plugins/storage.js";
import { createFsStorage } from "../../src/plugins/storageFs.js";

/** One line of the count file: a part the storage placed. */
export interface CountedLoad {
  readonly sender: string;
  readonly key: string;
  readonly kind: string;
  readonly sha256: string;
}

/** Env var for the receiver child: stop (SIGSTOP) after the n-th load is placed and counted, before the receiver journals it. */
export const freezeAfterLoadVariable = "COUNTING_STORAGE_FREEZE_AFTER";

/**
 * The fs storage, loaded through `storage_plugin=<this file>`, that appends one line per placed
 * part to `plugin.count_file` once the load has completed: the fault tests' witness of "loaded
 * exactly once", which survives the receiver's kill -9 (the journal compacts itself on open).
 */
export const createStorage: StorageFactory = (ctx) =>
  Effect.map(createFsStorage(ctx), (inner) => {
    const countFile = ctx.options["count_file"];
    if (!countFile) throw new Error("counting storage needs plugin.count_file");
    const freezeAfter = Number(process.env[freezeAfterLoadVariable] ?? "0");
    let loads = 0;
    const count = (req: { senderId: string; ref: FileRef; parts: ReadonlyArray<{ kind: string; sha256: string }> }) =>
      Effect.promise(async () => {
        const key = `${req.ref.sg}/${req.ref.vg}/${req.ref.tp}/${req.ref.name}`;
        const lines = req.parts.map(
          (p) => JSON.stringify({ sender: req.senderId, key, kind: p.kind, sha256: p.sha256 } satisfies CountedLoad) + "\n",
        );
        await appendFile(countFile, lines.join(""));
        if (++loads === freezeAfter) process.kill(process.pid, "SIGSTOP");
      });
    const { loadBytes } = inner;
    // Small files arrive whole and are placed from memory: they count the same as staged ones.
    return {
      ...inner,
      name: "counting-fs",
      load: (req) => inner.load(req).pipe(Effect.flatMap(() => count(req))),
      ...(loadBytes ? { loadBytes: (req) => loadBytes(req).pipe(Effect.flatMap(() => count(req))) } : {}),
    };
  });
