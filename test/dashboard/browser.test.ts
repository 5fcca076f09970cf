import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, test } from "vitest";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { buildSampleDataDir, demoLayout } from "../../src/actors/sampleDataDir.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { receiverDashboard, senderDashboard, withDashboard } from "../../src/dashboard/dashboard.js";
import type { DashboardServer } from "../../src/dashboard/server.js";
import { receiverConfig, senderConfig } from "../harness/configs.js";
import { startTestNatsServer, type TestNatsServer } from "../harness/natsServer.js";
import { CHROMIUM, CHROMIUM_ARGS, chromiumAvailable as available, requireChromium, watchPage as watch } from "./chromium.js";

// A real Chromium opens the dashboards while a sender's round runs (slowed by its bandwidth limit
// so there is something to watch), and must see the session and its chart with the live state.
// TSYNC_DASHBOARD_SCREENSHOT=docs/dashboard.png also copies the receiver's screenshot there.

requireChromium("the dashboard browser test");

let nats: TestNatsServer;
let root: string;
let browser: BrowserContext | undefined;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  if (!available) return;
  nats = await startTestNatsServer();
  root = await mkdtemp(join(tmpdir(), "tsync-dashboard-browser-"));
});
afterAll(async () => {
  if (!available) return;
  await browser?.close();
  for (const c of cleanups.reverse()) await c();
  await nats.cleanup();
  await rm(root, { recursive: true, force: true });
});

const activeState = (page: Page, machine: string) => page.locator(`#chart svg[data-machine="${machine}"] g.node.active`);

test.skipIf(!available)(
  "a real browser shows the session appear while the transfer runs, its chart with the active state lit",
  async () => {
    const receiverBoard = receiverDashboard({ port: 0 });
    const receiver = await Receiver.start(
      withDashboard(receiverBoard, {
        config: receiverConfig({
          is_sync_enable: "true",
          receiver_data_directory: join(root, "centre"),
          nats_url: nats.url,
          nats_monitor_url: nats.monitorUrl,
        }),
        validateTsFile,
        log: () => undefined,
      }),
    );
    cleanups.push(() => receiver.stop());
    const receiverPage: DashboardServer = await receiverBoard.listen(receiver);
    cleanups.push(() => receiverPage.close());

    const data = join(root, "edge");
    const files = (await buildSampleDataDir(data, demoLayout)).filter((f) => f.sealed);
    const senderBoard = senderDashboard({ port: 0 });
    const sender = await Sender.open(
      withDashboard(senderBoard, {
        // About 100 KB at 8 KB/s: over ten seconds of 1 KiB chunks to watch (the test stops it sooner).
        config: senderConfig({
          data_directory: data,
          nats_url: nats.url,
          sender_name: "plant-north",
          chunk_size_bytes: "1024",
          max_bandwidth_bytes_per_second: "8000",
        }),
        log: () => undefined,
      }),
    );
    cleanups.push(() => sender.close());
    const senderPage = await senderBoard.listen(sender);
    cleanups.push(() => senderPage.close());

    const profile = await mkdtemp(join(tmpdir(), "tsync-chromium-"));
    cleanups.push(() => rm(profile, { recursive: true, force: true }));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      viewport: { width: 1500, height: 1000 },
    });

    // The page is open before the sender says hello: the session must appear by itself.
    const r = await watch(browser, receiverPage.url);
    await expect.poll(() => r.page.locator("#conn").getAttribute("data-status")).toBe("live");
    expect(await r.page.locator("#actors tbody tr").count()).toBe(0);

    const stop = new AbortController();
    const round = sender.runOnce(stop.signal);
    try {
      const row = r.page.locator("#actors tbody tr[data-actor-id]").first();
      await row.waitFor({ timeout: 15_000 });
      await expect.poll(() => row.innerText()).toContain("plant-north");
      // Mid-transfer: the session is receiving, and the chart lights that state.
      await activeState(r.page, "receiverSession").and(r.page.locator('[data-state="receiving"]')).waitFor({ timeout: 15_000 });
      await expect.poll(() => r.page.locator("#detail-facts").innerText()).toContain("127.0.0.1");
      expect(await r.page.locator("#chart svg g.node").count()).toBeGreaterThan(5);
      expect(await r.page.locator("#log tbody tr").count()).toBeGreaterThan(0);
      // The list and the chart agree on where the session is (read in one go: it moves on).
      const [rowState, litState] = (await r.page.evaluate(
        `[document.querySelector("#actors tbody tr.selected")?.getAttribute("data-state"),
        document.querySelector("#chart svg g.node.active")?.getAttribute("data-state")]`,
      )) as [string | undefined, string | undefined];
      expect(litState).toBe(rowState);
      expect(["offering", "receiving", "verifying", "loading", "ready"]).toContain(litState);

      const shot = join(root, "receiver-dashboard.png");
      await r.page.screenshot({ path: shot, fullPage: true });
      const png = await readFile(shot);
      expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      expect(png.length).toBeGreaterThan(20_000);
      const keep = process.env["TSYNC_DASHBOARD_SCREENSHOT"];
      if (keep) await copyFile(shot, keep);

      // The sender's dashboard: its round, lit in its own chart.
      const s = await watch(browser, senderPage.url);
      await activeState(s.page, "senderRound").waitFor({ timeout: 15_000 });
      await expect.poll(() => s.page.locator('#actors tbody tr[data-actor-id="round-1"]').innerText()).toContain(`/${files.length}`);

      for (const w of [r, s]) {
        expect(w.errors).toEqual([]);
        // Offline: the page asked nothing of any other server.
        expect(w.requests.filter((u) => !u.startsWith(new URL(w.page.url()).origin) && !u.startsWith("data:"))).toEqual([]);
      }
    } finally {
      stop.abort();
      await round;
    }
  },
  45_000,
);
