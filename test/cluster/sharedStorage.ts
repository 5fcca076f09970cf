// The fault tests' counting fs storage rooted at `plugin.shared_root` instead of the receiver's own
// data directory: every receiver instance of the cluster tests places files in one tree, as
// instances sharing a volume (or an objectstore bucket) do, and each placement is witnessed once.
import type { StorageFactory } from "../../src/plugins/storage.js";
import { createStorage as countingStorage } from "../faults/countingStorage.js";

export const createStorage: StorageFactory = (ctx) => {
  const root = ctx.options["shared_root"];
  if (!root) throw new Error("the shared storage needs plugin.shared_root");
  return countingStorage({ ...ctx, dataDir: root });
};
