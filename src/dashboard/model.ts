// The dashboard's board: live actors, their states and transition logs, reduced from inspection events.
import { eventLabel } from "../machines/diagram.js";
import { stateText, type MachineStatus } from "../machines/snapshot.js";
import { topStateOf } from "./chart.js";
import { detailsOf, type ActorDetails } from "./summaries.js";

export type ActorStatus = MachineStatus;

/**
 * One transition, or a run of the same one: a chunk stream re-enters `receiving` hundreds of
 * times a second, which is one line "progress ×1234", not a flood.
 */
export interface LogEntry {
  readonly seq: number;
  /** Board revision of its last change: a client holding revision r needs entries with rev > r. */
  rev: number;
  /** When it last happened. */
  at: number;
  readonly event: string;
  readonly from: string;
  readonly to: string;
  /** Top-level states passed through, from first to last (eventless steps included). */
  readonly path: ReadonlyArray<string>;
  count: number;
}

export interface ActorView {
  readonly id: string;
  readonly machine: string;
  readonly parent: string | undefined;
  readonly startedAt: number;
  readonly state: string;
  /** The top-level state: the box the chart highlights. */
  readonly top: string;
  readonly status: ActorStatus;
  /** Since when the actor has been in `state` (a self-transition does not reset it). */
  readonly stateSince: number;
  readonly updatedAt: number;
  readonly endedAt: number | undefined;
  readonly lastEvent: string;
  readonly details: ActorDetails;
  readonly rev: number;
  /** Board revision at which this actor appeared: newer than a delta's `since` means "replace, do not merge". */
  readonly born: number;
  readonly log: ReadonlyArray<LogEntry>;
}

export interface BoardState {
  readonly now: number;
  readonly rev: number;
  readonly actors: ReadonlyArray<ActorView>;
}

export interface BoardDelta extends BoardState {
  readonly since: number;
  /** True when the client is too far behind to patch: `actors` is then every actor. */
  readonly full: boolean;
  /** Actors dropped from the board (ended long enough ago). */
  readonly removed: ReadonlyArray<string>;
}

export interface Observation {
  readonly machine: string;
  readonly parent?: string | undefined;
  readonly value: unknown;
  readonly context: unknown;
  readonly status: ActorStatus;
  readonly event: string;
}

export interface BoardOptions {
  readonly now?: () => number;
  /** Transitions kept per actor. */
  readonly logSize?: number;
  /** Ended actors kept on the board for a post-mortem look, newest first. */
  readonly keepEnded?: number;
}

export interface BoardListener {
  /** Every observation of an actor, with its previous context (undefined at the first one). */
  readonly observed?: (actor: ActorView, before: unknown, context: unknown) => void;
  readonly ended?: (actor: ActorView) => void;
}

interface Entry {
  view: ActorView;
  log: LogEntry[];
  context: unknown;
  /** States passed through since the last observation (microsteps), for the log's path. */
  steps: string[];
}

const MAX_REMOVED = 1000;

/**
 * The live actors of one process, reduced from inspection events to a small record each, with a
 * revision counter so a client can ask for what changed since the revision it holds.
 */
export class ActorBoard {
  private readonly actors = new Map<string, Entry>();
  private readonly removed: { id: string; rev: number }[] = [];
  /** Removals older than the kept list: a client behind this revision gets a full state. */
  private forgottenUpTo = 0;
  private readonly listeners: BoardListener[] = [];
  private seq = 0;
  private revision = 0;
  readonly now: () => number;
  private readonly logSize: number;
  private readonly keepEnded: number;

  constructor(options: BoardOptions = {}) {
    this.now = options.now ?? Date.now;
    this.logSize = options.logSize ?? 40;
    this.keepEnded = options.keepEnded ?? 20;
  }

  get rev(): number {
    return this.revision;
  }

  listen(l: BoardListener): void {
    this.listeners.push(l);
  }

  /** A microstep: the actor passed through `value` on its way to the next observation. */
  step(id: string, value: unknown): void {
    const e = this.actors.get(id);
    const top = topStateOf(value);
    if (e && e.steps[e.steps.length - 1] !== top) e.steps.push(top);
  }

  observe(id: string, o: Observation): void {
    const at = this.now();
    const rev = ++this.revision;
    const existing = this.actors.get(id);
    const state = stateText(o.value);
    const top = topStateOf(o.value);
    const event = o.event === "xstate.init" ? "start" : eventLabel(o.event);
    const before = existing?.view;
    const ended = o.status !== "active";
    const view: ActorView = {
      id,
      machine: o.machine,
      parent: o.parent ?? before?.parent,
      startedAt: before?.startedAt ?? at,
      state,
      top,
      status: o.status,
      stateSince: before && before.state === state ? before.stateSince : at,
      updatedAt: at,
      endedAt: before?.endedAt ?? (ended ? at : undefined),
      lastEvent: event,
      details: detailsOf(o.machine, o.context, before?.details),
      rev,
      born: before?.born ?? rev,
      log: [],
    };
    const entry: Entry = existing ?? { view, log: [], context: undefined, steps: [] };
    const changed = !before || before.state !== state || before.status !== o.status || entry.context !== o.context;
    if (changed) this.record(entry, event, before?.top ?? "", top, rev, at);
    entry.steps = [];
    const previous = entry.context;
    entry.view = view;
    entry.context = o.context;
    this.actors.set(id, entry);
    for (const l of this.listeners) l.observed?.(this.viewOf(entry), previous, o.context);
    if (ended && before?.endedAt === undefined) this.finish(entry);
  }

  /** The actor was stopped from outside (no final snapshot tells it). */
  end(id: string, status: ActorStatus = "stopped"): void {
    const e = this.actors.get(id);
    if (!e || e.view.endedAt !== undefined) return;
    const at = this.now();
    e.view = { ...e.view, status: e.view.status === "active" ? status : e.view.status, endedAt: at, updatedAt: at, rev: ++this.revision };
    this.finish(e);
  }

  private finish(e: Entry): void {
    // A parent leaving the state that invoked a child stops the child without a last snapshot.
    for (const child of [...this.actors.values()])
      if (child.view.parent === e.view.id && child.view.endedAt === undefined) this.end(child.view.id);
    for (const l of this.listeners) l.ended?.(this.viewOf(e));
    // A round's context holds its whole scan: an ended actor keeps only its small view.
    e.context = undefined;
    this.prune();
  }

  private record(e: Entry, event: string, from: string, to: string, rev: number, at: number): void {
    const all = [from, ...e.steps, to].filter((s) => s !== "");
    const path = all.filter((s, i) => i === 0 || s !== all[i - 1]);
    if (path.length === 1 && from === to) path.push(to);
    const last = e.log[e.log.length - 1];
    if (last && last.event === event && last.from === from && last.to === to) {
      last.count++;
      last.at = at;
      last.rev = rev;
      return;
    }
    e.log.push({ seq: ++this.seq, rev, at, event, from, to, path, count: 1 });
    if (e.log.length > this.logSize) e.log.splice(0, e.log.length - this.logSize);
  }

  private prune(): void {
    const ended = [...this.actors.values()]
      .filter((e) => e.view.endedAt !== undefined)
      .sort((a, b) => (b.view.endedAt ?? 0) - (a.view.endedAt ?? 0));
    for (const e of ended.slice(this.keepEnded)) {
      this.actors.delete(e.view.id);
      this.removed.push({ id: e.view.id, rev: ++this.revision });
    }
    if (this.removed.length > MAX_REMOVED) {
      const dropped = this.removed.splice(0, this.removed.length - MAX_REMOVED);
      this.forgottenUpTo = dropped[dropped.length - 1]?.rev ?? this.forgottenUpTo;
    }
  }

  private viewOf(e: Entry, since = 0): ActorView {
    return { ...e.view, log: e.log.filter((l) => l.rev > since).map((l) => ({ ...l })) };
  }

  get(id: string): ActorView | undefined {
    const e = this.actors.get(id);
    return e ? this.viewOf(e) : undefined;
  }

  /** Every actor with its whole log: what a client gets when it connects. */
  state(): BoardState {
    return { now: this.now(), rev: this.revision, actors: [...this.actors.values()].map((e) => this.viewOf(e)) };
  }

  /** What changed after revision `since`: changed actors with their new log entries, and removals. */
  delta(since: number): BoardDelta {
    if (since < this.forgottenUpTo) return { ...this.state(), since, full: true, removed: [] };
    const actors = [...this.actors.values()]
      .filter((e) => e.view.rev > since || e.log.some((l) => l.rev > since))
      .map((e) => this.viewOf(e, since));
    // An id that was dropped and came back is sent whole (its `born` is newer), not as a removal.
    const removed = [...new Set(this.removed.filter((r) => r.rev > since && !this.actors.has(r.id)).map((r) => r.id))];
    return { now: this.now(), rev: this.revision, since, full: false, actors, removed };
  }

  /** Live actors per machine and state: "3 receiving, 1 ready". */
  countByState(): ReadonlyArray<{ readonly machine: string; readonly state: string; readonly count: number }> {
    const counts = new Map<string, { machine: string; state: string; count: number }>();
    for (const e of this.actors.values()) {
      if (e.view.endedAt !== undefined) continue;
      const k = `${e.view.machine}\u0000${e.view.top}`;
      const c = counts.get(k) ?? { machine: e.view.machine, state: e.view.top, count: 0 };
      c.count++;
      counts.set(k, c);
    }
    return [...counts.values()];
  }
}
