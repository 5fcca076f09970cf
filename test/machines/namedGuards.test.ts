// Every guard in every machine is named in setup({ guards }), so the charts and the code read the same.
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { and, createMachine, not, setup, StateMachine, type AnyStateMachine, type AnyStateNode } from "xstate";
import { describe, expect, test } from "vitest";
import { guardName } from "../../src/machines/diagram.js";

const machinesDir = fileURLToPath(new URL("../../src/machines/", import.meta.url));

/** Every machine exported from src/machines: a new machine is checked without being listed here. */
const allMachines = async (): Promise<AnyStateMachine[]> => {
  const found: AnyStateMachine[] = [];
  for (const file of await readdir(machinesDir)) {
    if (!file.endsWith(".ts")) continue;
    const mod = (await import(`${machinesDir}${file}`)) as Record<string, unknown>;
    for (const value of Object.values(mod)) if (value instanceof StateMachine) found.push(value as AnyStateMachine);
  }
  return found;
};

interface Problem {
  readonly state: string;
  readonly event: string;
  readonly problem: string;
}

/** Names referenced by a guard, or a problem if any part of it is an inline function. */
const guardRefs = (g: unknown): { names: string[]; inline: boolean } => {
  if (g === undefined) return { names: [], inline: false };
  if (typeof g === "string") return { names: [g], inline: false };
  if (typeof g === "object" && g !== null && "type" in g) return { names: [String(g.type)], inline: false };
  // not/and/or are functions built by XState around the guards they combine: check those instead.
  if (typeof g === "function" && "check" in g && "guards" in g && Array.isArray(g.guards)) {
    const parts = g.guards.map(guardRefs);
    return { names: parts.flatMap((p) => p.names), inline: parts.some((p) => p.inline) };
  }
  return { names: [], inline: true };
};

/** Walks the state nodes of a machine and reports each transition whose guard is inline or unknown. */
const unnamedGuards = (machine: AnyStateMachine): Problem[] => {
  const problems: Problem[] = [];
  const implemented = machine.implementations.guards as Record<string, unknown>;
  const visit = (node: AnyStateNode) => {
    const transitions: Array<[string, ReadonlyArray<{ guard?: unknown }>]> = [
      ...(node.transitions as Map<string, ReadonlyArray<{ guard?: unknown }>>),
      ["always", (node.always ?? []) as ReadonlyArray<{ guard?: unknown }>],
    ];
    for (const [event, ts] of transitions)
      for (const t of ts) {
        const { names, inline } = guardRefs(t.guard);
        if (inline) problems.push({ state: node.id, event, problem: "inline guard function" });
        for (const n of names)
          if (!(n in implemented)) problems.push({ state: node.id, event, problem: `guard "${n}" is not in setup({ guards })` });
      }
    for (const child of Object.values(node.states) as AnyStateNode[]) visit(child);
  };
  visit(machine.root as AnyStateNode);
  return problems;
};

describe("named guards", () => {
  test("every transition of every machine in src/machines has no guard or a guard named in setup({ guards })", async () => {
    const machines = await allMachines();
    expect(machines.map((m) => m.id).sort()).toEqual(expect.arrayContaining(["receiverSession", "sender", "senderRound"]));
    for (const m of machines) expect(unnamedGuards(m), m.id).toEqual([]);
  });

  test("the check catches an inline guard, an unknown name and an inline guard inside not/and, in nested states too", () => {
    const m = setup({ guards: { ok: () => true } }).createMachine({
      id: "probe",
      initial: "a",
      states: {
        a: {
          initial: "inner",
          states: { inner: { always: { guard: () => true, target: "#probe.b" } } },
          on: { go: { guard: and(["ok", not(() => false)]), target: "b" } },
        },
        b: { on: { back: { guard: "ok", target: "a" } } },
      },
    });
    expect(unnamedGuards(m)).toEqual([
      { state: "probe.a", event: "go", problem: "inline guard function" },
      { state: "probe.a.inner", event: "always", problem: "inline guard function" },
    ]);
    const missing = createMachine({ id: "missing", initial: "a", states: { a: { on: { go: { guard: "nowhere", target: "a" } } } } });
    expect(unnamedGuards(missing)).toEqual([{ state: "missing.a", event: "go", problem: 'guard "nowhere" is not in setup({ guards })' }]);
  });

  test("the charts print a named guard by its name, and not/and/or by their parts", () => {
    expect(guardName("canRetry")).toBe("canRetry");
    expect(guardName({ type: "forCurrentFile", params: { fileId: "f" } })).toBe("forCurrentFile");
    expect(guardName(not("isFatal"))).toBe("not isFatal");
    expect(guardName(and(["a", "b"]))).toBe("a and b");
    expect(guardName(() => true)).toBe("guard");
  });
});
