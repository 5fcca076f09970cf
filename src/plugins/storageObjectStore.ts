import { Effect } from "effect";
import { StorageError, type StorageFactory } from "./storage.js";

/** JetStream object store storage: see docs/plugins.md. */
export const createObjectStoreStorage: StorageFactory = () =>
  Effect.fail(new StorageError({ op: "plugin", message: "the objectstore storage is not available in this build" }));
