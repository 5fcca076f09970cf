// The fs storage, loaded through `storage_plugin=<this file>`, that appends each placement and each
// removal to one history file shared by every receiver of a test (`plugin.history_file`, each receiver
// named by `plugin.receiver`). The test appends its own markers (releases, rounds) to the same file,
// so the file is one ordered account of who wrote and removed what, and when, across the receivers.
import { appendFile, readFile } from "node:fs/promises";
import { Effect } from "effect";
import type { FileRef } from "../../src/protocol/messages.js";
import type { StorageFactory } from "../../src/plugins/storage.js";
import { createFsStorage } from "../../src/plugins/storageFs.js";

export type HistoryEvent =
  /** A part placed: `sender` is the loader the receiver named. */
  | {
      readonly op: "load";
      readonly receiver: string;
      readonly sender: string;
      readonly path: string;
      readonly sg: string;
      readonly kind: string;
    }
  /** A file removed: `sender` is the loader whose copy it was. */
  | { readonly op: "remove"; readonly receiver: string; readonly sender: string; readonly path: string; readonly sg: string }
  /** Markers the test writes. */
  | { readonly op: "release"; readonly sg: string }
  | { readonly op: "roundStart" | "roundEnd"; readonly sender: string };

export const pathOf = (ref: FileRef): string => `${ref.sg}/${ref.vg}/${ref.tp}/${ref.name}`;

export const appendHistory = (file: string, events: ReadonlyArray<HistoryEvent>): Promise<void> =>
  appendFile(file, events.map((e) => JSON.stringify(e) + "\n").join(""));

export const readHistory = async (file: string): Promise<HistoryEvent[]> =>
  (await readFile(file, "utf8").catch(() => ""))
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as HistoryEvent);

export const createStorage: StorageFactory = (ctx) =>
  Effect.map(createFsStorage(ctx), (inner) => {
    const file = ctx.options["history_file"];
    const receiver = ctx.options["receiver"];
    if (!file || !receiver) throw new Error("the history storage needs plugin.history_file and plugin.receiver");
    const note = (events: HistoryEvent[]) => Effect.promise(() => appendHistory(file, events));
    const loads = (sender: string, ref: FileRef, kinds: ReadonlyArray<string>): HistoryEvent[] =>
      kinds.map((kind) => ({ op: "load", receiver, sender, path: pathOf(ref), sg: ref.sg, kind }));
    const { loadBytes } = inner;
    return {
      ...inner,
      name: "history-fs",
      load: (req) =>
        inner.load(req).pipe(
          Effect.flatMap(() =>
            note(
              loads(
                req.senderId,
                req.ref,
                req.parts.map((p) => p.kind),
              ),
            ),
          ),
        ),
      ...(loadBytes
        ? {
            loadBytes: (req: Parameters<typeof loadBytes>[0]) =>
              loadBytes(req).pipe(
                Effect.flatMap(() =>
                  note(
                    loads(
                      req.senderId,
                      req.ref,
                      req.parts.map((p) => p.kind),
                    ),
                  ),
                ),
              ),
          }
        : {}),
      remove: (sender, ref) =>
        inner
          .remove(sender, ref)
          .pipe(
            Effect.tap((existed) => (existed ? note([{ op: "remove", receiver, sender, path: pathOf(ref), sg: ref.sg }]) : Effect.void)),
          ),
    };
  });
