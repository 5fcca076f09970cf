import { fc, test } from "@fast-check/vitest";
import { describe, expect } from "vitest";
import {
  ActorBoard,
  type ActorView,
  type BoardDelta,
  type BoardState,
  type LogEntry,
  type Observation,
} from "../../src/dashboard/model.js";

/** A board on a clock the test moves. */
const boardAt = (options: { keepEnded?: number; logSize?: number } = {}) => {
  let t = 1_000;
  const board = new ActorBoard({ now: () => t, ...options });
  return { board, tick: (ms = 1) => (t += ms), time: () => t };
};

const session = (value: string, context: object, event: string, status: Observation["status"] = "active"): Observation => ({
  machine: "receiverSession",
  value,
  context: {
    senderId: "edge-1",
    sessionId: "s1",
    address: "",
    idleTimeoutMs: 1000,
    transfer: undefined,
    pendingOffer: undefined,
    lastReply: undefined,
    replies: 0,
    files: { received: 0, loaded: 0, deleted: 0, rejected: 0 },
    bytes: 0,
    ...context,
  },
  status,
  event,
});

const offer = { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 1000 };

describe("ActorBoard", () => {
  test("records where an actor is, since when, and the transition that took it there", () => {
    const { board, tick } = boardAt();
    board.observe("s1", session("handshaking", {}, "xstate.init"));
    tick(5);
    board.observe(
      "s1",
      session(
        "ready",
        { lastReply: { code: 0, message: "welcome from 10.1.2.3", address: "10.1.2.3" } },
        "xstate.done.actor.0.receiverSession.handshaking",
      ),
    );
    const a = board.get("s1")!;
    expect(a).toMatchObject({ state: "ready", top: "ready", status: "active", stateSince: 1005, startedAt: 1000, lastEvent: "done" });
    expect(a.details).toMatchObject({ kind: "receiverSession", senderId: "edge-1", address: "10.1.2.3" });
    expect(a.log.map((l) => [l.event, l.from, l.to])).toEqual([
      ["start", "", "handshaking"],
      ["done", "handshaking", "ready"],
    ]);
  });

  test("the address learnt at admission stays when later replies no longer carry it", () => {
    const { board } = boardAt();
    board.observe("s1", session("ready", { lastReply: { code: 0, message: "welcome", address: "10.1.2.3" } }, "xstate.init"));
    board.observe("s1", session("offering", { lastReply: { code: 0, message: "send" } }, "offer"));
    expect(board.get("s1")!.details).toMatchObject({ address: "10.1.2.3", lastReply: { code: 0, message: "send" } });
  });

  test("a stream of chunks is one log line with a count, and does not reset the time in state", () => {
    const { board, tick } = boardAt();
    board.observe("s1", session("receiving", { transfer: { fileId: "f", offer, received: 0 } }, "xstate.init"));
    const since = board.get("s1")!.stateSince;
    for (let i = 1; i <= 500; i++) {
      tick();
      board.observe("s1", session("receiving", { transfer: { fileId: "f", offer, received: i * 2 }, bytes: i * 2 }, "progress"));
    }
    const a = board.get("s1")!;
    expect(a.stateSince).toBe(since);
    expect(a.log).toHaveLength(2);
    expect(a.log[1]).toMatchObject({ event: "progress", from: "receiving", to: "receiving", count: 500, path: ["receiving", "receiving"] });
    expect(a.details).toMatchObject({
      file: { name: "root.sg1/0/0/1-1-0-0.tsfile", part: "tsfile", received: 1000, size: 1000 },
      bytes: 1000,
    });
  });

  test("eventless steps between two observations are kept as the transition's path", () => {
    const { board } = boardAt();
    board.observe("r", { machine: "senderRound", value: "transferring", context: roundContext(), status: "active", event: "xstate.init" });
    board.step("r", "partSent");
    board.step("r", "verifying");
    board.observe("r", {
      machine: "senderRound",
      value: "verifying",
      context: roundContext(),
      status: "active",
      event: "xstate.done.actor.0.senderRound.transferring",
    });
    expect(board.get("r")!.log.at(-1)).toMatchObject({
      from: "transferring",
      to: "verifying",
      path: ["transferring", "partSent", "verifying"],
    });
  });

  test("an ended parent ends its children, which then count as ended for listeners", () => {
    const { board } = boardAt();
    const ended: string[] = [];
    board.listen({ ended: (a) => ended.push(a.id) });
    board.observe("sender", { machine: "sender", value: "syncing", context: {}, status: "active", event: "xstate.init" });
    board.observe("round-1", {
      machine: "senderRound",
      parent: "sender",
      value: "transferring",
      context: roundContext(),
      status: "active",
      event: "xstate.init",
    });
    board.observe("sender", { machine: "sender", value: "stopped", context: {}, status: "done", event: "stop" });
    expect(ended).toEqual(["round-1", "sender"]);
    expect(board.get("round-1")).toMatchObject({ status: "stopped", state: "transferring" });
    expect(board.countByState()).toEqual([]);
  });

  test("keeps only the newest ended actors and reports the others as removed", () => {
    const { board, tick } = boardAt({ keepEnded: 2 });
    for (const id of ["a", "b", "c"]) {
      board.observe(id, session("handshaking", {}, "xstate.init"));
      tick();
      board.observe(id, session("closed", {}, "bye", "done"));
      tick();
    }
    board.observe("live", session("ready", {}, "xstate.init"));
    expect(
      board
        .state()
        .actors.map((a) => a.id)
        .sort(),
    ).toEqual(["b", "c", "live"]);
    expect(board.delta(0).removed).toEqual(["a"]);
    expect(board.countByState()).toEqual([{ machine: "receiverSession", state: "ready", count: 1 }]);
  });

  test("a delta carries only the actors and log lines changed after the revision asked for", () => {
    const { board } = boardAt();
    board.observe("a", session("ready", {}, "xstate.init"));
    board.observe("b", session("ready", {}, "xstate.init"));
    const rev = board.rev;
    board.observe("a", session("offering", {}, "offer"));
    const d = board.delta(rev);
    expect(d.actors.map((x) => x.id)).toEqual(["a"]);
    expect(d.actors[0]!.log.map((l) => l.event)).toEqual(["offer"]);
    expect(board.delta(board.rev).actors).toEqual([]);
  });

  test("the log keeps its last logSize lines", () => {
    const { board } = boardAt({ logSize: 3 });
    board.observe("a", session("ready", {}, "xstate.init"));
    for (let i = 0; i < 5; i++) {
      board.observe("a", session("offering", {}, "offer"));
      board.observe("a", session("ready", {}, "xstate.done.actor.0.receiverSession.offering"));
    }
    const log = board.get("a")!.log;
    expect(log).toHaveLength(3);
    expect(log.map((l) => l.seq)).toEqual([...log.map((l) => l.seq)].sort((x, y) => x - y));
  });
});

function roundContext() {
  return {
    maxRetries: 5,
    maxHandshakes: 3,
    units: [],
    deletions: [],
    index: 0,
    attempts: 1,
    handshakes: 0,
    session: undefined,
    partIndex: 0,
    parts: [],
    lastFailure: undefined,
    conflicted: {},
    summary: { sent: [], skipped: [], failed: [], conflicts: [], deleted: [], bytesSent: 0, roundError: undefined },
  };
}

// What the page does with the stream (src/dashboard/page/app.js applyInit/applyUpdate), so the
// property below checks the server's deltas against the client that consumes them.
const LOG_KEEP = 40;
const mergeLog = (old: ReadonlyArray<LogEntry>, fresh: ReadonlyArray<LogEntry>): LogEntry[] => {
  const bySeq = new Map(old.map((e) => [e.seq, e]));
  for (const e of fresh) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-LOG_KEEP);
};
const applyDelta = (client: Map<string, ActorView>, d: BoardDelta): void => {
  if (d.full) client.clear();
  for (const a of d.actors) {
    const old = client.get(a.id);
    client.set(a.id, { ...a, log: old && !d.full && a.born <= d.since ? mergeLog(old.log, a.log) : a.log });
  }
  for (const id of d.removed) client.delete(id);
};
const sorted = (s: BoardState | Map<string, ActorView>) =>
  (s instanceof Map ? [...s.values()] : s.actors).map((a) => ({ ...a, rev: 0 })).sort((a, b) => a.id.localeCompare(b.id));

const op = fc.oneof(
  fc.record({
    kind: fc.constant("observe" as const),
    id: fc.constantFrom("a", "b", "c", "d"),
    state: fc.constantFrom("ready", "offering", "receiving", "verifying"),
    event: fc.constantFrom("offer", "progress", "commit", "xstate.done.actor.0.receiverSession.offering"),
  }),
  fc.record({ kind: fc.constant("finish" as const), id: fc.constantFrom("a", "b", "c", "d") }),
  fc.record({ kind: fc.constant("end" as const), id: fc.constantFrom("a", "b", "c", "d") }),
  fc.record({ kind: fc.constant("sync" as const) }),
);

test.prop([fc.array(op, { maxLength: 120 })])(
  "a client that applies every delta to its first state holds exactly what the board holds",
  (ops) => {
    const { board, tick } = boardAt({ keepEnded: 2, logSize: LOG_KEEP });
    const client = new Map<string, ActorView>();
    let rev = board.rev;
    const sync = () => {
      applyDelta(client, board.delta(rev));
      rev = board.rev;
    };
    for (const o of ops) {
      tick();
      if (o.kind === "observe") board.observe(o.id, session(o.state, { bytes: board.rev }, o.event));
      else if (o.kind === "finish") board.observe(o.id, session("closed", {}, "bye", "done"));
      else if (o.kind === "end") board.end(o.id);
      else sync();
    }
    sync();
    expect(sorted(client)).toEqual(sorted(board.state()));
  },
);
