import { readdir, readFile } from "node:fs/promises";
import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, test } from "vitest";
import { ActorBoard, type ActorView, type BoardDelta, type BoardState, type Observation } from "../../src/dashboard/model.js";
import { startDashboardServer, type DashboardServer, type ProcessInfo } from "../../src/dashboard/server.js";
import { eventually, get, openEvents, type SseFrame } from "./sse.js";

const info = (): ProcessInfo => ({
  role: "receiver",
  title: "receiver test/1",
  facts: [["group", "test"]],
  counters: [["bytes received", 0]],
});

const observation = (value: string, received: number, event = "progress"): Observation => ({
  machine: "receiverSession",
  value,
  context: {
    senderId: "edge",
    sessionId: "s",
    address: "",
    idleTimeoutMs: 1000,
    transfer: { fileId: "f", offer: { sg: "root.sg", vg: "0", tp: "0", name: "1-1-0-0.tsfile", kind: "tsfile", size: 1 << 30 }, received },
    pendingOffer: undefined,
    lastReply: undefined,
    replies: 0,
    files: { received: 0, loaded: 0, deleted: 0, rejected: 0 },
    bytes: received,
  },
  status: "active",
  event,
});

let server: DashboardServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const start = async (board: ActorBoard, throttleMs = 100) => {
  const registry = new Registry();
  new Counter({ name: "tsync_test_total", help: "a test counter", registers: [registry] }).inc(3);
  server = await startDashboardServer({ board, registry, info, charts: [], port: 0, throttleMs });
  return server;
};

/** The page's way of following the stream (app.js applyInit/applyUpdate). */
const follow = (frames: ReadonlyArray<SseFrame>) => {
  const actors = new Map<string, ActorView>();
  for (const f of frames) {
    if (f.event === "init") {
      actors.clear();
      for (const a of (JSON.parse(f.data) as { board: BoardState }).board.actors) actors.set(a.id, a);
    } else {
      const d = (JSON.parse(f.data) as { delta: BoardDelta }).delta;
      for (const a of d.actors) {
        const old = actors.get(a.id);
        const log =
          old && a.born <= d.since
            ? [...old.log.filter((l) => !a.log.some((n) => n.seq === l.seq)), ...a.log].sort((x, y) => x.seq - y.seq)
            : a.log;
        actors.set(a.id, { ...a, log });
      }
      for (const id of d.removed) actors.delete(id);
    }
  }
  return actors;
};

describe("dashboard server", () => {
  test("a chunk stream of thousands of events reaches the browser as a few throttled updates that add up to the board", async () => {
    const board = new ActorBoard();
    const s = await start(board, 100);
    board.observe("s", observation("receiving", 0, "xstate.init"));
    const events = await openEvents(`${s.url}events`);
    await eventually("the first frame", () => (events.frames.length > 0 ? true : undefined));
    const began = Date.now();
    const N = 3000;
    for (let i = 1; i <= N; i++) {
      board.observe("s", observation("receiving", i));
      // Let the server's timer run between bursts of 100, as a real chunk stream does.
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    board.observe("s", observation("verifying", N, "commit"));
    const last = String(board.rev);
    await eventually("the last revision at the browser", () => (events.frames.at(-1)?.id === last ? true : undefined));
    const elapsed = Date.now() - began;
    events.close();

    const updates = events.frames.filter((f) => f.event === "update").length;
    // A timer cannot fire more often than its period: at most one update per 100 ms, plus the last.
    expect(updates).toBeLessThanOrEqual(Math.ceil(elapsed / 100) + 1);
    expect(updates).toBeLessThan(N / 20);
    const seen = follow(events.frames).get("s")!;
    const truth = board.get("s")!;
    expect(seen).toEqual(truth);
    expect(seen.log.find((l) => l.event === "progress")?.count).toBe(N);
  });

  test("a reconnecting browser with Last-Event-ID gets what it missed, not everything", async () => {
    const board = new ActorBoard();
    const s = await start(board);
    board.observe("a", observation("ready", 0, "xstate.init"));
    board.observe("b", observation("ready", 0, "xstate.init"));
    const rev = board.rev;
    board.observe("b", observation("offering", 0, "offer"));
    const events = await openEvents(`${s.url}events`, { "Last-Event-ID": String(rev) });
    const first = await eventually("a frame", () => events.frames[0]);
    events.close();
    expect(first.event).toBe("update");
    expect((JSON.parse(first.data) as { delta: BoardDelta }).delta.actors.map((a) => a.id)).toEqual(["b"]);
  });

  test("serves the page, state, one actor and metrics; refuses other hosts, methods and paths", async () => {
    const board = new ActorBoard();
    board.observe("a b", observation("ready", 0, "xstate.init"));
    const s = await start(board);
    const page = await get(s.url);
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["content-security-policy"]).toContain("default-src 'self'");
    expect(page.body).toContain('src="app.js"');
    expect((await get(`${s.url}app.js`)).headers["content-type"]).toMatch(/^text\/javascript/);

    const state = JSON.parse((await get(`${s.url}api/state`)).body) as { process: ProcessInfo; board: BoardState; states: unknown };
    expect(state.process.title).toBe("receiver test/1");
    expect(state.board.actors.map((a) => a.id)).toEqual(["a b"]);
    expect(state.states).toEqual([{ machine: "receiverSession", state: "ready", count: 1 }]);
    expect(JSON.parse((await get(`${s.url}api/actors/a%20b`)).body)).toMatchObject({ id: "a b", state: "ready" });
    expect((await get(`${s.url}api/actors/nobody`)).status).toBe(404);

    const metrics = await get(`${s.url}metrics`);
    expect(metrics.headers["content-type"]).toMatch(/^text\/plain/);
    expect(metrics.body).toMatch(/^tsync_test_total 3$/m);

    expect((await get(s.url, { headers: { Host: `evil.example:${s.port}` } })).status).toBe(421);
    expect((await get(s.url, { headers: { Host: `localhost:${s.port}` } })).status).toBe(200);
    expect((await get(`${s.url}api/state`, { method: "POST" })).status).toBe(405);
    expect((await get(`${s.url}nothing`)).status).toBe(404);
  });

  test("closing the server ends the browsers' streams", async () => {
    const s = await start(new ActorBoard());
    const events = await openEvents(`${s.url}events`);
    await eventually("a connected browser", () => (s.clients() === 1 ? true : undefined));
    const ended = new Promise<void>((resolve) => events.response.on("end", () => resolve()).on("close", () => resolve()));
    await s.close();
    server = undefined;
    await ended;
    expect(s.clients()).toBe(0);
  });
});

test("the page fetches nothing from elsewhere: no URL but the SVG namespace in its files", async () => {
  const dir = new URL("../../src/dashboard/page/", import.meta.url);
  const files = await readdir(dir);
  expect(files.sort()).toEqual(["app.js", "index.html", "style.css"]);
  for (const f of files) {
    const text = await readFile(new URL(f, dir), "utf8");
    const urls = [...text.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"')]*/gi)]
      .map((m) => m[0])
      .filter((u) => u !== "http://www.w3.org/2000/svg");
    expect(urls, f).toEqual([]);
  }
});
