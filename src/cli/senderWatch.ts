// What a running sender is doing, kept from its actors' snapshots: for `tsync status` and for the
// progress of `tsync sender --once`.
import type { InspectionEvent } from "xstate";
import type { LifecycleContext } from "../machines/senderLifecycle.js";
import type { SenderRoundContext } from "../machines/senderRound.js";
import { refKey, roundSucceeded, type RoundSummary } from "../machines/senderTypes.js";
import type { SyncUnit } from "../protocol/parts.js";

export interface FileProgress {
  readonly name: string;
  /** 1-based. */
  readonly number: number;
  readonly size: number;
  readonly done: number;
}

/** Where the round stands, in files and bytes; bytes of the file in hand are counted as they are written to the connection. */
export interface RoundProgress {
  readonly state: string;
  readonly files: number;
  readonly filesDone: number;
  readonly totalBytes: number;
  readonly doneBytes: number;
  readonly file: FileProgress | undefined;
}

export interface LastRound {
  readonly endedAt: string;
  readonly ok: boolean;
  readonly sent: number;
  readonly bytesSent: number;
  readonly skipped: number;
  readonly failed: number;
  readonly conflicts: number;
  readonly deleted: number;
  readonly error: string | undefined;
}

export interface SenderStatus {
  readonly role: "sender";
  readonly sender: string;
  readonly dataDirectory: string;
  readonly receiver: string;
  /** The process's machine: syncing, waiting, or once (a single round). */
  readonly state: string;
  readonly rounds: number;
  readonly round: (RoundProgress & { readonly startedAt: string }) | undefined;
  readonly lastRound: LastRound | undefined;
  /** When the next round starts by the period (undefined mid-round, and with --once); a sealed file can start it sooner. */
  readonly nextRoundAt: string | undefined;
  /** Files not yet synced: the running round's still to do, or else what the last round left. */
  readonly pending: { readonly files: number; readonly bytes: number; readonly asOf: "this round" | "last round" | "no round yet" };
  /** Files that failed every retry (in the running round so far, or the last): the next round tries them again. */
  readonly quarantined: ReadonlyArray<{ readonly file: string; readonly reason: string; readonly attempts: number }>;
  readonly conflicts: ReadonlyArray<{ readonly sg: string; readonly message: string }>;
}

const unitBytes = (u: SyncUnit): number => u.parts.reduce((n, p) => n + p.size, 0);

interface Snap {
  readonly value?: unknown;
  readonly context?: unknown;
  readonly status?: string;
  readonly output?: unknown;
  readonly machine?: { readonly id?: string };
}

/**
 * Follows the sender's lifecycle and round actors through inspection. `bytesWritten` is a counter
 * of bytes written to the receiver's connection (the NATS client's own), which gives the progress
 * inside the file in hand between the round's steps.
 */
export class SenderWatch {
  private round: { context: SenderRoundContext; value: string; startedAt: number } | undefined;
  /** Running sums of unit sizes, for the units of the round in hand. */
  private sums: { units: ReadonlyArray<SyncUnit>; before: number[] } | undefined;
  private part: { index: number; partIndex: number; counterAt: number } | undefined;
  private last: { summary: RoundSummary; endedAt: number; left: { files: number; bytes: number } } | undefined;
  private lifecycle: { value: string; since: number; context: LifecycleContext } | undefined;

  constructor(
    private readonly bytesWritten: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  readonly inspect = (e: InspectionEvent): void => {
    if (e.type !== "@xstate.snapshot") return;
    const snap = e.snapshot as Snap;
    const machine = snap.machine?.id;
    const value = typeof snap.value === "string" ? snap.value : JSON.stringify(snap.value ?? "");
    if (machine === "sender") {
      const since = this.lifecycle?.value === value ? this.lifecycle.since : this.now();
      this.lifecycle = { value, since, context: snap.context as LifecycleContext };
    } else if (machine === "senderRound") {
      const context = snap.context as SenderRoundContext;
      if (snap.status === "active") {
        this.round = { context, value, startedAt: this.round?.startedAt ?? this.now() };
        this.trackPart(context);
      } else this.finish(context, (snap.output as RoundSummary | undefined) ?? context.summary);
    }
  };

  private trackPart(c: SenderRoundContext): void {
    if (this.part?.index !== c.index || this.part.partIndex !== c.partIndex)
      this.part = { index: c.index, partIndex: c.partIndex, counterAt: this.bytesWritten() };
  }

  private finish(c: SenderRoundContext, summary: RoundSummary): void {
    const failed = new Set(summary.failed.map((f) => f.file));
    const conflicted = new Set(summary.conflicts.map((x) => x.sg));
    const left = c.units.filter((u) => failed.has(refKey(u.ref)) || conflicted.has(u.ref.sg));
    this.last = { summary, endedAt: this.now(), left: { files: left.length, bytes: left.reduce((n, u) => n + unitBytes(u), 0) } };
    this.round = undefined;
    this.sums = undefined;
    this.part = undefined;
  }

  /** Bytes of the units before `index`, computed once per scan. */
  private bytesBefore(units: ReadonlyArray<SyncUnit>, index: number): number {
    if (this.sums?.units !== units) {
      const before = [0];
      for (const u of units) before.push((before[before.length - 1] ?? 0) + unitBytes(u));
      this.sums = { units, before };
    }
    return this.sums.before[Math.min(index, units.length)] ?? 0;
  }

  /** The running round's progress; undefined between rounds. */
  progress(): RoundProgress | undefined {
    const r = this.round;
    if (!r) return undefined;
    const c = r.context;
    const totalBytes = this.bytesBefore(c.units, c.units.length);
    const unit = c.units[c.index];
    let file: FileProgress | undefined;
    let doneBytes = this.bytesBefore(c.units, c.index);
    if (unit) {
      const size = unitBytes(unit);
      const partsBefore = unit.parts.slice(0, c.partIndex).reduce((n, p) => n + p.size, 0);
      const partSize = unit.parts[c.partIndex]?.size ?? 0;
      const inPart = this.part ? Math.max(0, Math.min(partSize, this.bytesWritten() - this.part.counterAt)) : 0;
      const done = Math.min(size, partsBefore + inPart);
      file = { name: refKey(unit.ref), number: c.index + 1, size, done };
      doneBytes += done;
    }
    return { state: r.value, files: c.units.length, filesDone: Math.min(c.index, c.units.length), totalBytes, doneBytes, file };
  }

  status(about: { readonly sender: string; readonly dataDirectory: string; readonly receiver: string }): SenderStatus {
    const progress = this.progress();
    const last = this.last;
    const s = last?.summary;
    const life = this.lifecycle;
    const current = this.round?.context.summary;
    const waiting = life?.value === "waiting";
    return {
      role: "sender",
      ...about,
      state: life ? life.value : "once",
      rounds: life?.context.rounds ?? (last ? 1 : 0),
      round: progress && this.round ? { ...progress, startedAt: new Date(this.round.startedAt).toISOString() } : undefined,
      lastRound:
        last && s
          ? {
              endedAt: new Date(last.endedAt).toISOString(),
              ok: roundSucceeded(s),
              sent: s.sent.length,
              bytesSent: s.bytesSent,
              skipped: s.skipped.length,
              failed: s.failed.length,
              conflicts: s.conflicts.length,
              deleted: s.deleted.length,
              error: s.roundError,
            }
          : undefined,
      nextRoundAt: waiting && life ? new Date(life.since + life.context.periodMs).toISOString() : undefined,
      pending: progress
        ? { files: progress.files - progress.filesDone, bytes: progress.totalBytes - progress.doneBytes, asOf: "this round" }
        : last
          ? { ...last.left, asOf: "last round" }
          : { files: 0, bytes: 0, asOf: "no round yet" },
      quarantined: (current ?? s)?.failed ?? [],
      conflicts: (current ?? s)?.conflicts ?? [],
    };
  }
}
