// Transition coverage of a machine: every transition its definition has, and the ones actors took,
// recorded through XState's inspect API (the `@xstate.microstep` events name the transitions taken).
import type { AnyStateMachine, AnyStateNode, InspectionEvent } from "xstate";

interface TransitionDef {
  readonly source: AnyStateNode;
  readonly eventType: string;
}

/** A transition's name: its state, its event ("always" for eventless ones) and its place among that event's transitions. */
const nameOf = (source: AnyStateNode, eventType: string, index: number): string =>
  `${source.path.join(".") || "(root)"} · ${eventType || "always"} #${index}`;

const nodesOf = (node: AnyStateNode): AnyStateNode[] => [
  node,
  ...Object.values(node.states as Record<string, AnyStateNode>).flatMap(nodesOf),
];

/** Every transition of the machine's definition, by name. */
export const transitionsOf = (machine: AnyStateMachine): string[] =>
  nodesOf(machine.root as AnyStateNode).flatMap((node) => [
    ...[...(node.transitions as Map<string, unknown[]>)].flatMap(([event, ts]) => ts.map((_, i) => nameOf(node, event, i))),
    ...((node.always ?? []) as unknown[]).map((_, i) => nameOf(node, "", i)),
  ]);

const nameOfTaken = (t: TransitionDef): string => {
  const list = (t.eventType === "" ? t.source.always : (t.source.transitions as Map<string, unknown[]>).get(t.eventType)) ?? [];
  return nameOf(t.source, t.eventType, (list as unknown[]).indexOf(t));
};

/** Records, per machine id, the transitions any actor of that machine took. */
export class TransitionRecorder {
  readonly taken = new Map<string, Set<string>>();

  readonly inspect = (e: InspectionEvent): void => {
    if (e.type !== "@xstate.microstep") return;
    const machineId = (e.actorRef as { logic?: { id?: string } }).logic?.id;
    if (machineId === undefined) return;
    const set = this.taken.get(machineId) ?? new Set<string>();
    for (const t of (e as unknown as { _transitions: TransitionDef[] })._transitions) set.add(nameOfTaken(t));
    this.taken.set(machineId, set);
  };

  /** The definition's transitions no recorded actor took. */
  missing(machine: AnyStateMachine): string[] {
    const taken = this.taken.get(machine.id) ?? new Set<string>();
    return transitionsOf(machine).filter((t) => !taken.has(t));
  }

  /** "senderRound: 42/42 transitions (100 %)". */
  report(machine: AnyStateMachine): string {
    const all = transitionsOf(machine).length;
    const hit = all - this.missing(machine).length;
    return `${machine.id}: ${hit}/${all} transitions (${Math.round((100 * hit) / all)} %)`;
  }
}
