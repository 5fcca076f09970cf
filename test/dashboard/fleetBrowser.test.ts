import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { buildSampleDataDir } from "../../src/actors/sampleDataDir.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { receiverDashboard, withDashboard } from "../../src/dashboard/dashboard.js";
import type { DashboardServer } from "../../src/dashboard/server.js";
import type { FleetReport } from "../../src/protocol/fleet.js";
import { fleetSubject } from "../../src/protocol/subjects.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { CHROMIUM, CHROMIUM_ARGS, chromiumAvailable as available, requireChromium, watchPage } from "./chromium.js";

// The receiver's fleet view in a real Chromium: three senders sync through a real nats-server,
// slowed by their bandwidth limits, and the page must show each of them and one of them moving on;
// then a thousand generated senders measure what the page costs (TSYNC_FLEET_FIGURES=1 prints it).
// TSYNC_FLEET_SCREENSHOT=file.png keeps a picture of the fleet view with a sender selected.

requireChromium("the fleet view's browser test");

let nats: TestNatsServer;
let root: string;
let browser: BrowserContext | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  if (!available) return;
  nats = await startTestNatsServer();
  root = await mkdtemp(join(tmpdir(), "tsync-fleet-browser-"));
  const profile = await mkdtemp(join(tmpdir(), "tsync-chromium-"));
  cleanups.push(() => rm(profile, { recursive: true, force: true }));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport: { width: 1500, height: 1000 },
  });
});
afterAll(async () => {
  if (!available) return;
  await browser?.close();
  for (const c of cleanups.reverse()) await c();
  await nats.cleanup();
  await rm(root, { recursive: true, force: true });
});

const startReceiver = async (group: string): Promise<{ receiver: Receiver; page: DashboardServer }> => {
  const dashboard = receiverDashboard({ port: 0 });
  const receiver = await Receiver.start(
    withDashboard(dashboard, {
      config: receiverConfig({
        is_sync_enable: "true",
        receiver_group: group,
        receiver_data_directory: join(root, `${group}-centre`),
        nats_url: nats.url,
        nats_monitor_url: nats.monitorUrl,
      }),
      validateTsFile,
      log: () => undefined,
    }),
  );
  cleanups.push(() => receiver.stop());
  const page = await dashboard.listen(receiver);
  cleanups.push(() => page.close());
  return { receiver, page };
};

const rowOf = (page: Page, sender: string) => page.locator(`#fleet-table tbody tr[data-sender="${sender}"]`);

test.skipIf(!available)(
  "the fleet view shows every sender during real transfers, one of them moving on, and its chart with the state lit",
  async () => {
    const { page: dashboard } = await startReceiver("plants");
    const r = await watchPage(browser!, dashboard.url);
    await expect.poll(() => r.page.locator("#conn").getAttribute("data-status")).toBe("live");
    // Nobody has reported yet: the fleet view is there, empty.
    await r.page.locator("#fleet-empty").waitFor();

    const ids = ["plant-1", "plant-2", "plant-3"];
    const stop = new AbortController();
    const runs: Promise<void>[] = [];
    for (const [i, id] of ids.entries()) {
      const data = join(root, `edge-${id}`);
      await buildSampleDataDir(data, {
        groups: { [`root.plant_${i + 1}`]: ["line.press", "line.oven"] },
        virtualGroups: 1,
        partitions: 2,
        filesPerPartition: 2,
        pointsPerSeries: 200,
        withUnsealed: false,
      });
      const sender = await Sender.open({
        // 1 KiB chunks at 6 KB/s: each sender spends several seconds per file.
        config: senderConfig({
          data_directory: data,
          nats_url: nats.url,
          receiver_group: "plants",
          sender_name: id,
          chunk_size_bytes: "1024",
          max_bandwidth_bytes_per_second: "6000",
          sync_period_in_second: "3600",
        }),
        log: () => undefined,
      });
      cleanups.push(() => sender.close());
      runs.push(sender.runForever(stop.signal, () => undefined));
    }
    try {
      // Every sender shows up by itself, with the address the NATS server saw.
      for (const id of ids) await rowOf(r.page, id).waitFor({ timeout: 15_000 });
      const watched = rowOf(r.page, "plant-1");
      await expect.poll(() => watched.locator("td").nth(1).innerText(), { timeout: 15_000 }).toBe("127.0.0.1");
      // One sender's state changes while the page watches: a transfer, then what comes after it.
      const seen = new Set<string>();
      await expect
        .poll(
          async () => {
            const s = await watched.getAttribute("data-state");
            if (s) seen.add(s);
            return seen.has("transferring") && seen.size >= 2;
          },
          { timeout: 30_000, interval: 50 },
        )
        .toBe(true);
      await expect.poll(() => watched.locator("td").nth(3).innerText(), { timeout: 15_000 }).toMatch(/root\.plant_1\/.+\.tsfile/);

      // Click-through: that sender's charts, its process syncing and its round's state lit.
      await watched.dispatchEvent("pointerdown");
      await r.page.locator("#fleet-detail").waitFor();
      await expect.poll(() => r.page.locator("#fleet-detail-title").innerText()).toContain("plant-1");
      await r.page.locator('#fleet-charts svg[data-machine="sender"] g.node.active[data-state="syncing"]').waitFor({ timeout: 10_000 });
      await expect
        .poll(
          () =>
            r.page.evaluate(`[document.querySelector('#fleet-table tr[data-sender="plant-1"]')?.getAttribute("data-state"),
              document.querySelector('#fleet-charts svg[data-machine="senderRound"] g.node.active')?.getAttribute("data-state")]`),
          { timeout: 10_000 },
        )
        .toSatisfy((v) => {
          const [row, lit] = v as [string | undefined, string | undefined];
          return row !== undefined && row === lit;
        });
      expect(await r.page.locator("#fleet-table tbody tr[data-sender]").count()).toBe(3);
      const shot = process.env["TSYNC_FLEET_SCREENSHOT"];
      if (shot) await r.page.screenshot({ path: shot, fullPage: true });
      expect(r.errors).toEqual([]);
      expect(r.requests.filter((u) => !u.startsWith(new URL(r.page.url()).origin) && !u.startsWith("data:"))).toEqual([]);
      await r.page.close();
    } finally {
      stop.abort();
      await Promise.all(runs);
    }
  },
  90_000,
);

/** A made-up report, as a sender in the middle of a round sends it. */
const generated = (n: number, step: number, at: number): FleetReport => {
  const states = ["transferring", "verifying", "loading", "confirming", "retryBackoff"] as const;
  const state = states[(n + step) % states.length]!;
  return {
    actor: "round",
    machine: "senderRound",
    state,
    status: "active",
    at,
    since: at,
    file: { name: `root.sg_${n % 50}/0/${step}/${at}-${n}-0-0.tsfile`, part: "tsfile", partNumber: 2, parts: 2 },
    progress: { done: step % 40, total: 40 },
    ...(state === "retryBackoff" ? { lastError: `reply: digest mismatch on file ${step}`, next: { kind: "retry", at: at + 3_000 } } : {}),
    conflicts: n % 17 === 0 ? 1 : 0,
    sent: step,
    failed: 0,
  };
};

const publishAll = async (nc: NatsConnection, group: string, senders: ReadonlyArray<string>, step: number): Promise<void> => {
  const at = Date.now();
  for (const [n, id] of senders.entries()) nc.publish(fleetSubject(group, id), JSON.stringify(generated(n, step, at)));
  await nc.flush();
};

const stats = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, median: q(0.5), p95: q(0.95), max: s[s.length - 1] ?? NaN };
};

interface PageTimings {
  readonly applies: ReadonlyArray<{ at: number; ms: number; rows: number; bytes: number }>;
  readonly renders: ReadonlyArray<{ at: number; ms: number; rows: number; changed: number; drawn: number; tick: boolean }>;
}
const timingsOf = (page: Page) => page.evaluate("globalThis.tsyncFleetTimings") as Promise<PageTimings>;

test.skipIf(!available)(
  "a thousand senders: the page renders the fleet and keeps up with its updates",
  async () => {
    const group = "big";
    const { receiver, page: dashboard } = await startReceiver(group);
    const senders = Array.from({ length: 1000 }, (_, i) => `sim-${String(i).padStart(4, "0")}`);
    const nc = await connect({ servers: nats.url });
    cleanups.push(() => nc.close());
    await publishAll(nc, group, senders, 0);
    await expect.poll(() => receiver.fleet.stats.stored, { timeout: 20_000 }).toBeGreaterThanOrEqual(1000);
    await expect
      .poll(async () => ((await (await fetch(`${dashboard.url}api/fleet`)).json()) as { rows: unknown[] }).rows.length, { timeout: 20_000 })
      .toBe(1000);

    // Time to first render: from the page's navigation start to a table of all thousand rows.
    const p = await watchPage(browser!, dashboard.url);
    await expect.poll(() => p.page.locator("#fleet-counts").innerText(), { timeout: 20_000 }).toMatch(/^1000 senders: /);
    const first = (await timingsOf(p.page)).renders.find((x) => x.rows >= 1000)!;
    // Only the rows in view are drawn; the scroll bar still spans the whole fleet.
    expect(first.drawn).toBeLessThan(100);
    const init = (await timingsOf(p.page)).applies[0]!;

    // Updates: every sender changes state four times a second, for five seconds. Frames over 50 ms
    // (script, style, layout and paint together) are what a person would notice.
    await p.page.evaluate(`globalThis.longFrames = [];
      new PerformanceObserver((list) => { for (const e of list.getEntries()) globalThis.longFrames.push(e.duration); })
        .observe({ type: "long-animation-frame" });`);
    const before = (await timingsOf(p.page)).renders.length;
    for (let step = 1; step <= 20; step++) {
      await publishAll(nc, group, senders, step);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await expect
      .poll(() => p.page.locator('#fleet-table tr[data-sender="sim-0000"] td').nth(3).innerText(), { timeout: 10_000 })
      .toContain("/20/");
    const t = await timingsOf(p.page);
    const updates = t.renders.slice(before).filter((x) => x.changed > 0 && !x.tick);
    const applies = t.applies.filter((x) => x.at > first.at);
    const ticks = t.renders.filter((x) => x.tick);
    const longFrames = (await p.page.evaluate("globalThis.longFrames")) as number[];
    const figures = {
      firstRenderMs: Math.round(first.at),
      initApplyMs: Number(init.ms.toFixed(1)),
      initBytes: init.bytes,
      firstTableMs: Number(first.ms.toFixed(1)),
      updateRender: stats(updates.map((x) => x.ms)),
      sendersPerUpdate: stats(updates.map((x) => x.changed)),
      updateApply: stats(applies.map((x) => x.ms)),
      tickRender: stats(ticks.map((x) => x.ms)),
      longFrames: stats(longFrames),
    };
    if (process.env["TSYNC_FLEET_FIGURES"]) console.log(`fleet view, 1000 senders: ${JSON.stringify(figures)}`);
    // Generous bounds for a loaded 2-core machine: what matters is that the page stays usable.
    expect(figures.firstRenderMs).toBeLessThan(5_000);
    expect(updates.length).toBeGreaterThan(5);
    expect(figures.updateRender.median + figures.updateApply.median).toBeLessThan(100);
    // The last sender is there at the bottom of the scroll, up to date.
    await p.page.evaluate(`document.querySelector(".fleet-box").scrollTop = 1e9`);
    await expect
      .poll(() => p.page.locator('#fleet-table tr[data-sender="sim-0999"] td').nth(3).innerText(), { timeout: 5_000 })
      .toContain("/20/");
    expect(p.errors).toEqual([]);
    await p.page.close();
  },
  90_000,
);
