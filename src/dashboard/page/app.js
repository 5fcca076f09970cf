// The dashboard page: no framework, no build step, nothing fetched from elsewhere. Data arrives
// on /events (Server-Sent Events, already throttled by the server); the charts come laid out
// from /api/charts and are drawn once per machine, then only their highlight moves.
// Strings from senders (file names, ids) only ever go into textContent.
// On a receiver, a fleet table shows every sender's last reported state, one row per sender; with
// a thousand senders only the rows in view are drawn.

const SVG = "http://www.w3.org/2000/svg";
const LOG_KEEP = 40;
const QUIET_MS = 30_000;

const hashParam = (name) => {
  try {
    return decodeURIComponent((location.hash.match(new RegExp(`${name}=([^&]+)`)) || [])[1] || "") || undefined;
  } catch {
    return undefined; // a mangled link: nothing selected
  }
};

const state = {
  process: undefined,
  /** sender id → fleet row, when the process has a fleet view. */
  fleet: undefined,
  fleetChanged: new Set(),
  fleetAll: true,
  fleetSelected: hashParam("sender"),
  actors: new Map(),
  charts: new Map(),
  chartViews: new Map(),
  selected: hashParam("actor"),
  clockOffset: 0,
  dirty: true,
};

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
};
const now = () => Date.now() + state.clockOffset;

const bytes = (n) => {
  if (n === undefined || n === null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
};
const duration = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
};
const clock = (t) => new Date(t).toLocaleTimeString([], { hour12: false });

// ---- data ---------------------------------------------------------------------------------

const mergeLog = (old, fresh) => {
  const bySeq = new Map(old.map((e) => [e.seq, e]));
  for (const e of fresh) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-LOG_KEEP);
};

/**
 * Costs of the fleet view, for anyone measuring the page (the browser test does): each message's
 * parse and apply, and each render of the table, in ms, the last 500 of each.
 */
const timings = { applies: [], renders: [] };
globalThis.tsyncFleetTimings = timings;
const keep = (list, entry) => {
  list.push(entry);
  if (list.length > 500) list.splice(0, list.length - 500);
};

const applyFleet = (f, replace) => {
  if (!f) return;
  if (replace || f.full || !state.fleet) {
    state.fleet = new Map(f.rows.map((r) => [r.sender, r]));
    state.fleetAll = true;
    state.fleetCountsStale = true;
  } else {
    for (const r of f.rows) {
      state.fleet.set(r.sender, r);
      state.fleetChanged.add(r.sender);
    }
    for (const id of f.removed) {
      state.fleet.delete(id);
      state.fleetChanged.add(id);
    }
  }
  state.dirty = true;
};

const applyInit = (msg) => {
  applyFleet(msg.fleet, true);
  state.process = msg.process;
  state.actors = new Map(msg.board.actors.map((a) => [a.id, a]));
  state.clockOffset = msg.board.now - Date.now();
  state.dirty = true;
};

const applyUpdate = (msg) => {
  applyFleet(msg.fleet, false);
  if (msg.process) state.process = msg.process;
  const d = msg.delta;
  state.clockOffset = d.now - Date.now();
  if (d.full) state.actors = new Map();
  for (const a of d.actors) {
    const old = state.actors.get(a.id);
    // An actor born after `since` is new to this page, even if an older one had its id.
    state.actors.set(a.id, { ...a, log: old && !d.full && a.born <= d.since ? mergeLog(old.log, a.log) : a.log });
  }
  for (const id of d.removed) state.actors.delete(id);
  state.dirty = true;
};

const connect = () => {
  const conn = $("#conn");
  const source = new EventSource("events");
  source.addEventListener("open", () => {
    conn.textContent = "live";
    conn.dataset.status = "live";
  });
  source.addEventListener("error", () => {
    conn.textContent = "reconnecting…";
    conn.dataset.status = "down";
  });
  const timed = (apply) => (e) => {
    const t0 = performance.now();
    const msg = JSON.parse(e.data);
    apply(msg);
    if (msg.fleet) keep(timings.applies, { at: t0, ms: performance.now() - t0, rows: msg.fleet.rows.length, bytes: e.data.length });
  };
  source.addEventListener("init", timed(applyInit));
  source.addEventListener("update", timed(applyUpdate));
};

// ---- what each machine shows --------------------------------------------------------------

const label = (a) => {
  const d = a.details;
  if (d.kind === "receiverSession")
    return { name: `session ${d.sessionId}`, sub: `sender ${d.senderId}${d.address ? ` @ ${d.address}` : ""}` };
  if (d.kind === "senderRound") return { name: a.id.replace("-", " "), sub: d.sessionId ? `session ${d.sessionId}` : "" };
  if (d.kind === "sender") return { name: "sender process", sub: `${d.rounds} round${d.rounds === 1 ? "" : "s"} done` };
  return { name: a.id, sub: a.machine };
};

const workingOn = (a) => {
  const d = a.details;
  if (d.kind === "receiverSession" && d.file) return `${d.file.name} (${d.file.part})`;
  if (d.kind === "receiverSession" && d.putsInFlight > 0) return `${d.putsInFlight} small file${d.putsInFlight === 1 ? "" : "s"} in flight`;
  if (d.kind === "senderRound" && d.file)
    return `file ${Math.min(d.fileNumber, d.files)}/${d.files}: ${d.file.name} (${d.file.part} ${d.file.partNumber}/${d.file.parts})`;
  if (d.kind === "senderRound" && d.files > 0 && d.fileNumber > d.files)
    return `${d.files} files done${d.deletions ? `, ${d.deletions} deletions` : ""}`;
  if (d.kind === "senderRound" && d.files === 0 && d.deletions === 0 && ["closing", "done"].includes(a.top)) return "nothing new to send";
  if (d.kind === "sender" && d.lastRound) return `last round: ${roundText(d.lastRound)}`;
  return "";
};

const progressOf = (a) => {
  const d = a.details;
  if (d.kind === "receiverSession" && d.file)
    return { done: d.file.received, total: d.file.size, text: `${bytes(d.file.received)} / ${bytes(d.file.size)}` };
  if (d.kind === "senderRound" && d.files > 0)
    return { done: Math.min(d.fileNumber - 1, d.files), total: d.files, text: `${Math.min(d.fileNumber - 1, d.files)} / ${d.files} files` };
  return undefined;
};

const roundText = (s) =>
  `sent ${s.sent} · skipped ${s.skipped} · failed ${s.failed} · conflicts ${s.conflicts}${s.deleted ? ` · deleted ${s.deleted}` : ""}${s.roundError ? ` · ${s.roundError}` : ""}`;

const countersOf = (a) => {
  const d = a.details;
  if (d.kind === "receiverSession")
    return `${bytes(d.bytes)} · files ${d.files.received} received, ${d.files.loaded} loaded, ${d.files.deleted} deleted, ${d.files.rejected} rejected`;
  if (d.kind === "senderRound") return `attempt ${d.attempts}/${d.maxRetries + 1} · ${roundText(d.summary)}`;
  if (d.kind === "sender") return `every ${duration(d.periodMs)}`;
  return "";
};

const factsOf = (a) => {
  const d = a.details;
  const rows = [
    ["machine", a.machine],
    ["state", `${a.state}${a.status === "active" ? "" : ` (${a.status})`}`],
    ["in this state for", duration((a.endedAt ?? now()) - a.stateSince)],
    ["last event", `${a.lastEvent}, ${duration(now() - a.updatedAt)} ago`],
    ["started", `${clock(a.startedAt)}${a.endedAt ? `, ended ${clock(a.endedAt)}` : ""}`],
  ];
  if (d.kind === "receiverSession") {
    rows.push(["sender", d.senderId], ["address", d.address || "(not yet known)"], ["session", d.sessionId]);
    if (d.file) rows.push(["receiving", `${d.file.name} (${d.file.part}) ${bytes(d.file.received)} of ${bytes(d.file.size)}`]);
    if (d.putsInFlight > 0) rows.push(["in flight", `${d.putsInFlight} small files (puts), each in a child actor`]);
    rows.push([
      "received",
      `${bytes(d.bytes)} in ${d.files.received} parts; ${d.files.loaded} loaded, ${d.files.deleted} deleted, ${d.files.rejected} rejected`,
    ]);
    if (d.lastReply) rows.push(["last reply", `${d.lastReply.code} ${d.lastReply.message}`]);
  }
  if (d.kind === "senderRound") {
    rows.push(["files", `${d.files} to send, ${d.deletions} to delete`]);
    if (d.file)
      rows.push(
        ["current file", `${Math.min(d.fileNumber, d.files)}/${d.files}: ${d.file.name}`],
        ["current part", `${d.file.part} (${d.file.partNumber} of ${d.file.parts}), ${bytes(d.file.size)}`],
      );
    rows.push(
      ["attempts", `${d.attempts} of ${d.maxRetries + 1}; hellos ${d.handshakes}`],
      ["session", d.sessionId ?? "(none yet)"],
      ["summary", roundText(d.summary)],
      ["bytes sent", bytes(d.summary.bytesSent)],
    );
    if (d.lastFailure)
      rows.push([
        "last failure",
        `${d.lastFailure.kind}${d.lastFailure.code === undefined ? "" : ` (${d.lastFailure.code})`}: ${d.lastFailure.message}`,
      ]);
    if (d.conflictedGroups.length) rows.push(["conflicted groups", d.conflictedGroups.join(", ")]);
    for (const f of d.failures) rows.push(["failed", `${f.file} after ${f.attempts}: ${f.reason}`]);
  }
  if (d.kind === "sender") {
    rows.push(["rounds", String(d.rounds)], ["period", duration(d.periodMs)]);
    if (d.lastRound) rows.push(["last round", roundText(d.lastRound)], ["last round bytes", bytes(d.lastRound.bytesSent)]);
  }
  return rows;
};

// ---- rendering ----------------------------------------------------------------------------

const fillDl = (dl, rows) => {
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
};

/** Parents first, their children right after them; live actors before ended ones, newest first. */
const ordered = () => {
  const all = [...state.actors.values()];
  const order = (a, b) => (a.endedAt !== undefined) - (b.endedAt !== undefined) || b.startedAt - a.startedAt;
  const out = [];
  for (const r of all.filter((a) => !a.parent || !state.actors.has(a.parent)).sort(order)) {
    out.push([r, 0]);
    for (const c of all.filter((a) => a.parent === r.id).sort(order)) out.push([c, 1]);
  }
  return out;
};

const renderHeader = () => {
  const p = state.process;
  if (!p) return;
  $("#title").textContent = p.title;
  $("#empty").textContent =
    p.role === "sender"
      ? "No round yet: the first one starts at once, then every period."
      : "No sessions yet: a sender appears here when it says hello.";
  document.title = `tsync ${p.title}`;
  fillDl($("#facts"), p.facts);
  $("#counters").replaceChildren(
    ...p.counters.map(([k, v]) => {
      const box = el("div", { class: "counter", "data-counter": k });
      box.append(el("span", { class: "value" }, k.startsWith("bytes") ? bytes(v) : String(v)), el("span", { class: "name" }, k));
      return box;
    }),
  );
  const live = [...state.actors.values()].filter((a) => a.endedAt === undefined);
  const counts = new Map();
  for (const a of live) counts.set(a.top, (counts.get(a.top) || 0) + 1);
  $("#state-counts").textContent = live.length ? `${live.length} live: ${[...counts].map(([s, n]) => `${n} ${s}`).join(", ")}` : "";
};

const renderList = () => {
  const body = $("#actors tbody");
  const rows = ordered();
  $("#empty").hidden = rows.length > 0;
  body.replaceChildren(
    ...rows.map(([a, depth]) => {
      const l = label(a);
      const tr = el("tr", {
        "data-actor-id": a.id,
        "data-state": a.top,
        class: [a.id === state.selected ? "selected" : "", a.endedAt ? "ended" : "", depth ? "child" : ""].join(" ").trim(),
      });
      const who = el("td", { class: "who" });
      who.append(el("div", { class: "name" }, l.name), el("div", { class: "sub" }, l.sub));
      const stateCell = el("td");
      stateCell.append(
        el(
          "span",
          { class: `badge ${a.status === "active" ? "" : "final"}` },
          a.status === "active" || a.status === "done" ? a.state : `${a.state} · ${a.status}`,
        ),
        el(
          "div",
          { class: "sub" },
          a.endedAt === undefined ? `for ${duration(now() - a.stateSince)}` : `ended ${duration(now() - a.endedAt)} ago`,
        ),
      );
      const work = el("td", { class: "file" });
      work.append(el("div", {}, workingOn(a)));
      const p = progressOf(a);
      if (p) {
        const bar = el("div", { class: "bar" });
        const fill = el("div", { class: "fill" });
        fill.style.width = `${p.total > 0 ? Math.min(100, (100 * p.done) / p.total) : 0}%`;
        bar.append(fill);
        work.append(bar, el("div", { class: "sub" }, p.text));
      }
      const quiet = a.endedAt === undefined && now() - a.updatedAt > QUIET_MS;
      tr.append(
        who,
        stateCell,
        work,
        el("td", { class: "counters" }, countersOf(a)),
        el(
          "td",
          { class: quiet ? "quiet" : "", title: quiet ? "no event for a while: is it stuck?" : "" },
          `${a.lastEvent} · ${duration(now() - a.updatedAt)} ago`,
        ),
      );
      return tr;
    }),
  );
};

/** One drawing per machine and place on the page (`actor` for the selected actor, `fleet` for the selected sender). */
const chartView = (machine, slot = "actor") => {
  const cached = state.chartViews.get(`${slot}:${machine}`);
  if (cached) return cached;
  const layout = state.charts.get(machine);
  if (!layout) return undefined;
  const root = svg("svg", {
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    "data-machine": machine,
    role: "img",
  });
  const defs = svg("defs");
  for (const [id, cls] of [
    ["arrow", "arrow"],
    ["arrow-recent", "arrow recent"],
  ]) {
    const m = svg("marker", {
      id,
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 8,
      markerHeight: 8,
      markerUnits: "userSpaceOnUse",
      orient: "auto-start-reverse",
    });
    m.append(svg("path", { d: "M0,0L10,5L0,10z", class: cls }));
    defs.append(m);
  }
  root.append(defs);
  const edges = new Map();
  const nodes = new Map();
  for (const e of layout.edges) {
    const g = svg("g", { class: "edge", "data-from": e.from, "data-to": e.to });
    g.append(svg("path", { d: e.path, "marker-end": "url(#arrow)" }));
    e.lines.forEach((line, i) => {
      const t = svg("text", { x: e.labelX, y: e.labelY + (i - (e.lines.length - 1) / 2) * 13 + 4, "text-anchor": e.labelAnchor });
      t.textContent = line;
      g.append(t);
    });
    root.append(g);
    edges.set(`${e.from}>${e.to}`, g);
  }
  for (const n of layout.nodes) {
    const g = svg("g", { class: `node ${n.kind}`, "data-state": n.id });
    if (n.kind === "initial") g.append(svg("circle", { cx: n.x + n.w / 2, cy: n.y + n.h / 2, r: n.w / 2 }));
    else {
      g.append(svg("rect", { x: n.x, y: n.y, width: n.w, height: n.h, rx: 9 }));
      if (n.kind === "final") g.append(svg("rect", { class: "inner", x: n.x + 3, y: n.y + 3, width: n.w - 6, height: n.h - 6, rx: 7 }));
      const name = svg("text", { x: n.x + n.w / 2, y: n.y + (n.sub ? 18 : 19.5), class: "name", "text-anchor": "middle" });
      name.textContent = n.label;
      g.append(name);
      if (n.sub) {
        const sub = svg("text", { x: n.x + n.w / 2, y: n.y + 34, class: "sub", "text-anchor": "middle" });
        sub.textContent = n.sub;
        g.append(sub);
      }
    }
    root.append(g);
    nodes.set(n.id, g);
  }
  const view = { root, nodes, edges };
  state.chartViews.set(`${slot}:${machine}`, view);
  return view;
};

const highlight = (view, a) => {
  for (const [id, g] of view.nodes) {
    g.classList.toggle("active", id === a.top && a.status === "active");
    g.classList.toggle("ended", id === a.top && a.status !== "active");
  }
  const last = a.log[a.log.length - 1];
  const recent = new Set();
  if (last) for (let i = 0; i + 1 < last.path.length; i++) recent.add(`${last.path[i]}>${last.path[i + 1]}`);
  if (last && last.from === "" && a.log.length === 1) recent.add(`[*]>${last.to}`);
  for (const [k, g] of view.edges) {
    const on = recent.has(k);
    g.classList.toggle("recent", on);
    g.querySelector("path").setAttribute("marker-end", on ? "url(#arrow-recent)" : "url(#arrow)");
  }
};

const renderDetail = () => {
  const detail = $("#detail");
  const a = state.selected ? state.actors.get(state.selected) : undefined;
  detail.hidden = !a;
  if (!a) return;
  const l = label(a);
  $("#detail-title").textContent = `${l.name}${l.sub ? ` — ${l.sub}` : ""}`;
  fillDl($("#detail-facts"), factsOf(a));
  const chart = $("#chart");
  const view = chartView(a.machine);
  if (view && chart.firstChild !== view.root) chart.replaceChildren(view.root);
  if (!view) chart.replaceChildren(el("p", { class: "muted" }, `no chart for ${a.machine}`));
  if (view) highlight(view, a);
  $("#log tbody").replaceChildren(
    ...[...a.log].reverse().map((e) => {
      const tr = el("tr");
      tr.append(
        el("td", { class: "num" }, clock(e.at)),
        el("td", {}, e.count > 1 ? `${e.event} ×${e.count}` : e.event),
        el("td", {}, e.from || "·"),
        el("td", {}, e.path.length > 2 ? `${e.path.slice(1, -1).join(" → ")} → ${e.to}` : e.to),
      );
      return tr;
    }),
  );
};

// ---- the fleet ----------------------------------------------------------------------------

const FLEET_COLUMNS = 8;
/** Rows drawn beyond the visible ones on each side, so a scroll shows no gap before the next frame. */
const FLEET_OVERSCAN = 8;
/** Sender ids in the order shown, and the rows on the page: only those in view, whatever the fleet's size. */
let fleetOrder = [];
const fleetPool = [];
let fleetRowHeight = 0;
const fleetSpacers = { top: undefined, bottom: undefined };

/** The actor that says most about the sender now: its round while one runs, else the process. */
const fleetFocus = (r) => {
  const round = r.actors.round;
  const proc = r.actors.sender;
  return round && (round.status === "active" || !proc) ? round : proc;
};

/** A time on the sender's clock as one on the receiver's (which `now()` follows): the report's `at` against when the receiver got it. */
const senderToLocal = (r, report, t) => t - (report.at - r.seenAt);

const fleetCells = (r) => {
  const focus = fleetFocus(r);
  const round = r.actors.round;
  const proc = r.actors.sender;
  const shown = focus ? `${focus === round ? "round " : ""}${focus.state}${focus.status === "active" ? "" : ` (${focus.status})`}` : "";
  const file = round?.file
    ? `${round.file.name} (${round.file.part} ${round.file.partNumber}/${round.file.parts})${round.progress ? ` · ${round.progress.done}/${round.progress.total} files` : ""}`
    : round?.progress && round.status === "active"
      ? `${round.progress.done}/${round.progress.total} files`
      : "";
  const error = round?.lastError ?? proc?.lastError ?? "";
  const nextOf = focus?.next ? { report: focus, next: focus.next } : proc?.next ? { report: proc, next: proc.next } : undefined;
  const nextAt = nextOf ? senderToLocal(r, nextOf.report, nextOf.next.at) : undefined;
  const next = nextOf ? `${nextOf.next.kind} ${nextAt > now() ? `in ${duration(nextAt - now())}` : "due"}` : "";
  const conflicts = String(round?.conflicts ?? proc?.conflicts ?? 0);
  const seen = `${duration(now() - r.seenAt)} ago`;
  const stale = nextAt !== undefined ? now() > nextAt + 60_000 : now() - r.seenAt > 300_000;
  return { texts: [r.sender, r.address ?? "", shown, file, error, next, conflicts, seen], state: focus?.state.split(".")[0] ?? "", stale };
};

const fleetRowView = () => {
  const tr = el("tr");
  const cells = [];
  for (let i = 0; i < FLEET_COLUMNS; i++) {
    const td = el("td", { class: ["who", "num", "", "file", "error", "num", "num", "num"][i] || undefined });
    cells.push(td);
    tr.append(td);
  }
  return { tr, cells, id: undefined, texts: new Array(FLEET_COLUMNS).fill(""), state: "", stale: false };
};

/** Writes only what differs: a row that did not change costs a few string comparisons. */
const fillFleetRow = (view, r) => {
  if (view.id !== r.sender) {
    view.id = r.sender;
    view.tr.dataset.sender = r.sender;
  }
  const c = fleetCells(r);
  for (let i = 0; i < FLEET_COLUMNS; i++)
    if (view.texts[i] !== c.texts[i]) {
      view.texts[i] = c.texts[i];
      view.cells[i].textContent = c.texts[i];
      view.cells[i].title = c.texts[i];
    }
  if (view.state !== c.state) {
    view.state = c.state;
    view.tr.dataset.state = c.state;
  }
  if (view.stale !== c.stale) {
    view.stale = c.stale;
    view.cells[7].classList.toggle("stale", c.stale);
  }
  view.tr.classList.toggle("selected", r.sender === state.fleetSelected);
};

const byId = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Keeps `fleetOrder` sorted through the changes of the last update. */
const reorderFleet = () => {
  if (state.fleetAll) {
    state.fleetAll = false;
    state.fleetChanged.clear();
    fleetOrder = [...state.fleet.keys()].sort(byId);
    return fleetOrder.length;
  }
  for (const id of state.fleetChanged) {
    let lo = 0;
    let hi = fleetOrder.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fleetOrder[mid] < id) lo = mid + 1;
      else hi = mid;
    }
    const present = fleetOrder[lo] === id;
    if (present && !state.fleet.has(id)) fleetOrder.splice(lo, 1);
    if (!present && state.fleet.has(id)) fleetOrder.splice(lo, 0, id);
  }
  const touched = state.fleetChanged.size;
  state.fleetChanged.clear();
  return touched;
};

/**
 * Draws the rows in view only: a thousand senders cost the browser no more layout than thirty.
 * The spacers above and below keep the scroll bar true to the whole fleet.
 */
const renderFleet = (tick) => {
  const panes = $("#fleet-panes");
  if (!state.fleet) {
    panes.hidden = true;
    return;
  }
  panes.hidden = false;
  const t0 = performance.now();
  const changed = reorderFleet();
  const body = $("#fleet-table tbody");
  if (!fleetSpacers.top) {
    const spacer = () => {
      const tr = el("tr", { class: "spacer", "aria-hidden": "true" });
      tr.append(el("td", { colspan: FLEET_COLUMNS }));
      return tr;
    };
    fleetSpacers.top = spacer();
    fleetSpacers.bottom = spacer();
    body.replaceChildren(fleetSpacers.top, fleetSpacers.bottom);
  }
  const box = $(".fleet-box");
  const rowHeight = fleetRowHeight || 25;
  const first = Math.max(0, Math.floor(box.scrollTop / rowHeight) - FLEET_OVERSCAN);
  const count = Math.max(0, Math.min(fleetOrder.length - first, Math.ceil((box.clientHeight || 520) / rowHeight) + 2 * FLEET_OVERSCAN));
  while (fleetPool.length < count) {
    const view = fleetRowView();
    fleetPool.push(view);
    body.insertBefore(view.tr, fleetSpacers.bottom);
  }
  while (fleetPool.length > count) fleetPool.pop().tr.remove();
  for (let i = 0; i < count; i++) fillFleetRow(fleetPool[i], state.fleet.get(fleetOrder[first + i]));
  fleetSpacers.top.firstChild.style.height = `${first * rowHeight}px`;
  fleetSpacers.bottom.firstChild.style.height = `${(fleetOrder.length - first - count) * rowHeight}px`;
  if (!fleetRowHeight && fleetPool.length > 0) fleetRowHeight = fleetPool[0].tr.getBoundingClientRect().height || 0;
  $("#fleet-empty").hidden = state.fleet.size > 0;
  if (changed > 0 || state.fleetCountsStale) {
    state.fleetCountsStale = false;
    const counts = new Map();
    for (const r of state.fleet.values()) {
      const s = fleetFocus(r)?.state.split(".")[0] ?? "?";
      counts.set(s, (counts.get(s) || 0) + 1);
    }
    $("#fleet-counts").textContent = state.fleet.size
      ? `${state.fleet.size} sender${state.fleet.size === 1 ? "" : "s"}: ${[...counts]
          .sort((a, b) => b[1] - a[1])
          .map(([s, n]) => `${n} ${s}`)
          .join(", ")}`
      : "";
  }
  if (changed > 0 || tick)
    keep(timings.renders, { at: performance.now(), ms: performance.now() - t0, rows: fleetOrder.length, changed, drawn: count, tick });
};

const light = (view, report) => {
  const top = report ? report.state.split(".")[0] : undefined;
  for (const [id, g] of view.nodes) {
    g.classList.toggle("active", id === top && report.status === "active");
    g.classList.toggle("ended", id === top && report.status !== "active");
  }
};

const renderFleetDetail = () => {
  const box = $("#fleet-detail");
  const r = state.fleet && state.fleetSelected ? state.fleet.get(state.fleetSelected) : undefined;
  box.hidden = !r;
  if (!r) return;
  $("#fleet-detail-title").textContent = `sender ${r.sender}${r.address ? ` @ ${r.address}` : ""}`;
  const rows = [["last seen", `${duration(now() - r.seenAt)} ago (${clock(r.seenAt)})`]];
  for (const [name, a] of [
    ["process", r.actors.sender],
    ["round", r.actors.round],
  ]) {
    if (!a) continue;
    rows.push([name, `${a.state}${a.status === "active" ? "" : ` (${a.status})`}, since ${clock(senderToLocal(r, a, a.since))}`]);
    if (a.file) rows.push([`${name}: file`, `${a.file.name} (${a.file.part} ${a.file.partNumber}/${a.file.parts})`]);
    if (a.progress) rows.push([`${name}: files`, `${a.progress.done} of ${a.progress.total} done`]);
    if (a.sent !== undefined) rows.push([`${name}: counts`, `sent ${a.sent} · failed ${a.failed ?? 0} · conflicts ${a.conflicts ?? 0}`]);
    if (a.rounds !== undefined) rows.push([`${name}: rounds`, String(a.rounds)]);
    if (a.lastError) rows.push([`${name}: last error`, a.lastError]);
    if (a.next) rows.push([`${name}: next ${a.next.kind}`, `by ${clock(senderToLocal(r, a, a.next.at))}`]);
  }
  fillDl($("#fleet-detail-facts"), rows);
  const charts = $("#fleet-charts");
  const want = [
    ["sender", r.actors.sender],
    ["senderRound", r.actors.round],
  ]
    .map(([machine, report]) => ({ machine, report, view: chartView(machine, "fleet") }))
    .filter((c) => c.view);
  if (charts.childElementCount !== want.length * 2) {
    charts.replaceChildren(
      ...want.flatMap((c) => {
        const holder = el("div", { class: "chart" });
        holder.append(c.view.root);
        return [el("h3", {}, c.machine === "sender" ? "sender process" : "current round"), holder];
      }),
    );
  }
  for (const c of want) light(c.view, c.report);
};

const selectSender = (id) => {
  state.fleetSelected = id;
  history.replaceState(null, "", `#sender=${encodeURIComponent(id)}`);
  state.dirty = true;
};

const select = (id) => {
  state.selected = id;
  history.replaceState(null, "", `#actor=${encodeURIComponent(id)}`);
  state.dirty = true;
};

/** With nothing chosen, follow the newest live actor: the one most likely being debugged. */
const autoSelect = () => {
  if (state.selected && state.actors.has(state.selected)) return;
  const live = ordered()
    .map(([a]) => a)
    .filter((a) => a.endedAt === undefined);
  const pick = live.find((a) => a.machine !== "sender") ?? live[0] ?? ordered()[0]?.[0];
  state.selected = pick?.id;
};

let tick = false;

const render = () => {
  if (state.dirty) {
    state.dirty = false;
    autoSelect();
    renderHeader();
    renderList();
    renderDetail();
    renderFleet(tick);
    renderFleetDetail();
    tick = false;
  }
  requestAnimationFrame(render);
};

// Timers ("in this state for 4m 12s") move even when nothing else does.
setInterval(() => {
  state.dirty = true;
  tick = true;
}, 1000);

// Rows are rebuilt on every update: select on pointerdown, which a rebuild cannot split in two.
$("#actors tbody").addEventListener("pointerdown", (e) => {
  const row = e.target instanceof Element ? e.target.closest("tr[data-actor-id]") : null;
  if (row) select(row.dataset.actorId);
});

$(".fleet-box").addEventListener("scroll", () => (state.dirty = true), { passive: true });
$("#fleet-table tbody").addEventListener("pointerdown", (e) => {
  const row = e.target instanceof Element ? e.target.closest("tr[data-sender]") : null;
  if (row) selectSender(row.dataset.sender);
});

fetch("api/charts")
  .then((r) => r.json())
  .then((charts) => {
    for (const c of charts) state.charts.set(c.machine, c);
    state.dirty = true;
  })
  .catch((e) => console.error("charts", e));
connect();
requestAnimationFrame(render);
