// An external server or cluster without a reachable monitoring port: the receiver asks the
// servers for its account's connections over its own NATS connection
// ($SYS.REQ.ACCOUNT.PING.CONNZ, exported to every account), so no URL or system credentials are
// needed. Here the server has accounts, a system account and a second cluster node.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Redacted } from "effect";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startNatsServer, type NatsServerProcess } from "../../src/actors/natsServer.js";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../src/machines/senderTypes.js";
import { Code } from "../../src/protocol/status.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { listFiles, removeAll, tempRoot } from "../harness/syncPair.js";
import { buildEdge, eventually, expectLandedByteForByte, noAuth, rawClient, sayHello } from "./kit.js";

const freePort = async (): Promise<number> => {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
};

const accounts = `
accounts {
  SYS { users [{ user: "sys", password: "sys-secret" }] }
  APP {
    jetstream: enabled
    users [
      { user: "receiver", password: "r-secret" }
      { user: "edge", password: "e-secret" }
      { user: "limited", password: "l-secret", permissions: { publish: { deny: ["$SYS.>"] } } }
    ]
  }
  OTHER { users [{ user: "other", password: "o-secret" }] }
}
system_account: SYS
`;

let root: string;
let nodes: NatsServerProcess[] = [];
beforeAll(async () => {
  root = await tempRoot("tsync-account-");
  // Two clustered servers: the receiver connects to the first, senders to the second.
  const [p1, p2] = [await freePort(), await freePort()];
  const cluster = (name: string, own: number, peer: number) =>
    `server_name: ${name}\ncluster { name: tsync-test, listen: "127.0.0.1:${own}", routes: ["nats-route://127.0.0.1:${peer}"] }\n${accounts}`;
  for (const [name, own, peer] of [
    ["n1", p1, p2],
    ["n2", p2, p1],
  ] as const) {
    const dir = await mkdtemp(join(tmpdir(), "tsync-nats-"));
    const server = await startNatsServer({ dir, extraConfig: cluster(name, own, peer) });
    nodes.push({
      ...server,
      stop: async () => {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    });
  }
  // JetStream (the ownership registry) is usable once the cluster elected its meta leader.
  const nc = await rawClient(nodes[0]!.url, "probe", { ...noAuth, nats_user: "receiver", nats_password: Redacted.make("r-secret") });
  try {
    await eventually(
      "a JetStream meta leader",
      () =>
        jetstreamManager(nc, { timeout: 1_000 }).then(
          () => true,
          () => undefined,
        ),
      30_000,
    );
  } finally {
    await nc.close();
  }
}, 60_000);
afterAll(async () => {
  for (const n of nodes) await n.stop();
  nodes = [];
  await removeAll(root);
});

const logs: string[] = [];
const startWith = (name: string, props: Record<string, string>) =>
  Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_group: name,
      receiver_data_directory: join(root, `${name}-centre`),
      nats_url: nodes[0]!.url,
      nats_user: "receiver",
      nats_password: "r-secret",
      ...props,
    }),
    validateTsFile,
    log: (line) => void logs.push(`${name}: ${line}`),
  });

/** Routes carry interest after a moment: wait until a hello to `group` finds a responder on node 2. */
const routed = async (group: string) => {
  const probe = await rawClient(nodes[1]!.url, "probe", { ...noAuth, nats_user: "edge", nats_password: Redacted.make("e-secret") });
  try {
    await eventually(
      "the receiver's interest on the second node",
      async () =>
        await sayHello(probe, group, "probe").then(
          () => true,
          () => undefined,
        ),
    );
  } finally {
    await probe.close();
  }
};

test("a sender on another node of the cluster is admitted on the address its node saw, and refused when it is not listed", async () => {
  const edge = join(root, "edge");
  const files = await buildEdge(edge, ["root.acct"], 2);
  const admitting = await startWith("acctok", {});
  const refusing = await startWith("acctno", { ip_white_list: "10.0.0.0/8" });
  await routed("acctok");
  await routed("acctno");
  const sender = await Sender.open({
    config: senderConfig({
      data_directory: edge,
      nats_url: nodes[1]!.url,
      receiver_group: "acctok",
      nats_user: "edge",
      nats_password: "e-secret",
    }),
  });
  const liar = await rawClient(nodes[1]!.url, "liar", { ...noAuth, nats_user: "edge", nats_password: Redacted.make("e-secret") });
  try {
    const s = await sender.runOnce();
    expect(roundSucceeded(s), JSON.stringify(s)).toBe(true);
    await expectLandedByteForByte(join(root, "acctok-centre"), files);
    const r = await sayHello(liar, "acctno", "liar", { address: "10.1.1.1" });
    expect(r.code).toBe(Code.addressNotAllowed);
    expect(r.message).toBe("sender address 127.0.0.1 is not in ip_white_list (10.0.0.0/8)");
    expect(await listFiles(join(root, "acctno-centre"))).toEqual([]);
  } finally {
    await liar.close();
    await sender.close();
    await admitting.stop();
    await refusing.stop();
  }
});

test("a connection of another account is not found: that hello is refused", async () => {
  const receiver = await startWith("acctother", {});
  // OTHER cannot reach APP's subjects at all; it answers itself on the hello subject to stand in
  // for a sender whose inbox lives in another account.
  const other = await rawClient(nodes[0]!.url, "other", { ...noAuth, nats_user: "other", nats_password: Redacted.make("o-secret") });
  const app = await rawClient(nodes[0]!.url, "other", { ...noAuth, nats_user: "edge", nats_password: Redacted.make("e-secret") });
  try {
    other.subscribe("_tsync_inbox.other.otheraccount.*");
    await other.flush();
    const answers: string[] = [];
    app.subscribe("_tsync_inbox.other.elsewhere.*", { callback: (_e, m) => void answers.push(m.string()) });
    await app.flush();
    // Reply to an inbox only OTHER holds: APP's servers list no owner for it.
    app.publish(
      "tsync.acctother.hello.other",
      new TextEncoder().encode(JSON.stringify({ protocol: 1, senderId: "other", tsyncVersion: "x", storageGroups: [] })),
      {
        reply: "_tsync_inbox.other.otheraccount.1",
      },
    );
    await app.flush();
    const refusal = await eventually("the refusal", () => logs.find((l) => l.startsWith("acctother: sender other refused")));
    expect(refusal).toMatch(/knows no connection named tsync-sender-other .*that holds this request's reply inbox/);
    expect(receiver.core.stats.sessionsOpened).toBe(0);
  } finally {
    await other.close();
    await app.close();
    await receiver.stop();
  }
});

test("a receiver whose user may not ask the servers refuses every hello and says why", async () => {
  const receiver = await startWith("acctlimited", { nats_user: "limited", nats_password: "l-secret" });
  const client = await rawClient(nodes[0]!.url, "someone", { ...noAuth, nats_user: "edge", nats_password: Redacted.make("e-secret") });
  try {
    const r = await sayHello(client, "acctlimited", "someone");
    expect(r.code).toBe(Code.internal);
    expect(r.message).toMatch(
      /^cannot ask the NATS servers of this account .*Permissions Violation for Publish to "\$SYS\.REQ\.ACCOUNT\.PING\.CONNZ"/,
    );
    expect(receiver.core.stats.sessionsOpened).toBe(0);
  } finally {
    await client.close();
    await receiver.stop();
  }
});
