// Loads the storage plugin `storage_plugin` names (built in, a module path or a package) and guards its failures.
import { Cause, Effect } from "effect";
import { describeFailure as describe, importPluginFactory } from "./loadModule.js";
import { createFsStorage } from "./storageFs.js";
import { StorageError, type BytesLoadRequest, type Storage, type StorageContext, type StorageFactory } from "./storage.js";

const builtIns: Readonly<Record<string, () => Promise<StorageFactory>>> = {
  fs: async () => createFsStorage,
  objectstore: async () => (await import("./storageObjectStore.js")).createObjectStoreStorage,
  exec: async () => (await import("./storageExec.js")).createExecStorage,
};

export const builtInStorages: ReadonlyArray<string> = Object.keys(builtIns);

/**
 * `storage_plugin` is a built-in name, a path to a module, or a package name. A third-party module
 * exports `createStorage` (or a default export) of type `StorageFactory`.
 */
export const resolveStorageFactory = (ref: string, from: string = process.cwd()): Effect.Effect<StorageFactory, StorageError> =>
  Effect.tryPromise({
    try: async () => {
      const builtIn = builtIns[ref];
      if (builtIn) return builtIn();
      return (await importPluginFactory(ref, "createStorage", from)) as StorageFactory;
    },
    catch: (cause) => new StorageError({ op: "plugin", message: `cannot load storage plugin "${ref}": ${describe(cause)}`, cause }),
  });

/**
 * Whatever a plugin fails with (its own error class, a thrown exception, a defect) reaches the
 * receiver as a StorageError that names the plugin and the operation, so a sender's summary can
 * say what went wrong. Interruption passes through untouched.
 */
const guarded = <A>(plugin: string, op: string, run: () => Effect.Effect<A, unknown>): Effect.Effect<A, StorageError> =>
  Effect.suspend(run).pipe(
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>);
      const e = Cause.squash(cause);
      if (e instanceof StorageError) return Effect.fail(e);
      // A plugin's own class with the contract's shape (another copy of tsync, or its own tagged error).
      if (
        typeof e === "object" &&
        e !== null &&
        "_tag" in e &&
        e._tag === "StorageError" &&
        "message" in e &&
        typeof e.message === "string"
      )
        return Effect.fail(new StorageError({ op: "op" in e && typeof e.op === "string" ? e.op : op, message: e.message, cause: e }));
      const tag = typeof e === "object" && e !== null && "_tag" in e ? `${String(e._tag)}: ` : "";
      return Effect.fail(new StorageError({ op, message: `${plugin} ${op} failed: ${tag}${describe(e)}`, cause: e }));
    }),
  );

const loadBytesOf = (s: Storage, req: BytesLoadRequest) =>
  s.loadBytes ? s.loadBytes(req) : Effect.fail(new StorageError({ op: "load", message: `${s.name} cannot load bytes` }));

export const guardStorage = (s: Storage, log?: (line: string) => void): Storage => {
  const name = typeof s.name === "string" ? s.name : "storage";
  return {
    name,
    load: (req) => guarded(name, "load", () => s.load(req)),
    ...(typeof s.loadBytes === "function"
      ? { loadBytes: (req: BytesLoadRequest) => guarded(name, "load", () => loadBytesOf(s, req)) }
      : {}),
    remove: (sender, ref) => guarded(name, "remove", () => s.remove(sender, ref)),
    has: (ref, kind, sha256) => guarded(name, "has", () => s.has(ref, kind, sha256)),
    applySchema: (sender, records, batch) => guarded(name, "applySchema", () => s.applySchema(sender, records, batch)),
    // Closing cannot fail the receiver's stop; what went wrong is logged.
    close: guarded(name, "close", () => s.close).pipe(Effect.catch((e) => Effect.sync(() => log?.(e.message)))),
  };
};

const checkShape = (ref: string, s: unknown): Effect.Effect<Storage, StorageError> => {
  const missing = ["load", "remove", "has", "applySchema"].filter((k) => typeof (s as Record<string, unknown> | null)?.[k] !== "function");
  if (typeof s !== "object" || s === null || missing.length > 0 || !Effect.isEffect((s as Storage).close))
    return Effect.fail(
      new StorageError({
        op: "plugin",
        message: `storage plugin "${ref}" made something that is not a Storage (${missing.length > 0 ? `missing ${missing.join(", ")}` : "close is not an Effect"})`,
      }),
    );
  return Effect.succeed(s as Storage);
};

/** Loads the plugin, builds the storage and wraps it so every failure is a StorageError. */
export const openStorage = (ref: string, ctx: StorageContext, from?: string): Effect.Effect<Storage, StorageError> =>
  resolveStorageFactory(ref, from).pipe(
    Effect.flatMap((factory) => guarded(ref, "open", () => factory(ctx))),
    Effect.flatMap((s) => checkShape(ref, s)),
    Effect.map((s) => guardStorage(s, ctx.log)),
  );
