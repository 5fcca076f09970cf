// Edges behind leaf nodes: a 3-node hub cluster whose leafnode users are each confined to one
// site's senders (the users `tsync senders site` prints), a leaf server per site (senders connect to it, it dials the hub), and a receiver
// on the hub that looks leaf connections up on every hub node's monitoring endpoint. The
// whitelist applies to the address the hub sees for the leaf; the identity rests on the leaf
// user's permissions, so one site cannot speak or listen for another's senders; and a cut uplink
// mid-file resumes when it returns.
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Code } from "../../src/protocol/status.js";
import { senderInboxPrefix } from "../../src/protocol/subjects.js";
import type { LeafServer } from "../harness/cluster.js";
import { properties, runTsync } from "../harness/cli.js";
import { noAuth, rawClient, sayHello, type AnyReply } from "../security/kit.js";
import { ClusterRig, group } from "./rig.js";

const sites = { a: ["a1", "a2", "a3"], b: ["b1"] } as const;

/** One hub user per site, allowed exactly what its senders may do, as `tsync senders site` prints it. */
const siteUser = async (site: string, senders: ReadonlyArray<string>, conf: string): Promise<string> => {
  const ran = await runTsync(["senders", "site", `site-${site}`, "--senders", senders.join(","), "--config", conf]);
  expect(ran.code, ran.stderr).toBe(0);
  const user = ran.stdout.split("\n").find((l) => l.startsWith(`{ user: "site-${site}"`));
  expect(user, ran.stdout).toBeDefined();
  return user!.replace("<choose one>", `pw-${site}`);
};

/** The hub's users: the unconfined `receiver`, and one per site for its leaf server. */
const hubAuth = async (): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), "tsync-leaf-conf-"));
  try {
    const conf = join(dir, "receiver.properties");
    await writeFile(conf, properties({ receiver_group: group, receiver_data_directory: join(dir, "data") }));
    const users = await Promise.all(Object.entries(sites).map(([site, ids]) => siteUser(site, ids, conf)));
    return [
      "authorization {",
      "  users: [",
      '    { user: "receiver", password: "pw-receiver" }',
      ...users.map((u) => `    ${u}`),
      "  ]",
      "}",
    ].join("\n");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

let rig: ClusterRig;
const leaf: Record<keyof typeof sites, LeafServer> = {} as never;

const monitorUrls = () => rig.cluster.nodes.map((n) => n.monitorUrl).join(",");
let running: string | undefined;
/**
 * A receiver instance with `props` (restarted only when it runs with others). One: a hello after a
 * cut then reaches the instance that holds the sender's partial file, so the test sees a resume.
 */
const startReceivers = async (props: Record<string, string>) => {
  if (running === JSON.stringify(props)) return;
  running = JSON.stringify(props);
  for (const p of rig.receivers) await p?.kill9();
  await rig.startReceiver(0, { nats_monitor_url: monitorUrls(), nats_user: "receiver", nats_password: "pw-receiver", ...props });
};

/**
 * A hello through a leaf: the hub tells the leaf of the receiver's subscriptions a moment after
 * the receiver starts, and until then the leaf has no responders for it.
 */
const helloThroughLeaf = async (nc: NatsConnection, id: string): Promise<AnyReply> => {
  for (let k = 0; ; k++) {
    try {
      return await sayHello(nc, group, id);
    } catch (e) {
      if (k >= 50 || !/no responders/i.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
};

beforeAll(async () => {
  rig = await ClusterRig.create({ leafnodes: true, extraConfig: await hubAuth() });
  // Site a dials node 0, site b node 2: the receivers must look at every hub node's leaf listing.
  leaf.a = await rig.cluster.startLeaf("site-a", { hub: 0, credentials: { user: "site-a", password: "pw-a" } });
  leaf.b = await rig.cluster.startLeaf("site-b", { hub: 2, credentials: { user: "site-b", password: "pw-b" } });
  await Promise.all([leaf.a.waitConnected(), leaf.b.waitConnected()]);
}, 90_000);
afterAll(async () => {
  await rig?.cleanup();
});

describe("senders behind leaf nodes of the hub", () => {
  test("by default a hello through a leaf node is refused, naming admit_leaf_nodes", async () => {
    await startReceivers({});
    const nc = await rawClient(leaf.a.url, "a1", noAuth);
    try {
      const r = await helloThroughLeaf(nc, "a1");
      expect(r.code).toBe(Code.unauthorized);
      expect(r.message).toMatch(/through the leaf node connection from 127\.0\.0\.1.*admit_leaf_nodes=true/);
    } finally {
      await nc.close();
    }
  });

  test("ip_white_list applies to the address the hub sees for the leaf connection", async () => {
    await startReceivers({ admit_leaf_nodes: "true", ip_white_list: "10.0.0.0/8" });
    const nc = await rawClient(leaf.b.url, "b1", noAuth);
    try {
      const r = await helloThroughLeaf(nc, "b1");
      expect(r.code).toBe(Code.addressNotAllowed);
      expect(r.message).toMatch(/sender address 127\.0\.0\.1 is not in ip_white_list \(10\.0\.0\.0\/8\)/);
    } finally {
      await nc.close();
    }
  });

  test("with admit_leaf_nodes, a sender behind its site's leaf syncs every file, each placed once", async () => {
    await startReceivers({ admit_leaf_nodes: "true" });
    for (const [site, id] of [
      ["a", "a1"],
      ["b", "b1"],
    ] as const) {
      const edge = await rig.edge(id, `root.${id}`, { small: 3, natsUrl: leaf[site].url });
      const { exit, summary, proc } = await rig.runSender(edge);
      expect(exit.code, proc.output).toBe(0);
      expect(summary.sent.map((s) => s.file).sort()).toEqual(edge.files.map((f) => f.key).sort());
      expect(await rig.problems(edge)).toEqual([]);
      expect(rig.receivers.map((p) => p?.output ?? "").join("")).toMatch(new RegExp(`session \\S+ opened for sender ${id} `));
    }
  });

  test("a client of one site cannot say hello as another site's sender, nor hear its replies", async () => {
    await startReceivers({ admit_leaf_nodes: "true" });
    // Named and inboxed like b1, but at site a: the hub drops its hello (site a may not publish
    // b1's subjects) and would not carry b1's replies to site a anyway.
    const nc = await rawClient(leaf.a.url, "b1", noAuth);
    try {
      await expect(sayHello(nc, group, "b1", {}, { timeout: 3_000 })).rejects.toThrow(/timeout|no responders/i);
    } finally {
      await nc.close();
    }
    const said = (
      rig.receivers
        .map((p) => p?.output ?? "")
        .join("")
        .match(/opened for sender b1 /g) ?? []
    ).length;
    // b1's one session is its own round's, from site b, in the previous test.
    expect(said).toBe(1);
  });

  test("a leaf one of whose clients listens on every inbox gets its senders refused, naming that subscription", async () => {
    await startReceivers({ admit_leaf_nodes: "true" });
    const snoop = await rawClient(leaf.a.url, "snoop", noAuth);
    const nc = await rawClient(leaf.a.url, "a2", noAuth);
    try {
      snoop.subscribe("_tsync_inbox.>");
      await snoop.flush();
      // The leaf forwards the snoop's interest to the hub asynchronously: ask until it shows.
      let r = await helloThroughLeaf(nc, "a2");
      for (let k = 0; r.code === Code.ok && k < 20; k++) {
        await new Promise((res) => setTimeout(res, 100));
        r = await helloThroughLeaf(nc, "a2");
      }
      expect(r.code).toBe(Code.unauthorized);
      expect(r.message).toContain("also subscribes _tsync_inbox.>");
      expect(r.message).toContain(`${senderInboxPrefix("a2")}.>`);
    } finally {
      await snoop.close();
    }
    try {
      // Once the snoop is gone, the same sender is admitted.
      let r = await helloThroughLeaf(nc, "a2");
      for (let k = 0; r.code !== Code.ok && k < 20; k++) {
        await new Promise((res) => setTimeout(res, 100));
        r = await helloThroughLeaf(nc, "a2");
      }
      expect(r.code, r.message).toBe(Code.ok);
    } finally {
      await nc.close();
    }
  });

  test("the site's uplink cut mid-file and restored: the sender resumes where the receiver's copy ends", async () => {
    await startReceivers({ admit_leaf_nodes: "true" });
    const edge = await rig.edge("a3", "root.a3", {
      big: [12_000_000],
      small: 1,
      natsUrl: leaf.a.url,
      props: { max_number_of_sync_file_retry: "20" },
    });
    const sender = rig.startSender(edge, { TSYNC_MAX_BANDWIDTH_BYTES_PER_SECOND: "3000000" });
    const serving = await rig.servingInstance(edge.id);
    const big = edge.files[0]!;
    const before = await rig.waitStaged(serving, edge, big, 2_000_000);
    leaf.a.cut();
    await new Promise((r) => setTimeout(r, 2_000));
    leaf.a.restore();
    const { exit, summary } = await rig.finish(sender, 90_000);
    expect(exit.code, sender.output).toBe(0);
    // The cut was felt: requests found no receiver until the leaf was back.
    expect(sender.output).toMatch(/failed \((sessionLost|retryable)\): no receiver answered/);
    expect(summary.sent.map((s) => s.file).sort()).toEqual(edge.files.map((f) => f.key).sort());
    const sentBig = summary.sent.find((s) => s.file === big.key)!;
    // Resumed, not restarted: the bytes the receiver held before the cut were not sent again.
    expect(sentBig.resumedFrom).toBeGreaterThan(0);
    expect(sentBig.bytes).toBe((await stat(big.tsfile)).size - sentBig.resumedFrom);
    expect(before).toBeGreaterThan(2_000_000);
    expect(await rig.problems(edge)).toEqual([]);
  });
});
