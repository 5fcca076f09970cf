// The machines' transitions as the real actors take them: in-process senders and receivers over a
// real nats-server, every actor inspected, through the situations a fleet meets (small and large
// files, a second round, a deletion, a group conflict, a receiver that refuses, no receiver at
// all, a hand-driven client that breaks the protocol, an idle session). test/machines/paths.test.ts
// proves every transition is on a path generated from the definitions; this test proves the real
// actors take them, except the ones listed in `notTakenHere`, each with why.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { InspectionEvent } from "xstate";
import { ownerKey, ownersBucket } from "../../src/actors/receiver/ownership.js";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { emulateStagingCapacity } from "../../src/actors/receiver/staging.js";
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
import { ChunkHeader, Feature, helloWildcard, PutHeader, SchemaHeader, sessionPrefix } from "../../src/protocol/subjects.js";
import { type AnyReply, eventually, noAuth, rawClient, replyOf, sayHello } from "../security/kit.js";

const recorder = new TransitionRecorder();
const machines = [senderLifecycle, senderRound, receiverSession];

const onlyADefect = (what: string) => `${what}, so only a defect gets here`;
const oneRequestAtATime =
  "the session host hands the machine one request at a time (puts aside, which never leave `ready`), so no request finds it busy; the machine still answers one, for any other host";
const immutableOnly =
  "taken by the work-directory test, which needs `chattr +i` (this machine's kernel or container does not allow it to root)";

/**
 * Transitions the scenarios here do not make the real actors take, by machine, with why. Each is
 * on a generated path (test/machines/paths.test.ts); the test fails when any other one is missed,
 * and when one listed here is taken after all (the list must say what is true).
 */
const notTakenHere: Record<string, Record<string, string>> = {
  sender: {
    "syncing · xstate.error.actor.0.sender.syncing #0": onlyADefect("a round's failures end in its summary"),
  },
  senderRound: {
    "putting · xstate.error.actor.0.senderRound.putting #0": onlyADefect(
      "the put actor answers every file's failure (its confirmation's included) in its result",
    ),
    "deleting · xstate.error.actor.0.senderRound.deleting #0": onlyADefect("the delete actor answers every file's failure in its result"),
    "closing · xstate.error.actor.0.senderRound.closing #0":
      "the bye actor ignores a lost connection: only the confirmed journal's fsync failing (EIO, which no test here can make a disk do) gets here",
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
    "handshaking · xstate.error.actor.0.receiverSession.handshaking #0": onlyADefect(
      "admission answers every failure (the address lookup's included) as a refusal",
    ),
  },
};

/** The transitions only an immutable file or folder makes the real actors take (see the work-directory test). */
const takenWithImmutable: Record<string, ReadonlyArray<string>> = {
  senderRound: [
    "recovering · xstate.error.actor.0.senderRound.recovering #0",
    "scanning · xstate.error.actor.0.senderRound.scanning #0",
    "confirming · xstate.error.actor.0.senderRound.confirming #0",
  ],
};

/** Whether root may make a file immutable here (ext4 and others allow it, given CAP_LINUX_IMMUTABLE). */
const canMakeImmutable = (): boolean => {
  const probe = mkdtempSync(join(tmpdir(), "tsync-immutable-"));
  try {
    execFileSync("chattr", ["+i", probe], { stdio: "ignore" });
    execFileSync("chattr", ["-i", probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
};
const immutable = canMakeImmutable();
if (!immutable) process.stdout.write(`realTransitions: chattr +i is not allowed here; ${immutableOnly}\n`);

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

const openSender = (
  id: string,
  edge: string,
  props: Record<string, string> = {},
  /** Called on each state the sender's round enters, before its actor runs: where a fault is injected. */
  onRoundState?: (state: string) => void,
) =>
  Sender.open({
    config: senderConfig({
      data_directory: edge,
      nats_url: server.url,
      sender_name: id,
      work_directory: join(root, `work-${id}`),
      ...props,
    }),
    inspect: (e) => {
      inspect(e);
      if (onRoundState === undefined || e.type !== "@xstate.snapshot") return;
      if ((e.actorRef as { logic?: { id?: string } }).logic?.id !== senderRound.id) return;
      const value = (e.snapshot as { value?: unknown }).value;
      if (typeof value === "string") onRoundState(value);
    },
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

  test("the receiver's disk and registry fail at the step that needs them: the sender is told, the session goes on", async () => {
    const receiver = await startReceiver("centre-j", { receiver_group: "disk" });
    const data = join(root, "centre-j");
    const staging = join(data, ".tsync", "staging");
    const bytes = new Uint8Array([1, 2, 3]);
    const ref = { vg: "0", tp: "0", name: "1-1-0-0.tsfile" };
    try {
      // A chunk that finds the staging disk full.
      const full = await rawSession("j1", "disk");
      const offer = await full.ask("offer", { ...ref, sg: "root.j1", kind: "tsfile", size: 10 });
      expect(offer.code, offer.message).toBe(Code.start);
      expect((await full.chunk(String(offer["fileId"]), "0", bytes)).code).toBe(Code.ok);
      emulateStagingCapacity(1);
      try {
        expect((await full.chunk(String(offer["fileId"]), "3", bytes)).code).toBe(Code.internal);
      } finally {
        emulateStagingCapacity(undefined);
      }
      await full.nc.close();

      // An offer whose staging folder cannot be made: a file stands where it goes.
      const s = await rawSession("j2", "disk");
      await mkdir(join(staging, "j2"), { recursive: true });
      await writeFile(join(staging, "j2", "root.j2"), "not a folder");
      const blocked = await s.ask("offer", { ...ref, sg: "root.j2", kind: "tsfile", size: 10 });
      expect(blocked.code).toBe(Code.internal);
      expect(blocked.message).not.toContain(root);

      // A verified part that cannot be moved into place: a folder holds its name.
      const open = await s.ask("offer", { ...ref, sg: "root.j3", kind: "resource", size: 3 });
      expect(open.code, open.message).toBe(Code.start);
      expect((await s.chunk(String(open["fileId"]), "0", bytes)).code).toBe(Code.ok);
      await mkdir(join(staging, "j2", "root.j3", "0", "0", "1-1-0-0.tsfile.resource.ready", "x"), { recursive: true });
      const commit = await s.ask("commit", { fileId: open["fileId"], size: 3, sha256: sha256Hex(bytes) });
      expect(commit.code).toBe(Code.internal);

      // A schema piece whose position file cannot be read: a folder holds its name.
      await mkdir(join(data, ".tsync", "schema-sync", "j2.json"), { recursive: true });
      const log = new TextEncoder().encode("CREATE TIMESERIES root.j2.d1.s1 WITH DATATYPE=INT64\n");
      expect((await s.ask("schema", log, schemaHeaders(log))).code).toBe(Code.storageFailed);
      // The session survived each of them.
      expect((await s.ask("bye", {})).code).toBe(Code.ok);
      await s.nc.close();

      // A deletion whose ownership entry is not one: something else wrote the registry's bucket.
      const edge = join(root, "edge-j");
      const [made] = await buildEdge(edge, ["root.j4"], 1);
      const loader = await openSender("j4", edge, { receiver_group: "disk" });
      expect((await loader.runOnce()).sent).toHaveLength(1);
      await loader.close();
      const d = await rawSession("j4", "disk");
      await (await new Kvm(d.nc).open(ownersBucket("disk"))).put(ownerKey("root.j4"), "not an owner record");
      const removed = await d.ask("delete", { sg: "root.j4", vg: "0", tp: "0", name: made!.name });
      expect(removed.code).toBe(Code.storageFailed);
      await d.nc.close();
    } finally {
      await receiver.stop();
    }
  });

  // Root passes every permission check; an immutable file or folder (chattr +i) stops it.
  test.runIf(immutable)(
    "the sender's work directory fails at recovery, at the scan and at the confirmation: the round says so",
    async () => {
      const receiver = await startReceiver("centre-k");
      const frozen: string[] = [];
      const freeze = (path: string) => {
        execFileSync("chattr", ["+i", path]);
        frozen.push(path);
      };
      try {
        // Recovery cannot clear the last round's snapshots.
        const edge = join(root, "edge-k");
        await buildEdge(edge, ["root.k"], 1);
        const recover = await openSender("k1", edge);
        await writeFile(join(root, "work-k1", "snapshot", "left-over"), "x");
        freeze(join(root, "work-k1", "snapshot"));
        // Node's recursive rm, refused the file's unlink (EPERM), then tries it as a folder (ENOTDIR).
        expect((await recover.runOnce()).roundError).toMatch(/EPERM|ENOTDIR/);
        await recover.close();

        // The scan cannot pin the round's files.
        const pinFolder = join(root, "work-k2", "snapshot", "root.k", "0", "0");
        const scan = await openSender("k2", edge, {}, (state) => {
          if (state !== "scanning") return;
          mkdirSync(pinFolder, { recursive: true });
          freeze(pinFolder);
        });
        expect((await scan.runOnce()).roundError).toMatch(/EPERM/);
        await scan.close();

        // The confirmed journal refuses the entry of a file the receiver has loaded.
        const big = join(root, "edge-k3");
        await bigFile(big, "root.k3", "9000-90-0-0.tsfile", 1_500_000);
        const confirm = await openSender("k3", big, { max_number_of_sync_file_retry: "1" }, (state) => {
          if (state === "loading" && frozen.length === 2) freeze(join(root, "work-k3", "confirmed.jsonl"));
        });
        const round = await confirm.runOnce();
        expect(round.sent).toEqual([]);
        expect(round.failed.map((f) => f.file)).toEqual(["root.k3/0/0/9000-90-0-0.tsfile"]);
        await confirm.close().catch(() => undefined);
      } finally {
        for (const path of frozen) execFileSync("chattr", ["-i", path]);
        await receiver.stop();
      }
    },
  );

  test("a receiver of another make that admits, then refuses the whole round at the schema, a put and an offer", async () => {
    // Not tsync's receiver (it answers the refusal codes only to a hello): a scripted one that
    // speaks the protocol, to show what the sender's actors do with such an answer.
    const group = "scripted";
    const nc = await rawClient(server.url, "scripted-receiver", noAuth);
    const hellos = nc.subscribe(helloWildcard(group));
    const session = nc.subscribe(`tsync.${group}.s.>`);
    const refused: string[] = [];
    void (async () => {
      for await (const m of hellos) {
        const id = m.subject.split(".").at(-1) ?? "";
        m.respond(
          encodeJson({
            code: Code.ok,
            message: "welcome",
            sessionPrefix: sessionPrefix(group, "x", id, `s${refused.length}`),
            sessionId: `s${refused.length}`,
            maxChunkBytes: 1_000_000,
            idleTimeoutMs: 60_000,
            features: [Feature.put],
            maxFilesInFlight: 4,
          }),
        );
      }
    })();
    void (async () => {
      for await (const m of session) {
        const op = m.subject.split(".").at(-1) ?? "";
        if (op === "bye") m.respond(encodeJson({ code: Code.ok, message: "bye" }));
        else {
          refused.push(op);
          m.respond(encodeJson({ code: Code.disabled, message: "sync was disabled on this receiver" }));
        }
      }
    })();
    const edge = join(root, "edge-l");
    await buildEdge(edge, ["root.l"], 1);
    await bigFile(edge, "root.l", "9000-90-0-0.tsfile", 1_500_000);
    const mlog = join(root, "mlog-l.txt");
    await writeFile(mlog, "2,root.l\n");
    const props = { receiver_group: group, max_number_of_sync_file_retry: "1" };
    const withSchema = await openSender("l1", edge, { ...props, iotdb_schema_directory: mlog });
    const smallOnly = join(root, "edge-l2");
    await buildEdge(smallOnly, ["root.l2"], 1);
    const smallFirst = await openSender("l2", smallOnly, props);
    const bigOnly = join(root, "edge-l3");
    await bigFile(bigOnly, "root.l3", "9000-90-0-0.tsfile", 1_500_000);
    const offerFirst = await openSender("l3", bigOnly, props);
    try {
      for (const sender of [withSchema, smallFirst, offerFirst]) expect((await sender.runOnce()).roundError).toMatch(/disabled/);
      expect(refused).toEqual(["schema", "put", "offer"]);
    } finally {
      for (const sender of [withSchema, smallFirst, offerFirst]) await sender.close();
      await nc.close();
    }
  });

  test("the real actors took every transition of the three machines but the ones listed, each for its reason", () => {
    for (const m of machines) {
      const listed = Object.keys(notTakenHere[m.id] ?? {});
      const excused = [...listed, ...(immutable ? [] : (takenWithImmutable[m.id] ?? []))];
      // A listed transition must exist, so the list follows the definitions.
      expect(transitionsOf(m), `${m.id}: listed transitions`).toEqual(expect.arrayContaining(excused));
      const missing = recorder.missing(m);
      expect(
        missing.filter((t) => !excused.includes(t)),
        `${m.id}: transitions no real actor took`,
      ).toEqual([]);
      expect(
        listed.filter((t) => !missing.includes(t)),
        `${m.id}: transitions listed as not taken that a real actor took`,
      ).toEqual([]);
    }
  });
});
