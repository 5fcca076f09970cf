import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildSampleDataDir } from "../../src/actors/sampleDataDir.js";
import { WorkDir } from "../../src/actors/sender/workDir.js";
import { senderWorkDirectory } from "../../src/config/sender.js";
import { projectRoot, runTsync } from "../harness/cli.js";
import { senderConfig } from "../harness/configs.js";
import { listFiles, removeAll, tempRoot } from "../harness/syncPair.js";

const exec = promisify(execFile);

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

const waitForLine = async (file: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const text = await readFile(file, "utf8").catch(() => "");
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${file} never matched ${pattern}:\n${await readFile(file, "utf8").catch(() => "(missing)")}`);
};

describe("the tsync command as an operator runs it", () => {
  let root: string;
  beforeAll(async () => {
    root = await tempRoot("tsync-cli-");
  });
  afterAll(async () => {
    await removeAll(root);
  });

  test("start-receiver.sh runs an embedded nats-server; a sender enrolled while it runs syncs with --once and exits 0; stop-receiver.sh stops it", async () => {
    const port = await freePort();
    const edge = join(root, "edge");
    const files = (await buildSampleDataDir(edge)).filter((f) => f.sealed);
    const receiverConf = join(root, "receiver.properties");
    const senderConf = join(root, "sender.properties");
    await writeFile(receiverConf, `is_sync_enable=true\nsync_server_port=${port}\nreceiver_data_directory=${join(root, "centre")}\n`);
    const credential = join(root, "plant-1.nk");
    await writeFile(
      senderConf,
      `data_directory=${edge}\nserver_ip=127.0.0.1\nserver_port=${port}\nsync_period_in_second=1\nsender_name=plant-1\nnats_nkey_seed_file=${credential}\n`,
    );
    const env = { ...process.env, TSYNC_RUN_DIR: join(root, "run"), TSYNC_LOG_DIR: join(root, "logs") };
    await exec("bash", [join(projectRoot, "bin/start-receiver.sh"), receiverConf], { env });
    try {
      const log = await waitForLine(join(root, "logs", "receiver-receiver.log"), /sync service started on port (\d+)/);
      expect(log).toContain(`sync service started on port ${port}`);
      const added = await runTsync(["senders", "add", "plant-1", "--config", receiverConf, "--out", credential]);
      expect(added.code, added.stderr).toBe(0);
      expect(added.stdout).toContain("enrolled sender plant-1");
      expect(added.stdout).toContain("sender_name=plant-1");
      await waitForLine(join(root, "logs", "receiver-receiver.log"), /sender registry applied: 1 enrolled, added plant-1/);
      const once = await runTsync(["sender", "--config", senderConf, "--once"]);
      expect(once.stdout).toContain(`round ok: ${files.length} file(s) sent`);
      expect(once.code).toBe(0);
      expect((await listFiles(join(root, "centre", "sequence"))).filter((f) => f.endsWith(".tsfile"))).toHaveLength(files.length);
      const again = await runTsync(["sender", "--config", senderConf, "--once"]);
      expect(again.stdout).toContain("round ok: 0 file(s) sent");
    } finally {
      const stopped = await exec("bash", [join(projectRoot, "bin/stop-receiver.sh"), receiverConf], { env });
      expect(stopped.stdout).toMatch(/tsync receiver stopped/);
    }
    const stopLog = await readFile(join(root, "logs", "receiver-receiver.log"), "utf8");
    expect(stopLog).toContain("sync service stopped");
  });

  test("a disabled receiver: sender --once prints the reason and exits non-zero", async () => {
    const port = await freePort();
    const edge = join(root, "edge-off");
    await buildSampleDataDir(edge);
    const receiverConf = join(root, "off.properties");
    await writeFile(receiverConf, `is_sync_enable=false\nsync_server_port=${port}\nreceiver_data_directory=${join(root, "centre-off")}\n`);
    const env = { ...process.env, TSYNC_RUN_DIR: join(root, "run"), TSYNC_LOG_DIR: join(root, "logs") };
    await exec("bash", [join(projectRoot, "bin/start-receiver.sh"), receiverConf], { env });
    try {
      await waitForLine(join(root, "logs", "receiver-off.log"), /sync service started/);
      const senderConf = join(root, "sender-off.properties");
      const credential = join(root, "plant-off.nk");
      expect((await runTsync(["senders", "add", "plant-off", "--config", receiverConf, "--out", credential])).code).toBe(0);
      await waitForLine(join(root, "logs", "receiver-off.log"), /sender registry applied: 1 enrolled, added plant-off/);
      await writeFile(
        senderConf,
        `data_directory=${edge}\nserver_port=${port}\nsender_name=plant-off\nnats_nkey_seed_file=${credential}\n`,
      );
      const once = await runTsync(["sender", "--config", senderConf, "--once"]);
      expect(once.code).not.toBe(0);
      expect(once.stdout).toContain("round FAILED");
      expect(once.stdout).toContain("is_sync_enable=false");
    } finally {
      await exec("bash", [join(projectRoot, "bin/stop-receiver.sh"), receiverConf], { env });
    }
  });

  test("a config error stops start-up with a message naming the key and the value", async () => {
    const conf = join(root, "bad.properties");
    await writeFile(conf, `data_directory=${root}\nserver_port=70000\n`);
    const bad = await runTsync(["sender", "--config", conf, "--once"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('server_port="70000"');
    await writeFile(conf, `data_directory=${root}\nsync_period_in_second=ten\n`);
    expect((await runTsync(["sender", "--config", conf])).stderr).toContain('sync_period_in_second="ten"');
    await writeFile(conf, `data_directory=${join(root, "nope")}\n`);
    expect((await runTsync(["sender", "--config", conf])).stderr).toMatch(/data_directory=".*nope" does not exist/);
    await writeFile(conf, `data_directory=${root}\nsever_port=1\n`);
    expect((await runTsync(["sender", "--config", conf])).stderr).toMatch(/unknown key "sever_port".*server_port/);
  });

  test("a second sender on the same data directory and receiver is refused by the lock; an unreachable receiver is named", async () => {
    const edge = join(root, "edge-lock");
    await buildSampleDataDir(edge);
    const port = await freePort();
    const conf = join(root, "lock.properties");
    await writeFile(conf, `data_directory=${edge}\nserver_port=${port}\n`);
    const held = await WorkDir.open(senderWorkDirectory(senderConfig({ data_directory: edge, server_port: String(port) })), undefined);
    try {
      const locked = await runTsync(["sender", "--config", conf, "--once"]);
      expect(locked.code).toBe(2);
      expect(locked.stderr).toMatch(/another sender \(pid \d+\) is already running/);
    } finally {
      await held.close();
    }
    // Lock free now; nobody listens on the port.
    const unreachable = await runTsync(["sender", "--config", conf, "--once"]);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toContain(`cannot reach the receiver's NATS server at 127.0.0.1:${port}`);
  });
});
