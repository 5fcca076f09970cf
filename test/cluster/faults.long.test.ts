// Cluster faults with three receiver instances (replicas=3) on a 3-node JetStream cluster: a node
// killed -9 mid-round (the one the sender is connected to, and the leader of the ownership
// registry), and a node cut off from the other two while two senders race for one storage group,
// one on each side of the cut.
import { stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { senderConnectionName } from "../../src/actors/natsConnect.js";
import { waitUntil } from "../harness/cluster.js";
import { ClusterRig } from "./rig.js";

let rig: ClusterRig;
beforeAll(async () => {
  rig = await ClusterRig.create();
  // The first instance creates the R3 ownership registry; the others then find it.
  await rig.startReceiver(0);
  await Promise.all([1, 2].map((i) => rig.startReceiver(i)));
}, 90_000);
afterAll(async () => {
  await rig?.cleanup();
});

const others = (i: number): number[] => [0, 1, 2].filter((j) => j !== i);
const running = (i: number): boolean => rig.receivers[i]?.child.exitCode === null && rig.receivers[i]?.child.signalCode === null;

describe("faults of the cluster under three receiver instances", () => {
  test("a node killed -9 mid-file: sender and receivers move to the other nodes, the round ends, the owner stays, each file is placed once", async () => {
    const sg = "root.steadfast";
    const first = await rig.edge("steadfast", sg, { small: 2 });
    // The first round claims the group, so the kill below strikes a group with an owner.
    const claimed = await rig.runSender(first);
    expect(claimed.exit.code, claimed.proc.output).toBe(0);
    const owner = await rig.owner(sg);
    expect(owner?.senderId).toBe(first.id);

    const edge = await rig.grow(first, sg, 2, { big: [12_000_000], small: 2 });
    const big = edge.files[first.files.length]!;
    const before = rig.sessionsOf(edge.id);
    const sender = rig.startSender(edge, { TSYNC_MAX_BANDWIDTH_BYTES_PER_SECOND: "4000000" });
    const serving = await waitUntil("the round's session", () => {
      const i = rig.sessionsOf(edge.id).findIndex((n, k) => n > before[k]!);
      return i >= 0 ? i : undefined;
    });
    await rig.waitStaged(serving, edge, big, 2_000_000);
    // Held still while the stage is set: every chunk sent is written and answered, none in flight.
    sender.signal("SIGSTOP");
    const held = await rig.settledStaged(serving, edge, big);
    const node = await rig.cluster.nodeOf(senderConnectionName(edge.id));
    expect(node, "the node the sender is connected to").toBeDefined();
    // The node goes down as the ownership registry's leader too: the other two must elect one.
    await rig.leadOwnersFrom(node!);
    try {
      await rig.cluster.killNode(node!);
      sender.signal("SIGCONT");

      const { exit, summary } = await rig.finish(sender, 120_000);
      expect(exit.code, sender.output).toBe(0);
      expect(held, "bytes staged when the node died").toBeLessThan((await stat(big.tsfile)).size);
      expect(summary.sent.map((s) => s.file).sort()).toEqual(
        edge.files
          .slice(first.files.length)
          .map((f) => f.key)
          .sort(),
      );
      expect(await rig.problems(edge)).toEqual([]);
      // The registry lost a copy and its leader, not its record: the same owner, since the same instant.
      const survivors = others(node!);
      expect(await rig.ownersSettled(survivors)).not.toBe(node);
      expect(await rig.owner(sg, survivors)).toEqual(owner);
      // Every instance lives on, connected to a surviving node (all three list every node in nats_url).
      expect([0, 1, 2].filter(running)).toEqual([0, 1, 2]);
      await waitUntil("every receiver instance on a surviving node", async () => {
        const by = await rig.receiversByNode();
        return survivors.reduce((n, i) => n + (by[i] ?? 0), 0) === 3 ? by : undefined;
      });
    } finally {
      // The next test finds the cluster whole again.
      await rig.cluster.startNode(node!);
      await rig.cluster.waitForMetaLeader();
      await rig.ownersSettled();
    }
  }, 180_000);

  test("a partitioned node: of two senders racing for one group across the cut, only the majority's owns it, before and after the heal", async () => {
    const sg = "root.contested";
    const cut = 2;
    const majority = others(cut);
    const url = (i: number) => rig.cluster.nodes[i]!.url;
    // One receiver instance on each side of the cut, each pinned to its node. An instance that
    // lists every node may hold its service and its store connection on different nodes; cut
    // between them, it cannot find the connection of a sender that asks (address lookups go over
    // the store connection) and refuses it, which would blur what this test looks at.
    for (const i of [0, 1, 2]) await rig.receivers[i]?.kill9();
    await rig.startReceiver(3, { nats_url: url(cut) });
    await rig.startReceiver(4, { nats_url: url(majority[0]!) });
    // The registry may take seconds to answer on the majority side after the cut (its leader moves
    // there): north's retries span them, since this test is about who owns the group, not how soon.
    const north = await rig.edge("north", sg, {
      small: 3,
      natsUrl: majority.map(url).join(","),
      props: { max_number_of_sync_file_retry: "8" },
    });
    const south = await rig.edge("south", sg, { small: 3, natsUrl: url(cut), props: { max_number_of_sync_file_retry: "2" } });
    // The registry's leader is the node cut off: the minority keeps the last leader, the stalest writer there can be.
    await rig.leadOwnersFrom(cut);
    rig.cluster.partition(cut);
    await rig.cluster.waitForMetaLeader();
    expect(majority).toContain(await rig.ownersSettled(majority));
    const [n, s] = await Promise.all([rig.runSender(north, {}, 120_000), rig.runSender(south, {}, 120_000)]);
    expect(n.exit.code, n.proc.output).toBe(0);
    expect(await rig.problems(north)).toEqual([]);
    const owner = await rig.owner(sg, majority);
    expect(owner?.senderId).toBe(north.id);
    // The minority side cannot write the registry: south places nothing. It is told the owner, or
    // fails retryably: its loads (the claim cannot reach a quorum), or its whole round (an instance
    // whose address lookups go over a connection on the majority side cannot find south's).
    expect(s.exit.code, s.proc.output).not.toBe(0);
    expect(s.summary.sent).toEqual([]);
    for (const c of s.summary.conflicts) expect(c.message).toContain(`belongs to sender ${north.id}`);
    const told = s.summary.failed.length + s.summary.conflicts.length + (s.summary.roundError === undefined ? 0 : 1);
    expect(told, JSON.stringify(s.summary)).toBeGreaterThan(0);
    expect((await rig.loads()).filter((l) => l.sender === south.id)).toEqual([]);
    rig.cluster.heal(cut);
    await rig.cluster.waitForMetaLeader();
    await rig.ownersSettled();
    // Whole again, the registry holds the majority's record, read through the node that was cut off too.
    expect(await rig.owner(sg, [cut])).toEqual(owner);
    const again = await rig.runSender(south, {}, 90_000);
    expect(again.exit.code, again.proc.output).not.toBe(0);
    expect(again.summary.sent).toEqual([]);
    expect(again.summary.conflicts).toEqual([{ sg, message: expect.stringContaining(`belongs to sender ${north.id}`) }]);
    expect((await rig.loads()).filter((l) => l.sender === south.id)).toEqual([]);
    expect(await rig.owner(sg)).toEqual(owner);
  }, 240_000);
});
