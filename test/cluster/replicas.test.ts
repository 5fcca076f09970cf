// Receiver replicas on a 3-node JetStream cluster: three `tsync receiver` processes in one
// receiver group, replicas=3. Hellos spread over the instances (one queue group), every request of
// a session goes to the instance that admitted it, the ownership registry is an R3 bucket, and
// each file is placed once, whichever instance took its sender; then one instance is killed -9
// mid-file and its sender finishes on another.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ownersBucket, OwnershipRegistry } from "../../src/actors/receiver/ownership.js";
import { waitUntil } from "../harness/cluster.js";
import { noAuth, rawClient, sayHello } from "../security/kit.js";
import { ClusterRig, group } from "./rig.js";

let rig: ClusterRig;
beforeAll(async () => {
  rig = await ClusterRig.create();
  await Promise.all([0, 1, 2].map((i) => rig.startReceiver(i)));
}, 60_000);
afterAll(async () => {
  await rig?.cleanup();
});

describe("three receiver instances in one group on a 3-node cluster", () => {
  test("the ownership registry is kept on all three nodes (replicas=3)", async () => {
    const nc = await connect({ servers: rig.cluster.urls });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(`KV_${ownersBucket(group)}`);
      expect(info.config.num_replicas).toBe(3);
      expect(1 + (info.cluster?.replicas?.length ?? 0)).toBe(3);
    } finally {
      await nc.close();
    }
  });

  test("hellos from many senders spread over the instances, one session each", async () => {
    const ids = Array.from({ length: 12 }, (_, k) => `probe${k}`);
    const conns = await Promise.all(ids.map((id, k) => rawClient(rig.cluster.urls[k % 3]!, id, noAuth)));
    try {
      const replies = await Promise.all(ids.map((id, k) => sayHello(conns[k]!, group, id)));
      expect(replies.map((r) => r.code)).toEqual(ids.map(() => 0));
      // The instance logs the session just after it answered the hello.
      const perInstance = await waitUntil("every session's log line", () => {
        const seen = ids.map((id) => rig.sessionsOf(id));
        return seen.every((n) => n.some((x) => x > 0)) ? seen : undefined;
      });
      // Each hello reached exactly one instance (a queue group, not a broadcast)...
      expect(perInstance.map((n) => n.reduce((a, b) => a + b, 0))).toEqual(ids.map(() => 1));
      // ...and not always the same one: with 12 hellos over 3 instances, all on one has odds of 3 in 531,441.
      const used = new Set(ids.map((id) => rig.instancesServing(id)[0]));
      expect(used.size).toBeGreaterThanOrEqual(2);
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  });

  test("a sender's round stays on the instance that admitted it, and each file is placed once", async () => {
    const edge = await rig.edge("steady", "root.steady", { small: 6 });
    const { exit, summary } = await rig.runSender(edge);
    expect(exit.code, JSON.stringify(summary)).toBe(0);
    expect(summary.sent).toHaveLength(6);
    // One session for the round, on one instance; every request of it went to that instance's
    // session subjects (tsync.<group>.s.<instance>...), so the other instances saw none.
    const [serving, ...others] = rig.instancesServing(edge.id);
    expect(others).toEqual([]);
    expect(rig.sessionsOf(edge.id)[serving!]).toBe(1);
    expect(await rig.problems(edge)).toEqual([]);
    const nc = await connect({ servers: rig.cluster.urls });
    try {
      expect((await (await OwnershipRegistry.open(nc, group)).owner("root.steady"))?.senderId).toBe(edge.id);
    } finally {
      await nc.close();
    }
  });

  test("an instance killed -9 mid-file: its sender says hello again, another instance takes it, nothing is placed twice", async () => {
    const edge = await rig.edge("moved", "root.moved", { big: [12_000_000], small: 2 });
    // Slow enough to catch mid-file; the request timeout is short so the lost session shows soon.
    const sender = rig.startSender(edge, { TSYNC_MAX_BANDWIDTH_BYTES_PER_SECOND: "6000000" });
    const serving = await rig.servingInstance(edge.id);
    const big = edge.files[0]!;
    await rig.waitStaged(serving, edge, big, 2_000_000);
    await rig.receivers[serving]!.kill9();
    const { exit, summary } = await rig.finish(sender, 60_000);
    expect(exit.code, sender.output).toBe(0);
    expect(summary.sent.map((s) => s.file).sort()).toEqual(edge.files.map((f) => f.key).sort());
    const after = rig.instancesServing(edge.id).filter((i) => i !== serving);
    expect(after).toHaveLength(1);
    expect(await rig.problems(edge)).toEqual([]);
    // The dead instance's partial copy stays in its own staging; it is never loaded from there.
    expect(await rig.staged(serving, edge, big)).toBeGreaterThan(0);
    await rig.startReceiver(serving);
  });
});
