// Reports the sender's actors (the process and its current round) to the receiver's fleet view:
// the latest state of each, at most a few times a second, fire-and-forget.
import type { NatsConnection } from "@nats-io/transport-node";
import type { InspectionEvent } from "xstate";
import { backoffDelay, fileRetry, handshakeRetry } from "../../machines/backoff.js";
import type { LifecycleContext } from "../../machines/senderLifecycle.js";
import type { SenderRoundContext } from "../../machines/senderRound.js";
import { refKey } from "../../machines/senderTypes.js";
import { machineSnapshot, stateText, type MachineSnapshotLike } from "../../machines/snapshot.js";
import { maxFleetReportBytes, type FleetReport } from "../../protocol/fleet.js";
import { encodeJson } from "../../protocol/messages.js";
import { fleetSubject } from "../../protocol/subjects.js";

/** Least time between two reports of one actor; the report sent is always the newest state. */
export const fleetReportIntervalMs = 250;

/** Keeps a report within the receiver's size cap whatever the names and messages hold. */
const clip = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

const lifecycleReport = (c: LifecycleContext, state: string, since: number): Partial<FleetReport> => {
  const last = c.lastSummary;
  return {
    rounds: c.rounds,
    ...(state === "waiting" ? { next: { kind: "round" as const, at: since + c.periodMs } } : {}),
    ...(last
      ? {
          sent: last.sent.length,
          failed: last.failed.length,
          conflicts: last.conflicts.length,
          ...(last.roundError ? { lastError: clip(last.roundError, 240) } : {}),
        }
      : {}),
  };
};

const roundReport = (c: SenderRoundContext, state: string, since: number): Partial<FleetReport> => {
  const unit = c.units[c.index];
  const part = unit?.parts[Math.min(c.partIndex, Math.max(0, unit.parts.length - 1))];
  // The jittered wait lies between half and all of the capped delay: the report gives the latest moment.
  const next =
    state === "retryBackoff"
      ? { kind: "retry" as const, at: since + backoffDelay(fileRetry, c.attempts) }
      : state === "handshakeBackoff"
        ? { kind: "hello" as const, at: since + backoffDelay(handshakeRetry, c.handshakes) }
        : undefined;
  const failed = c.summary.failed[c.summary.failed.length - 1];
  const lastError = c.lastFailure
    ? `${c.lastFailure.kind}${c.lastFailure.code === undefined ? "" : ` (${c.lastFailure.code})`}: ${c.lastFailure.message}`
    : failed
      ? `${failed.file}: ${failed.reason}`
      : c.summary.roundError;
  return {
    ...(unit
      ? {
          file: {
            name: clip(refKey(unit.ref), 200),
            part: part?.kind ?? "",
            partNumber: Math.min(c.partIndex + 1, unit.parts.length),
            parts: unit.parts.length,
          },
        }
      : {}),
    progress: { done: Math.min(c.index, c.units.length), total: c.units.length },
    ...(lastError ? { lastError: clip(lastError, 240) } : {}),
    ...(next ? { next } : {}),
    conflicts: Object.keys(c.conflicted).length,
    sent: c.summary.sent.length,
    failed: c.summary.failed.length,
  };
};

/**
 * The report as JSON within the receiver's cap: JSON escapes control characters six bytes each, so
 * long names and messages are cut shorter, or left out, until it fits.
 */
const encodeWithin = (report: FleetReport): Uint8Array => {
  const whole = encodeJson(report);
  if (whole.length <= maxFleetReportBytes) return whole;
  const { lastError, file, ...rest } = report;
  const short = encodeJson({
    ...rest,
    ...(file ? { file: { ...file, name: clip(file.name, 60) } } : {}),
    ...(lastError ? { lastError: clip(lastError, 60) } : {}),
  });
  return short.length <= maxFleetReportBytes ? short : encodeJson(rest);
};

interface Tracked {
  readonly actor: FleetReport["actor"];
  readonly machine: string;
  state: string;
  since: number;
  snapshot: MachineSnapshotLike;
  lastSent: number;
  timer: NodeJS.Timeout | undefined;
  /** A newer snapshot than the last report. */
  dirty: boolean;
}

export interface FleetReporter {
  /** The sender's `inspect` hook. */
  readonly inspect: (e: InspectionEvent) => void;
  /** Sends what is still waiting for its slot, then stops: called before the connection drains. */
  readonly close: () => void;
}

/**
 * Publishes on the sender's own fleet subject. A report never waits and never fails a round: a
 * closed connection or a server that refuses the subject only costs the fleet view a line.
 */
export const fleetReporter = (
  nc: NatsConnection,
  group: string,
  senderId: string,
  log: (line: string) => void,
  now: () => number = Date.now,
): FleetReporter => {
  const subject = fleetSubject(group, senderId);
  const actors = new Map<FleetReport["actor"], Tracked>();
  let closed = false;
  let complained = false;

  const send = (t: Tracked) => {
    t.timer = undefined;
    if (!t.dirty || closed) return;
    t.dirty = false;
    t.lastSent = now();
    const s = t.snapshot;
    const extra =
      t.machine === "sender"
        ? lifecycleReport(s.context as LifecycleContext, t.state, t.since)
        : roundReport(s.context as SenderRoundContext, t.state, t.since);
    const report: FleetReport = {
      actor: t.actor,
      machine: t.machine,
      state: clip(t.state, 128),
      status: s.status,
      at: t.lastSent,
      since: t.since,
      ...extra,
    };
    try {
      nc.publish(subject, encodeWithin(report));
    } catch (e) {
      // Said once: the fleet view is a convenience, the sync goes on without it.
      if (!complained) log(`fleet report not sent (${e instanceof Error ? e.message : String(e)}); the sync goes on`);
      complained = true;
    }
  };

  const inspect = (e: InspectionEvent) => {
    if (e.type !== "@xstate.snapshot" || closed) return;
    const snap = machineSnapshot(e.snapshot);
    if (!snap) return;
    const machine = snap.machine.id;
    const actor: FleetReport["actor"] | undefined =
      machine === "sender" && e.rootId === e.actorRef.sessionId ? "sender" : machine === "senderRound" ? "round" : undefined;
    if (!actor) return;
    const at = now();
    const state = stateText(snap.value);
    let t = actors.get(actor);
    if (!t) {
      t = { actor, machine, state, since: at, snapshot: snap, lastSent: 0, timer: undefined, dirty: true };
      actors.set(actor, t);
    }
    // A new round starts in another state than the last one ended in, so its time in state starts again too.
    if (t.state !== state) {
      t.state = state;
      t.since = at;
    }
    t.snapshot = snap;
    t.dirty = true;
    if (t.timer) return;
    const wait = t.lastSent + fleetReportIntervalMs - at;
    const tracked = t;
    if (wait <= 0) send(tracked);
    else {
      t.timer = setTimeout(() => send(tracked), wait);
      t.timer.unref();
    }
  };

  const close = () => {
    for (const t of actors.values()) {
      clearTimeout(t.timer);
      send(t);
    }
    closed = true;
  };

  return { inspect, close };
};
