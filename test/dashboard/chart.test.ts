import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import { chartOf, topStateOf, type ChartGraph } from "../../src/dashboard/chart.js";
import { INITIAL, layoutChart, type ChartLayout, type LayoutNode } from "../../src/dashboard/layout.js";
import { receiverSession } from "../../src/machines/receiverSession.js";
import { stateText } from "../../src/machines/snapshot.js";
import { senderLifecycle } from "../../src/machines/senderLifecycle.js";
import { senderRound } from "../../src/machines/senderRound.js";

const machines = [receiverSession, senderRound, senderLifecycle];

describe("chartOf", () => {
  test.each(machines.map((m) => [m.id, m] as const))("%s: every state of the definition is on the chart", (_id, machine) => {
    const g = chartOf(machine);
    expect(g.states.map((s) => s.name).sort()).toEqual(Object.keys(machine.root.states).sort());
    const names = new Set(g.states.map((s) => s.name));
    for (const e of g.edges) {
      expect(names).toContain(e.from);
      expect(names).toContain(e.to);
    }
  });

  test("the receiver session's transitions are there with their events, guards and invoked actors", () => {
    const g = chartOf(receiverSession);
    const edge = (from: string, to: string) => g.edges.find((e) => e.from === from && e.to === to);
    expect(edge("ready", "offering")?.labels).toEqual(["offer"]);
    expect(edge("receiving", "receiving")?.labels).toEqual(["progress [forCurrentFile]"]);
    expect(edge("ready", "expired")?.labels).toEqual(["after idle"]);
    expect(edge("handshaking", "closed")?.labels).toEqual(["done", "error"]);
    expect(g.states.find((s) => s.name === "verifying")).toMatchObject({ invokes: ["verify"], final: false });
    expect(
      g.states
        .filter((s) => s.final)
        .map((s) => s.name)
        .sort(),
    ).toEqual(["closed", "expired"]);
    expect(g.initial).toBe("handshaking");
  });

  test("a transition declared on the machine itself is drawn as reachable from any state", () => {
    expect(chartOf(senderRound).fromAnyState).toEqual([{ to: "stopped", label: "stop" }]);
    expect(chartOf(senderLifecycle).fromAnyState).toEqual([{ to: "stopped", label: "stop" }]);
  });

  test("state values read as the box to highlight and as one line", () => {
    expect(topStateOf("receiving")).toBe("receiving");
    expect(topStateOf({ transfer: "waiting" })).toBe("transfer");
    expect(stateText({ transfer: { part: "sending" } })).toBe("transfer.part.sending");
    expect(stateText("ready")).toBe("ready");
  });
});

const overlaps = (a: LayoutNode, b: LayoutNode) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** The first and last points of an SVG path made of M and C commands. */
const ends = (path: string) => {
  const nums = [...path.matchAll(/-?\d+(?:\.\d+)?/g)].map((m) => Number(m[0]));
  return { start: { x: nums[0]!, y: nums[1]! }, end: { x: nums[nums.length - 2]!, y: nums[nums.length - 1]! } };
};
const onBorder = (p: { x: number; y: number }, n: LayoutNode) =>
  p.x >= n.x - 1 && p.x <= n.x + n.w + 1 && p.y >= n.y - 1 && p.y <= n.y + n.h + 1;

/** What must hold of any layout: boxes apart, inside the canvas, every arrow from its source to its target. */
const checkLayout = (g: ChartGraph, l: ChartLayout) => {
  const nodes = new Map(l.nodes.map((n) => [n.id, n]));
  expect([...nodes.keys()].sort()).toEqual([...g.states.map((s) => s.name), ...(g.initial !== undefined ? [INITIAL] : [])].sort());
  for (const a of l.nodes) {
    expect(a.x).toBeGreaterThanOrEqual(0);
    expect(a.y).toBeGreaterThanOrEqual(0);
    expect(a.x + a.w).toBeLessThanOrEqual(l.width);
    expect(a.y + a.h).toBeLessThanOrEqual(l.height);
    for (const b of l.nodes) if (a !== b) expect(overlaps(a, b), `${a.id} overlaps ${b.id}`).toBe(false);
  }
  const wanted = [...g.edges.map((e) => `${e.from}>${e.to}`), ...(g.initial !== undefined ? [`${INITIAL}>${g.initial}`] : [])].sort();
  expect(l.edges.map((e) => `${e.from}>${e.to}`).sort()).toEqual(wanted);
  for (const e of l.edges) {
    expect(e.path).toMatch(/^M[-\d.,]+( C[-\d.,]+ [-\d.,]+ [-\d.,]+)+$/);
    const { start, end } = ends(e.path);
    expect(onBorder(start, nodes.get(e.from)!), `${e.from}>${e.to} starts at its source`).toBe(true);
    expect(onBorder(end, nodes.get(e.to)!), `${e.from}>${e.to} ends at its target`).toBe(true);
  }
};

describe("layoutChart", () => {
  test.each(machines.map((m) => [m.id, m] as const))("%s: boxes apart, arrows from source to target", (_id, machine) => {
    const g = chartOf(machine);
    checkLayout(g, layoutChart(g));
  });

  test("the same machine always gets the same picture", () => {
    expect(layoutChart(chartOf(senderRound))).toEqual(layoutChart(chartOf(senderRound)));
  });

  test("the initial state is drawn below the start dot, and final states at the bottom", () => {
    const l = layoutChart(chartOf(receiverSession));
    const at = (id: string) => l.nodes.find((n) => n.id === id)!;
    expect(at("handshaking").y).toBeGreaterThan(at(INITIAL).y);
    for (const n of l.nodes) if (n.kind !== "final") expect(n.y).toBeLessThanOrEqual(at("closed").y);
  });
});

const graphs = fc
  .integer({ min: 1, max: 12 })
  .chain((n) => {
    const names = Array.from({ length: n }, (_, i) => `s${i}`);
    return fc.record({
      finals: fc.subarray(names),
      edges: fc.uniqueArray(
        fc.record({
          from: fc.constantFrom(...names),
          to: fc.constantFrom(...names),
          labels: fc.array(fc.constantFrom("go", "done", "error", "after idle", "[guard]"), { maxLength: 3 }),
        }),
        {
          maxLength: n * 3,
          selector: (e) => `${e.from}>${e.to}`,
        },
      ),
      names: fc.constant(names),
    });
  })
  .map(
    ({ names, finals, edges }): ChartGraph => ({
      machine: "random",
      initial: names[0],
      states: names.map((name) => ({
        name,
        final: finals.includes(name) && name !== names[0],
        invokes: name.endsWith("1") ? ["work"] : [],
      })),
      edges: edges.filter((e) => !finals.includes(e.from) || e.from === names[0]),
      fromAnyState: [],
    }),
  );

test.prop([graphs])(
  "any graph: boxes never overlap, stay on the canvas, and every arrow runs from its source box to its target box",
  (g) => {
    checkLayout(g, layoutChart(g));
  },
);
