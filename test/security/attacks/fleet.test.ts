// The fleet view: each sender reports its actors only on its own fleet subject, the server refuses
// a report on another sender's, and the receiver stores only well-formed, bounded reports.
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { FleetChange } from "../../../src/actors/receiver/fleet.js";
import { Sender } from "../../../src/actors/sender/sender.js";
import { roundSucceeded } from "../../../src/machines/senderTypes.js";
import { maxFleetReportBytes, type FleetReport } from "../../../src/protocol/fleet.js";
import { fleetSubject, fleetWildcard } from "../../../src/protocol/subjects.js";
import { senderConfig } from "../../harness/configs.js";
import { startEnrolledReceiver, type EnrolledReceiver } from "../../harness/enroll.js";
import { removeAll, tempRoot } from "../../harness/syncPair.js";
import { buildEdge, eventually, rawClient } from "../kit.js";

let root: string;
let r: EnrolledReceiver;
const changes: FleetChange[] = [];
let stopWatch: () => void = () => undefined;

beforeAll(async () => {
  root = await tempRoot("tsync-fleet-attack-");
  r = await startEnrolledReceiver(root, "fleet", ["plant-a", "mallory"]);
  stopWatch = await r.receiver.fleet.watch((c) => changes.push(c));
});
afterAll(async () => {
  stopWatch();
  await r.receiver.stop();
  await removeAll(root);
});

const report = (over: Partial<FleetReport> = {}): FleetReport => ({
  actor: "round",
  machine: "senderRound",
  state: "transferring",
  status: "active",
  at: Date.now(),
  since: Date.now(),
  ...over,
});

const recordsOf = (sender: string) => changes.flatMap((c) => (c.kind === "put" && c.record.sender === sender ? [c.record] : []));

const refusal = (nc: NatsConnection, subject: string): Promise<string> =>
  new Promise<string>((resolve) => {
    nc.subscribe(subject, { callback: (e) => resolve(e ? String(e) : "open: a message arrived") });
    void nc.flush().then(() => setTimeout(() => resolve("open"), 1_000));
  });

test("a sender's real round shows up in the fleet bucket under its own id, with the address the server saw", async () => {
  const edge = join(root, "edge-a");
  await buildEdge(edge, ["root.a"], 2);
  const a = await Sender.open({
    config: senderConfig({
      data_directory: edge,
      server_ip: "127.0.0.1",
      server_port: String(r.receiver.port),
      receiver_group: "fleet",
      ...r.senders["plant-a"],
    }),
    log: () => undefined,
  });
  try {
    expect(roundSucceeded(await a.runOnce())).toBe(true);
  } finally {
    await a.close();
  }
  const done = await eventually("plant-a's finished round in the bucket", () =>
    recordsOf("plant-a").find((x) => x.report.actor === "round" && x.report.state === "done"),
  );
  expect(done.report.progress).toEqual({ done: 2, total: 2 });
  expect(done.address).toBe("127.0.0.1");
});

test("a sender cannot report as another: the server refuses its publish on the other's fleet subject", async () => {
  const mallory = await rawClient(r.url, "mallory", r.as("mallory"));
  try {
    const before = recordsOf("plant-a").length;
    // A request surfaces the server's refusal; a plain publish is refused the same way, silently.
    await expect(
      mallory.request(fleetSubject("fleet", "plant-a"), JSON.stringify(report({ state: "forged" })), { timeout: 5_000 }),
    ).rejects.toThrow(/Permissions Violation for Publish/);
    for (let i = 0; i < 20; i++) mallory.publish(fleetSubject("fleet", "plant-a"), JSON.stringify(report({ state: "forged" })));
    // Nor can it read the others' reports.
    expect(await refusal(mallory, fleetWildcard("fleet"))).toMatch(/Permissions Violation for Subscription/);
    // Its own subject works, and marks the end of what it sent.
    mallory.publish(fleetSubject("fleet", "mallory"), JSON.stringify(report({ state: "mine" })));
    await mallory.flush();
    await eventually("mallory's own report", () => recordsOf("mallory").find((x) => x.report.state === "mine"));
    expect(recordsOf("plant-a").length).toBe(before);
    expect(recordsOf("plant-a").some((x) => x.report.state === "forged")).toBe(false);
  } finally {
    await mallory.close();
  }
});

test("on its own subject, a sender cannot grow the bucket: oversized, malformed and made-up actors are dropped", async () => {
  const mallory = await rawClient(r.url, "mallory", r.as("mallory"));
  try {
    const rejected = r.receiver.fleet.stats.rejected;
    const own = fleetSubject("fleet", "mallory");
    const bad = [
      JSON.stringify(report({ lastError: "x".repeat(maxFleetReportBytes) })),
      "not json",
      JSON.stringify({ ...report(), state: 42 }),
      JSON.stringify(report({ at: -1 })),
      ...Array.from({ length: 50 }, (_, i) => JSON.stringify({ ...report(), actor: `made-up-${i}` })),
    ];
    for (const b of bad) mallory.publish(own, b);
    mallory.publish(own, JSON.stringify(report({ actor: "sender", machine: "sender", state: "last" })));
    await mallory.flush();
    await eventually("mallory's last good report", () => recordsOf("mallory").find((x) => x.report.state === "last"));
    expect(r.receiver.fleet.stats.rejected - rejected).toBe(bad.length);
    // Two actors at most, whatever it sent.
    expect(new Set(recordsOf("mallory").map((x) => x.report.actor))).toEqual(new Set(["round", "sender"]));
    expect(r.logs.some((l) => l.includes('fleet view: dropped a report from "mallory"'))).toBe(true);
  } finally {
    await mallory.close();
  }
});
