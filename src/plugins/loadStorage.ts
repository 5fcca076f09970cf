import { isAbsolute } from "node:path";
import { pathToFileURL } from "node:url";
import { Effect } from "effect";
import { createFsStorage } from "./storageFs.js";
import { StorageError, type StorageContext, type StorageFactory } from "./storage.js";

const builtIns: Readonly<Record<string, () => Promise<StorageFactory>>> = {
  fs: async () => createFsStorage,
  objectstore: async () => (await import("./storageObjectStore.js")).createObjectStoreStorage,
  exec: async () => (await import("./storageExec.js")).createExecStorage,
};

/**
 * `storage_plugin` is a built-in name, a path to a module, or a package name. A third-party module
 * exports `createStorage` (or a default export) of type `StorageFactory`.
 */
export const resolveStorageFactory = (ref: string): Effect.Effect<StorageFactory, StorageError> =>
  Effect.tryPromise({
    try: async () => {
      const builtIn = builtIns[ref];
      if (builtIn) return builtIn();
      const mod = (await import(isAbsolute(ref) ? pathToFileURL(ref).href : ref)) as { createStorage?: unknown; default?: unknown };
      const factory = mod.createStorage ?? mod.default;
      if (typeof factory !== "function") throw new Error(`module exports neither createStorage nor a default function`);
      return factory as StorageFactory;
    },
    catch: (cause) => new StorageError({ op: "plugin", message: `cannot load storage plugin "${ref}": ${cause instanceof Error ? cause.message : String(cause)}`, cause }),
  });

export const openStorage = (ref: string, ctx: StorageContext) =>
  resolveStorageFactory(ref).pipe(Effect.flatMap((factory) => factory(ctx)));
