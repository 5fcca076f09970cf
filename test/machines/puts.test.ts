// Whole small files in one request each, several at once: the sender round's `putting` and the
// receiver session's put children, driven with scripted actors (no server).
import { describe, expect, test } from "vitest";
import { createActor, fromPromise, waitFor } from "xstate";
import { detailsOf } from "../../src/dashboard/summaries.js";
import { receiverSession, type PutRequest, type SessionInput } from "../../src/machines/receiverSession.js";
import { senderRound, type SchemaSyncOutput } from "../../src/machines/senderRound.js";
import type {
  DeleteOutput,
  LoadInput,
  PutInput,
  PutOutput,
  ScanResult,
  SentPart,
  SessionInfo,
  StepFailure,
  TransferInput,
  VerifyInput,
} from "../../src/machines/senderTypes.js";
import { replyFailure } from "../../src/protocol/failures.js";
import type { FileRef } from "../../src/protocol/messages.js";
import type { SyncUnit } from "../../src/protocol/parts.js";
import { Code, reply, type Reply } from "../../src/protocol/status.js";

const unit = (sg: string, n: number, tsfileBytes = 100): SyncUnit => ({
  ref: { sg, vg: "0", tp: "0", name: `${n}-${n}-0-0.tsfile` },
  parts: [
    { kind: "resource", path: `/r${n}`, size: 10, mtimeMs: 0 },
    { kind: "tsfile", path: `/t${n}`, size: tsfileBytes, mtimeMs: 0 },
  ],
});
const fail = (kind: StepFailure["kind"], message: string = kind): StepFailure =>
  replyFailure(kind, { code: kind === "conflict" ? Code.conflict : Code.internal, message });
const sent = (u: SyncUnit): SentPart[] =>
  u.parts.map((p) => ({
    kind: p.kind,
    fileId: undefined,
    size: p.size,
    sha256: "a".repeat(64),
    had: false,
    bytesSent: p.size,
    resumedFrom: 0,
  }));

describe("sender round: putting", () => {
  const round = (units: SyncUnit[], put: (u: SyncUnit) => StepFailure | undefined, filesInFlight = 4) => {
    const calls = { puts: [] as string[][], transfers: [] as string[], confirmed: [] as string[] };
    const session: SessionInfo = { prefix: "p", sessionId: "s", chunkBytes: 1024, filesInFlight };
    const machine = senderRound.provide({
      actors: {
        recover: fromPromise<void, void>(async () => undefined),
        scan: fromPromise<ScanResult, void>(async () => ({ units, deletions: [], ignored: 0 })),
        handshake: fromPromise<SessionInfo, void>(async () => session),
        syncSchema: fromPromise<SchemaSyncOutput | undefined, { session: SessionInfo }>(async () => undefined),
        putFiles: fromPromise<PutOutput, PutInput>(async ({ input }) => {
          calls.puts.push(input.units.map((u) => u.ref.name));
          return {
            results: input.units.map((u) => {
              const failure = put(u);
              if (failure) return { unit: u, failure };
              calls.confirmed.push(u.ref.name);
              return { unit: u, parts: sent(u) };
            }),
          };
        }),
        transfer: fromPromise<SentPart, TransferInput>(async ({ input }) => {
          const part = input.unit.parts[input.partIndex]!;
          calls.transfers.push(`${input.unit.ref.name}:${part.kind}`);
          return {
            kind: part.kind,
            fileId: "f",
            size: part.size,
            sha256: "a".repeat(64),
            had: false,
            bytesSent: part.size,
            resumedFrom: 0,
          };
        }),
        verify: fromPromise<void, VerifyInput>(async () => undefined),
        load: fromPromise<void, LoadInput>(async () => undefined),
        confirm: fromPromise<void, LoadInput>(async ({ input }) => {
          calls.confirmed.push(input.unit.ref.name);
        }),
        deleteFiles: fromPromise<DeleteOutput, { session: SessionInfo; deletions: ReadonlyArray<FileRef> }>(async () => ({
          deleted: [],
          failed: [],
        })),
        bye: fromPromise<void, { session: SessionInfo | undefined }>(async () => undefined),
      },
    });
    return { machine, calls };
  };
  const run = async (machine: ReturnType<typeof round>["machine"]) => {
    const a = createActor(machine, { input: { maxRetries: 1 } }).start();
    const s = await waitFor(a, (x) => x.status === "done");
    return { value: s.value, summary: s.output! };
  };

  test("files that fit one message go as puts, in order, and a file too big for one goes the offer way", async () => {
    const units = [unit("root.a", 1), unit("root.a", 2), unit("root.a", 3, 5000), unit("root.a", 4)];
    const { machine, calls } = round(units, () => undefined);
    const { value, summary } = await run(machine);
    expect(value).toBe("done");
    expect(calls.puts).toEqual([["1-1-0-0.tsfile", "2-2-0-0.tsfile"], ["4-4-0-0.tsfile"]]);
    expect(calls.transfers).toEqual(["3-3-0-0.tsfile:resource", "3-3-0-0.tsfile:tsfile"]);
    expect(summary.sent.map((s) => s.file.split("/").pop())).toEqual([
      "1-1-0-0.tsfile",
      "2-2-0-0.tsfile",
      "3-3-0-0.tsfile",
      "4-4-0-0.tsfile",
    ]);
    expect(summary.bytesSent).toBe(110 + 110 + 5010 + 110);
  });

  test("a receiver that takes no puts gets every file the offer way", async () => {
    const { machine, calls } = round([unit("root.a", 1), unit("root.a", 2)], () => undefined, 0);
    await run(machine);
    expect(calls.puts).toEqual([]);
    expect(calls.transfers).toHaveLength(4);
  });

  test("a put that failed retryably is sent again the offer way; a fatal one is quarantined, not retried", async () => {
    const { machine, calls } = round([unit("root.a", 1), unit("root.a", 2), unit("root.a", 3)], (u) =>
      u.ref.name.startsWith("2-") ? fail("retryable", "timeout") : u.ref.name.startsWith("3-") ? fail("fatal", "badTsFile") : undefined,
    );
    const { summary } = await run(machine);
    expect(calls.transfers).toEqual(["2-2-0-0.tsfile:resource", "2-2-0-0.tsfile:tsfile"]);
    expect(calls.confirmed.sort()).toEqual(["1-1-0-0.tsfile", "2-2-0-0.tsfile"]);
    expect(summary.failed).toEqual([{ file: "root.a/0/0/3-3-0-0.tsfile", reason: "badTsFile", attempts: 1 }]);
  });

  test("a conflict marks its group once; the group's later files are skipped, other groups still go", async () => {
    const { machine, calls } = round([unit("root.mine", 1), unit("root.theirs", 2), unit("root.theirs", 3)], (u) =>
      u.ref.sg === "root.theirs" ? fail("conflict", "root.theirs belongs to B") : undefined,
    );
    const { summary } = await run(machine);
    expect(summary.conflicts).toEqual([{ sg: "root.theirs", message: "root.theirs belongs to B" }]);
    expect(summary.skipped.map((s) => s.file)).toEqual(["root.theirs/0/0/2-2-0-0.tsfile", "root.theirs/0/0/3-3-0-0.tsfile"]);
    expect(calls.confirmed).toEqual(["1-1-0-0.tsfile"]);
    expect(calls.transfers).toEqual([]);
  });

  test("a refused put fails the round with its reason", async () => {
    const { machine } = round([unit("root.a", 1)], () => fail("refused", "sync is disabled"));
    const { value, summary } = await run(machine);
    expect(value).toBe("failed");
    expect(summary.roundError).toBe("sync is disabled");
  });
});

describe("receiver session: puts", () => {
  const input: SessionInput & { maxFilesInFlight: number } = {
    senderId: "edge1",
    sessionId: "s1",
    address: "127.0.0.1",
    idleTimeoutMs: 60_000,
    maxFilesInFlight: 2,
  };
  const request = (name: string): PutRequest => ({
    put: { sg: "root.a", vg: "0", tp: "0", name, parts: [{ kind: "tsfile", size: 1, sha256: "a".repeat(64) }] },
    bytes: new Uint8Array(1),
  });

  /** A session whose storeFile waits for the test to finish each put (or fail it). */
  const session = () => {
    const waiting = new Map<string, { done: (r: Reply) => void; fail: (e: Error) => void }>();
    const machine = receiverSession.provide({
      actors: {
        admit: fromPromise<Reply, SessionInput>(async () => reply(Code.ok, "welcome")),
        storeFile: fromPromise<Reply, { session: SessionInput; request: PutRequest }>(
          ({ input }) => new Promise<Reply>((done, fail) => waiting.set(input.request.put.name, { done, fail })),
        ),
      },
    });
    const actor = createActor(machine, { input }).start();
    const answers: Array<[string, Reply]> = [];
    const put = (name: string) => actor.send({ type: "put", ...request(name), respond: (r) => answers.push([name, r]) });
    return { actor, waiting, answers, put };
  };

  test("puts overlap: each is answered when its own child finishes, in the order they finish", async () => {
    const { actor, waiting, answers, put } = session();
    await waitFor(actor, (s) => s.matches("ready"));
    put("1-1-0-0.tsfile");
    put("2-2-0-0.tsfile");
    await waitFor(actor, () => waiting.size === 2);
    expect(Object.keys(actor.getSnapshot().context.puts)).toHaveLength(2);
    // The dashboard shows them.
    expect(detailsOf("receiverSession", actor.getSnapshot().context, undefined)).toMatchObject({ putsInFlight: 2 });
    waiting.get("2-2-0-0.tsfile")!.done(reply(Code.ok, "loaded tsfile"));
    await waitFor(actor, () => answers.length === 1);
    waiting.get("1-1-0-0.tsfile")!.fail(new Error("disk on fire"));
    await waitFor(actor, () => answers.length === 2);
    expect(answers).toEqual([
      ["2-2-0-0.tsfile", reply(Code.ok, "loaded tsfile")],
      ["1-1-0-0.tsfile", reply(Code.storageFailed, "disk on fire")],
    ]);
    const s = actor.getSnapshot();
    expect(s.context.puts).toEqual({});
    expect(s.context.files.loaded).toBe(1);
    // Only the stored put's bytes count as received, as a written chunk's do.
    expect(s.context.bytes).toBe(1);
    // The finished children are let go, so a long session does not collect them.
    expect(Object.keys(s.children).filter((id) => id.startsWith("put-"))).toEqual([]);
    expect(s.matches("ready")).toBe(true);
  });

  test("beyond maxFilesInFlight a put is answered busy at once; a finished one frees its slot", async () => {
    const { actor, waiting, answers, put } = session();
    await waitFor(actor, (s) => s.matches("ready"));
    put("1-1-0-0.tsfile");
    put("2-2-0-0.tsfile");
    put("3-3-0-0.tsfile");
    expect(answers).toHaveLength(1);
    expect(answers[0]![0]).toBe("3-3-0-0.tsfile");
    expect(answers[0]![1].code).toBe(Code.busy);
    await waitFor(actor, () => waiting.size === 2);
    waiting.get("1-1-0-0.tsfile")!.done(reply(Code.ok, "loaded"));
    await waitFor(actor, () => answers.length === 2);
    put("3-3-0-0.tsfile");
    await waitFor(actor, () => waiting.has("3-3-0-0.tsfile"));
    expect(Object.keys(actor.getSnapshot().context.puts)).toHaveLength(2);
  });
});
