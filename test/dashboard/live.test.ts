import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { buildSampleDataDir, type SampleLayout } from "../../src/actors/sampleDataDir.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { receiverDashboard, senderDashboard, withDashboard } from "../../src/dashboard/dashboard.js";
import type { ActorView, BoardState } from "../../src/dashboard/model.js";
import type { DashboardServer } from "../../src/dashboard/server.js";
import { Code } from "../../src/protocol/status.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startAuthNatsServer, type AuthNatsServer } from "../harness/authServer.js";

// Two receivers and three senders over one real nats-server, each with its dashboard: what the
// metrics and /api/state say after the rounds must be what happened.

const layout: SampleLayout = {
  groups: { "root.north": ["press", "oven"], "root.south": ["scale"] },
  virtualGroups: 1,
  partitions: 1,
  filesPerPartition: 2,
  pointsPerSeries: 50,
  withUnsealed: false,
};

let nats: AuthNatsServer;
let root: string;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  // With authentication: the walled receiver's ip_white_list could not be enforced without it.
  nats = await startAuthNatsServer(["north", "south", "outsider"]);
  root = await mkdtemp(join(tmpdir(), "tsync-dashboard-"));
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await nats.cleanup();
  await rm(root, { recursive: true, force: true });
});

const receiverWithDashboard = async (group: string, props: Record<string, string>) => {
  const dashboard = receiverDashboard({ port: 0 });
  const receiver = await Receiver.start(
    withDashboard(dashboard, {
      config: receiverConfig({
        receiver_group: group,
        receiver_data_directory: join(root, `centre-${group}`),
        ...nats.receiverProps,
        ...props,
      }),
      validateTsFile,
      log: () => undefined,
    }),
  );
  cleanups.push(() => receiver.stop());
  const server = await dashboard.listen(receiver);
  cleanups.push(() => server.close());
  return { receiver, server };
};

const senderWithDashboard = async (props: Record<string, string>, transformChunk?: (c: Buffer, offset: number) => Buffer) => {
  const dashboard = senderDashboard({ port: 0 });
  const sender = await Sender.open(
    withDashboard(dashboard, {
      config: senderConfig({ ...nats.senderProps(props["sender_name"] ?? ""), ...props }),
      log: () => undefined,
      ...(transformChunk ? { transformChunk } : {}),
    }),
  );
  cleanups.push(() => sender.close());
  const server = await dashboard.listen(sender);
  cleanups.push(() => server.close());
  return { sender, server };
};

const metrics = async (s: DashboardServer) => {
  const text = await (await fetch(`${s.url}metrics`)).text();
  return (name: string): number | undefined => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };
};
const state = async (s: DashboardServer) =>
  (await (await fetch(`${s.url}api/state`)).json()) as { board: BoardState; process: { counters: [string, number][] } };
const actor = (b: BoardState, id: string): ActorView => {
  const a = b.actors.find((x) => x.id === id);
  if (!a) throw new Error(`no actor ${id} in ${b.actors.map((x) => x.id).join(", ")}`);
  return a;
};

test("metrics and /api/state tell what the rounds did: bytes, loads, a digest mismatch, conflicts, a refused sender", async () => {
  const data = join(root, "edge");
  const files = await buildSampleDataDir(data, layout);
  const open = await receiverWithDashboard("main", { is_sync_enable: "true" });
  const closed = await receiverWithDashboard("walled", { is_sync_enable: "true", ip_white_list: "10.0.0.0/8" });

  let corrupted = false;
  const north = await senderWithDashboard(
    { data_directory: data, sender_name: "north", receiver_group: "main", chunk_size_bytes: "1024" },
    (chunk) => {
      if (corrupted) return chunk;
      corrupted = true;
      const bad = Buffer.from(chunk);
      bad[0] = (bad[0] ?? 0) ^ 0xff;
      return bad;
    },
  );
  const first = await north.sender.runOnce();
  expect(first.sent).toHaveLength(files.length);

  const south = await senderWithDashboard({
    data_directory: data,
    sender_name: "south",
    receiver_group: "main",
    work_directory: join(root, "south-work"),
  });
  const second = await south.sender.runOnce();
  expect(second.conflicts.map((c) => c.sg).sort()).toEqual(["root.north", "root.south"]);

  const outsider = await senderWithDashboard({
    data_directory: data,
    sender_name: "outsider",
    receiver_group: "walled",
    work_directory: join(root, "outsider-work"),
  });
  const third = await outsider.sender.runOnce();
  expect(third.roundError).toContain("ip_white_list");

  // The receiver's counters, as Prometheus scrapes them.
  const r = await metrics(open.server);
  const sent = (await metrics(north.server))("tsync_sender_sent_bytes_total");
  expect(sent).toBeGreaterThan(0);
  expect(r("tsync_receiver_received_bytes_total")).toBe(sent);
  expect(r("tsync_receiver_received_bytes_total")).toBe(open.receiver.core.stats.bytes);
  expect(r("tsync_receiver_files_loaded_total")).toBe(files.length);
  expect(r("tsync_receiver_digest_mismatches_total")).toBe(1);
  expect(r("tsync_receiver_conflicts_total")).toBe(2);
  expect(r("tsync_receiver_sessions_opened_total")).toBe(2);
  expect(r("tsync_receiver_refused_senders_total")).toBe(0);
  expect(r("tsync_receiver_session_duration_seconds_count")).toBe(2);
  await expect.poll(async () => (await metrics(open.server))("tsync_receiver_active_sessions")).toBe(0);
  expect((await metrics(closed.server))("tsync_receiver_refused_senders_total")).toBe(1);

  // The senders' own view of their rounds.
  const n = await metrics(north.server);
  expect(n("tsync_sender_files_sent_total")).toBe(files.length);
  expect(n('tsync_sender_rounds_total{result="ok"}')).toBe(1);
  expect(n('tsync_sender_round_duration_seconds_count{result="ok"}')).toBe(1);
  const s = await metrics(south.server);
  expect(s("tsync_sender_conflicts_total")).toBe(2);
  expect(s("tsync_sender_sent_bytes_total")).toBe(0);
  expect(s('tsync_sender_rounds_total{result="failed"}')).toBe(1);

  // /api/state: each session with its sender, address, end state and counts.
  const sessions = (await state(open.server)).board.actors.filter((a) => a.machine === "receiverSession");
  const bySender = new Map(sessions.map((a) => [a.details.kind === "receiverSession" ? a.details.senderId : "?", a]));
  expect([...bySender.keys()].sort()).toEqual(["north", "south"]);
  expect(bySender.get("north")).toMatchObject({
    state: "closed",
    status: "done",
    details: { address: "127.0.0.1", files: { loaded: files.length, rejected: 1 } },
  });
  expect(bySender.get("north")!.log.some((l) => l.event === "progress" && l.count > 1)).toBe(true);
  expect(bySender.get("south")).toMatchObject({ state: "closed", details: { files: { loaded: 0 }, bytes: 0 } });

  const refused = (await state(closed.server)).board.actors;
  expect(refused).toHaveLength(1);
  expect(refused[0]).toMatchObject({
    state: "closed",
    status: "done",
    details: { senderId: "outsider", lastReply: { code: Code.addressNotAllowed } },
  });
  expect(refused[0]!.details.kind === "receiverSession" && refused[0]!.details.lastReply?.message).toContain("127.0.0.1");

  const round = actor((await state(north.server)).board, "round-1");
  expect(round).toMatchObject({ machine: "senderRound", state: "done", details: { summary: { sent: files.length, failed: 0 } } });
  // The digest mismatch shows as a retry in the round's log.
  expect(round.log.some((l) => l.path.includes("fileFailed") && l.path.includes("retryBackoff"))).toBe(true);
  expect((await state(north.server)).process.counters).toContainEqual(["files sent", files.length]);
});
