import { createActor, fromPromise, SimulatedClock, waitFor } from "xstate";
import { describe, expect, test } from "vitest";
import { receiverSession, type Reply } from "../../src/machines/receiverSession.js";
import type { Offer } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";

const offer: Offer = { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 10 };
const input = { senderId: "s1", sessionId: "x1", address: "127.0.0.1", idleTimeoutMs: 60_000 };

// The machine only sees what each actor answers; the input it is given does not matter here.
const answering = (r: Reply) => fromPromise<Reply, any>(async () => r);

const session = (over: { admit?: Reply; accept?: Reply; verify?: Reply } = {}) =>
  createActor(
    receiverSession.provide({
      actors: {
        admit: answering(over.admit ?? { code: Code.ok, message: "welcome" }),
        acceptOffer: answering(over.accept ?? { code: Code.start, message: "send", fileId: "f1", offset: 0 }),
        verify: answering(over.verify ?? { code: Code.ok, message: "verified" }),
        load: answering({ code: Code.ok, message: "loaded" }),
        remove: answering({ code: Code.ok, message: "deleted" }),
      },
    }),
    { input },
  ).start();

describe("receiver session machine", () => {
  test("admitted → ready → receiving → verifying → ready → loading → ready → closed on bye", async () => {
    const a = session();
    await waitFor(a, (s) => s.matches("ready"));
    expect(a.getSnapshot().context.lastReply?.code).toBe(Code.ok);
    a.send({ type: "offer", offer });
    const receiving = await waitFor(a, (s) => s.matches("receiving"));
    expect(receiving.context.transfer).toEqual({ fileId: "f1", offer, received: 0 });
    a.send({ type: "progress", fileId: "f1", received: 10, bytes: 10 });
    expect(a.getSnapshot().context.transfer?.received).toBe(10);
    a.send({ type: "commit", commit: { fileId: "f1", size: 10, sha256: "0".repeat(64) } });
    const verified = await waitFor(a, (s) => s.matches("ready"));
    expect(verified.context.files.received).toBe(1);
    expect(verified.context.transfer).toBeUndefined();
    a.send({ type: "load", load: { sg: "root.sg1", vg: "0", tp: "0", name: "1-1-0-0.tsfile", parts: [] } });
    const loaded = await waitFor(a, (s) => s.matches("ready") && s.context.files.loaded === 1);
    expect(loaded.context.lastReply?.message).toBe("loaded");
    a.send({ type: "bye" });
    expect(a.getSnapshot().status).toBe("done");
  });

  test("a refused sender ends the session with the refusal as its reply", async () => {
    const a = session({ admit: { code: Code.disabled, message: "sync is disabled" } });
    const s = await waitFor(a, (x) => x.status === "done");
    expect(s.value).toBe("closed");
    expect(s.context.lastReply).toEqual({ code: Code.disabled, message: "sync is disabled" });
  });

  test("chunks and commits are refused outside a transfer; a commit for another file is refused", async () => {
    const a = session();
    await waitFor(a, (s) => s.matches("ready"));
    expect(a.getSnapshot().can({ type: "progress", fileId: "f1", received: 1, bytes: 1 })).toBe(false);
    expect(a.getSnapshot().can({ type: "commit", commit: { fileId: "f1", size: 1, sha256: "0".repeat(64) } })).toBe(false);
    a.send({ type: "offer", offer });
    await waitFor(a, (s) => s.matches("receiving"));
    expect(a.getSnapshot().can({ type: "commit", commit: { fileId: "other", size: 1, sha256: "0".repeat(64) } })).toBe(false);
    expect(a.getSnapshot().can({ type: "load", load: { sg: "a", vg: "0", tp: "0", name: "a.tsfile", parts: [] } })).toBe(false);
  });

  test("an offer answered `have` leaves the session ready, not receiving", async () => {
    const a = session({ accept: { code: Code.have, message: "already loaded" } });
    await waitFor(a, (s) => s.matches("ready"));
    a.send({ type: "offer", offer });
    const s = await waitFor(a, (x) => x.context.replies === 2);
    expect(s.value).toBe("ready");
    expect(s.context.lastReply?.code).toBe(Code.have);
  });

  test("a session with no message for the idle timeout expires, also mid-file", async () => {
    const clock = new SimulatedClock();
    const a = createActor(
      receiverSession.provide({
        actors: {
          admit: answering({ code: Code.ok, message: "welcome" }),
          acceptOffer: answering({ code: Code.start, message: "send", fileId: "f1", offset: 0 }),
        },
      }),
      { input, clock },
    ).start();
    await waitFor(a, (s) => s.matches("ready"));
    a.send({ type: "offer", offer });
    await waitFor(a, (s) => s.matches("receiving"));
    clock.increment(59_999);
    a.send({ type: "progress", fileId: "f1", received: 5, bytes: 5 });
    clock.increment(59_999);
    expect(a.getSnapshot().value).toBe("receiving");
    clock.increment(2);
    expect(a.getSnapshot().value).toBe("expired");
    expect(a.getSnapshot().status).toBe("done");
  });

  test("each request is answered through the responder it carries, by the machine", async () => {
    const a = session();
    await waitFor(a, (s) => s.matches("ready"));
    const got: Reply[] = [];
    const respond = (r: Reply) => void got.push(r);
    a.send({ type: "offer", offer, respond });
    await waitFor(a, (s) => s.matches("receiving"));
    expect(got).toEqual([{ code: Code.start, message: "send", fileId: "f1", offset: 0 }]);
    // A request the state cannot take is refused by the machine, naming the state.
    a.send({ type: "load", load: { sg: "a", vg: "0", tp: "0", name: "a.tsfile", parts: [] }, respond });
    expect(got[1]).toEqual({ code: Code.notReady, message: 'cannot load while "receiving"' });
    a.send({ type: "commit", commit: { fileId: "other", size: 1, sha256: "0".repeat(64) }, respond });
    expect(got[2]).toEqual({ code: Code.unknownFile, message: "no file other is being received" });
    expect(a.getSnapshot().value).toBe("receiving");
    a.send({ type: "bye", respond });
    expect(got[3]).toEqual({ code: Code.ok, message: "bye" });
    expect(a.getSnapshot().status).toBe("done");
  });

  test("chunks: refused by named guards in the order of the old checks, written in order, acked on progress", async () => {
    const written: Array<{ fileId: string; offset: number; length: number }> = [];
    let rejected = 0;
    const a = createActor(
      receiverSession.provide({
        actors: {
          admit: answering({ code: Code.ok, message: "welcome" }),
          acceptOffer: answering({ code: Code.start, message: "send", fileId: "f1", offset: 0 }),
        },
        actions: {
          write: (_, c) => void written.push({ fileId: c.fileId, offset: c.offset, length: c.data.length }),
          countRejected: () => void rejected++,
        },
      }),
      { input: { ...input, maxChunkBytes: 4 } },
    ).start();
    await waitFor(a, (s) => s.matches("ready"));
    const got: Reply[] = [];
    const respond = (r: Reply) => void got.push(r);
    const chunk = (fileId: string, offsetText: string, length: number) => ({
      type: "chunk" as const,
      fileId,
      offsetText,
      offset: /^[0-9]+$/.test(offsetText) ? Number(offsetText) : Number.NaN,
      data: new Uint8Array(length),
      respond,
    });
    a.send(chunk("f1", "0", 1));
    expect(got.pop()).toEqual({ code: Code.unknownFile, message: 'no file "f1" is being received' });
    a.send({ type: "offer", offer });
    await waitFor(a, (s) => s.matches("receiving"));
    a.send(chunk("f2", "0", 1));
    expect(got.pop()).toEqual({ code: Code.unknownFile, message: 'no file "f2" is being received' });
    a.send(chunk("f1", "x", 1));
    expect(got.pop()).toEqual({ code: Code.badMessage, message: 'chunk offset "x" is not a number' });
    a.send(chunk("f1", "3", 1));
    expect(got.pop()).toEqual({ code: Code.outOfOrder, message: "chunk at 3, expected 0", offset: 0 });
    a.send(chunk("f1", "0", 5));
    expect(got.pop()).toEqual({ code: Code.tooLarge, message: "chunk of 5 bytes exceeds 4" });
    expect(rejected).toBe(5);
    expect(written).toEqual([]);
    a.send(chunk("f1", "0", 4));
    expect(written).toEqual([{ fileId: "f1", offset: 0, length: 4 }]);
    expect(got).toEqual([]);
    a.send({ type: "progress", fileId: "f1", received: 4, bytes: 4, respond });
    expect(got.pop()).toEqual({ code: Code.ok, message: "", offset: 4 });
    a.send({ type: "progress", fileId: "f1", received: 8, bytes: 4 });
    a.send(chunk("f1", "8", 3));
    expect(got.pop()).toEqual({ code: Code.tooLarge, message: "chunk ends at 11, past the announced size 10" });
    a.send({ type: "writeFailed", fileId: "f1", reason: "closed", respond });
    expect(got.pop()).toEqual({ code: Code.unknownFile, message: "file f1 is closed" });
    expect(rejected).toBe(6);
    expect(a.getSnapshot().context).toMatchObject({ transfer: { received: 8 }, bytes: 8 });
    a.stop();
  });
});
