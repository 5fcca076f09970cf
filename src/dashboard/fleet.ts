// The receiver's fleet view: one row per sender, built from the fleet bucket's records, with
// revisions so a browser gets only the senders that changed since the revision it holds.
import type { FleetChange } from "../actors/receiver/fleet.js";
import type { FleetReport } from "../protocol/fleet.js";

export interface FleetRow {
  readonly sender: string;
  /** The address the NATS server saw for the sender's latest session, when a receiver of the group admitted one. */
  readonly address: string | undefined;
  /** When a receiver last heard from the sender (receiver's clock). */
  readonly seenAt: number;
  readonly actors: { readonly sender?: FleetReport; readonly round?: FleetReport };
  readonly rev: number;
}

export interface FleetState {
  readonly now: number;
  readonly rev: number;
  readonly rows: ReadonlyArray<FleetRow>;
}

export interface FleetDelta extends FleetState {
  readonly since: number;
  /** True when the client was too far behind to patch: `rows` is then every row. */
  readonly full: boolean;
  readonly removed: ReadonlyArray<string>;
}

const MAX_REMOVED = 1000;

export class FleetBoard {
  private readonly rows = new Map<string, FleetRow>();
  private readonly removed: { sender: string; rev: number }[] = [];
  private forgottenUpTo = 0;
  private revision = 0;

  constructor(private readonly now: () => number = Date.now) {}

  get rev(): number {
    return this.revision;
  }

  get size(): number {
    return this.rows.size;
  }

  apply(c: FleetChange): void {
    if (c.kind === "put") {
      const r = c.record;
      const before = this.rows.get(r.sender);
      const old = before?.actors[r.report.actor];
      // Receivers of a group share the reports; one may store an older one after a newer one.
      if (old && old.at > r.report.at) return;
      this.rows.set(r.sender, {
        sender: r.sender,
        address: r.address ?? before?.address,
        seenAt: Math.max(r.seenAt, before?.seenAt ?? 0),
        actors: { ...before?.actors, [r.report.actor]: r.report },
        rev: ++this.revision,
      });
      return;
    }
    const before = this.rows.get(c.sender);
    if (!before) return;
    const actors = { ...before.actors };
    delete actors[c.actor as keyof typeof actors];
    if (Object.keys(actors).length > 0) {
      this.rows.set(c.sender, { ...before, actors, rev: ++this.revision });
      return;
    }
    this.rows.delete(c.sender);
    this.removed.push({ sender: c.sender, rev: ++this.revision });
    if (this.removed.length > MAX_REMOVED) {
      const dropped = this.removed.splice(0, this.removed.length - MAX_REMOVED);
      this.forgottenUpTo = dropped[dropped.length - 1]?.rev ?? this.forgottenUpTo;
    }
  }

  get(sender: string): FleetRow | undefined {
    return this.rows.get(sender);
  }

  state(): FleetState {
    return { now: this.now(), rev: this.revision, rows: [...this.rows.values()] };
  }

  delta(since: number): FleetDelta {
    if (since < this.forgottenUpTo) return { ...this.state(), since, full: true, removed: [] };
    const rows = [...this.rows.values()].filter((r) => r.rev > since);
    const removed = [...new Set(this.removed.filter((r) => r.rev > since && !this.rows.has(r.sender)).map((r) => r.sender))];
    return { now: this.now(), rev: this.revision, since, full: false, rows, removed };
  }
}
