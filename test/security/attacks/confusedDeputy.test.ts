// Finding 1, the confused deputy: a sender that may publish only its own hello and session
// subjects names a privileged subject as the reply of its request, hoping the receiver publishes
// its answer there with its own rights: a JetStream purge of the ownership or object store bucket,
// a KV put on another plant's owner key, another sender's session `bye`. The receiver answers only
// into the asking sender's inbox, and its service user may not publish anywhere else at all.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ownerKey, ownersBucket } from "../../../src/actors/receiver/ownership.js";
import type { Receiver } from "../../../src/actors/receiver/receiver.js";
import { receiverKeysDir } from "../../../src/actors/receiver/receiverIdentity.js";
import { Sender } from "../../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../../src/machines/senderTypes.js";
import { encodeJson } from "../../../src/protocol/messages.js";
import { Code } from "../../../src/protocol/status.js";
import { helloSubject, senderInboxPrefix } from "../../../src/protocol/subjects.js";
import { senderConfig } from "../../harness/configs.js";
import { startEnrolledReceiver, type EnrolledReceiver } from "../../harness/enroll.js";
import { startTestNatsServer, type TestNatsServer } from "../../harness/natsServer.js";
import { removeAll, startReceiver, tempRoot } from "../../harness/syncPair.js";
import { buildEdge, eventually, expectLandedByteForByte, helloBody, listTree, noAuth, rawClient, sayHello } from "../kit.js";

const bucket = "plantobjects";

/**
 * Waits until the fleet bucket holds the end of `sender`'s round: its reports are written a flush
 * after they are sent, and the snapshots below must compare a store no legitimate sender still changes.
 */
const fleetSettled = async (receiver: Receiver, sender: string): Promise<void> => {
  let ended = false;
  const stop = await receiver.fleet.watch((c) => {
    if (c.kind === "put" && c.record.sender === sender && c.record.report.actor === "round" && c.record.report.status !== "active")
      ended = true;
  });
  try {
    await eventually(`${sender}'s last fleet report`, () => (ended ? true : undefined));
  } finally {
    stop();
  }
};

/** Everything an attack could change: each stored file's digest, and each JetStream stream's state. */
const snapshot = async (centre: string, store: NatsConnection): Promise<string> => {
  const files: string[] = [];
  for (const rel of await listTree(centre, (p) => p.startsWith(".tsync/nats") || p.startsWith(".tsync/staging"))) {
    if (rel.endsWith("/")) continue;
    files.push(
      `${rel} ${createHash("sha256")
        .update(await readFile(join(centre, rel)))
        .digest("hex")}`,
    );
  }
  const jsm = await jetstreamManager(store);
  const streams: string[] = [];
  for await (const s of jsm.streams.list())
    streams.push(`${s.config.name} msgs=${s.state.messages} bytes=${s.state.bytes} last=${s.state.last_seq}`);
  return [...files, ...streams.sort()].join("\n");
};

/** The privileged subjects an attacker would like the receiver to publish to for it. */
const privilegedReplies = (group: string, victimSession: string): ReadonlyArray<string> => [
  `$JS.API.STREAM.PURGE.KV_${ownersBucket(group)}`,
  `$JS.API.STREAM.DELETE.KV_${ownersBucket(group)}`,
  `$KV.${ownersBucket(group)}.${ownerKey("root.victim")}`,
  `$JS.API.STREAM.PURGE.OBJ_${bucket}`,
  `$O.${bucket}.M.x`,
  `$SYS.REQ.SERVER.PING.CONNZ`,
  `${victimSession}.bye`,
  `${senderInboxPrefix("victim")}.x.1`,
];

describe("against the default receiver (embedded server, enrolled senders)", () => {
  let root: string;
  const receivers: EnrolledReceiver[] = [];
  beforeAll(async () => {
    root = await tempRoot("tsync-deputy-");
  });
  afterAll(async () => {
    for (const r of receivers) await r.receiver.stop();
    await removeAll(root);
  });

  /** A receiver whose victim plant already synced a group into the object store. */
  const withVictim = async (name: string) => {
    const r = await startEnrolledReceiver(root, name, ["victim", "mallory"], { storage_plugin: "objectstore", "plugin.bucket": bucket });
    receivers.push(r);
    const edge = join(root, `${name}-victim-edge`);
    await buildEdge(edge, ["root.victim"], 2);
    const victim = await Sender.open({
      config: senderConfig({
        data_directory: edge,
        server_ip: "127.0.0.1",
        server_port: String(r.receiver.port),
        receiver_group: name,
        ...r.senders["victim"],
      }),
    });
    const round = await victim.runOnce();
    expect(roundSucceeded(round), JSON.stringify(round)).toBe(true);
    await victim.close();
    await fleetSettled(r.receiver, "victim");
    return r;
  };

  test("no reply subject makes the receiver purge, put, delete or end anything, in any admission state", async () => {
    for (const [name, restrict] of [
      ["deputy", undefined],
      ["deputyoff", { is_sync_enable: "false" }],
      ["deputywall", { ip_white_list: "10.0.0.0/8" }],
    ] as const) {
      let r = await withVictim(name);
      if (restrict) {
        // The same data directory, restarted refusing everyone: refusals were answered too.
        await r.receiver.stop();
        receivers.splice(receivers.indexOf(r), 1);
        const enrolled = r;
        r = {
          ...(await startEnrolledReceiver(root, name, [], { storage_plugin: "objectstore", "plugin.bucket": bucket, ...restrict })),
          senders: enrolled.senders,
          as: enrolled.as,
        };
        receivers.push(r);
      }
      const store = r.receiver.store;
      // The victim holds a live session (when the receiver admits anyone): its bye subject is a target.
      const victimClient = await rawClient(r.url, "victim", r.as("victim"));
      const mallory = await rawClient(r.url, "mallory", r.as("mallory"));
      try {
        const grant = await sayHello(victimClient, name, "victim");
        const victimSession = grant.code === Code.ok ? String(grant["sessionPrefix"]) : `tsync.${name}.s.x.victim.y`;
        const before = await snapshot(r.centre, store);
        const dropped = r.receiver.core.stats.droppedReplies;
        const targets = privilegedReplies(name, victimSession);
        for (const reply of targets) mallory.publish(helloSubject(name, "mallory"), helloBody("mallory"), { reply });
        await mallory.flush();
        await eventually(`${targets.length} hellos dropped`, () =>
          r.receiver.core.stats.droppedReplies >= dropped + targets.length ? true : undefined,
        );
        if (grant.code === Code.ok) {
          // Inside a session of its own, the same trick on every operation.
          const mine = await sayHello(mallory, name, "mallory");
          expect(mine.code, mine.message).toBe(Code.ok);
          const prefix = String(mine["sessionPrefix"]);
          for (const op of ["offer", "commit", "load", "delete", "bye", "chunk"])
            for (const reply of targets)
              mallory.publish(`${prefix}.${op}`, encodeJson({ sg: "root.victim", vg: "0", tp: "0", name: "1-1-0-0.tsfile" }), { reply });
          await mallory.flush();
          await eventually("session requests dropped", () =>
            r.receiver.core.stats.droppedReplies >= dropped + targets.length * 7 ? true : undefined,
          );
          expect(r.receiver.openSessions.map((s) => s.input.senderId).sort()).toEqual(["mallory", "victim"]);
        }
        expect(await snapshot(r.centre, store)).toBe(before);
        // The victim's session, if it had one, still answers it.
        if (grant.code === Code.ok) {
          const still = await victimClient.request(
            `${victimSession}.delete`,
            encodeJson({ sg: "root.victim", vg: "0", tp: "0", name: "9-9-0-0.tsfile" }),
            { timeout: 10_000 },
          );
          expect(still.json<{ code: number }>().code).not.toBe(Code.unknownSession);
        }
      } finally {
        await victimClient.close();
        await mallory.close();
      }
    }
  });

  test("the connection that hears senders may not publish to JetStream, KV, object store or system subjects, whatever the code does", async () => {
    const r = receivers[0] ?? (await withVictim("deputyperm"));
    // The receiver's own service identity, as a bug in the reply check would use it.
    const service = await rawClient(
      r.url,
      "service",
      { ...noAuth, nats_nkey_seed_file: join(receiverKeysDir(r.centre), "service.nk") },
      { name: "service-probe", inboxPrefix: "_INBOX" },
    );
    try {
      for (const subject of [
        `$JS.API.STREAM.PURGE.KV_${ownersBucket("deputy")}`,
        `$KV.${ownersBucket("deputy")}.x`,
        `$O.${bucket}.M.x`,
        "$SYS.REQ.SERVER.PING",
      ]) {
        await expect(service.request(subject, "{}", { timeout: 5_000 }), subject).rejects.toThrow(/Permissions Violation for Publish/);
      }
    } finally {
      await service.close();
    }
  });

  test("a sender's own credentials reach no JetStream, KV, object store or system subject directly", async () => {
    const r = receivers[0] ?? (await withVictim("deputydirect"));
    const mallory = await rawClient(r.url, "mallory", r.as("mallory"));
    try {
      for (const subject of [
        `$JS.API.STREAM.PURGE.KV_${ownersBucket("deputy")}`,
        "$JS.API.STREAM.CREATE.filler",
        `$KV.${ownersBucket("deputy")}.x`,
        `$O.${bucket}.M.x`,
        "$SYS.REQ.SERVER.PING.CONNZ",
      ]) {
        await expect(mallory.request(subject, "{}", { timeout: 5_000 }), subject).rejects.toThrow(/Permissions Violation for Publish/);
      }
    } finally {
      await mallory.close();
    }
  });
});

describe("against a receiver on an external server", () => {
  let server: TestNatsServer;
  let root: string;
  beforeAll(async () => {
    server = await startTestNatsServer();
    root = await tempRoot("tsync-deputy-ext-");
  });
  afterAll(async () => {
    await server.cleanup();
    await removeAll(root);
  });

  test("the receiver itself never publishes its answer to a subject outside the asking sender's inbox", async () => {
    const centre = join(root, "centre");
    const receiver = await startReceiver(server, centre, { receiver_group: "ext" });
    const edge = join(root, "edge");
    const files = await buildEdge(edge, ["root.victim"], 1);
    const victim = await Sender.open({
      config: senderConfig({ data_directory: edge, nats_url: server.url, receiver_group: "ext", sender_name: "victim" }),
    });
    const mallory = await rawClient(server.url, "mallory");
    try {
      expect(roundSucceeded(await victim.runOnce())).toBe(true);
      await fleetSettled(receiver, "victim");
      const before = await snapshot(centre, receiver.store);
      const dropped = receiver.core.stats.droppedReplies;
      const targets = privilegedReplies("ext", "tsync.ext.s.x.victim.y");
      for (const reply of targets) mallory.publish(helloSubject("ext", "mallory"), helloBody("mallory"), { reply });
      await eventually("every hello dropped", () => (receiver.core.stats.droppedReplies >= dropped + targets.length ? true : undefined));
      expect(await snapshot(centre, receiver.store)).toBe(before);
      await expectLandedByteForByte(centre, files);
    } finally {
      await mallory.close();
      await victim.close();
      await receiver.stop();
    }
  });
});
