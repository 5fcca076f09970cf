// A layered (Sugiyama-style) layout, small enough to read: break cycles, rank, insert a dummy
// node per layer an edge crosses (one of them carries the label), order layers to cut crossings,
// then place each layer as close to its neighbours as the widths allow. Done once per machine on
// the server; the page only draws it and moves the highlight.
import type { ChartGraph } from "./chart.js";

export interface LayoutNode {
  readonly id: string;
  readonly kind: "state" | "final" | "initial";
  readonly label: string;
  readonly sub: string | undefined;
  /** The box, top-left corner. */
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

export interface LayoutEdge {
  readonly from: string;
  readonly to: string;
  readonly lines: ReadonlyArray<string>;
  /** SVG path data, ending at the target (the arrowhead goes there). */
  readonly path: string;
  readonly labelX: number;
  readonly labelY: number;
  readonly labelAnchor: "middle" | "start";
}

export interface ChartLayout {
  readonly machine: string;
  readonly width: number;
  readonly height: number;
  readonly nodes: ReadonlyArray<LayoutNode>;
  readonly edges: ReadonlyArray<LayoutEdge>;
}

export const INITIAL = "[*]";

const NAME_PX = 7.6;
const SUB_PX = 6.2;
const LABEL_PX = 6.1;
const LINE_H = 13;
const MARGIN = 16;
const LAYER_GAP = 14;
const NODE_GAP = 26;
const DUMMY_GAP = 10;

interface Vertex {
  readonly id: string;
  readonly dummy: boolean;
  /** Width the layout reserves (box plus a self-loop and its label on the right). */
  readonly w: number;
  readonly h: number;
  rank: number;
  x: number;
}

interface Link {
  readonly from: string;
  readonly to: string;
  readonly lines: ReadonlyArray<string>;
  reversed: boolean;
  /** Vertex ids from the upper end to the lower end, dummies included. */
  chain: string[];
  labelAt: string | undefined;
}

const labelLines = (all: ReadonlyArray<string>): string[] => {
  const labels = all.filter((l) => l !== "");
  const joined = labels.join(", ");
  return labels.length > 1 && joined.length > 24 ? labels : joined === "" ? [] : [joined];
};

const textWidth = (lines: ReadonlyArray<string>, px: number): number => Math.max(0, ...lines.map((l) => l.length * px));

/** Minimises Σ(x_i − want_i)² keeping order and x_{i+1} − x_i ≥ gap_i (pool-adjacent-violators). */
const placeInOrder = (want: ReadonlyArray<number>, gaps: ReadonlyArray<number>): number[] => {
  const offset: number[] = [];
  let acc = 0;
  for (let i = 0; i < want.length; i++) {
    offset.push(acc);
    acc += gaps[i] ?? 0;
  }
  const blocks: { sum: number; n: number }[] = [];
  for (let i = 0; i < want.length; i++) {
    blocks.push({ sum: (want[i] ?? 0) - (offset[i] ?? 0), n: 1 });
    while (blocks.length > 1) {
      const b = blocks[blocks.length - 1]!;
      const a = blocks[blocks.length - 2]!;
      if (a.sum / a.n <= b.sum / b.n) break;
      blocks.splice(blocks.length - 2, 2, { sum: a.sum + b.sum, n: a.n + b.n });
    }
  }
  const out: number[] = [];
  for (const b of blocks) for (let k = 0; k < b.n; k++) out.push(b.sum / b.n + (offset[out.length] ?? 0));
  return out;
};

const fmt = (n: number): string => String(Math.round(n * 10) / 10);

/** A smooth path through the points with vertical tangents at each, as layered charts are drawn. */
const curve = (pts: ReadonlyArray<{ x: number; y: number }>): string => {
  const [first, ...rest] = pts;
  if (!first) return "";
  let d = `M${fmt(first.x)},${fmt(first.y)}`;
  let prev = first;
  for (const p of rest) {
    const dy = (p.y - prev.y) / 2;
    d += ` C${fmt(prev.x)},${fmt(prev.y + dy)} ${fmt(p.x)},${fmt(p.y - dy)} ${fmt(p.x)},${fmt(p.y)}`;
    prev = p;
  }
  return d;
};

export const layoutChart = (g: ChartGraph): ChartLayout => {
  const fromAny = new Map<string, string[]>();
  for (const t of g.fromAnyState) fromAny.set(t.to, [...(fromAny.get(t.to) ?? []), `${t.label} (any state)`]);
  const selfLoops = new Map<string, string[]>();
  for (const e of g.edges) if (e.from === e.to) selfLoops.set(e.from, labelLines(e.labels));

  // Boxes: name, then what it invokes or how it is entered from anywhere.
  const box = new Map<string, { kind: LayoutNode["kind"]; label: string; sub: string | undefined; w: number; h: number; loopW: number }>();
  if (g.initial !== undefined) box.set(INITIAL, { kind: "initial", label: "", sub: undefined, w: 14, h: 14, loopW: 0 });
  for (const s of g.states) {
    const subParts = [...(s.invokes.length > 0 ? [`invoke ${s.invokes.join(", ")}`] : []), ...(fromAny.get(s.name) ?? [])];
    const sub = subParts.length > 0 ? subParts.join("; ") : undefined;
    const w = Math.max(84, s.name.length * NAME_PX + 26, (sub?.length ?? 0) * SUB_PX + 20);
    const loop = selfLoops.get(s.name);
    const loopW = loop ? 30 + textWidth(loop, LABEL_PX) : 0;
    box.set(s.name, { kind: s.final ? "final" : "state", label: s.name, sub, w, h: sub ? 44 : 30, loopW });
  }

  const links: Link[] = [];
  if (g.initial !== undefined) links.push({ from: INITIAL, to: g.initial, lines: [], reversed: false, chain: [], labelAt: undefined });
  for (const e of g.edges)
    if (e.from !== e.to)
      links.push({ from: e.from, to: e.to, lines: labelLines(e.labels), reversed: false, chain: [], labelAt: undefined });

  // 1. Break cycles: an edge back into the depth-first path points upward.
  const out = new Map<string, Link[]>();
  for (const l of links) out.set(l.from, [...(out.get(l.from) ?? []), l]);
  const order: string[] = [];
  const seen = new Set<string>();
  const onPath = new Set<string>();
  const visit = (id: string) => {
    seen.add(id);
    onPath.add(id);
    order.push(id);
    for (const l of out.get(id) ?? []) {
      if (onPath.has(l.to)) l.reversed = true;
      else if (!seen.has(l.to)) visit(l.to);
    }
    onPath.delete(id);
  };
  for (const id of box.keys()) if (!seen.has(id)) visit(id);
  const discovery = new Map(order.map((id, i) => [id, i]));

  // 2. Ranks: longest path, two per edge so labels get a layer of their own; ends at the bottom.
  const upper = (l: Link) => (l.reversed ? l.to : l.from);
  const lower = (l: Link) => (l.reversed ? l.from : l.to);
  const rank = new Map<string, number>([...box.keys()].map((id) => [id, 0]));
  const indeg = new Map<string, number>([...box.keys()].map((id) => [id, 0]));
  for (const l of links) indeg.set(lower(l), (indeg.get(lower(l)) ?? 0) + 1);
  const queue = order.filter((id) => indeg.get(id) === 0);
  while (queue.length > 0) {
    const id = queue.shift()!;
    for (const l of links) {
      if (upper(l) !== id) continue;
      const to = lower(l);
      rank.set(to, Math.max(rank.get(to) ?? 0, (rank.get(id) ?? 0) + 2));
      indeg.set(to, (indeg.get(to) ?? 0) - 1);
      if (indeg.get(to) === 0) queue.push(to);
    }
  }
  const maxRank = Math.max(0, ...rank.values());
  for (const [id, b] of box) if (b.kind === "final") rank.set(id, maxRank);

  // 3. Vertices, with dummies along edges that span layers.
  const vertices = new Map<string, Vertex>();
  for (const [id, b] of box) vertices.set(id, { id, dummy: false, w: b.w + b.loopW, h: b.h, rank: rank.get(id) ?? 0, x: 0 });
  links.forEach((l, i) => {
    const top = upper(l);
    const bottom = lower(l);
    const r0 = rank.get(top) ?? 0;
    const span = (rank.get(bottom) ?? 0) - r0;
    let mid = Math.floor(span / 2);
    if ((r0 + mid) % 2 === 0 && mid > 1) mid -= 1;
    l.chain = [top];
    for (let k = 1; k < span; k++) {
      const id = `~${i}.${k}`;
      const isLabel = k === mid;
      const lines = isLabel ? l.lines : [];
      vertices.set(id, {
        id,
        dummy: true,
        w: isLabel ? textWidth(lines, LABEL_PX) + 8 : 0,
        h: isLabel ? lines.length * LINE_H : 0,
        rank: r0 + k,
        x: 0,
      });
      if (isLabel) l.labelAt = id;
      l.chain.push(id);
    }
    l.chain.push(bottom);
  });
  const layerCount = Math.max(0, ...[...vertices.values()].map((v) => v.rank)) + 1;
  const layers: string[][] = Array.from({ length: layerCount }, () => []);
  const pred = new Map<string, string[]>();
  const succ = new Map<string, string[]>();
  for (const l of links)
    for (let k = 0; k + 1 < l.chain.length; k++) {
      const a = l.chain[k]!;
      const b = l.chain[k + 1]!;
      succ.set(a, [...(succ.get(a) ?? []), b]);
      pred.set(b, [...(pred.get(b) ?? []), a]);
    }
  const key = (id: string) => discovery.get(id) ?? discovery.get(links[Number(id.slice(1).split(".")[0])]?.from ?? "") ?? 0;
  for (const v of [...vertices.values()].sort((a, b) => key(a.id) - key(b.id))) layers[v.rank]!.push(v.id);

  // 4. Order layers by the barycentre of their neighbours; keep the order with fewest crossings.
  const position = (layer: ReadonlyArray<string>) => new Map(layer.map((id, i) => [id, i]));
  const crossings = (ls: ReadonlyArray<ReadonlyArray<string>>): number => {
    let n = 0;
    for (let r = 0; r + 1 < ls.length; r++) {
      const below = position(ls[r + 1]!);
      const segs: [number, number][] = [];
      ls[r]!.forEach((id, i) => {
        for (const s of succ.get(id) ?? []) segs.push([i, below.get(s) ?? 0]);
      });
      for (let a = 0; a < segs.length; a++)
        for (let b = a + 1; b < segs.length; b++) {
          const [a0, a1] = segs[a]!;
          const [b0, b1] = segs[b]!;
          if ((a0 - b0) * (a1 - b1) < 0) n++;
        }
    }
    return n;
  };
  const sortBy = (layer: string[], neighbours: Map<string, string[]>, other: ReadonlyArray<string>) => {
    const at = position(other);
    const current = position(layer);
    const weight = (id: string) => {
      const ns = (neighbours.get(id) ?? []).map((n) => at.get(n)).filter((p): p is number => p !== undefined);
      return ns.length === 0 ? current.get(id)! : ns.reduce((s, p) => s + p, 0) / ns.length;
    };
    const w = new Map(layer.map((id) => [id, weight(id)]));
    layer.sort((a, b) => w.get(a)! - w.get(b)! || current.get(a)! - current.get(b)!);
  };
  let best = layers.map((l) => [...l]);
  let bestCrossings = crossings(best);
  for (let iter = 0; iter < 16 && bestCrossings > 0; iter++) {
    if (iter % 2 === 0) for (let r = 1; r < layers.length; r++) sortBy(layers[r]!, pred, layers[r - 1]!);
    else for (let r = layers.length - 2; r >= 0; r--) sortBy(layers[r]!, succ, layers[r + 1]!);
    const c = crossings(layers);
    if (c < bestCrossings) {
      bestCrossings = c;
      best = layers.map((l) => [...l]);
    }
  }

  // 5. x: each layer as near its neighbours as the widths let it be, alternating down and up.
  const v = (id: string) => vertices.get(id)!;
  const gapBetween = (a: Vertex, b: Vertex) => (a.w + b.w) / 2 + (a.dummy && b.dummy ? DUMMY_GAP : NODE_GAP);
  for (const layer of best) {
    let x = 0;
    layer.forEach((id, i) => {
      if (i > 0) x += gapBetween(v(layer[i - 1]!), v(id));
      v(id).x = x;
    });
  }
  const place = (layer: ReadonlyArray<string>, toward: (id: string) => ReadonlyArray<string>) => {
    const want = layer.map((id) => {
      const ns = toward(id);
      return ns.length === 0 ? v(id).x : ns.reduce((s, n) => s + v(n).x, 0) / ns.length;
    });
    const gaps = layer.slice(0, -1).map((id, i) => gapBetween(v(id), v(layer[i + 1]!)));
    placeInOrder(want, gaps).forEach((x, i) => (v(layer[i]!).x = x));
  };
  for (let iter = 0; iter < 12; iter++) {
    if (iter % 2 === 0) for (let r = 1; r < best.length; r++) place(best[r]!, (id) => pred.get(id) ?? []);
    else for (let r = best.length - 2; r >= 0; r--) place(best[r]!, (id) => succ.get(id) ?? []);
  }
  for (const layer of best) place(layer, (id) => [...(pred.get(id) ?? []), ...(succ.get(id) ?? [])]);
  const minX = Math.min(...[...vertices.values()].map((u) => u.x - u.w / 2));
  for (const u of vertices.values()) u.x += MARGIN - minX;

  // 6. y: layer by layer, each as tall as its tallest box or label.
  const layerTop: number[] = [];
  const layerH: number[] = [];
  let y = MARGIN;
  for (const layer of best) {
    const h = Math.max(0, ...layer.map((id) => v(id).h));
    layerTop.push(y);
    layerH.push(h);
    y += h + LAYER_GAP;
  }
  const cy = (id: string) => layerTop[v(id).rank]! + layerH[v(id).rank]! / 2;

  // Boxes sit left in their reserved width when a self-loop takes the right.
  const nodes: LayoutNode[] = [];
  const boxX = new Map<string, number>();
  for (const [id, b] of box) {
    const u = v(id);
    const left = u.x - u.w / 2;
    boxX.set(id, left);
    nodes.push({ id, kind: b.kind, label: b.label, sub: b.sub, x: left, y: cy(id) - b.h / 2, w: b.w, h: b.h });
  }

  // 7. Edges: ports spread along the box's top and bottom in the order their neighbours lie.
  const ports = new Map<string, { link: Link; side: "top" | "bottom"; toward: number }[]>();
  const addPort = (id: string, link: Link, side: "top" | "bottom", toward: string) =>
    ports.set(id, [...(ports.get(id) ?? []), { link, side, toward: v(toward).x }]);
  for (const l of links) {
    addPort(l.chain[0]!, l, "bottom", l.chain[1]!);
    addPort(l.chain[l.chain.length - 1]!, l, "top", l.chain[l.chain.length - 2]!);
  }
  const portX = new Map<string, number>();
  for (const [id, ps] of ports) {
    const b = box.get(id)!;
    const left = boxX.get(id)!;
    for (const side of ["top", "bottom"] as const) {
      const here = ps.filter((p) => p.side === side).sort((a, c) => a.toward - c.toward);
      here.forEach((p, i) => portX.set(`${id}|${side}|${links.indexOf(p.link)}`, left + (b.w * (i + 1)) / (here.length + 1)));
    }
  }
  const edges: LayoutEdge[] = [];
  links.forEach((l, i) => {
    const first = l.chain[0]!;
    const last = l.chain[l.chain.length - 1]!;
    const pts = l.chain.map((id) => {
      if (id === first) return { x: portX.get(`${id}|bottom|${i}`)!, y: cy(id) + box.get(id)!.h / 2 };
      if (id === last) return { x: portX.get(`${id}|top|${i}`)!, y: cy(id) - box.get(id)!.h / 2 };
      return { x: v(id).x, y: cy(id) };
    });
    if (l.reversed) pts.reverse();
    const at = l.labelAt ? { x: v(l.labelAt).x, y: cy(l.labelAt) } : { x: pts[0]!.x, y: pts[0]!.y };
    edges.push({ from: l.from, to: l.to, lines: l.lines, path: curve(pts), labelX: at.x, labelY: at.y, labelAnchor: "middle" });
  });
  for (const [id, lines] of selfLoops) {
    const b = box.get(id)!;
    const r = boxX.get(id)! + b.w;
    const c = cy(id);
    edges.push({
      from: id,
      to: id,
      lines,
      path: `M${fmt(r)},${fmt(c - 7)} C${fmt(r + 26)},${fmt(c - 20)} ${fmt(r + 26)},${fmt(c + 20)} ${fmt(r)},${fmt(c + 7)}`,
      labelX: r + 24,
      labelY: c,
      labelAnchor: "start",
    });
  }

  const width = Math.ceil(Math.max(...[...vertices.values()].map((u) => u.x + u.w / 2)) + MARGIN);
  return { machine: g.machine, width, height: Math.ceil(y - LAYER_GAP + MARGIN), nodes, edges };
};
