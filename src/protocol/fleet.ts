// A sender's compact report of one of its actors, for the receiver's fleet view: small enough to
// send a few times a second per actor, and bounded so a sender cannot grow the receiver's bucket.
import { Result, Schema } from "effect";
import { decodeJson } from "./messages.js";

/** Largest report the receiver stores; a bigger one is dropped before it is parsed. */
export const maxFleetReportBytes = 2048;

/**
 * The actors a sender reports, by name: its process and its current round (each round takes the
 * name over from the one before). A closed set caps a sender's keys in the bucket at two, however
 * many names it makes up.
 */
export const fleetActors = ["sender", "round"] as const;
export const maxFleetActorsPerSender = fleetActors.length;

const Text = (max: number) => Schema.String.pipe(Schema.check(Schema.isMaxLength(max)));
const Count = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)));
const Millis = Schema.Number.pipe(Schema.check(Schema.isFinite()), Schema.check(Schema.isGreaterThanOrEqualTo(0)));

export const FleetActor = Schema.Literals(fleetActors);

export const FleetReport = Schema.Struct({
  actor: FleetActor,
  machine: Text(64),
  /** The state value as text (`transferring`, or `a.b` for a nested one). */
  state: Text(128),
  status: Schema.Literals(["active", "done", "error", "stopped"]),
  /** When the sender made the report, and since when the actor is in `state` (sender's clock). */
  at: Millis,
  since: Millis,
  file: Schema.optional(Schema.Struct({ name: Text(400), part: Text(16), partNumber: Count, parts: Count })),
  /** Files of the round done and in all. */
  progress: Schema.optional(Schema.Struct({ done: Count, total: Count })),
  lastError: Schema.optional(Text(300)),
  /** When the actor moves on by itself at the latest: a retry, a hello or the next round. */
  next: Schema.optional(Schema.Struct({ kind: Schema.Literals(["retry", "hello", "round"]), at: Millis })),
  conflicts: Schema.optional(Count),
  sent: Schema.optional(Count),
  failed: Schema.optional(Count),
  rounds: Schema.optional(Count),
});
export type FleetReport = typeof FleetReport.Type;

/** Decodes a report from the wire: too large, not JSON or not a report is a sentence for the log. */
export const decodeFleetReport = (bytes: Uint8Array): Result.Result<FleetReport, string> =>
  bytes.length > maxFleetReportBytes
    ? Result.fail(`report of ${bytes.length} bytes is over ${maxFleetReportBytes}`)
    : decodeJson(FleetReport)(bytes);

/**
 * A sender's actor as the receiver stores it: the report, stamped with when the receiver got it
 * and the address the NATS server saw for the sender's session, when a session told it.
 */
export const FleetRecord = Schema.Struct({
  sender: Schema.String.pipe(Schema.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/))),
  report: FleetReport,
  seenAt: Millis,
  address: Schema.optional(Text(64)),
});
export type FleetRecord = typeof FleetRecord.Type;
