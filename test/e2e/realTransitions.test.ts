// The machines' transitions as the real actors take them: in-process senders and receivers over a
// real nats-server, every actor inspected, through the situations a fleet meets (small and large
// files, a second round, a deletion, a group conflict, a receiver that refuses, no receiver at
// all, a hand-driven client that breaks the protocol, an idle session). test/machines/paths.test.ts
// proves every transition is on a path generated from the definitions; this test proves the real
// actors take them, except the ones listed in `notTakenHere`, each with why.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { InspectionEvent } from "xstate";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { receiverSession } from "../../src/machines/receiverSession.js";
import { senderLifecycle } from "../../src/machines/senderLifecycle.js";
import { senderRound } from "../../src/machines/senderRound.js";
import { writeBigSealed } from "../faults/rig.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import { TransitionRecorder, transitionsOf } from "../machines/coverage.js";
import { addSealedFile, buildEdge } from "../security/kit.js";
import { createHash, randomBytes } from "node:crypto";

const sha256Hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { encodeJson } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";
import { ChunkHeader, PutHeader, SchemaHeader } from "../../src/protocol/subjects.js";
import { type AnyReply, eventually, noAuth, rawClient, replyOf, sayHello } from "../security/kit.js";

const recorder = new TransitionRecorder();
const machines = [senderLifecycle, senderRound, receiverSession];

const ioFailure =
  "its actor failing outright, on an I/O error of the disk at that step (the scenarios run as root, whom file permissions do not stop)";
const lostMidRequest =
  "its requests failing as a whole, the connection lost at that very step (the retry properties in test/machines inject it)";
const oneRequestAtATime =
  "the session host hands the machine one request at a time (puts aside, which never leave `ready`), so no request finds it busy; the machine still answers one, for any other host";

/**
 * Transitions the scenarios here do not make the real actors take, by machine, with why. Each is
 * on a generated path (test/machines/paths.test.ts); the test fails when any other one is missed.
 */
const notTakenHere: Record<string, Record<string, string>> = {
  sender: {
    "syncing · xstate.error.actor.0.sender.syncing #0":
      "the round actor failing outright: a round's failures end in its summary, so only a defect gets here",
  },
  senderRound: {
    "recovering · xstate.error.actor.0.senderRound.recovering #0": ioFailure,
    "scanning · xstate.error.actor.0.senderRound.scanning #0": `${ioFailure}; missing or unreadable folders are skipped, not failed`,
    "confirming · xstate.error.actor.0.senderRound.confirming #0": ioFailure,
    "putting · xstate.done.actor.0.senderRound.putting #0":
      "a put answered with a refusal of the whole round (the sender removed or sync disabled between its hello and its put)",
    "fileFailed · always #1": "a refusal of the whole round in the middle of a file (as above)",
    "schemaFailed · always #0": "a refusal of the whole round at the schema step (as above)",
    "putting · xstate.error.actor.0.senderRound.putting #0": lostMidRequest,
    "deleting · xstate.error.actor.0.senderRound.deleting #0": lostMidRequest,
    "closing · xstate.error.actor.0.senderRound.closing #0": lostMidRequest,
  },
  receiverSession: {
    "(root) · offer #0": oneRequestAtATime,
    "(root) · load #0": oneRequestAtATime,
    "(root) · put #0": oneRequestAtATime,
    "(root) · delete #0": oneRequestAtATime,
    "(root) · schema #0": oneRequestAtATime,
    "(root) · bye #0": oneRequestAtATime,
    "receiving · chunk #2":
      "a chunk larger than the session's chunk size: the chunk size is the server's max_payload, which drops a larger message before the receiver sees it",
    "receiving · writeFailed #0": ioFailure,
    "handshaking · xstate.error.actor.0.receiverSession.handshaking #0": ioFailure,
    "offering · xstate.error.actor.0.receiverSession.offering #0": ioFailure,
    "verifying · xstate.error.actor.0.receiverSession.verifying #0": ioFailure,
    "deleting · xstate.error.actor.0.receiverSession.deleting #0": `${ioFailure}; a failing storage answers the delete, it does not throw`,
    "syncingSchema · xstate.error.actor.0.receiverSession.syncingSchema #0": `${ioFailure}; a failing storage answers the batch, it does not throw`,
  },
};
const inspect = (e: InspectionEvent) => recorder.inspect(e);

let server: TestNatsServer;
let root: string;
beforeAll(async () => {
  server = await startTestNatsServer();
  root = await tempRoot();
});
afterAll(async () => {
  for (const m of machines) process.stdout.write(`real-actor transition coverage ${recorder.report(m)}\n`);
  await server?.cleanup();
  await removeAll(root);
});

const startReceiver = (name: string, props: Record<string, string> = {}) =>
  Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_data_directory: join(root, name),
      nats_url: server.url,
      nats_monitor_url: server.monitorUrl,
      ...props,
    }),
    validateTsFile,
    log: () => undefined,
    inspect: (_session, e) => inspect(e as InspectionEvent),
  });

const openSender = (id: string, edge: string, props: Record<string, string> = {}) =>
  Sender.open({
    config: senderConfig({
      data_directory: edge,
      nats_url: server.url,
      sender_name: id,
      work_directory: join(root, `work-${id}`),
      ...props,
    }),
    inspect,
  });

/** A sealed TsFile of about `bytes` in `sg` (more than one chunk when large). */
const bigFile = (edge: string, sg: string, name: string, bytes: number) =>
  writeBigSealed(join(edge, "sequence", sg, "0", "0"), name, bytes, 7);

/** The headers of a schema piece of mlog.txt from its start. */
const schemaHeaders = (bytes: Uint8Array) => ({
  [SchemaHeader.file]: "mlog.txt",
  [SchemaHeader.epoch]: "0",
  [SchemaHeader.offset]: "0",
  [SchemaHeader.sha256]: sha256Hex(bytes),
});

/** A hand-driven session of `id` on `group`: requests by op, answers decoded. */
const rawSession = async (id: string, group = "tsync") => {
  const nc = await rawClient(server.url, id, noAuth);
  const hello = await sayHello(nc, group, id);
  const prefix = (hello as unknown as { sessionPrefix: string }).sessionPrefix;
  const ask = async (op: string, body: unknown, headers?: Record<string, string>): Promise<AnyReply & Record<string, unknown>> => {
    const h = headers ? natsHeaders() : undefined;
    for (const [k, v] of Object.entries(headers ?? {})) h?.set(k, v);
    const data = body instanceof Uint8Array ? body : encodeJson(body);
    return replyOf(await nc.request(`${prefix}.${op}`, data, { timeout: 10_000, ...(h ? { headers: h } : {}) })) as never;
  };
  const chunk = (fileId: string, offset: string, data: Uint8Array) =>
    ask("chunk", data, { [ChunkHeader.file]: fileId, [ChunkHeader.offset]: offset });
  return { nc, hello, ask, chunk };
};

describe("transitions the real actors take over a real nats-server", () => {
  test("a sender's rounds: small and large files, nothing new, a new file, a deletion", async () => {
    const receiver = await startReceiver("centre-a");
    const edge = join(root, "edge-a");
    const made = await buildEdge(edge, ["root.a"], 2);
    await bigFile(edge, "root.a", "9000-90-0-0.tsfile", 3_000_000);
    const sender = await openSender("a", edge);
    try {
      const first = await sender.runOnce();
      expect(first.failed).toEqual([]);
      expect(first.sent).toHaveLength(3);
      expect((await sender.runOnce()).sent).toEqual([]);
      await addSealedFile(edge, "root.a", "9100-91-0-0.tsfile", 3);
      expect((await sender.runOnce()).sent).toHaveLength(1);
      await rm(made[0]!.path);
      await rm(`${made[0]!.path}.resource`);
      expect((await sender.runOnce()).deleted).toEqual([`root.a/0/0/${made[0]!.name}`]);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("a second sender of an owned group is told the owner; a receiver that refuses; no receiver at all", async () => {
    const receiver = await startReceiver("centre-b");
    const off = await startReceiver("centre-off", { is_sync_enable: "false", receiver_group: "off" });
    const edge = join(root, "edge-b");
    await buildEdge(edge, ["root.b"], 1);
    const owner = await openSender("b1", edge);
    const second = await openSender("b2", edge);
    const refused = await openSender("b3", edge, { receiver_group: "off", max_number_of_sync_file_retry: "1" });
    const alone = await openSender("b4", edge, { receiver_group: "nobody", max_number_of_sync_file_retry: "1" });
    try {
      expect((await owner.runOnce()).sent).toHaveLength(1);
      expect((await second.runOnce()).conflicts).not.toEqual([]);
      expect((await refused.runOnce()).roundError).toMatch(/disabled/);
      expect((await alone.runOnce()).roundError).toBeDefined();
    } finally {
      for (const s of [owner, second, refused, alone]) await s.close();
      await receiver.stop();
      await off.stop();
    }
  });

  test("a sender running rounds on its period, asked for a round mid-round, then stopped", async () => {
    const receiver = await startReceiver("centre-c");
    const edge = join(root, "edge-c");
    await buildEdge(edge, ["root.c"], 1);
    await bigFile(edge, "root.c", "9000-90-0-0.tsfile", 2_000_000);
    const sender = await openSender("c", edge, { sync_period_in_second: "1", max_bandwidth_bytes_per_second: "4000000" });
    const stop = new AbortController();
    const rounds: number[] = [];
    try {
      // Mid-way through the first round (half a second of transfer), a round is asked for twice.
      const asks = setTimeout(() => {
        sender.syncNow();
        sender.sealed();
      }, 200);
      await sender.runForever(stop.signal, (s) => {
        rounds.push(s.sent.length);
        // Between rounds, asked again: the next round starts without waiting for the period.
        if (rounds.length === 2) sender.syncNow();
        if (rounds.length === 3) sender.sealed();
        // The fifth comes after the period.
        if (rounds.length >= 5) stop.abort();
      });
      clearTimeout(asks);
      expect(rounds[0]).toBe(2);
      expect(rounds.length).toBeGreaterThanOrEqual(5);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("a corrupt large file is quarantined; a large file of another's group is refused, and the group's next skipped; a round stopped mid-file", async () => {
    const receiver = await startReceiver("centre-h");
    const owned = join(root, "edge-h1");
    await buildEdge(owned, ["root.h"], 1);
    const owner = await openSender("h1", owned);
    const edge = join(root, "edge-h2");
    await bigFile(edge, "root.h", "9000-90-0-0.tsfile", 1_500_000);
    await bigFile(edge, "root.h", "9100-91-0-0.tsfile", 1_500_000);
    const other = await openSender("h2", edge);
    const junk = join(root, "edge-h3");
    await mkdir(join(junk, "sequence", "root.j", "0", "0"), { recursive: true });
    const junkFile = join(junk, "sequence", "root.j", "0", "0", "1-1-0-0.tsfile");
    await writeFile(junkFile, randomBytes(1_500_000));
    await writeFile(`${junkFile}.resource`, randomBytes(64));
    const corrupt = await openSender("h3", junk);
    const slow = join(root, "edge-h4");
    await bigFile(slow, "root.k", "9000-90-0-0.tsfile", 3_000_000);
    const stopped = await openSender("h4", slow, { max_bandwidth_bytes_per_second: "1000000" });
    try {
      expect((await owner.runOnce()).sent).toHaveLength(1);
      const refused = await other.runOnce();
      expect(refused.conflicts).not.toEqual([]);
      expect(refused.sent).toEqual([]);
      const bad = await corrupt.runOnce();
      expect(bad.failed.map((f) => f.file)).toEqual(["root.j/0/0/1-1-0-0.tsfile"]);
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 500);
      const cut = await stopped.runOnce(abort.signal);
      expect(cut.sent).toEqual([]);
    } finally {
      for (const x of [owner, other, corrupt, stopped]) await x.close();
      await receiver.stop();
    }
  });

  test("puts that take longer than the session's idle timeout keep it alive", async () => {
    const receiver = await startReceiver("centre-i", {
      session_idle_timeout_in_second: "1",
      storage_plugin: "exec",
      "plugin.load_command": "sleep 1.5",
    });
    const edge = join(root, "edge-i");
    await buildEdge(edge, ["root.i"], 2);
    const sender = await openSender("i", edge);
    try {
      const round = await sender.runOnce();
      expect(round.failed).toEqual([]);
      expect(round.sent).toHaveLength(2);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("a hand-driven session breaks the protocol every way a session can refuse", async () => {
    const receiver = await startReceiver("centre-d", { session_idle_timeout_in_second: "1" });
    const s = await rawSession("d");
    try {
      expect(s.hello.code).toBe(Code.ok);
      const stray = new Uint8Array([1, 2, 3]);
      expect((await s.chunk("nofile", "0", stray)).code).toBe(Code.unknownFile);
      expect((await s.ask("commit", { fileId: "nofile", size: 3, sha256: "0".repeat(64) })).code).toBe(Code.unknownFile);
      expect((await s.ask("delete", { sg: "root.d", vg: "0", tp: "0", name: "1-1-0-0.tsfile" })).code).toBeGreaterThanOrEqual(0);
      expect((await s.ask("schema", new Uint8Array(0), schemaHeaders(new Uint8Array(0)))).code).toBeGreaterThanOrEqual(0);
      const offer = await s.ask("offer", { sg: "root.d", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 10 });
      expect(offer.code, offer.message).toBe(Code.start);
      const fileId = String(offer["fileId"]);
      expect((await s.chunk(fileId, "x", stray)).code).toBe(Code.badMessage);
      expect((await s.chunk(fileId, "5", stray)).code).toBe(Code.outOfOrder);
      expect((await s.chunk(fileId, "0", new Uint8Array(11))).code).toBe(Code.tooLarge);
      expect((await s.chunk(fileId, "0", stray)).code).toBe(Code.ok);
      expect(
        (await s.ask("offer", { sg: "root.d", vg: "0", tp: "0", name: "2-2-0-0.tsfile", kind: "tsfile", size: 10 })).code,
      ).toBeGreaterThanOrEqual(0);
      // Idle past session_idle_timeout_in_second: the session expires.
      await new Promise((r) => setTimeout(r, 2_500));
      const after = await s.ask("bye", {}).catch((e: unknown) => ({ code: -1, message: String(e) }));
      expect(after.code).not.toBe(Code.ok);
    } finally {
      await s.nc.close();
      await receiver.stop();
    }
  });

  test("a storage that fails every load and delete: files fail retryably, are retried, then given up", async () => {
    const receiver = await startReceiver("centre-e", {
      storage_plugin: "exec",
      "plugin.load_command": "exit 3",
      "plugin.delete_command": "exit 3",
      "plugin.schema_command": "exit 3",
    });
    const edge = join(root, "edge-e");
    await buildEdge(edge, ["root.e"], 1);
    await bigFile(edge, "root.e", "9000-90-0-0.tsfile", 1_500_000);
    const mlog = join(root, "mlog-e.txt");
    await writeFile(mlog, "2,root.e\n0,root.e.d1.s1,2,2,0,,,\n");
    const sender = await openSender("e", edge, { max_number_of_sync_file_retry: "1", iotdb_schema_directory: mlog });
    try {
      const round = await sender.runOnce();
      expect(round.failed.length).toBeGreaterThan(0);
    } finally {
      await sender.close();
      await receiver.stop();
    }
    // The deletion of a file the receiver never loaded, and a schema batch, against the same storage.
    const again = await startReceiver("centre-e", {
      storage_plugin: "exec",
      "plugin.load_command": "exit 3",
      "plugin.delete_command": "exit 3",
      "plugin.schema_command": "exit 3",
    });
    const s = await rawSession("e2");
    try {
      await s.ask("delete", { sg: "root.e", vg: "0", tp: "0", name: "1-1-0-0.tsfile" });
      const log = new TextEncoder().encode("CREATE TIMESERIES root.e.d1.s1 WITH DATATYPE=INT64\n");
      await s.ask("schema", log, schemaHeaders(log));
    } finally {
      await s.nc.close();
      await again.stop();
    }
  });

  test("the receiver stops mid-file and comes back: the sender's session is lost, it says hello again and resumes", async () => {
    let receiver = await startReceiver("centre-f");
    const edge = join(root, "edge-f");
    await bigFile(edge, "root.f", "9000-90-0-0.tsfile", 4_000_000);
    const sender = await openSender("f", edge, { max_bandwidth_bytes_per_second: "2000000", max_number_of_sync_file_retry: "5" });
    try {
      const round = sender.runOnce();
      const part = join(root, "centre-f", ".tsync", "staging", "f", "root.f", "0", "0", "9000-90-0-0.tsfile.part");
      await eventually("the file to be half-way in the receiver's staging", async () =>
        ((await stat(part).catch(() => undefined))?.size ?? 0) > 1_000_000 ? true : undefined,
      );
      await receiver.stop();
      await new Promise((r) => setTimeout(r, 300));
      receiver = await startReceiver("centre-f");
      const summary = await round;
      expect(summary.failed).toEqual([]);
      expect(summary.sent).toHaveLength(1);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  test("requests sent at once, an offer refused, bye mid-file, more puts than a session may hold, an idle session", async () => {
    const receiver = await startReceiver("centre-g", { session_idle_timeout_in_second: "1" });
    const s = await rawSession("g");
    const ref = { sg: "root.g", vg: "0", tp: "0", name: "1-1-0-0.tsfile" };
    try {
      // The host hands the machine one request at a time (puts aside), so requests sent at once
      // are answered in turn and none finds the machine busy.
      const atOnce = await Promise.all([
        s.ask("load", { ...ref, parts: [{ kind: "tsfile", size: 3, sha256: "0".repeat(64) }] }),
        s.ask("delete", ref),
        s.ask("offer", { ...ref, kind: "tsfile", size: 10 }),
        s.ask("offer", { ...ref, kind: "tsfile", size: 10 }),
        s.ask("bye", {}),
      ]);
      for (const r of atOnce) expect(r.message).not.toMatch(/^cannot \w+ while/);
      expect(atOnce[4]?.code).toBe(Code.ok);
    } finally {
      await s.nc.close();
    }
    const r = await rawSession("g3");
    try {
      // An offer refused (too large), then the transfer of one that is accepted, left by saying bye.
      expect((await r.ask("offer", { ...ref, kind: "tsfile", size: Number.MAX_SAFE_INTEGER })).code).not.toBe(Code.start);
      const started = await r.ask("offer", { ...ref, kind: "tsfile", size: 10 });
      expect(started.code).toBe(Code.start);
      expect((await r.ask("bye", {})).code).toBe(Code.ok);
    } finally {
      await r.nc.close();
    }
    const p = await rawSession("g2");
    try {
      const puts = await Promise.all(
        Array.from({ length: 48 }, (_, k) =>
          p.ask("put", new Uint8Array(3), {
            [PutHeader]: JSON.stringify({
              ...ref,
              sg: "root.g2",
              name: `${k + 1}-${k + 1}-0-0.tsfile`,
              parts: [{ kind: "resource", size: 3, sha256: "0".repeat(64) }],
            }),
          }),
        ),
      );
      expect(puts.some((r) => r.code === Code.busy)).toBe(true);
      // Idle in `ready` past session_idle_timeout_in_second: the session expires.
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await p.ask("bye", {}).catch((e: unknown) => ({ code: -1, message: String(e) }))).code).not.toBe(Code.ok);
    } finally {
      await p.nc.close();
      await receiver.stop();
    }
  });

  test("the real actors took every transition of the three machines but the ones listed, each for its reason", () => {
    for (const m of machines) {
      const listed = Object.keys(notTakenHere[m.id] ?? {});
      // A listed transition must exist, so the list follows the definitions.
      expect(transitionsOf(m), `${m.id}: listed transitions`).toEqual(expect.arrayContaining(listed));
      expect(
        recorder.missing(m).filter((t) => !listed.includes(t)),
        `${m.id}: transitions no real actor took`,
      ).toEqual([]);
    }
  });
});
