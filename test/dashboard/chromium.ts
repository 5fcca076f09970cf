import { existsSync } from "node:fs";
import type { BrowserContext, Page } from "playwright-core";

// Debian's Chromium, driven by playwright-core: the dashboard's browser tests share how it is
// found, started and watched.

export const CHROMIUM = "/usr/bin/chromium";
export const chromiumAvailable = existsSync(CHROMIUM);

/** Throws under CI when Chromium is missing; elsewhere warns that `what` is skipped. */
export const requireChromium = (what: string): void => {
  if (!chromiumAvailable && process.env["CI"] === "true")
    throw new Error(`${CHROMIUM} is missing: bin/install-deps installs it (apt-get install chromium)`);
  if (!chromiumAvailable) console.warn(`skipping ${what}: ${CHROMIUM} is missing (bin/install-deps installs it)`);
};

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A page that records its own errors and every URL it asked for. */
export const watchPage = async (context: BrowserContext, url: string): Promise<{ page: Page; errors: string[]; requests: string[] }> => {
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(url);
  return { page, errors, requests };
};
