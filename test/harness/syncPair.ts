import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Receiver } from "../../src/actors/receiver/receiver.js";
import { validateTsFile } from "../../src/actors/receiver/validateTsFile.js";
import { Sender } from "../../src/actors/sender/sender.js";
import { receiverConfig, senderConfig } from "./configs.js";
import type { TestNatsServer } from "./natsServer.js";

export const tempRoot = (prefix = "tsync-test-"): Promise<string> => mkdtemp(join(tmpdir(), prefix));

/** A receiver on the harness server (nats_url + nats_monitor_url), sync enabled unless overridden. */
export const startReceiver = (server: TestNatsServer, dataDir: string, props: Record<string, string> = {}): Promise<Receiver> =>
  Receiver.start({
    config: receiverConfig({
      is_sync_enable: "true",
      receiver_data_directory: dataDir,
      nats_url: server.url,
      nats_monitor_url: server.monitorUrl,
      ...props,
    }),
    validateTsFile,
    log: process.env["TSYNC_TEST_LOG"] ? (l: string) => process.stderr.write(`receiver: ${l}\n`) : () => undefined,
  });

export const openSender = (server: TestNatsServer, dataDir: string, props: Record<string, string> = {}): Promise<Sender> =>
  Sender.open({ config: senderConfig({ data_directory: dataDir, nats_url: server.url, ...props }) });

/** Every file under `dir` (relative paths), skipping tsync's own state folders. */
export const listFiles = async (dir: string): Promise<string[]> => {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.name === ".tsync" || e.name === "sync-sender") continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p));
    }
  };
  await walk(dir);
  return out.sort();
};

export const removeAll = (dir: string) => rm(dir, { recursive: true, force: true });
