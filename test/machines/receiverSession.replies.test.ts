// Every answer the receiver session gives, word for word, and what it counts: for each request in
// each state, and for each way its actors end (an answer, a refusal, a thrown error). The host
// sends these replies to senders as they are, so their codes and messages are part of the protocol.
import { createActor, fromPromise, waitFor } from "xstate";
import { describe, expect, test } from "vitest";
import { receiverSession, type Reply, type SessionEvent } from "../../src/machines/receiverSession.js";
import type { Offer, Put } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";

const offer: Offer = { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 10 };
const put: Put = { sg: "root.sg1", vg: "0", tp: "0", name: "2-2-0-0.tsfile", parts: [] };
const input = { senderId: "s1", sessionId: "x1", address: "127.0.0.1", idleTimeoutMs: 60_000, maxChunkBytes: 4, maxFilesInFlight: 2 };

type Outcome = Reply | Error | "never";
const actor = (o: Outcome) =>
  fromPromise<Reply, any>(() =>
    o === "never" ? new Promise<never>(() => undefined) : o instanceof Error ? Promise.reject(o) : Promise.resolve(o),
  );

interface Actors {
  admit?: Outcome;
  acceptOffer?: Outcome;
  verify?: Outcome;
  load?: Outcome;
  remove?: Outcome;
  applySchema?: Outcome;
  storeFile?: Outcome;
}

/** A session whose actors end as told, and whose `write` records the chunks it is asked to write. */
const session = (over: Actors = {}) => {
  const writes: Array<{ fileId: string; offset: number; length: number }> = [];
  const a = createActor(
    receiverSession.provide({
      actors: {
        admit: actor(over.admit ?? { code: Code.ok, message: "welcome" }),
        acceptOffer: actor(over.acceptOffer ?? { code: Code.start, message: "send", fileId: "f1", offset: 0 }),
        verify: actor(over.verify ?? { code: Code.ok, message: "verified" }),
        load: actor(over.load ?? { code: Code.ok, message: "loaded" }),
        remove: actor(over.remove ?? { code: Code.ok, message: "deleted" }),
        applySchema: actor(over.applySchema ?? { code: Code.ok, message: "applied" }),
        storeFile: actor(over.storeFile ?? { code: Code.ok, message: "stored" }),
      },
      actions: {
        write: (_, c: { fileId: string; offset: number; data: Uint8Array }) => {
          writes.push({ fileId: c.fileId, offset: c.offset, length: c.data.length });
        },
      },
    }),
    { input },
  ).start();
  return { a, writes };
};

/** Sends `event` with a responder and waits for its one answer. */
const ask = (a: ReturnType<typeof session>["a"], event: Record<string, unknown> & { type: string }): Promise<Reply> =>
  new Promise((resolve) => a.send({ ...event, respond: resolve } as unknown as SessionEvent));

const chunk = (fileId: string, offsetText: string, length: number) => ({
  type: "chunk",
  fileId,
  offset: Number(offsetText),
  offsetText,
  data: new Uint8Array(length),
});

const receiving = async (over: Actors = {}) => {
  const s = session(over);
  await waitFor(s.a, (x) => x.matches("ready"));
  expect(await ask(s.a, { type: "offer", offer })).toEqual({ code: Code.start, message: "send", fileId: "f1", offset: 0 });
  return s;
};

describe("receiver session: its answers and its counts", () => {
  test("admission: the admit actor's answer is the hello's; refused or failed, the session closes with it", async () => {
    const ok = session();
    const ready = await waitFor(ok.a, (x) => x.matches("ready"));
    expect(ready.context.lastReply).toEqual({ code: Code.ok, message: "welcome" });
    expect(ready.context.replies).toBe(1);

    const failed = session({ admit: new Error("registry down") });
    const closed = await waitFor(failed.a, (x) => x.status === "done");
    expect(closed.value).toBe("closed");
    expect(closed.context.lastReply).toEqual({ code: Code.internal, message: "registry down" });

    const odd = session({ admit: "never" });
    expect(odd.a.getSnapshot().value).toBe("handshaking");
  });

  test("outside a transfer: a chunk or a commit names the file nobody is receiving", async () => {
    const { a } = session();
    await waitFor(a, (x) => x.matches("ready"));
    expect(await ask(a, chunk("nofile", "0", 1))).toEqual({ code: Code.unknownFile, message: 'no file "nofile" is being received' });
    expect(await ask(a, { type: "commit", commit: { fileId: "f9", size: 1, sha256: "0".repeat(64) } })).toEqual({
      code: Code.unknownFile,
      message: "no file f9 is being received",
    });
  });

  test("a busy session answers every request notReady, naming its state", async () => {
    const { a } = session({ acceptOffer: "never" });
    await waitFor(a, (x) => x.matches("ready"));
    a.send({ type: "offer", offer, respond: () => undefined });
    for (const event of [
      { type: "offer", offer },
      { type: "load", load: { ...put, parts: [] } },
      { type: "put", put, bytes: new Uint8Array(1) },
      { type: "delete", ref: offer },
      { type: "schema", request: { piece: { file: "mlog.txt", epoch: 0, offset: 0, sha256: "0".repeat(64) }, bytes: new Uint8Array(0) } },
      { type: "bye" },
    ]) {
      expect(await ask(a, event)).toEqual({ code: Code.notReady, message: `cannot ${event.type} while "offering"` });
    }
    expect(a.getSnapshot().value).toBe("offering");
  });

  test("receiving: each bad chunk gets its own refusal; a good one is written, its progress acknowledged with the next offset", async () => {
    const { a, writes } = await receiving();
    expect(await ask(a, chunk("f1", "x", 1))).toEqual({ code: Code.badMessage, message: 'chunk offset "x" is not a number' });
    expect(await ask(a, chunk("f1", "5", 1))).toEqual({ code: Code.outOfOrder, message: "chunk at 5, expected 0", offset: 0 });
    expect(await ask(a, chunk("f1", "0", 5))).toEqual({ code: Code.tooLarge, message: "chunk of 5 bytes exceeds 4" });
    expect(writes).toEqual([]);
    a.send({ ...chunk("f1", "0", 4), respond: () => undefined } as unknown as SessionEvent);
    expect(writes).toEqual([{ fileId: "f1", offset: 0, length: 4 }]);
    expect(await ask(a, { type: "progress", fileId: "f1", received: 4, bytes: 4 })).toEqual({ code: Code.ok, message: "", offset: 4 });
    expect(a.getSnapshot().context.transfer?.received).toBe(4);
    expect(a.getSnapshot().context.bytes).toBe(4);
    a.send({ ...chunk("f1", "4", 4), respond: () => undefined } as unknown as SessionEvent);
    await ask(a, { type: "progress", fileId: "f1", received: 8, bytes: 4 });
    expect(writes.map((w) => w.offset)).toEqual([0, 4]);
    expect(await ask(a, chunk("f1", "8", 3))).toEqual({ code: Code.tooLarge, message: "chunk ends at 11, past the announced size 10" });
    // Progress of another file is not this transfer's.
    a.send({ type: "progress", fileId: "f2", received: 9, bytes: 9 } as SessionEvent);
    expect(a.getSnapshot().context.bytes).toBe(8);
    expect(await ask(a, { type: "writeFailed", fileId: "f1", reason: "closed" })).toEqual({
      code: Code.unknownFile,
      message: "file f1 is closed",
    });
    expect(await ask(a, { type: "writeFailed", fileId: "f1", reason: "failed" })).toEqual({
      code: Code.internal,
      message: "internal error; see the receiver log",
    });
  });

  test("a new offer mid-file drops the transfer; bye mid-file closes the session", async () => {
    const { a } = await receiving();
    expect(await ask(a, { type: "offer", offer: { ...offer, name: "3-3-0-0.tsfile" } })).toMatchObject({ code: Code.start });
    expect(a.getSnapshot().context.pendingOffer?.name).toBe("3-3-0-0.tsfile");
    expect(await ask(a, { type: "bye" })).toEqual({ code: Code.ok, message: "bye" });
    expect(a.getSnapshot().value).toBe("closed");
  });

  test("offers: refused or failed, the session is ready again with the answer", async () => {
    const refused = session({ acceptOffer: { code: Code.have, message: "already loaded" } });
    await waitFor(refused.a, (x) => x.matches("ready"));
    expect(await ask(refused.a, { type: "offer", offer })).toEqual({ code: Code.have, message: "already loaded" });
    // A start without a file id is no transfer.
    const noId = session({ acceptOffer: { code: Code.start, message: "send" } });
    await waitFor(noId.a, (x) => x.matches("ready"));
    await ask(noId.a, { type: "offer", offer });
    expect(noId.a.getSnapshot().value).toBe("ready");
    const failed = session({ acceptOffer: new Error("staging full") });
    await waitFor(failed.a, (x) => x.matches("ready"));
    expect(await ask(failed.a, { type: "offer", offer })).toEqual({ code: Code.internal, message: "staging full" });
    expect(failed.a.getSnapshot().value).toBe("ready");
    // A thrown value that is not an Error says nothing of itself.
    const odd = session({ acceptOffer: "never" });
    await waitFor(odd.a, (x) => x.matches("ready"));
    expect(odd.a.getSnapshot().context.replies).toBe(1);
  });

  test("a resumed offer starts the transfer at the offset the staging holds", async () => {
    const s = session({ acceptOffer: { code: Code.resume, message: "resume", fileId: "f1", offset: 6 } });
    await waitFor(s.a, (x) => x.matches("ready"));
    await ask(s.a, { type: "offer", offer });
    expect(s.a.getSnapshot().context.transfer).toEqual({ fileId: "f1", offer, received: 6 });
  });

  test.each([
    ["verified", { code: Code.ok, message: "verified" }, { received: 1, rejected: 0 }],
    ["already there", { code: Code.have, message: "have" }, { received: 1, rejected: 0 }],
    ["refused", { code: Code.digestMismatch, message: "digest mismatch" }, { received: 0, rejected: 1 }],
  ] as const)("a commit %s: answered as the verify actor says, counted received or rejected", async (_, verdict, counts) => {
    const { a } = await receiving({ verify: verdict });
    expect(await ask(a, { type: "commit", commit: { fileId: "f1", size: 10, sha256: "0".repeat(64) } })).toEqual(verdict);
    const c = a.getSnapshot().context;
    expect(c.files).toEqual({ ...counts, loaded: 0, deleted: 0 });
    expect(c.transfer).toBeUndefined();
    expect(a.getSnapshot().value).toBe("ready");
  });

  test("a commit whose check throws: internal, the transfer dropped, nothing counted", async () => {
    const { a } = await receiving({ verify: new Error("disk gone") });
    expect(await ask(a, { type: "commit", commit: { fileId: "f1", size: 10, sha256: "0".repeat(64) } })).toEqual({
      code: Code.internal,
      message: "disk gone",
    });
    expect(a.getSnapshot().context.transfer).toBeUndefined();
    expect(a.getSnapshot().context.files).toEqual({ received: 0, loaded: 0, deleted: 0, rejected: 0 });
  });

  test("loads, deletes and schema pieces: answered as their actors say; loads and deletes counted; a throw is storageFailed", async () => {
    const ok = session();
    await waitFor(ok.a, (x) => x.matches("ready"));
    const schema = { piece: { file: "mlog.txt", epoch: 0, offset: 0, sha256: "0".repeat(64) }, bytes: new Uint8Array(0) };
    expect(await ask(ok.a, { type: "load", load: { ...put } })).toEqual({ code: Code.ok, message: "loaded" });
    expect(await ask(ok.a, { type: "delete", ref: offer })).toEqual({ code: Code.ok, message: "deleted" });
    expect(await ask(ok.a, { type: "schema", request: schema })).toEqual({ code: Code.ok, message: "applied" });
    expect(ok.a.getSnapshot().context.files).toEqual({ received: 0, loaded: 1, deleted: 1, rejected: 0 });
    expect(ok.a.getSnapshot().context.replies).toBe(4);
    expect(ok.a.getSnapshot().context.lastReply).toEqual({ code: Code.ok, message: "applied" });

    const refusedLoad = session({ load: { code: Code.conflict, message: "owned by s2" } });
    await waitFor(refusedLoad.a, (x) => x.matches("ready"));
    expect(await ask(refusedLoad.a, { type: "load", load: { ...put } })).toEqual({ code: Code.conflict, message: "owned by s2" });
    expect(refusedLoad.a.getSnapshot().context.files.loaded).toBe(0);

    const broken = session({ load: new Error("plugin crashed"), remove: new Error("rm failed"), applySchema: new Error("mlog") });
    await waitFor(broken.a, (x) => x.matches("ready"));
    expect(await ask(broken.a, { type: "load", load: { ...put } })).toEqual({ code: Code.storageFailed, message: "plugin crashed" });
    expect(await ask(broken.a, { type: "delete", ref: offer })).toEqual({ code: Code.storageFailed, message: "rm failed" });
    expect(await ask(broken.a, { type: "schema", request: schema })).toEqual({ code: Code.storageFailed, message: "mlog" });
    expect(broken.a.getSnapshot().context.files).toEqual({ received: 0, loaded: 0, deleted: 0, rejected: 0 });
    expect(broken.a.getSnapshot().value).toBe("ready");
  });

  test("puts: stored ones counted received and loaded with their bytes; past the session's slots, busy; a failed one, storageFailed", async () => {
    const { a } = session({ storeFile: "never" });
    await waitFor(a, (x) => x.matches("ready"));
    const answers: Reply[] = [];
    for (let k = 0; k < 2; k++)
      a.send({ type: "put", put, bytes: new Uint8Array(5), respond: (r: Reply) => answers.push(r) } as SessionEvent);
    expect(Object.keys(a.getSnapshot().context.puts)).toEqual(["put-0", "put-1"]);
    expect(await ask(a, { type: "put", put, bytes: new Uint8Array(5) })).toEqual({
      code: Code.busy,
      message: "this session has 2 files in flight, its most; send the next when one is answered",
    });
    expect(answers).toEqual([]);

    const stored = session();
    await waitFor(stored.a, (x) => x.matches("ready"));
    expect(await ask(stored.a, { type: "put", put, bytes: new Uint8Array(7) })).toEqual({ code: Code.ok, message: "stored" });
    const c = stored.a.getSnapshot().context;
    expect(c.bytes).toBe(7);
    expect(c.files).toEqual({ received: 1, loaded: 1, deleted: 0, rejected: 0 });
    expect(c.puts).toEqual({});
    expect(c.putBytes).toEqual({});
    expect(c.putsStarted).toBe(1);
    expect(c.lastReply).toEqual({ code: Code.ok, message: "stored" });

    const had = session({ storeFile: { code: Code.have, message: "have" } });
    await waitFor(had.a, (x) => x.matches("ready"));
    expect(await ask(had.a, { type: "put", put, bytes: new Uint8Array(7) })).toEqual({ code: Code.have, message: "have" });
    // Already there: counted as a file, but no bytes were stored.
    expect(had.a.getSnapshot().context.bytes).toBe(0);
    expect(had.a.getSnapshot().context.files.loaded).toBe(1);

    const refused = session({ storeFile: { code: Code.conflict, message: "owned by s2" } });
    await waitFor(refused.a, (x) => x.matches("ready"));
    expect(await ask(refused.a, { type: "put", put, bytes: new Uint8Array(7) })).toEqual({ code: Code.conflict, message: "owned by s2" });
    expect(refused.a.getSnapshot().context.files).toEqual({ received: 0, loaded: 0, deleted: 0, rejected: 0 });
    expect(refused.a.getSnapshot().context.bytes).toBe(0);

    const failed = session({ storeFile: new Error("disk full") });
    await waitFor(failed.a, (x) => x.matches("ready"));
    expect(await ask(failed.a, { type: "put", put, bytes: new Uint8Array(7) })).toEqual({ code: Code.storageFailed, message: "disk full" });
    expect(failed.a.getSnapshot().context.puts).toEqual({});
    expect(failed.a.getSnapshot().context.replies).toBe(2);
  });
});
