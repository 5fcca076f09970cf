// Authentication, TLS and per-sender permissions against a real nats-server: certificates made
// by openssl here, users with passwords and nkeys, each sender allowed to publish only under its
// own id. A client holding sender A's credentials must not get a session as B.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { nkeys, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { Redacted } from "effect";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { NatsClientSettings } from "../../src/actors/natsConnect.js";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { encodeJson } from "../../src/protocol/messages.js";
import { Code } from "../../src/protocol/status.js";
import { helloSubject, senderInboxPrefix } from "../../src/protocol/subjects.js";
import { enroll } from "../harness/enroll.js";
import { makeTestPki, type TestPki } from "../harness/certs.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";
import {
  buildEdge,
  eventually,
  expectLandedByteForByte,
  helloBody,
  listTree,
  noAuth,
  rawClient,
  replyOf,
  sayHello,
  type AnyReply,
} from "./kit.js";

const group = "plant";

/** What sender `id` may do: say hello as itself, talk in its own sessions, report to the fleet view as itself, read its own inbox only. */
const senderPermissions = (id: string) =>
  `permissions: { publish: { allow: ["tsync.${group}.hello.${id}", "tsync.${group}.s.*.${id}.>", "tsync.${group}.fleet.${id}"] }, subscribe: { allow: ["${senderInboxPrefix(id)}.>"] } }`;

describe("TLS with client certificates and per-sender permissions", () => {
  let pki: TestPki;
  let server: TestNatsServer;
  let root: string;
  let centre: string;
  let receiver: Receiver;
  let bSeedFile: string;
  let tlsFor: (name: string) => Promise<{ tls_ca_file: string; tls_cert_file: string; tls_key_file: string }>;

  beforeAll(async () => {
    pki = await makeTestPki();
    root = await tempRoot("tsync-auth-");
    centre = join(root, "centre");
    const b = nkeys.createUser();
    bSeedFile = join(root, "B.nk");
    await writeFile(bSeedFile, new TextDecoder().decode(b.getSeed()));
    server = await startTestNatsServer(`
tls {
  cert_file: "${pki.server.cert}"
  key_file: "${pki.server.key}"
  ca_file: "${pki.ca}"
  verify: true
}
authorization {
  users = [
    { user: "receiver", password: "receiver-secret" }
    { user: "A", password: "a-secret", ${senderPermissions("A")} }
    { nkey: "${b.getPublicKey()}", ${senderPermissions("B")} }
  ]
}
`);
    tlsFor = async (name) => {
      const kp = await pki.client(name);
      return { tls_ca_file: pki.ca, tls_cert_file: kp.cert, tls_key_file: kp.key };
    };
    const rtls = await tlsFor("receiver");
    receiver = await Receiver.start({
      config: receiverConfig({
        is_sync_enable: "true",
        receiver_group: group,
        receiver_data_directory: centre,
        nats_url: server.url,
        nats_monitor_url: server.monitorUrl,
        nats_user: "receiver",
        nats_password: "receiver-secret",
        ...rtls,
      }),
      validateTsFile,
      log: () => undefined,
    });
  });

  afterAll(async () => {
    await receiver?.stop();
    await server?.cleanup();
    await pki?.cleanup();
    await removeAll(root);
  });

  const aSettings = async (): Promise<NatsClientSettings> => ({
    ...noAuth,
    ...(await tlsFor("A")),
    nats_user: "A",
    nats_password: Redacted.make("a-secret"),
  });
  const bSettings = async (): Promise<NatsClientSettings> => ({ ...noAuth, ...(await tlsFor("B")), nats_nkey_seed_file: bSeedFile });

  test("senders with a password (A) and with an nkey (B) sync over TLS", async () => {
    const edgeA = join(root, "edgeA");
    const edgeB = join(root, "edgeB");
    const filesA = await buildEdge(edgeA, ["root.a"], 2);
    const filesB = await buildEdge(edgeB, ["root.b"], 2);
    const tlsA = await tlsFor("A");
    const tlsB = await tlsFor("B");
    const a = await Sender.open({
      config: senderConfig({
        data_directory: edgeA,
        nats_url: server.url,
        receiver_group: group,
        sender_name: "A",
        nats_user: "A",
        nats_password: "a-secret",
        ...tlsA,
      }),
    });
    const b = await Sender.open({
      config: senderConfig({
        data_directory: edgeB,
        nats_url: server.url,
        receiver_group: group,
        sender_name: "B",
        nats_nkey_seed_file: bSeedFile,
        ...tlsB,
      }),
    });
    try {
      const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
      expect(roundSucceeded(ra), JSON.stringify(ra)).toBe(true);
      expect(roundSucceeded(rb), JSON.stringify(rb)).toBe(true);
      expect(ra.sent).toHaveLength(2);
      expect(rb.sent).toHaveLength(2);
      await expectLandedByteForByte(centre, [...filesA, ...filesB]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a client without a certificate, with a stranger's certificate or a wrong password cannot connect", async () => {
    const connected = async () =>
      ((await (await fetch(`${server.monitorUrl}/connz`)).json()) as { num_connections: number }).num_connections;
    const baseline = await connected();
    const password = { nats_user: "A", nats_password: Redacted.make("a-secret") };
    // The server drops a TLS client without a trusted certificate after the handshake; the client
    // only sees the connection never become ready.
    const quick = { timeout: 2_000 };
    await expect(rawClient(server.url, "A", { ...noAuth, ...password }, quick)).rejects.toThrow(/certificate/);
    await expect(rawClient(server.url, "A", { ...noAuth, ...password, tls_ca_file: pki.ca }, quick)).rejects.toThrow();
    const stranger = await pki.stranger();
    await expect(
      rawClient(
        server.url,
        "A",
        { ...noAuth, ...password, tls_ca_file: pki.ca, tls_cert_file: stranger.cert, tls_key_file: stranger.key },
        quick,
      ),
    ).rejects.toThrow();
    await expect(
      rawClient(server.url, "A", { ...(await aSettings()), nats_password: Redacted.make("not-a-secret") }, quick),
    ).rejects.toThrow(/[Aa]uthorization/);
    expect(await connected()).toBe(baseline);
  });

  test("with A's credentials, no hello, inbox or subject trick gets a session as B, and nothing is written", async () => {
    const before = await listTree(centre);
    const opened = receiver.core.stats.sessionsOpened;
    // B is connected and holds a live session.
    const b = await rawClient(server.url, "B", await bSettings());
    const eve = await rawClient(server.url, "A", await aSettings());
    // A client with A's credentials that names its connection as B's (its inbox must stay A's).
    const eveAsB = await rawClient(server.url, "B", await aSettings(), { inboxPrefix: senderInboxPrefix("A") });
    try {
      const grant = await sayHello(b, group, "B");
      expect(grant.code).toBe(Code.ok);
      const prefix = String(grant["sessionPrefix"]);

      // 0. A cannot listen to other inboxes: every way to overhear B's grant is refused by the server.
      for (const tap of ["_INBOX.>", "_tsync_inbox.>", `${senderInboxPrefix("B")}.>`, ">"]) {
        const refused = new Promise<string>((resolve) => eve.subscribe(tap, { callback: (e) => resolve(String(e)) }));
        expect(await refused).toMatch(/Permissions Violation for Subscription/);
      }
      // 1. A hello on B's subject: the server drops it and tells the client.
      for (const nc of [eve, eveAsB]) {
        await expect(nc.request(helloSubject(group, "B"), helloBody("B"), { timeout: 5_000 })).rejects.toThrow(
          /Permissions Violation for Publish to "tsync\.plant\.hello\.B"/,
        );
      }
      // 2. A hello on A's subject that claims to be B: the receiver compares subject and body.
      const claimsB = await sayHello(eve, group, "A", { senderId: "B" });
      expect(claimsB.code).toBe(Code.unauthorized);
      expect(claimsB.message).toMatch(/subject of A claims to be B/);
      // 3. A's own hello from a connection named as B's: that connection is no suspect for A.
      const misnamed = await sayHello(eveAsB, group, "A");
      expect(misnamed.code).toBe(Code.addressNotAllowed);
      expect(misnamed.message).toMatch(/no connection named tsync-sender-A/);
      // 4. A's hello answered to B's inbox (to borrow B's connection and address): the receiver
      //    answers only into the asking sender's inbox, so it drops the hello unanswered.
      const dropped = receiver.core.stats.droppedReplies;
      eve.publish(helloSubject(group, "A"), helloBody("A"), { reply: `${senderInboxPrefix("B")}.borrowed.1` });
      await eventually("the hello to be dropped", () => (receiver.core.stats.droppedReplies > dropped ? true : undefined));
      // 5. B's session subjects, had they leaked: the server drops A's offer.
      const offer = { sg: "root.b", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 10 };
      for (const nc of [eve, eveAsB]) {
        await expect(nc.request(`${prefix}.offer`, encodeJson(offer), { timeout: 5_000 })).rejects.toThrow(
          /Permissions Violation for Publish to "tsync\.plant\.s\./,
        );
      }

      // B's session is untouched and still answers B.
      const stillB = replyOf(await b.request(`${prefix}.offer`, encodeJson({ ...offer, size: 0 }), { timeout: 5_000 }));
      expect(stillB.code, stillB.message).toBe(Code.start);
      expect(receiver.core.stats.sessionsOpened).toBe(opened + 1);
      expect(receiver.openSessions.map((s) => s.input.senderId)).toEqual(["B"]);
    } finally {
      await Promise.all([b, eve, eveAsB].map((nc: NatsConnection) => nc.close()));
    }
    // Only B's own offer began a (still empty) staged part; A's attempts left no trace.
    const after = await listTree(centre);
    const added = after.filter((p) => !before.includes(p));
    expect(
      // The staging root itself may be new: small files earlier in this file never pass through it.
      added.every((p) => p === ".tsync/staging/" || p.startsWith(".tsync/staging/B/")),
      added.join("\n"),
    ).toBe(true);
    expect(added.filter((p) => !p.endsWith("/"))).toEqual([
      ".tsync/staging/B/root.b/0/0/1-1-0-0.tsfile.part",
      ".tsync/staging/B/root.b/0/0/1-1-0-0.tsfile.part.meta",
    ]);
  });
});

test("the embedded nats-server takes tls_server_* keys: senders need a certificate from tls_server_ca_file", async () => {
  const pki = await makeTestPki();
  const root = await tempRoot("tsync-embedded-tls-");
  let receiver: Receiver | undefined;
  try {
    const own = await pki.client("receiver");
    const centre = join(root, "centre");
    const edgeCredentials = await enroll(centre, "edge", root);
    receiver = await Receiver.start({
      config: receiverConfig({
        is_sync_enable: "true",
        sync_server_port: "0",
        receiver_data_directory: centre,
        tls_server_cert_file: pki.server.cert,
        tls_server_key_file: pki.server.key,
        tls_server_ca_file: pki.ca,
        tls_ca_file: pki.ca,
        tls_cert_file: own.cert,
        tls_key_file: own.key,
      }),
      validateTsFile,
      log: () => undefined,
    });
    const edge = join(root, "edge");
    const files = await buildEdge(edge, ["root.tls"], 2);
    const kp = await pki.client("edge");
    const sender = await Sender.open({
      config: senderConfig({
        data_directory: edge,
        server_ip: "127.0.0.1",
        server_port: String(receiver.port),
        tls_ca_file: pki.ca,
        tls_cert_file: kp.cert,
        tls_key_file: kp.key,
        ...edgeCredentials,
      }),
    });
    try {
      const summary = await sender.runOnce();
      expect(roundSucceeded(summary), JSON.stringify(summary)).toBe(true);
      await expectLandedByteForByte(centre, files);
    } finally {
      await sender.close();
    }
    await expect(rawClient(`127.0.0.1:${receiver.port}`, "edge", { ...noAuth, tls_ca_file: pki.ca }, { timeout: 2_000 })).rejects.toThrow();
  } finally {
    await receiver?.stop();
    await pki.cleanup();
    await removeAll(root);
  }
});
