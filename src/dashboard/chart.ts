// A machine's top-level states and transitions, read from its definition, for the live chart.
import type { AnyStateMachine, AnyStateNode } from "xstate";
import { eventLabel, guardName, type TransitionLike } from "../machines/diagram.js";

/** A top-level state of a machine, as the dashboard draws it. */
export interface ChartState {
  readonly name: string;
  readonly final: boolean;
  /** Invoked actors, shown inside the state: "invoke transfer". */
  readonly invokes: ReadonlyArray<string>;
}

/** All transitions from one state to another, their labels joined: one arrow on the chart. */
export interface ChartEdge {
  readonly from: string;
  readonly to: string;
  readonly labels: ReadonlyArray<string>;
}

export interface ChartGraph {
  readonly machine: string;
  readonly initial: string | undefined;
  readonly states: ReadonlyArray<ChartState>;
  readonly edges: ReadonlyArray<ChartEdge>;
  /** Transitions declared on the machine itself: taken from whatever state is active ("stop"). */
  readonly fromAnyState: ReadonlyArray<{ readonly to: string; readonly label: string }>;
}

/** The top-level state a target id falls in: `senderRound.nextFile` → `nextFile`. */
const topState = (machine: AnyStateMachine, id: string): string => id.slice(machine.id.length + 1).split(".")[0] ?? id;

const label = (event: string, guard: unknown): string => {
  const g = guardName(guard);
  return [event, g ? `[${g}]` : ""].filter(Boolean).join(" ");
};

/**
 * The machine's top-level states and transitions, read from the definition that runs (as
 * `diagram.ts` does for Mermaid), so the live chart cannot drift from the code.
 */
export const chartOf = (machine: AnyStateMachine): ChartGraph => {
  const root = machine.root as AnyStateNode;
  const nodes = Object.values(root.states) as AnyStateNode[];
  const edges = new Map<string, { from: string; to: string; labels: string[] }>();
  const add = (from: string, t: TransitionLike, text: string) => {
    for (const target of t.target ?? []) {
      const to = topState(machine, target.id);
      const key = `${from}\u0000${to}`;
      const edge = edges.get(key) ?? { from, to, labels: [] };
      if (!edge.labels.includes(text)) edge.labels.push(text);
      edges.set(key, edge);
    }
  };
  const states: ChartState[] = [];
  for (const s of nodes) {
    const name = topState(machine, s.id);
    const invokes = (s.invoke as ReadonlyArray<{ src: unknown }>).map((i) => (typeof i.src === "string" ? i.src : "actor"));
    states.push({ name, final: s.type === "final", invokes });
    for (const [event, ts] of s.transitions as Map<string, TransitionLike[]>)
      for (const t of ts) add(name, t, label(eventLabel(event), t.guard));
    for (const t of (s.always ?? []) as TransitionLike[]) add(name, t, label("", t.guard));
  }
  const fromAnyState: { to: string; label: string }[] = [];
  for (const [event, ts] of root.transitions as Map<string, TransitionLike[]>)
    for (const t of ts)
      for (const target of t.target ?? [])
        fromAnyState.push({ to: topState(machine, target.id), label: label(eventLabel(event), t.guard) });
  return { machine: machine.id, initial: (root.config as { initial?: string }).initial, states, edges: [...edges.values()], fromAnyState };
};

/**
 * The top-level state of a snapshot value, the one the chart highlights. Flat machines have a
 * string value; a nested one `{ a: "b" }` is shown as state `a`.
 */
export const topStateOf = (value: unknown): string => {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null) return Object.keys(value)[0] ?? "";
  return "";
};
