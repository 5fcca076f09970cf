// What a sender may be told of a failed step: messages without local paths; the rest goes to the log.
import { inspect } from "node:util";
import { Effect } from "effect";
import { StorageError, type Storage } from "../../plugins/storage.js";
import { RegistryUnavailable } from "./ownership.js";
import { OutsideDataDirError, StagingFullError, StagingIoError } from "./staging.js";
import { StagingQuotaError } from "./stagingHygiene.js";

/**
 * What a sender may be told when a step of its request failed. A failure's message reaches the
 * sender as the reply; Node, plugins and libraries put local paths (and sometimes stacks) into
 * theirs, so only errors written for the sender pass as they are. Everything else is told by its
 * errno code or not at all, and logged in full for the operator.
 */

/** Errors whose messages are made for the sender: they name files as the protocol does. */
const senderFacing: ReadonlyArray<abstract new (...args: never[]) => Error> = [
  StagingIoError,
  StagingFullError,
  StagingQuotaError,
  OutsideDataDirError,
  RegistryUnavailable,
];

/** A failure told to the sender in place of one whose message was not fit to leave the receiver. */
export class ReceiverFailure extends Error {
  override readonly name = "ReceiverFailure";
}

/** A slash that starts a path rather than separating the protocol's sg/vg/tp/name. */
const absolutePath = /(^|[^\p{L}\p{N}_.\-/])\/[\p{L}\p{N}_.\-]/u;
const otherPath = /~\/|file:\/|(^|[^\p{L}\p{N}])[A-Za-z]:[\\/]|\\\\|(^|[\\/\s'"(])\.tsync[\\/]/u;
const stackFrame = /(^|\n)\s*at\s.*(:\d+:\d+\)?|\(native\)|<anonymous>\)?)\s*($|\n)/;

/**
 * Whether `text` shows something of the receiver's machine: an absolute, home-relative or Windows
 * path, a file URL, a path into the receiver's own state (`.tsync/`), `dataDir`, or a stack frame.
 */
export const revealsLocalDetail = (text: string, dataDir?: string): boolean =>
  absolutePath.test(text) ||
  otherPath.test(text) ||
  stackFrame.test(text) ||
  (dataDir !== undefined && dataDir.length > 1 && text.includes(dataDir));

/** The errno code of a Node error ("ENOTDIR"), or of what a StorageError wraps. */
const errnoCode = (e: unknown): string | undefined => {
  for (const x of [e, (e as { cause?: unknown } | undefined)?.cause]) {
    const code = (x as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === "string" && /^E[A-Z0-9]{1,30}$/.test(code)) return code;
  }
  return undefined;
};

/**
 * The failure as the sender may see it: errors written for senders as they are (a StorageError
 * only when its message shows nothing local: plugins and commands write those), otherwise
 * `<operation> failed: <errno code>` for a Node error, or "internal error in <operation>".
 */
export const forSender = (operation: string, e: unknown, dataDir?: string): Error => {
  if (senderFacing.some((c) => e instanceof c)) return e as Error;
  if (e instanceof StorageError && typeof e.message === "string" && !revealsLocalDetail(e.message, dataDir)) return e;
  const code = errnoCode(e);
  return new ReceiverFailure(code === undefined ? `internal error in ${operation}; see the receiver log` : `${operation} failed: ${code}`);
};

/** The failure in full for the receiver's log: stack, Node's fields and every cause. */
export const forLog = (e: unknown, depth = 0): string => {
  if (!(e instanceof Error)) return inspect(e, { depth: 4, breakLength: Infinity });
  const fields = Object.fromEntries(Object.entries(e).filter(([k]) => k !== "cause" && k !== "message" && k !== "stack"));
  const head =
    (e.stack ?? `${e.name}: ${e.message}`) +
    (Object.keys(fields).length > 0 ? ` ${inspect(fields, { depth: 2, breakLength: Infinity })}` : "");
  const cause = (e as { cause?: unknown }).cause;
  return cause === undefined || depth >= 4 ? head : `${head}\ncaused by: ${forLog(cause, depth + 1)}`;
};

export interface SafeFailureScope {
  /** "session <id>", the start of every log line. */
  readonly session: string;
  readonly log: (line: string) => void;
  readonly dataDir?: string | undefined;
}

/**
 * `run` with its rejection logged in full and rethrown as `forSender` tells it: the wrapper every
 * session actor goes through, so no reply carries a local path or a stack.
 */
export const safely =
  <I, O>(scope: SafeFailureScope, operation: string, run: (input: I) => Promise<O>) =>
  async (input: I): Promise<O> => {
    try {
      return await run(input);
    } catch (e) {
      scope.log(`${scope.session}: ${operation} failed: ${forLog(e)}`);
      throw forSender(operation, e, scope.dataDir);
    }
  };

/**
 * The storage with `applySchema` failures made fit for the sender: schema sync answers a failed
 * piece with the StorageError's message rather than rejecting, so it is vetted here.
 */
export const schemaSafeStorage = (storage: Storage, scope: SafeFailureScope): Storage => ({
  ...storage,
  applySchema: (senderId, records, batch) =>
    storage.applySchema(senderId, records, batch).pipe(
      Effect.mapError((e) => {
        const safe = forSender("schema", e, scope.dataDir);
        if (safe === e) return e;
        scope.log(`${scope.session}: schema failed: ${forLog(e)}`);
        return new StorageError({ op: "applySchema", message: safe.message, cause: e });
      }),
    ),
});
