// Mermaid state diagrams and readable guard and event names, drawn from machine definitions.
import type { AnyStateMachine, AnyStateNode } from "xstate";

export interface TransitionLike {
  readonly target?: ReadonlyArray<{ readonly id: string }> | undefined;
  readonly guard?: unknown;
}

/**
 * A transition's guard as the charts print it. A named guard prints as its name, with or without
 * params. `not`/`and`/`or` print as their parts. An inline function has no name, so it prints as
 * "guard". test/machines/namedGuards.test.ts keeps inline functions out of the machines.
 */
export const guardName = (g: unknown): string | undefined => {
  if (g === undefined) return undefined;
  if (typeof g === "string") return g;
  if (typeof g === "object" && g !== null && "type" in g) return String((g as { type: unknown }).type);
  // XState's higher-order guards are functions named after their operator, carrying `check` and `guards`.
  if (typeof g === "function" && "check" in g && "guards" in g && Array.isArray(g.guards)) {
    const parts = g.guards.map((p) => guardName(p) ?? "guard");
    if (g.name === "not") return `not ${parts[0] ?? "guard"}`;
    if (g.name === "and" || g.name === "or") return parts.join(` ${g.name} `);
  }
  return "guard";
};

/** Event names as a person reads them: `done: transfer`, `error: transfer`, `after backoff`. */
export const eventLabel = (event: string): string => {
  const done = /^xstate\.done\.actor\.\d+\.[^.]+\.(.+)$/.exec(event);
  if (done) return "done";
  const err = /^xstate\.error\.actor\.\d+\.[^.]+\.(.+)$/.exec(event);
  if (err) return "error";
  const after = /^xstate\.after\.([^.]+)\./.exec(event);
  if (after) return `after ${after[1]}`;
  return event;
};

const localId = (machine: AnyStateMachine, id: string): string => id.slice(machine.id.length + 1).replaceAll(".", "_");

/**
 * A Mermaid state diagram drawn from a machine definition itself, so the picture cannot drift from
 * the code that runs. Invoked actors are shown inside their state.
 */
export const toMermaid = (machine: AnyStateMachine): string => {
  const lines = ["stateDiagram-v2"];
  const root = machine.root as AnyStateNode;
  const states = Object.values(root.states) as AnyStateNode[];
  const initial = (root.config as { initial?: string }).initial;
  if (initial) lines.push(`  [*] --> ${initial}`);
  const edge = (from: string, t: TransitionLike, label: string) => {
    const g = guardName(t.guard);
    for (const target of t.target ?? []) {
      const to = localId(machine, target.id);
      lines.push(`  ${from} --> ${to}${label || g ? ` : ${[label, g ? `[${g}]` : ""].filter(Boolean).join(" ")}` : ""}`);
    }
  };
  for (const s of states) {
    const name = localId(machine, s.id);
    const invokes = (s.invoke as ReadonlyArray<{ src: unknown }>).map((i) => (typeof i.src === "string" ? i.src : "actor"));
    if (invokes.length > 0) lines.push(`  ${name} : invoke ${invokes.join(", ")}`);
    for (const [event, ts] of s.transitions as Map<string, TransitionLike[]>) for (const t of ts) edge(name, t, eventLabel(event));
    for (const t of (s.always ?? []) as TransitionLike[]) edge(name, t, "");
    if (s.type === "final") lines.push(`  ${name} --> [*]`);
  }
  const rootTransitions = root.transitions as Map<string, TransitionLike[]>;
  if (rootTransitions.size > 0) {
    lines.push(`  state "any state" as any_state`);
    for (const [event, ts] of rootTransitions) for (const t of ts) edge("any_state", t, eventLabel(event));
  }
  return lines.join("\n") + "\n";
};
