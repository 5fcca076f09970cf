import { watch, type FSWatcher } from "node:fs";

/**
 * Watches the data directory for new `.resource` files (IoTDB's "sealed" signal) and calls
 * `onSealed`, debounced so a burst of flushes makes one round. The period stays the safety net
 * for anything a watch misses.
 */
export const watchSealed = (dataDir: string, onSealed: () => void, warn: (l: string) => void, debounceMs = 200): { close: () => void } => {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dataDir, { recursive: true }, (_event, name) => {
      if (typeof name !== "string" || !name.endsWith(".tsfile.resource")) return;
      clearTimeout(timer);
      timer = setTimeout(onSealed, debounceMs);
    });
    watcher.on("error", (e) => warn(`watch of ${dataDir} failed: ${e.message}; relying on the period`));
  } catch (e) {
    warn(`cannot watch ${dataDir}: ${e instanceof Error ? e.message : String(e)}; relying on the period`);
  }
  return {
    close: () => {
      clearTimeout(timer);
      watcher?.close();
    },
  };
};
