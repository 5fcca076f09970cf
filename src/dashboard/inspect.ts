// Turns XState inspection events into board observations, for the receiver's sessions and the sender's rounds.
import type { InspectionEvent } from "xstate";
import { machineSnapshot } from "../machines/snapshot.js";
import type { ActorBoard } from "./model.js";

interface InspectionLike {
  readonly type: string;
  readonly rootId?: string;
  readonly actorRef?: { readonly sessionId: string };
  readonly snapshot?: unknown;
  readonly event?: { readonly type: string };
}

/**
 * Feeds one inspection event to the board under the id `idOf` gives the actor (undefined: skip).
 * Microsteps record the eventless states passed through; snapshots record where the actor is.
 */
const feed = (
  board: ActorBoard,
  e: InspectionLike,
  idOf: (actorSessionId: string, machine: string) => { id: string; parent?: string } | undefined,
): void => {
  if (e.type !== "@xstate.snapshot" && e.type !== "@xstate.microstep") return;
  const snap = machineSnapshot(e.snapshot);
  if (!snap || !e.actorRef) return;
  const who = idOf(e.actorRef.sessionId, snap.machine.id);
  if (!who) return;
  if (e.type === "@xstate.microstep") board.step(who.id, snap.value);
  else
    board.observe(who.id, {
      machine: snap.machine.id,
      parent: who.parent,
      value: snap.value,
      context: snap.context,
      status: snap.status,
      event: e.event?.type ?? "",
    });
};

/**
 * The receiver's `inspect` option: each session is its own actor system whose root is the
 * session machine, named on the board by its session id.
 */
export const receiverInspector =
  (board: ActorBoard) =>
  (sessionId: string, event: unknown): void =>
    feed(board, event as InspectionLike, (actorSessionId) =>
      (event as InspectionLike).rootId === actorSessionId ? { id: sessionId } : undefined,
    );

/**
 * The sender's `inspect` option: the process (`sender`) and its rounds (`round-1`, `round-2`…),
 * or a lone round with `--once`.
 */
export const senderInspector = (board: ActorBoard): ((e: InspectionEvent) => void) => {
  const ids = new Map<string, { id: string; parent?: string }>();
  let rounds = 0;
  return (event) => {
    const e = event as InspectionLike;
    feed(board, e, (actorSessionId, machine) => {
      const known = ids.get(actorSessionId);
      if (known) return known;
      const root = e.rootId === actorSessionId;
      let who: { id: string; parent?: string } | undefined;
      if (machine === "sender" && root) who = { id: "sender" };
      else if (machine === "senderRound") who = { id: `round-${++rounds}`, ...(root ? {} : { parent: "sender" }) };
      if (who) ids.set(actorSessionId, who);
      return who;
    });
    const snap = e.type === "@xstate.snapshot" ? machineSnapshot(e.snapshot) : undefined;
    if (snap && snap.status !== "active" && e.actorRef) ids.delete(e.actorRef.sessionId);
  };
};
