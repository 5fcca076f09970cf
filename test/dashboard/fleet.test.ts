import fc from "fast-check";
import { Registry } from "prom-client";
import { afterEach, describe, expect, test } from "vitest";
import type { FleetChange } from "../../src/actors/receiver/fleet.js";
import { ActorBoard } from "../../src/dashboard/model.js";
import { FleetBoard, type FleetDelta, type FleetRow, type FleetState } from "../../src/dashboard/fleet.js";
import { startDashboardServer, type DashboardServer } from "../../src/dashboard/server.js";
import type { FleetReport } from "../../src/protocol/fleet.js";
import { eventually, get, openEvents } from "./sse.js";

const report = (actor: FleetReport["actor"], state: string, at: number): FleetReport => ({
  actor,
  machine: actor === "round" ? "senderRound" : "sender",
  state,
  status: "active",
  at,
  since: at,
});

const put = (sender: string, actor: FleetReport["actor"], state: string, at: number, address?: string): FleetChange => ({
  kind: "put",
  record: { sender, report: report(actor, state, at), seenAt: at, ...(address ? { address } : {}) },
});

/** What a browser holds after applying `init` and then every delta, as the page does. */
const follow = (init: FleetState) => {
  const rows = new Map(init.rows.map((r) => [r.sender, r]));
  let rev = init.rev;
  return {
    apply: (d: FleetDelta) => {
      if (d.full) rows.clear();
      for (const r of d.rows) rows.set(r.sender, r);
      for (const id of d.removed) rows.delete(id);
      rev = d.rev;
    },
    rows: () => [...rows.values()].sort((a, b) => (a.sender < b.sender ? -1 : 1)),
    rev: () => rev,
  };
};

const sorted = (rows: ReadonlyArray<FleetRow>) => [...rows].sort((a, b) => (a.sender < b.sender ? -1 : 1));

describe("FleetBoard", () => {
  test("one row per sender holds its process and its round; the address and last seen survive reports without them", () => {
    const b = new FleetBoard(() => 0);
    b.apply(put("plant-1", "sender", "syncing", 10, "10.0.0.7"));
    b.apply(put("plant-1", "round", "transferring", 20));
    const row = b.get("plant-1")!;
    expect(row.address).toBe("10.0.0.7");
    expect(row.seenAt).toBe(20);
    expect(row.actors.sender?.state).toBe("syncing");
    expect(row.actors.round?.state).toBe("transferring");
  });

  test("a report older than the one held is ignored: receivers of a group may store them out of order", () => {
    const b = new FleetBoard();
    b.apply(put("p", "round", "verifying", 200));
    const rev = b.rev;
    b.apply(put("p", "round", "transferring", 100));
    expect(b.get("p")?.actors.round?.state).toBe("verifying");
    expect(b.rev).toBe(rev);
  });

  test("a delta holds only the senders that changed since the client's revision", () => {
    const b = new FleetBoard();
    for (let i = 0; i < 1000; i++) b.apply(put(`s${i}`, "round", "transferring", 1));
    const since = b.rev;
    b.apply(put("s7", "round", "loading", 2));
    const d = b.delta(since);
    expect(d.rows.map((r) => r.sender)).toEqual(["s7"]);
    expect(d.full).toBe(false);
  });

  test("a client that applies every delta holds exactly what the board holds", () => {
    const change = fc.oneof(
      fc.record({
        kind: fc.constant("put" as const),
        sender: fc.constantFrom("a", "b", "c", "d"),
        actor: fc.constantFrom("sender" as const, "round" as const),
        state: fc.constantFrom("syncing", "waiting", "transferring", "done"),
        at: fc.nat(1000),
      }),
      fc.record({
        kind: fc.constant("delete" as const),
        sender: fc.constantFrom("a", "b", "c", "d"),
        actor: fc.constantFrom("sender", "round"),
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.array(change, { maxLength: 6 }), { maxLength: 12 }), (batches) => {
        const b = new FleetBoard(() => 0);
        const client = follow(b.state());
        for (const batch of batches) {
          for (const c of batch)
            b.apply(c.kind === "put" ? put(c.sender, c.actor, c.state, c.at) : { kind: "delete", sender: c.sender, actor: c.actor });
          client.apply(b.delta(client.rev()));
        }
        expect(client.rows()).toEqual(sorted(b.state().rows));
      }),
    );
  });
});

describe("the fleet over the dashboard's server", () => {
  let server: DashboardServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const start = async (fleet: FleetBoard | undefined) => {
    server = await startDashboardServer({
      port: 0,
      throttleMs: 50,
      board: new ActorBoard(),
      registry: new Registry(),
      info: () => ({ role: "receiver", title: "receiver t/1", facts: [], counters: [] }),
      charts: [],
      ...(fleet ? { fleet } : {}),
    });
    return server;
  };

  test("init carries the whole fleet, updates only what changed, and a reconnect gets what it missed", async () => {
    const fleet = new FleetBoard();
    fleet.apply(put("plant-1", "round", "transferring", 1));
    fleet.apply(put("plant-2", "round", "transferring", 1));
    const s = await start(fleet);
    expect(JSON.parse((await get(`${s.url}api/fleet`)).body).rows).toHaveLength(2);

    const stream = await openEvents(`${s.url}events`);
    try {
      const init = await eventually("init", () => stream.frames.find((f) => f.event === "init"));
      expect(JSON.parse(init.data).fleet.rows).toHaveLength(2);
      expect(init.id).toBe(`0-${fleet.rev}`);
      fleet.apply(put("plant-2", "round", "loading", 2));
      const update = await eventually("update", () => stream.frames.find((f) => f.event === "update"));
      const body = JSON.parse(update.data) as { fleet: FleetDelta };
      expect(body.fleet.rows.map((r) => r.sender)).toEqual(["plant-2"]);
      expect(update.id).toBe(`0-${fleet.rev}`);
    } finally {
      stream.close();
    }

    const missed = fleet.rev;
    fleet.apply(put("plant-3", "sender", "waiting", 3));
    const again = await openEvents(`${s.url}events`, { "Last-Event-ID": `0-${missed}` });
    try {
      const first = await eventually("resume", () => again.frames[0]);
      expect(first.event).toBe("update");
      expect((JSON.parse(first.data) as { fleet: FleetDelta }).fleet.rows.map((r) => r.sender)).toEqual(["plant-3"]);
    } finally {
      again.close();
    }
  });

  test("a dashboard without a fleet has no /api/fleet, and its event ids stay plain revisions", async () => {
    const s = await start(undefined);
    expect((await get(`${s.url}api/fleet`)).status).toBe(404);
    const stream = await openEvents(`${s.url}events`);
    try {
      const init = await eventually("init", () => stream.frames.find((f) => f.event === "init"));
      expect(init.id).toBe("0");
      expect(JSON.parse(init.data).fleet).toBeUndefined();
    } finally {
      stream.close();
    }
  });
});
