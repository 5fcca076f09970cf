import { createActor, fromPromise, toPromise, waitFor } from "xstate";
import { describe, expect, test } from "vitest";
import { senderRound, type SchemaSyncOutput } from "../../src/machines/senderRound.js";
import { receiverSession, type Reply } from "../../src/machines/receiverSession.js";
import type { SentPart, SessionInfo, StepFailure } from "../../src/machines/senderTypes.js";
import type { SyncUnit } from "../../src/protocol/parts.js";
import { replyFailure } from "../../src/protocol/failures.js";
import { Code } from "../../src/protocol/status.js";

const session: SessionInfo = { prefix: "p", sessionId: "s", chunkBytes: 1024, filesInFlight: 0 };
const unit = (name: string): SyncUnit => ({
  ref: { sg: "root.sg1", vg: "0", tp: "0", name },
  parts: [{ kind: "tsfile", path: `/x/${name}`, size: 10, mtimeMs: 0 }],
});
const fail = (kind: StepFailure["kind"], message: string): StepFailure => replyFailure(kind, { code: Code.internal, message });

/** A round with every actor faked (our seams): records the order the steps ran in. */
const round = (schema: () => Promise<SchemaSyncOutput | undefined>, transferFailsOnce?: StepFailure) => {
  const steps: string[] = [];
  let failed = false;
  // Outputs are typed by the slots they fill; `any` lets one helper fill them all.
  const step = (name: string, out: unknown) =>
    fromPromise<any, any>(async () => {
      steps.push(name);
      return out;
    });
  const machine = senderRound.provide({
    actors: {
      recover: step("recover", undefined),
      scan: step("scan", { units: [unit("1-1-0-0.tsfile"), unit("2-2-0-0.tsfile")], deletions: [], ignored: 0 }),
      handshake: step("handshake", session),
      syncSchema: fromPromise<SchemaSyncOutput | undefined, any>(async () => {
        steps.push("schema");
        return schema();
      }),
      transfer: fromPromise<SentPart, any>(async ({ input }) => {
        steps.push(`transfer ${input.unit.ref.name}`);
        if (transferFailsOnce && !failed) {
          failed = true;
          throw transferFailsOnce;
        }
        return { kind: "tsfile", fileId: "f", size: 10, sha256: "0".repeat(64), had: false, bytesSent: 10, resumedFrom: 0 };
      }),
      verify: step("verify", undefined),
      load: step("load", undefined),
      confirm: step("confirm", undefined),
      deleteFiles: step("delete", { deleted: [], failed: [] }),
      bye: step("bye", undefined),
    },
    delays: { backoff: 0, handshakeBackoff: 0 },
  });
  const actor = createActor(machine, { input: { maxRetries: 2 } });
  actor.start();
  return { steps, done: toPromise(actor) };
};

describe("sender round: the schema step", () => {
  test("runs after the hello and before the first file, and its bytes count in the summary", async () => {
    const r = round(async () => ({ file: "mlog.bin", bytesSent: 300, fromOffset: 1000 }));
    const summary = await r.done;
    expect(r.steps.slice(0, 5)).toEqual(["recover", "scan", "handshake", "schema", "transfer 1-1-0-0.tsfile"]);
    expect(summary.sent[0]).toEqual({ file: "schema mlog.bin", bytes: 300, resumedFrom: 1000 });
    expect(summary.bytesSent).toBe(320);
  });

  test("a schema failure is reported and the data files still go", async () => {
    const r = round(async () => {
      throw fail("fatal", "mlog.bin is damaged at byte 40");
    });
    const summary = await r.done;
    expect(summary.roundError).toBeUndefined();
    expect(summary.failed).toEqual([{ file: "schema log", reason: "mlog.bin is damaged at byte 40", attempts: 1 }]);
    expect(summary.sent.map((s) => s.file)).toEqual(["root.sg1/0/0/1-1-0-0.tsfile", "root.sg1/0/0/2-2-0-0.tsfile"]);
  });

  test("a receiver that refuses us at the schema step ends the round before any file", async () => {
    const r = round(async () => {
      throw fail("refused", "sync is disabled");
    });
    const summary = await r.done;
    expect(summary.roundError).toBe("sync is disabled");
    expect(r.steps.some((s) => s.startsWith("transfer"))).toBe(false);
  });

  test("a second hello in the same round (session lost) does not ship the schema again", async () => {
    const r = round(async () => ({ file: "mlog.bin", bytesSent: 10, fromOffset: 0 }), fail("sessionLost", "no receiver answered chunk"));
    await r.done;
    expect(r.steps.filter((s) => s === "handshake")).toHaveLength(2);
    expect(r.steps.filter((s) => s === "schema")).toHaveLength(1);
  });

  test("no schema log configured: the step is silent", async () => {
    const r = round(async () => undefined);
    const summary = await r.done;
    expect(summary.sent.map((s) => s.file)).toEqual(["root.sg1/0/0/1-1-0-0.tsfile", "root.sg1/0/0/2-2-0-0.tsfile"]);
    expect(summary.skipped).toEqual([]);
  });
});

describe("receiver session: the schema state", () => {
  const answering = (r: Reply) => fromPromise<Reply, any>(async () => r);
  const open = (applySchema: ReturnType<typeof answering> | ReturnType<typeof fromPromise<Reply, any>>) =>
    createActor(
      receiverSession.provide({
        actors: {
          admit: answering({ code: Code.ok, message: "welcome" }),
          acceptOffer: answering({ code: Code.start, message: "send", fileId: "f1", offset: 0 }),
          verify: answering({ code: Code.ok, message: "verified" }),
          load: answering({ code: Code.ok, message: "loaded" }),
          remove: answering({ code: Code.ok, message: "deleted" }),
          applySchema,
        },
      }),
      { input: { senderId: "s1", sessionId: "x1", address: "127.0.0.1", idleTimeoutMs: 60_000 } },
    ).start();
  const request = { piece: { file: "mlog.bin" as const, epoch: 0, offset: 0, sha256: "0".repeat(64) }, bytes: new Uint8Array(0) };

  test("a schema piece is applied from ready and answered, then the session is ready again", async () => {
    const a = open(answering({ code: Code.ok, message: "applied 3 schema record(s)", epoch: 0, offset: 99 }));
    await waitFor(a, (s) => s.matches("ready"));
    const before = a.getSnapshot().context.replies;
    a.send({ type: "schema", request });
    const after = await waitFor(a, (s) => s.context.replies > before && s.matches("ready"));
    expect(after.context.lastReply).toMatchObject({ code: Code.ok, offset: 99 });
    a.stop();
  });

  test("a schema piece while a file is being received is not accepted", async () => {
    const a = open(answering({ code: Code.ok, message: "applied" }));
    await waitFor(a, (s) => s.matches("ready"));
    a.send({ type: "offer", offer: { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 10 } });
    const receiving = await waitFor(a, (s) => s.matches("receiving"));
    expect(receiving.can({ type: "schema", request })).toBe(false);
    a.stop();
  });

  test("an applySchema that throws answers storageFailed and keeps the session", async () => {
    const a = open(
      fromPromise<Reply, any>(async () => {
        throw new Error("disk full");
      }),
    );
    await waitFor(a, (s) => s.matches("ready"));
    const before = a.getSnapshot().context.replies;
    a.send({ type: "schema", request });
    const after = await waitFor(a, (s) => s.context.replies > before && s.matches("ready"));
    expect(after.context.lastReply?.code).toBe(Code.storageFailed);
    a.stop();
  });
});
