import type { NatsConnection } from "@nats-io/transport-node";
import { Result } from "effect";
import fc from "fast-check";
import { afterEach, beforeEach, expect, test, vi } from "vitest";
import type { InspectionEvent } from "xstate";
import { fleetReporter, fleetReportIntervalMs } from "../../src/actors/sender/fleetReporter.js";
import { fileRetry, backoffDelay } from "../../src/machines/backoff.js";
import { emptySummary } from "../../src/machines/senderTypes.js";
import { decodeFleetReport, maxFleetReportBytes, type FleetReport } from "../../src/protocol/fleet.js";

// The reporter alone, fed inspection events as XState sends them, publishing into a stand-in
// connection: throttled to the latest state, bounded in size, and never in the round's way.

const published: { subject: string; data: Uint8Array }[] = [];
const nc = (fail = false) =>
  ({
    publish: (subject: string, data: Uint8Array) => {
      if (fail) throw new Error("connection closed");
      published.push({ subject, data });
    },
  }) as unknown as NatsConnection;

let clock = 0;
beforeEach(() => {
  vi.useFakeTimers();
  published.length = 0;
  clock = 1_000_000;
});
afterEach(() => {
  vi.useRealTimers();
});

const roundContext = (over: Record<string, unknown> = {}) => ({
  maxRetries: 3,
  maxHandshakes: 3,
  units: [
    {
      ref: { sg: "root.north", vg: "0", tp: "0", name: "1-1-0-0.tsfile" },
      parts: [
        { kind: "resource", size: 10 },
        { kind: "tsfile", size: 1000 },
      ],
    },
  ],
  deletions: [],
  index: 0,
  attempts: 1,
  handshakes: 1,
  session: undefined,
  partIndex: 1,
  parts: [],
  lastFailure: undefined,
  conflicted: {},
  schemaDone: true,
  viaOffer: {},
  summary: emptySummary,
  ...over,
});

const snapshot = (value: string, context: unknown, machine = "senderRound", root = false): InspectionEvent =>
  ({
    type: "@xstate.snapshot",
    rootId: root ? "x:0" : "x:1",
    actorRef: { sessionId: root ? "x:0" : "x:1" },
    snapshot: { value, context, status: "active", machine: { id: machine } },
    event: { type: "x" },
  }) as unknown as InspectionEvent;

const reports = (): FleetReport[] =>
  published.map((p) => {
    const d = decodeFleetReport(p.data);
    if (Result.isFailure(d)) throw new Error(d.failure);
    return d.success;
  });

test("a burst of changes is one report at once and one with the latest state a throttle period later", () => {
  const r = fleetReporter(
    nc(),
    "g",
    "plant-1",
    () => undefined,
    () => clock,
  );
  for (const s of ["transferring", "partSent", "verifying", "partVerified", "loading"]) r.inspect(snapshot(s, roundContext()));
  expect(reports().map((x) => x.state)).toEqual(["transferring"]);
  clock += fleetReportIntervalMs;
  vi.advanceTimersByTime(fleetReportIntervalMs);
  expect(reports().map((x) => x.state)).toEqual(["transferring", "loading"]);
  expect(published.every((p) => p.subject === "tsync.g.fleet.plant-1")).toBe(true);
  const last = reports()[1]!;
  expect(last).toMatchObject({
    actor: "round",
    machine: "senderRound",
    file: { name: "root.north/0/0/1-1-0-0.tsfile", part: "tsfile", partNumber: 2, parts: 2 },
    progress: { done: 0, total: 1 },
  });
});

test("a wait says when it ends at the latest: a file's retry, and the process's next round", () => {
  const r = fleetReporter(
    nc(),
    "g",
    "plant-1",
    () => undefined,
    () => clock,
  );
  r.inspect(snapshot("retryBackoff", roundContext({ attempts: 2, lastFailure: { kind: "reply", code: 45, message: "digest mismatch" } })));
  r.inspect(
    snapshot(
      "waiting",
      { periodMs: 60_000, maxRetries: 3, rounds: 4, sealedDuringRound: false, lastSummary: emptySummary },
      "sender",
      true,
    ),
  );
  const [round, proc] = reports();
  expect(round).toMatchObject({
    next: { kind: "retry", at: clock + backoffDelay(fileRetry, 2) },
    lastError: "reply (45): digest mismatch",
  });
  expect(proc).toMatchObject({ actor: "sender", state: "waiting", rounds: 4, next: { kind: "round", at: clock + 60_000 } });
});

// Any letters, and control characters, which JSON writes six bytes each.
const text = fc.oneof(
  fc.string({ maxLength: 3000, unit: "grapheme" }),
  fc.string({ maxLength: 3000, unit: "binary" }),
  fc.stringMatching(/^[\x00-\x1f]{0,3000}$/),
);

test("whatever the names and messages hold, a report stays within the receiver's cap and decodes", () => {
  fc.assert(
    fc.property(text, text, (name, message) => {
      published.length = 0;
      const r = fleetReporter(
        nc(),
        "g",
        "p",
        () => undefined,
        () => clock,
      );
      const unit = { ref: { sg: name, vg: "0", tp: "0", name }, parts: [{ kind: "tsfile", size: 1 }] };
      r.inspect(snapshot("fileFailed", roundContext({ units: [unit], lastFailure: { kind: "local", message } })));
      expect(published[0]!.data.length).toBeLessThanOrEqual(maxFleetReportBytes);
      expect(reports()).toHaveLength(1);
    }),
    { numRuns: 100, examples: [["\u0001".repeat(3000), "\u0001".repeat(3000)]] },
  );
});

test("a publish that throws costs one log line and never reaches the round", () => {
  const lines: string[] = [];
  const r = fleetReporter(
    nc(true),
    "g",
    "p",
    (l) => lines.push(l),
    () => clock,
  );
  for (let i = 0; i < 5; i++) {
    clock += fleetReportIntervalMs;
    expect(() => r.inspect(snapshot(i % 2 ? "transferring" : "verifying", roundContext()))).not.toThrow();
  }
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain("fleet report not sent");
});

test("close sends the state still waiting for its slot, then nothing more", () => {
  const r = fleetReporter(
    nc(),
    "g",
    "p",
    () => undefined,
    () => clock,
  );
  r.inspect(snapshot("transferring", roundContext()));
  r.inspect(snapshot("done", roundContext()));
  r.close();
  r.inspect(snapshot("recovering", roundContext()));
  vi.advanceTimersByTime(10 * fleetReportIntervalMs);
  expect(reports().map((x) => x.state)).toEqual(["transferring", "done"]);
});
