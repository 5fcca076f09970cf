// Paths generated from the machine definitions (xstate/graph): shortest paths for the sender round
// and the receiver session, simple paths for the sender process. Each path is replayed on an actor
// of the machine, every transition taken is recorded through `inspect`, and a test fails when a
// transition of a definition is on no generated path: a new state or transition needs events that
// reach it here. docs/testing.md shows the numbers this prints.
import { afterAll, describe, expect, test } from "vitest";
import { createActor, fromPromise, SimulatedClock, type AnyStateMachine, type EventObject } from "xstate";
import { getShortestPaths, getSimplePaths } from "xstate/graph";
import { receiverSession } from "../../src/machines/receiverSession.js";
import { senderLifecycle } from "../../src/machines/senderLifecycle.js";
import { senderRound } from "../../src/machines/senderRound.js";
import { emptySummary, type SentPart, type SessionInfo, type StepFailure } from "../../src/machines/senderTypes.js";
import { replyFailure } from "../../src/protocol/failures.js";
import type { SyncUnit } from "../../src/protocol/parts.js";
import { Code, reply } from "../../src/protocol/status.js";
import { TransitionRecorder, transitionsOf } from "./coverage.js";

type Snap = { value: unknown; context: Record<string, unknown> };
/** An event with whatever payload its type carries. */
type AnyEvent = EventObject & Record<string, unknown>;
const recorder = new TransitionRecorder();

/** Actor done/error events of the state's own invokes, with the outputs and errors given for that state. */
const actorEvents = (
  types: ReadonlyArray<string>,
  outcomes: { readonly done?: ReadonlyArray<unknown>; readonly error?: ReadonlyArray<unknown> },
): AnyEvent[] =>
  types.flatMap((type): AnyEvent[] =>
    type.includes("*")
      ? []
      : type.startsWith("xstate.done.actor.")
        ? (outcomes.done ?? [undefined]).map((output) => ({ type, output }))
        : type.startsWith("xstate.error.actor.")
          ? (outcomes.error ?? [new Error("failed")]).map((error) => ({ type, error }))
          : [],
  );

/** Event types a state listens to (its own and its ancestors'). */
const typesOf = (s: unknown): string[] => [...((s as { _nodes: Array<{ ownEvents: string[] }> })._nodes ?? []).flatMap((n) => n.ownEvents)];

/** Replays each path's events on an actor whose invoked actors never answer themselves: the path's events answer for them. */
const replay = (machine: AnyStateMachine, input: unknown, paths: ReadonlyArray<{ steps: ReadonlyArray<{ event: EventObject }> }>) => {
  const silent = fromPromise(() => new Promise<never>(() => undefined));
  const actors = Object.fromEntries(Object.keys(machine.implementations.actors).map((k) => [k, silent]));
  const provided = machine.provide({ actors, actions: { write: () => undefined } } as never);
  // A path that is the start of a longer one adds nothing when replayed: only the longest are run.
  const covered = new Set<string>();
  const keyOf = (events: ReadonlyArray<EventObject>) => events.map((e) => JSON.stringify({ ...e, respond: "respond" in e })).join("|");
  const longestFirst = [...paths].sort((a, b) => b.steps.length - a.steps.length);
  for (const path of longestFirst) {
    const events = path.steps.map((s) => s.event);
    if (covered.has(keyOf(events))) continue;
    for (let n = 1; n <= events.length; n++) covered.add(keyOf(events.slice(0, n)));
    const actor = createActor(provided, { input, clock: new SimulatedClock(), inspect: recorder.inspect }).start();
    for (const { event } of path.steps) {
      if (actor.getSnapshot().status !== "active") break;
      if (event.type !== "xstate.init") actor.send(event);
    }
    actor.stop();
  }
};

const fail = (kind: StepFailure["kind"]): StepFailure => replyFailure(kind, { code: Code.internal, message: kind });

describe("paths generated from the machines", () => {
  afterAll(() => {
    for (const m of [senderLifecycle, senderRound, receiverSession]) process.stdout.write(`transition coverage ${recorder.report(m)}\n`);
  });

  test("sender process (simple paths): every transition of senderLifecycle is on a generated path", () => {
    const input = { periodMs: 1000, maxRetries: 1 };
    const paths = getSimplePaths(senderLifecycle, {
      input,
      events: (s) =>
        typesOf(s).flatMap((type) =>
          type.startsWith("xstate.done.") || type.startsWith("xstate.error.")
            ? actorEvents([type], { done: [emptySummary] })
            : [{ type } as EventObject],
        ) as never,
      // The event and the state it came from are part of the key: a path back to a state seen before is still a new edge.
      serializeState: (s, event, prev) => JSON.stringify([s.value, s.context.sealedDuringRound, s.status, event?.type, prev?.value]),
    });
    replay(senderLifecycle, input, paths);
    expect(recorder.missing(senderLifecycle)).toEqual([]);
  });

  test("sender round (shortest paths): every transition of senderRound is on a generated path", () => {
    const unit = (n: number, size: number): SyncUnit => ({
      ref: { sg: n === 3 ? "root.b" : "root.a", vg: "0", tp: "0", name: `${n}-${n}-0-0.tsfile` },
      parts: [
        { kind: "resource", path: `/r${n}`, size: 10, mtimeMs: 0 },
        { kind: "tsfile", path: `/t${n}`, size, mtimeMs: 0 },
      ],
    });
    // One small file (a put), then two that go part by part, the second of another group.
    const units = [unit(1, 100), unit(2, 5000), unit(3, 5000), unit(4, 5000)];
    const session: SessionInfo = { prefix: "p", sessionId: "s", chunkBytes: 1024, filesInFlight: 2 };
    const part = (had: boolean): SentPart => ({ kind: "tsfile", fileId: "f", size: 1, sha256: "a", had, bytesSent: 1, resumedFrom: 0 });
    const input = { maxRetries: 1, maxHandshakes: 2 };
    const kinds: StepFailure["kind"][] = ["conflict", "refused", "sessionLost", "retryable", "fatal"];
    const outcomes = (value: string) => {
      switch (value) {
        case "scanning":
          return {
            done: [
              { units, deletions: [units[0]!.ref], ignored: 0 },
              { units: [], deletions: [], ignored: 0 },
            ],
          };
        case "handshaking":
          return { done: [session], error: [fail("retryable"), fail("refused")] };
        case "schema":
          return { done: [undefined], error: [fail("retryable"), fail("refused")] };
        case "putting":
          return {
            done: [
              { results: [{ unit: units[0]!, parts: [part(false)] }] },
              { results: [{ unit: units[0]!, failure: fail("refused") }] },
              { results: [{ unit: units[0]!, failure: fail("conflict") }] },
            ],
            error: [fail("retryable")],
          };
        case "deleting":
          return { done: [{ deleted: [], failed: [] }], error: [fail("retryable")] };
        case "transferring":
          return { done: [part(false), part(true)], error: kinds.map(fail) };
        default:
          return { done: [undefined], error: [fail("retryable")] };
      }
    };
    const paths = getShortestPaths(senderRound, {
      input,
      events: (s) =>
        typesOf(s).flatMap((type) =>
          type.startsWith("xstate.done.") || type.startsWith("xstate.error.")
            ? actorEvents([type], outcomes(String(s.value)))
            : [{ type } as EventObject],
        ) as never,
      serializeState: (s, event, prev) => {
        const c = s.context;
        const e = event as { type?: string; error?: StepFailure } | undefined;
        // The event that led here is part of the key, so each transition gets a path of its own.
        return JSON.stringify([
          s.value,
          c.index,
          c.attempts,
          c.handshakes,
          c.partIndex,
          c.schemaDone,
          c.conflicted,
          c.units.length,
          c.deletions.length,
          c.parts.map((p) => p.had),
          e?.type,
          e?.error?.kind,
          prev?.value,
        ]);
      },
    });
    replay(senderRound, input, paths);
    expect(recorder.missing(senderRound)).toEqual([]);
  });

  test("receiver session (shortest paths): every transition of receiverSession is on a generated path", () => {
    const input = { senderId: "edge1", sessionId: "s1", address: "127.0.0.1", idleTimeoutMs: 1000, maxChunkBytes: 4, maxFilesInFlight: 1 };
    const respond = () => undefined;
    const offer = { sg: "root.a", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile" as const, size: 8 };
    const chunk = (offset: number, bytes: number, fileId = "f1") => ({
      type: "chunk",
      fileId,
      offset,
      offsetText: String(offset),
      data: new Uint8Array(bytes),
    });
    const requests = (s: Snap): AnyEvent[] => {
      const received = (s.context.transfer as { received?: number } | undefined)?.received ?? 0;
      const asked: AnyEvent[] = [
        { type: "offer", offer },
        chunk(received, 4),
        chunk(received + 1, 1),
        chunk(received, 5),
        chunk(4, 4),
        chunk(8, 4),
        { ...chunk(0, 1), offset: Number.NaN, offsetText: "x" },
        chunk(0, 1, "other"),
        { type: "progress", fileId: "f1", received: Math.min(received + 4, 8), bytes: 4 },
        { type: "writeFailed", fileId: "f1", reason: "closed" },
        { type: "commit", commit: { fileId: "f1", sha256: "a" } },
        { type: "commit", commit: { fileId: "other", sha256: "a" } },
        { type: "load", load: { ...offer, parts: [] } },
        { type: "put", put: { ...offer, parts: [] }, bytes: new Uint8Array(1) },
        { type: "delete", ref: offer },
        { type: "schema", request: { piece: {}, bytes: new Uint8Array(0) } },
        { type: "bye" },
      ];
      // Each request with someone to answer, and without (the machine must not refuse nobody).
      return asked.flatMap((e) => [{ ...e, respond }, e]);
    };
    const outcomes = (value: string) =>
      value === "handshaking"
        ? { done: [reply(Code.ok, "welcome"), reply(Code.disabled, "off")] }
        : value === "offering"
          ? { done: [{ ...reply(Code.start, ""), fileId: "f1", offset: 0 }, reply(Code.have, "")] }
          : { done: [reply(Code.ok, "")] };
    const putAnswers = (s: Snap): AnyEvent[] =>
      Object.keys(s.context.puts as object).flatMap((id) => [
        { type: `xstate.done.actor.${id}`, actorId: id, output: reply(Code.ok, "") } as EventObject,
        { type: `xstate.error.actor.${id}`, actorId: id, error: new Error("disk") } as EventObject,
      ]);
    const paths = getShortestPaths(receiverSession, {
      input,
      events: (s) => {
        const types = typesOf(s);
        const own = types.filter((t) => !t.includes("*"));
        return [
          ...actorEvents(own, outcomes(String(s.value))),
          ...own.filter((t) => t.startsWith("xstate.after.")).map((type) => ({ type })),
          ...requests(s as unknown as Snap).filter((e) => types.includes(e.type)),
          ...putAnswers(s as unknown as Snap),
        ] as never;
      },
      serializeEvent: (e) => JSON.stringify({ ...e, respond: "respond" in e, data: (e as { data?: Uint8Array }).data?.length }),
      serializeState: (s, event, prev) => {
        const c = s.context;
        const e = event as unknown as Record<string, unknown> | undefined;
        const key = e
          ? JSON.stringify({ ...e, respond: "respond" in e, data: (e["data"] as Uint8Array | undefined)?.length, bytes: undefined })
          : "";
        return JSON.stringify([
          s.value,
          s.status,
          c.transfer?.received,
          Object.keys(c.puts).length,
          key,
          prev?.value,
          prev && Object.keys(prev.context.puts).length,
        ]);
      },
    });
    replay(receiverSession, input, paths);
    expect(recorder.missing(receiverSession)).toEqual([]);
  });

  test("the recorder counts what the definitions have: a transition added to a machine is one more to reach", () => {
    expect(transitionsOf(senderLifecycle)).toContain("syncing · syncNow #0");
    expect(transitionsOf(senderRound).length).toBeGreaterThanOrEqual(42);
  });
});
