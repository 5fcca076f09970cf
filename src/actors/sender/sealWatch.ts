// Watches the data directory's sequence folders for newly sealed TsFiles (sync_on_seal).
import { watch, type FSWatcher } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** Directories of the sequence layouts (0.10-0.13, and 1.x/2.x), relative to the data directory. */
const sequenceRoots: ReadonlyArray<ReadonlyArray<string>> = [["sequence"], ["data", "sequence"], ["datanode", "data", "sequence"]];

/** Below a sequence root: storage group, then virtual group and time partition (or only the partition). */
const partitionDepth = 3;

const isUnder = (segments: ReadonlyArray<string>, root: ReadonlyArray<string>): boolean => root.every((s, i) => s === segments[i]);

/** Whether a directory (as path segments under the data directory) is inside a sequence root. */
const inSequence = (segments: ReadonlyArray<string>): boolean =>
  sequenceRoots.some((root) => segments.length > root.length && isUnder(segments, root));

/**
 * Whether a directory (as path segments under the data directory) can hold, or lead to, sealed
 * TsFiles. Everything else is left alone: unsequence data, the WAL, and the sender's own work
 * directory, whose snapshot links would otherwise make every round trigger the next.
 */
export const worthWatching = (segments: ReadonlyArray<string>): boolean =>
  sequenceRoots.some(
    (root) =>
      (segments.length < root.length && isUnder(root, segments)) ||
      (segments.length >= root.length && segments.length <= root.length + partitionDepth && isUnder(segments, root)),
  );

export interface SealWatch {
  /** Resolves once every directory that exists at start is watched. */
  readonly ready: Promise<void>;
  close(): void;
}

/**
 * Watches the data directory for new `.tsfile.resource` files (IoTDB's "sealed" signal) and calls
 * `onSealed` with the paths seen (relative to the data directory), debounced so a burst of flushes
 * makes one round. One watch per directory of the sequence layouts, not per file: a data directory
 * of 100,000 files costs a few hundred watches. The period stays the safety net for anything a
 * watch misses (a full inotify table, a network filesystem).
 */
export const watchSealed = (
  dataDir: string,
  onSealed: (paths: ReadonlyArray<string>) => void,
  warn: (line: string) => void,
  debounceMs = 200,
): SealWatch => {
  const watchers = new Map<string, FSWatcher>();
  let pending: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let warned = false;

  const fire = () => {
    timer = undefined;
    const paths = pending;
    pending = [];
    if (!closed && paths.length > 0) onSealed(paths);
  };
  const sealed = (rel: string) => {
    pending.push(rel);
    clearTimeout(timer);
    timer = setTimeout(fire, debounceMs);
  };

  const onEntry = async (segments: ReadonlyArray<string>, name: string, announce: boolean): Promise<void> => {
    const rel = [...segments, name];
    const path = join(dataDir, ...rel);
    if (name.endsWith(".tsfile.resource")) {
      // A rename or create event also comes when the file goes away: only a present one counts.
      if (
        announce &&
        inSequence(segments) &&
        (await stat(path).then(
          (s) => s.isFile(),
          () => false,
        ))
      )
        sealed(rel.join("/"));
      return;
    }
    if (
      worthWatching(rel) &&
      (await stat(path).then(
        (s) => s.isDirectory(),
        () => false,
      ))
    )
      await add(rel, announce);
  };

  /** Watches a directory, then what is in it; `announce`: resources already inside are new. */
  const add = async (segments: ReadonlyArray<string>, announce: boolean): Promise<void> => {
    const dir = join(dataDir, ...segments);
    if (closed || watchers.has(dir) || !worthWatching(segments)) return;
    let w: FSWatcher;
    try {
      w = watch(dir, (_event, name) => {
        if (closed) return;
        if (typeof name === "string") void onEntry(segments, name, true).catch(() => undefined);
        else void rescan(segments);
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR" && !warned) {
        warned = true;
        warn(`cannot watch ${dir}: ${e instanceof Error ? e.message : String(e)}; new sealed files there wait for the period`);
      }
      return;
    }
    watchers.set(dir, w);
    // The directory went away (compaction, TTL): drop its watch; a new one is found from its parent.
    w.on("error", () => {
      w.close();
      watchers.delete(dir);
    });
    await rescan(segments, announce);
  };

  const rescan = async (segments: ReadonlyArray<string>, announce = true): Promise<void> => {
    const entries = await readdir(join(dataDir, ...segments)).catch(() => [] as string[]);
    for (const name of entries) await onEntry(segments, name, announce).catch(() => undefined);
  };

  const ready = add([], false).catch((e: unknown) =>
    warn(`cannot watch ${dataDir}: ${e instanceof Error ? e.message : String(e)}; relying on the period`),
  );
  return {
    ready,
    close: () => {
      closed = true;
      clearTimeout(timer);
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
};
