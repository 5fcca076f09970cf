// Writes that survive a crash or a power loss: atomic replacement and directory fsync.
import { randomUUID } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { dirname, join, basename } from "node:path";

/** Where the atomic writes below stage `path`'s next content before the rename. */
const tempFor = (path: string): string => join(dirname(path), `.${basename(path)}.${randomUUID().slice(0, 8)}.tmp`);

/** Whether `entry` (a name in `path`'s directory) is a temp file of an atomic write of `path`, e.g. one a crash left before its rename. */
export const isTempOf = (path: string, entry: string): boolean =>
  entry.startsWith(`.${basename(path)}.`) && /^\.[0-9a-f]{8}\.tmp$/.test(entry.slice(basename(path).length + 1));

/** Syncs a directory so a rename or create inside it survives a power loss. */
export const fsyncDir = async (dir: string): Promise<void> => {
  const h = await open(dir, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
};

/**
 * Group commit: `run` shared among callers. Each caller's promise settles with a run that started
 * after the call (so it covers what the caller did before calling); callers that arrive while a run
 * is going share the one after it. `onIdle` is called when no run is going or waiting.
 */
export const sharedRuns = (run: () => Promise<void>, onIdle: () => void = () => undefined): (() => Promise<void>) => {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const p = run().finally(() => {
      if (running === p) running = undefined;
      if (running === undefined && next === undefined) onIdle();
    });
    running = p;
    return p;
  };
  return () => {
    if (running === undefined) return start();
    next ??= running
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        next = undefined;
        return start();
      });
    return next;
  };
};

const dirSyncs = new Map<string, () => Promise<void>>();

/**
 * An fsync of `dir` covering every rename made in it before the call, shared with the callers of
 * the same moment: a hundred files placed at once in one directory pay two directory fsyncs.
 */
export const fsyncDirShared = (dir: string): Promise<void> => {
  let shared = dirSyncs.get(dir);
  if (shared === undefined) {
    shared = sharedRuns(
      () => fsyncDir(dir),
      () => dirSyncs.delete(dir),
    );
    dirSyncs.set(dir, shared);
  }
  return shared();
};

/** Replaces `path` with `data` so that readers see the old file or the new one, never a mix. */
export const writeFileAtomic = async (path: string, data: string | Uint8Array): Promise<void> => {
  const tmp = tempFor(path);
  const h = await open(tmp, "w");
  try {
    await h.writeFile(data);
    await h.sync();
  } catch (e) {
    await h.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await h.close();
  await rename(tmp, path);
  await fsyncDir(dirname(path));
};

/**
 * Replaces `path` atomically but without fsync: for hints whose loss after a power failure costs
 * only work, never correctness (staging metadata: a lost one means the part is sent again, and
 * the end-to-end digest checks whatever is resumed).
 */
export const replaceFile = async (path: string, data: string | Uint8Array): Promise<void> => {
  const tmp = tempFor(path);
  const h = await open(tmp, "w");
  try {
    await h.writeFile(data);
  } catch (e) {
    await h.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await h.close();
  await rename(tmp, path);
};
