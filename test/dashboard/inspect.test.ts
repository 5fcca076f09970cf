import { expect, test } from "vitest";
import { createActor, fromPromise, waitFor, type AnyActorLogic } from "xstate";
import { receiverSession, type Reply, type SessionInput } from "../../src/machines/receiverSession.js";
import { senderLifecycle } from "../../src/machines/senderLifecycle.js";
import { senderRound, type SchemaSyncOutput } from "../../src/machines/senderRound.js";
import type { LoadInput, ScanResult, SentPart, SessionInfo, TransferInput, VerifyInput } from "../../src/machines/senderTypes.js";
import { receiverInspector, senderInspector } from "../../src/dashboard/inspect.js";
import { SenderTotals } from "../../src/dashboard/metrics.js";
import { ActorBoard } from "../../src/dashboard/model.js";
import type { Offer } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";

// The real machines, with their actor slots filled by stand-ins (the seam machines are built for):
// what reaches the board is what XState's inspection really emits.

const ref = { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile" };
const parts = [
  { kind: "resource" as const, path: "/nowhere/a.resource", size: 100, mtimeMs: 1 },
  { kind: "tsfile" as const, path: "/nowhere/a.tsfile", size: 5000, mtimeMs: 1 },
];

const roundWithStandIns = () =>
  senderRound.provide({
    actors: {
      recover: fromPromise<void, void>(async () => undefined),
      scan: fromPromise<ScanResult, void>(async () => ({ units: [{ ref, parts }], deletions: [], ignored: 0 })),
      handshake: fromPromise<SessionInfo, void>(async () => ({ prefix: "p", sessionId: "sess-1", chunkBytes: 1024, filesInFlight: 0 })),
      syncSchema: fromPromise<SchemaSyncOutput | undefined, { session: SessionInfo }>(async () => undefined),
      transfer: fromPromise<SentPart, TransferInput>(async ({ input }) => {
        const p = input.unit.parts[input.partIndex]!;
        return { kind: p.kind, fileId: "f", size: p.size, sha256: "0".repeat(64), had: false, bytesSent: p.size, resumedFrom: 0 };
      }),
      verify: fromPromise<void, VerifyInput>(async () => undefined),
      load: fromPromise<void, LoadInput>(async () => undefined),
      confirm: fromPromise<void, LoadInput>(async () => undefined),
      bye: fromPromise<void, { session: SessionInfo | undefined }>(async () => undefined),
    },
  });

test("the sender process and its round appear as `sender` and `round-1`, the round's transfer path and totals included", async () => {
  const board = new ActorBoard();
  const totals = new SenderTotals().attach(board);
  const actor = createActor(senderLifecycle.provide({ actors: { round: roundWithStandIns() as unknown as AnyActorLogic } }), {
    input: { periodMs: 3_600_000, maxRetries: 2 },
    inspect: senderInspector(board),
  });
  actor.start();
  await waitFor(actor, (s) => s.matches("waiting"), { timeout: 5000 });

  const round = board.get("round-1")!;
  expect(round).toMatchObject({ machine: "senderRound", parent: "sender", state: "done", status: "done" });
  expect(round.details).toMatchObject({ kind: "senderRound", files: 1, summary: { sent: 1, failed: 0, bytesSent: 5100 } });
  expect(round.log.some((l) => l.path.join(">") === "transferring>partSent>verifying")).toBe(true);
  expect(board.get("sender")).toMatchObject({
    machine: "sender",
    state: "waiting",
    status: "active",
    details: { kind: "sender", rounds: 1, lastRound: { sent: 1 } },
  });
  expect(totals.counts()).toMatchObject({ bytesSent: 5100, filesSent: 1, roundsOk: 1, roundsFailed: 0 });

  actor.send({ type: "sealed" });
  await waitFor(actor, (s) => s.context.rounds === 2, { timeout: 5000 });
  actor.send({ type: "stop" });
  expect(board.get("round-2")).toMatchObject({ parent: "sender", status: "done" });
  expect(board.get("sender")).toMatchObject({ state: "stopped", status: "done" });
  expect(totals.counts()).toMatchObject({ bytesSent: 10200, filesSent: 2, roundsOk: 2 });
});

test("a lone round (`--once`) is `round-1` with no parent", async () => {
  const board = new ActorBoard();
  const actor = createActor(roundWithStandIns(), { input: { maxRetries: 1 }, inspect: senderInspector(board) });
  actor.start();
  await waitFor(actor, (s) => s.status === "done", { timeout: 5000 });
  expect(board.get("round-1")).toMatchObject({ parent: undefined, state: "done", endedAt: expect.any(Number) });
});

test("a receiver session is named by its session id, counts its chunks, and keeps the admitted address", async () => {
  const board = new ActorBoard();
  const input: SessionInput = { senderId: "edge-7", sessionId: "abc", address: "", idleTimeoutMs: 60_000 };
  const reply = (code: number, message: string, extra: object = {}): Reply => ({ code, message, ...extra });
  const machine = receiverSession.provide({
    actors: {
      admit: fromPromise(async () => reply(Code.ok, "welcome from 192.0.2.9", { address: "192.0.2.9" })),
      acceptOffer: fromPromise<Reply & { fileId?: string; offset?: number }, { session: SessionInput; offer: Offer }>(async () => ({
        ...reply(Code.start, "send"),
        fileId: "f1",
        offset: 0,
      })),
      verify: fromPromise(async () => reply(Code.ok, "verified")),
      load: fromPromise(async () => reply(Code.ok, "loaded")),
      remove: fromPromise(async () => reply(Code.ok, "deleted")),
    },
  });
  const inspect = receiverInspector(board);
  const actor = createActor(machine, { input, inspect: (e) => inspect("abc", e) });
  actor.start();
  await waitFor(actor, (s) => s.matches("ready"));
  actor.send({ type: "offer", offer: { ...ref, kind: "tsfile", size: 3000 } });
  await waitFor(actor, (s) => s.matches("receiving"));
  for (let i = 1; i <= 300; i++) actor.send({ type: "progress", fileId: "f1", received: i * 10, bytes: 10 });
  expect(board.get("abc")!.details).toMatchObject({
    file: { name: "root.sg1/0/0/1-1-0-0.tsfile", received: 3000, size: 3000 },
    bytes: 3000,
  });
  actor.send({ type: "commit", commit: { fileId: "f1", size: 3000, sha256: "0".repeat(64) } });
  await waitFor(actor, (s) => s.matches("ready") && s.context.files.received === 1);
  actor.send({ type: "bye" });

  const a = board.get("abc")!;
  expect(a).toMatchObject({ machine: "receiverSession", state: "closed", status: "done", endedAt: expect.any(Number) });
  expect(a.details).toMatchObject({ senderId: "edge-7", address: "192.0.2.9", bytes: 3000, files: { received: 1 }, file: undefined });
  expect(a.log.find((l) => l.event === "progress")?.count).toBe(300);
  // Invoked promises are part of their state, not actors of their own.
  expect(board.state().actors.map((x) => x.id)).toEqual(["abc"]);
});
