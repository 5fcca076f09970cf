// bin/start-*.sh, bin/stop-*.sh and bin/service.sh driven as an operator runs them: real processes,
// real pid files, real signals.
import { execFile, spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildSampleDataDir } from "../../src/actors/sampleDataDir.js";
import { freePort, projectRoot } from "../harness/cli.js";
import { enroll } from "../harness/enroll.js";
import { removeAll, tempRoot } from "../harness/syncPair.js";

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const countOf = (text: string, pattern: RegExp): number => text.match(new RegExp(pattern.source, "g"))?.length ?? 0;

describe("bin scripts: start, refused second start, status by pid file, graceful stop", () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  let receiverConf: string;
  let senderConf: string;
  let port: number;
  const run = (script: string, ...args: string[]): Promise<Ran> =>
    new Promise((resolve) =>
      execFile("bash", [join(projectRoot, "bin", script), ...args], { env }, (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  const pidFile = (role: string, conf: string) =>
    join(
      root,
      "run",
      `${role}-${conf
        .split("/")
        .pop()!
        .replace(/\.properties$/, "")}.pid`,
    );
  const logFile = (role: string, conf: string) =>
    join(
      root,
      "logs",
      `${role}-${conf
        .split("/")
        .pop()!
        .replace(/\.properties$/, "")}.log`,
    );
  const log = (role: string, conf: string) => readFile(logFile(role, conf), "utf8").catch(() => "");
  /** Waits until the log has `count` lines matching `pattern` (the process writes them when it gets there). */
  const waitForLog = async (role: string, conf: string, pattern: RegExp, count = 1): Promise<string> => {
    for (let i = 0; i < 1200; i++) {
      const text = await log(role, conf);
      if (countOf(text, pattern) >= count) return text;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${logFile(role, conf)} never had ${count} × ${pattern}:\n${await log(role, conf)}`);
  };
  const pidOf = async (role: string, conf: string) => Number((await readFile(pidFile(role, conf), "utf8")).trim());

  beforeAll(async () => {
    root = await tempRoot("tsync-scripts-");
    port = await freePort();
    env = { ...process.env, TSYNC_RUN_DIR: join(root, "run"), TSYNC_LOG_DIR: join(root, "logs") };
    const centre = join(root, "centre");
    const edge = join(root, "edge");
    await buildSampleDataDir(edge);
    // Enrolled before the receiver starts, as an operator sets up a new edge box.
    const credentials = await enroll(centre, "plant-1", root);
    receiverConf = join(root, "receiver.properties");
    senderConf = join(root, "sender.properties");
    await writeFile(receiverConf, `is_sync_enable=true\nsync_server_port=${port}\nreceiver_data_directory=${centre}\n`);
    await writeFile(
      senderConf,
      [
        `data_directory=${edge}`,
        "server_ip=127.0.0.1",
        `server_port=${port}`,
        // Long enough that a second round can only come from SIGUSR1.
        "sync_period_in_second=3600",
        ...Object.entries(credentials).map(([k, v]) => `${k}=${v}`),
        "",
      ].join("\n"),
    );
  });

  afterAll(async () => {
    // Whatever a failed assertion left running is stopped through the scripts themselves.
    await run("stop-sender.sh", senderConf);
    await run("stop-receiver.sh", receiverConf);
    await removeAll(root);
  });

  test("receiver and sender: start, second start refused, status, SIGUSR1 syncs now, SIGTERM stops cleanly and removes the pid file", async () => {
    expect((await run("service.sh", "status", "receiver", receiverConf)).code).toBe(3);
    const started = await run("start-receiver.sh", receiverConf);
    expect(started.code, started.stderr).toBe(0);
    await waitForLog("receiver", receiverConf, /sync service started on port/);
    const receiverPid = await pidOf("receiver", receiverConf);
    expect(alive(receiverPid)).toBe(true);
    const status = await run("service.sh", "status", "receiver", receiverConf);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`running (pid ${receiverPid})`);
    const again = await run("start-receiver.sh", receiverConf);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`already running (pid ${receiverPid})`);
    expect(await pidOf("receiver", receiverConf)).toBe(receiverPid);

    expect((await run("start-sender.sh", senderConf)).code).toBe(0);
    await waitForLog("sender", senderConf, /round ok: \d+ file\(s\) sent/);
    const senderPid = await pidOf("sender", senderConf);
    const secondSender = await run("start-sender.sh", senderConf);
    expect(secondSender.code).toBe(1);
    expect(secondSender.stderr).toContain(`already running (pid ${senderPid})`);
    expect((await run("service.sh", "status", "sender", senderConf)).stdout).toContain(`running (pid ${senderPid})`);

    // "Sync now": the period is an hour, so only the signal can start the second round.
    process.kill(senderPid, "SIGUSR1");
    const afterSignal = await waitForLog("sender", senderConf, /round ok: \d+ file\(s\) sent/, 2);
    expect(afterSignal).toContain("SIGUSR1: syncing now");

    const stoppedSender = await run("stop-sender.sh", senderConf);
    expect(stoppedSender.code, stoppedSender.stderr).toBe(0);
    expect(stoppedSender.stdout).toContain(`tsync sender stopped (pid ${senderPid})`);
    expect(alive(senderPid)).toBe(false);
    await expect(readFile(pidFile("sender", senderConf))).rejects.toThrow(/ENOENT/);
    const senderLog = await log("sender", senderConf);
    expect(senderLog).toContain("SIGTERM: stopping after the current step");
    // A graceful stop, not the forced exit of a second signal or of the 10 s deadline.
    expect(senderLog).not.toMatch(/exiting now|took longer than 10 s/);
    expect((await run("service.sh", "status", "sender", senderConf)).code).toBe(3);

    const stoppedReceiver = await run("stop-receiver.sh", receiverConf);
    expect(stoppedReceiver.code, stoppedReceiver.stderr).toBe(0);
    expect(alive(receiverPid)).toBe(false);
    await expect(readFile(pidFile("receiver", receiverConf))).rejects.toThrow(/ENOENT/);
    expect(await log("receiver", receiverConf)).toContain("sync service stopped");
    // Its embedded nats-server went with it: the port is free again.
    await new Promise<void>((resolve, reject) => {
      const s = createServer().once("error", reject);
      s.listen(port, "127.0.0.1", () => s.close(() => resolve()));
    });
    const nothing = await run("stop-receiver.sh", receiverConf);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain("No tsync receiver to stop");
  });

  test("a pid file naming some other live process (a reused pid) is stale: status says not running, stop leaves that process alone, start goes ahead", async () => {
    const stranger = spawn("sleep", ["60"], { stdio: "ignore" });
    try {
      const pid = stranger.pid!;
      await mkdir(join(root, "run"), { recursive: true });
      await writeFile(pidFile("receiver", receiverConf), `${pid}\n`);
      expect((await run("service.sh", "status", "receiver", receiverConf)).code).toBe(3);
      const stop = await run("stop-receiver.sh", receiverConf);
      expect(stop.code).toBe(1);
      expect(alive(pid)).toBe(true);
      await writeFile(pidFile("receiver", receiverConf), `${pid}\n`);
      const start = await run("start-receiver.sh", receiverConf);
      expect(start.code, start.stderr).toBe(0);
      const receiverPid = await pidOf("receiver", receiverConf);
      expect(receiverPid).not.toBe(pid);
      await waitForLog("receiver", receiverConf, /sync service started on port/, 2);
      expect((await run("stop-receiver.sh", receiverConf)).code).toBe(0);
      expect(alive(pid)).toBe(true);
    } finally {
      stranger.kill();
    }
  });
});
