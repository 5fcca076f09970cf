// A fleet: fifty senders (each its own data dir, NATS connection and Sender) sync into one
// receiver at once, while one session sends garbage and another dies in the middle of a file.
import { join } from "node:path";
import { headers } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { SampleFile } from "../../src/actors/sampleDataDir.js";
import type { Receiver } from "../../src/actors/receiver/receiver.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { encodeJson } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";
import { ChunkHeader } from "../../src/protocol/subjects.js";
import { senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { listFiles, removeAll, startReceiver, tempRoot } from "../harness/syncPair.js";
import { buildEdge, eventually, expectLandedByteForByte, rawClient, replyOf, sayHello } from "../security/kit.js";

const fleetSize = 50;
const group = "fleet";
/**
 * Seconds without a request before the receiver drops a session. It applies to every session, not
 * only the dying one, and a session that expires while its sender's request is on the way loses
 * that request: the sender waits out its request timeout (30 s; 120 s for commit and load) before
 * it retries, and the test times out. With 50 senders and the receiver in one process on a loaded
 * 2-core machine the receiver's event loop stalls for over a second (with 1 s, 15 sessions expired
 * at once and their senders waited 30 s; with 2 s, the old value, the garbage session expired in
 * nearly every loaded run). The garbage session's requests are all refused before they reach the
 * session, so they never count as activity: its whole conversation must fit in this. Measured under
 * load: at most 1.2 s between a site's requests, 1.7 s for the garbage conversation; 10 s leaves a
 * wide margin. Alone it costs waiting for the dying session to expire (the test takes ~11 s; ~20 s
 * at most under load, well inside the 60 s timeout).
 */
const idleSeconds = 10;

let server: TestNatsServer;
let root: string;
let receiver: Receiver;
let centre: string;
beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot("tsync-fleet-");
  centre = join(root, "centre");
  receiver = await startReceiver(server, centre, { receiver_group: group, session_idle_timeout_in_second: String(idleSeconds) });
});
afterAll(async () => {
  await receiver.stop();
  await server.cleanup();
  await removeAll(root);
});

/**
 * A session that answers every operation with garbage, then asks for things that do not exist. The
 * requests go out at once (the receiver still serves them one at a time, in order): one after the
 * other, 160 round trips through a busy receiver took longer than the session lives (see idleSeconds).
 */
const garbageSession = async (): Promise<number[]> => {
  const nc = await rawClient(server.url, "garbage");
  try {
    const grant = await sayHello(nc, group, "garbage");
    const prefix = String(grant["sessionPrefix"]);
    const ask = (op: string, data: Uint8Array, h?: ReturnType<typeof headers>): Promise<number> =>
      nc.request(`${prefix}.${op}`, data, { timeout: 10_000, ...(h ? { headers: h } : {}) }).then((m) => replyOf(m).code);
    const asks: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) {
      const noise = new Uint8Array(64 + i * 31).map((_, j) => (j * 131 + i * 17) % 256);
      for (const op of ["offer", "commit", "load", "delete", "chunk", "nonsense"]) asks.push(ask(op, noise));
      asks.push(ask("offer", encodeJson({ sg: "../../etc", vg: "0", tp: "0", name: "x.tsfile", kind: "tsfile", size: 1 })));
      const h = headers();
      h.set(ChunkHeader.file, "no-such-file");
      h.set(ChunkHeader.offset, "0");
      asks.push(ask("chunk", noise, h));
    }
    return await Promise.all(asks);
  } finally {
    await nc.close();
  }
};

/** Starts a file, sends half of it, and vanishes without a word. */
const dyingSession = async (): Promise<void> => {
  const nc = await rawClient(server.url, "dying");
  const grant = await sayHello(nc, group, "dying");
  const prefix = String(grant["sessionPrefix"]);
  const size = 64 * 1024;
  const offer = replyOf(
    await nc.request(`${prefix}.offer`, encodeJson({ sg: "root.dying", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size }), {
      timeout: 10_000,
    }),
  );
  expect(offer.code).toBe(Code.start);
  const h = headers();
  h.set(ChunkHeader.file, String(offer["fileId"]));
  h.set(ChunkHeader.offset, "0");
  const ack = replyOf(await nc.request(`${prefix}.chunk`, new Uint8Array(size / 2), { headers: h, timeout: 10_000 }));
  expect(ack.code).toBe(Code.ok);
  await nc.close();
};

test(`${fleetSize} senders sync at once, every file byte for byte, while a garbage session and a dying one run beside them`, async () => {
  // Built side by side: one after the other took up to 9 s on a loaded machine.
  const edges: ReadonlyArray<{ dir: string; files: ReadonlyArray<SampleFile> }> = await Promise.all(
    Array.from({ length: fleetSize }, async (_, i) => {
      const dir = join(root, `edge${i}`);
      return { dir, files: await buildEdge(dir, [`root.site${i}`], 2) };
    }),
  );
  const senders = await Promise.all(
    edges.map((e, i) =>
      Sender.open({
        config: senderConfig({ data_directory: e.dir, nats_url: server.url, receiver_group: group, sender_name: `site${i}` }),
      }),
    ),
  );
  try {
    const [summaries, garbageCodes] = await Promise.all([Promise.all(senders.map((s) => s.runOnce())), garbageSession(), dyingSession()]);
    for (const [i, s] of summaries.entries()) {
      expect(roundSucceeded(s), `site${i}: ${JSON.stringify(s)}`).toBe(true);
      expect(s.sent, `site${i}`).toHaveLength(2);
    }
    await Promise.all(edges.map((e) => expectLandedByteForByte(centre, e.files)));
    // Every garbage message got an error status, none was taken.
    expect(garbageCodes).toHaveLength(20 * 8);
    expect(garbageCodes.filter((c) => c === Code.ok || c === Code.start || c === Code.have)).toEqual([]);
    expect(new Set(garbageCodes)).toEqual(new Set([Code.badMessage, Code.badName, Code.unknownFile]));
    expect(receiver.core.stats.loads).toBe(fleetSize * 2);
    expect(receiver.core.stats.sessionsOpened).toBe(fleetSize + 2);
    expect(receiver.openSessions.filter((s) => s.input.senderId.startsWith("site"))).toEqual([]);

    // The dead session expires, nothing of its half file is loaded, and it resumes where it died.
    await eventually(
      "the dying session to expire",
      () => (receiver.openSessions.some((s) => s.input.senderId === "dying") ? undefined : true),
      idleSeconds * 1000 + 15_000,
    );
    expect(await listFiles(join(centre, "sequence", "root.dying"))).toEqual([]);
    const back = await rawClient(server.url, "dying");
    try {
      const prefix = String((await sayHello(back, group, "dying"))["sessionPrefix"]);
      const offer = replyOf(
        await back.request(
          `${prefix}.offer`,
          encodeJson({ sg: "root.dying", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 64 * 1024 }),
          { timeout: 10_000 },
        ),
      );
      expect([offer.code, offer["offset"]]).toEqual([Code.resume, 32 * 1024]);
    } finally {
      await back.close();
    }

    // A second round has nothing to send for anyone.
    const again = await Promise.all(senders.map((s) => s.runOnce()));
    expect(again.every((s) => roundSucceeded(s) && s.sent.length === 0)).toBe(true);
  } finally {
    await Promise.all(senders.map((s) => s.close()));
  }
});
