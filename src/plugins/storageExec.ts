import { Effect } from "effect";
import { StorageError, type StorageFactory } from "./storage.js";

/** Runs a command per loaded or deleted file: see docs/plugins.md. */
export const createExecStorage: StorageFactory = () =>
  Effect.fail(new StorageError({ op: "plugin", message: "the exec storage is not available in this build" }));
