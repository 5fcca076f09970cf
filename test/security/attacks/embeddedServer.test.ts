// The receiver's embedded nats-server lives and dies with the receiver: a kill -9 of the receiver
// takes the server along (no open, unauthenticated leftover on the port), a restart gets the same
// port even when a server somehow survived, and nothing else that happens to hold a recorded pid
// is ever signalled. Plus the two hooks others build on: `reconfigure` (live reload of the
// authorization block) and `readRunningServer` (admin commands finding a random port).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { connect as tcpConnect, createServer } from "node:net";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  natsConfigPath,
  natsPidPath,
  natsServerBinary,
  readRunningServer,
  startNatsServer,
  type NatsServerProcess,
} from "../../../src/actors/natsServer.js";
import { embeddedStoreDir } from "../../../src/actors/receiver/receiver.js";
import { startTsync } from "../../harness/cli.js";
import { removeAll, tempRoot } from "../../harness/syncPair.js";

let root: string;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

beforeAll(async () => {
  root = await tempRoot("tsync-embedded-");
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});
afterAll(async () => {
  await removeAll(root);
});

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** Alive and not a zombie (this sandbox's init may not reap the orphans we make). */
const alive = async (pid: number): Promise<boolean> => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
};

const parentOf = async (pid: number): Promise<number> => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
};

const childrenOf = async (pid: number): Promise<number[]> => {
  const out: number[] = [];
  for (const e of await readdir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    if ((await parentOf(Number(e)).catch(() => -1)) === pid) out.push(Number(e));
  }
  return out;
};

const until = async (what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

/**
 * The processes holding a listening TCP socket on `port`, with their command lines. Tests run in
 * parallel and free ports get handed out again, so "is the port served" is asked of the kernel's
 * socket table and answered with who serves it, never by connecting (which can also self-connect).
 */
const listenersOn = async (port: number): Promise<Array<{ pid: number; cmdline: string }>> => {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      if (local === undefined || f[3] !== "0A") continue;
      if (Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port && f[9] !== undefined) inodes.add(f[9]);
    }
  }
  const out: Array<{ pid: number; cmdline: string }> = [];
  if (inodes.size === 0) return out;
  for (const e of await readdir("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const fds = await readdir(`/proc/${e}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${e}/fd/${fd}`).catch(() => "");
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1] !== undefined && inodes.has(m[1])) {
        out.push({ pid: Number(e), cmdline: (await readFile(`/proc/${e}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ").trim() });
        break;
      }
    }
  }
  return out;
};

/** Listeners on `port` that run the nats-server config of `dir`: what a leftover server would be. */
const serversOf = async (dir: string, port: number) => (await listenersOn(port)).filter((l) => l.cmdline.includes(natsConfigPath(dir)));

/** Whether something accepts TCP connections on 127.0.0.1:port. */
const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = tcpConnect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });

/** The pid of a process that existed and is gone (and reaped). */
const deadPid = async (): Promise<number> => {
  const c = spawn("true");
  await new Promise((r) => c.once("exit", r));
  return c.pid ?? 999_999_999;
};

const exitOf = (c: ChildProcess): Promise<unknown> =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once("exit", r));

describe("the embedded nats-server of a receiver process", () => {
  const startReceiverProcess = async (conf: string) => {
    // Generous: a receiver started through tsx on two busy cores can take a while.
    const r = await startTsync(["receiver", "--config", conf], /sync service started on port (\d+)/, {}, 60_000);
    cleanups.push(async () => {
      r.child.kill("SIGKILL");
      await exitOf(r.child);
    });
    return r;
  };

  test("kill -9 of the receiver stops its nats-server; the restarted receiver gets the same port", async () => {
    const port = await freePort();
    const centre = join(root, "killed");
    const conf = join(root, "killed.properties");
    await writeFile(conf, `is_sync_enable=true\nsync_server_port=${port}\nreceiver_data_directory=${centre}\n`);

    const first = await startReceiverProcess(conf);
    expect(Number(first.match[1])).toBe(port);
    const running = await readRunningServer(embeddedStoreDir(centre));
    expect(running?.port).toBe(port);
    const natsPid = running!.pid;
    expect(await alive(natsPid)).toBe(true);

    first.child.kill("SIGKILL");
    await exitOf(first.child);
    await until(`nats-server ${natsPid} to die with its receiver`, async () => !(await alive(natsPid)), 8_000);
    expect(await serversOf(embeddedStoreDir(centre), port)).toEqual([]);
    expect(await readRunningServer(embeddedStoreDir(centre))).toBeUndefined();

    const second = await startReceiverProcess(conf);
    expect(Number(second.match[1])).toBe(port);
    const again = await readRunningServer(embeddedStoreDir(centre));
    expect(again?.port).toBe(port);
    expect(again?.pid).not.toBe(natsPid);

    // A graceful stop takes the server along too.
    second.child.kill("SIGTERM");
    await exitOf(second.child);
    await until("the server to stop with the receiver", async () => !(await alive(again!.pid)), 8_000);
  }, 180_000);

  test("a server that survived its receiver (watchdog killed too) is stopped by the restarted receiver, which takes its port", async () => {
    const port = await freePort();
    const centre = join(root, "survivor");
    const conf = join(root, "survivor.properties");
    await writeFile(conf, `is_sync_enable=true\nsync_server_port=${port}\nreceiver_data_directory=${centre}\n`);

    const first = await startReceiverProcess(conf);
    const natsPid = (await readRunningServer(embeddedStoreDir(centre)))!.pid;
    const watchdog = await parentOf(natsPid);
    expect(watchdog).not.toBe(first.child.pid);
    // Take away everything that would stop the server: the watchdog and its guard, then the receiver.
    for (const pid of (await childrenOf(watchdog)).filter((p) => p !== natsPid)) process.kill(pid, "SIGKILL");
    process.kill(watchdog, "SIGKILL");
    first.child.kill("SIGKILL");
    await exitOf(first.child);
    cleanups.push(() => process.kill(natsPid, "SIGKILL"));
    await new Promise((r) => setTimeout(r, 300));
    expect(await alive(natsPid)).toBe(true);
    expect((await serversOf(embeddedStoreDir(centre), port)).map((l) => l.pid)).toEqual([natsPid]);

    const second = await startReceiverProcess(conf);
    expect(Number(second.match[1])).toBe(port);
    expect(await alive(natsPid)).toBe(false);
  }, 180_000);
});

describe("startNatsServer and its pid file", () => {
  const started = async (dir: string, options: { port?: number; extraConfig?: string } = {}): Promise<NatsServerProcess> => {
    const s = await startNatsServer({ dir, ...options });
    cleanups.push(() => s.stop());
    return s;
  };

  test("the pid is nats-server's own and readRunningServer finds its port and monitor URL until it stops", async () => {
    const dir = join(root, "lookup");
    const s = await startNatsServer({ dir });
    const cmdline = await readFile(`/proc/${s.pid}/cmdline`, "utf8");
    expect(cmdline.split("\0")).toEqual([natsServerBinary(), "-c", natsConfigPath(dir), ""]);
    expect(await readRunningServer(dir)).toEqual({ pid: s.pid, port: s.port, url: s.url, monitorUrl: s.monitorUrl });
    await s.stop();
    expect(await alive(s.pid)).toBe(false);
    expect(await readRunningServer(dir)).toBeUndefined();
  });

  test("kill() SIGKILLs nats-server itself", async () => {
    const s = await started(join(root, "kill"));
    await s.kill();
    expect(await alive(s.pid)).toBe(false);
    expect(await serversOf(join(root, "kill"), s.port)).toEqual([]);
  });

  test("an orphaned server of the same config is stopped and its port reused", async () => {
    const dir = join(root, "orphan");
    const port = await freePort();
    await (await startNatsServer({ dir, port })).stop();
    // What a receiver killed before any watchdog existed leaves behind: a server nobody owns.
    const orphan = spawn(natsServerBinary(), ["-c", natsConfigPath(dir)], { stdio: "ignore" });
    cleanups.push(() => orphan.kill("SIGKILL"));
    await writeFile(natsPidPath(dir), JSON.stringify({ pid: orphan.pid, config: natsConfigPath(dir), owner: await deadPid() }));
    await until("the orphan to listen", () => listening(port));

    const s = await started(dir, { port });
    expect(s.port).toBe(port);
    expect(orphan.exitCode !== null || orphan.signalCode !== null).toBe(true);
  });

  test("a pid now held by an unrelated process is never signalled", async () => {
    const dir = join(root, "reused");
    const bystander = spawn("sleep", ["30"], { stdio: "ignore" });
    cleanups.push(() => bystander.kill("SIGKILL"));
    // The pid file names the bystander as if it were this dir's server, owned by a dead process.
    await mkdir(dir, { recursive: true });
    await writeFile(natsPidPath(dir), JSON.stringify({ pid: bystander.pid, config: natsConfigPath(dir), owner: await deadPid() }));
    const s = await started(dir);
    expect(s.pid).not.toBe(bystander.pid);
    expect(await alive(bystander.pid!)).toBe(true);
    expect(bystander.exitCode).toBeNull();
  });

  test("a server whose owner is alive is not taken over: the second start is refused and the first keeps serving", async () => {
    const dir = join(root, "owned");
    const s = await started(dir);
    await expect(startNatsServer({ dir })).rejects.toThrow(`nats-server ${s.pid} already serves`);
    expect(await alive(s.pid)).toBe(true);
    const nc = await connect({ servers: s.url });
    await nc.close();
  });
});

describe("reconfigure", () => {
  let s: NatsServerProcess;
  let dir: string;
  beforeAll(async () => {
    dir = join(root, "reload");
    s = await startNatsServer({ dir, extraConfig: "max_payload: 65536" });
  });
  afterAll(async () => {
    await s?.stop();
  });

  const payloadOfNewConnection = async (opts: Record<string, unknown> = {}): Promise<number | undefined> => {
    const nc = await connect({ servers: s.url, ...opts });
    try {
      return nc.info?.max_payload;
    } finally {
      await nc.close();
    }
  };

  test("a new max_payload applies to new connections once reconfigure resolves", async () => {
    expect(await payloadOfNewConnection()).toBe(65536);
    await s.reconfigure("max_payload: 4096");
    expect(await payloadOfNewConnection()).toBe(4096);
    expect(await readFile(natsConfigPath(dir), "utf8")).toContain("max_payload: 4096");
  });

  test("an authorization block takes effect: anonymous clients are refused, the user is let in", async () => {
    await s.reconfigure('max_payload: 4096\nauthorization { user: "enrolled", password: "s3cret" }');
    await expect(connect({ servers: s.url, maxReconnectAttempts: 0, reconnect: false })).rejects.toThrow(/Authorization/i);
    expect(await payloadOfNewConnection({ user: "enrolled", pass: "s3cret" })).toBe(4096);
    await s.reconfigure("max_payload: 8192");
    expect(await payloadOfNewConnection()).toBe(8192);
  });

  test("a config the server refuses rejects with its error text, and the running config and the file stay as they were", async () => {
    const before = await readFile(natsConfigPath(dir), "utf8");
    await expect(s.reconfigure("max_payload: {{{")).rejects.toThrow(/refused the new configuration: Parse error/);
    await expect(s.reconfigure("port: 1")).rejects.toThrow(/config reload not supported for Port/);
    expect(await readFile(natsConfigPath(dir), "utf8")).toBe(before);
    expect(await payloadOfNewConnection()).toBe(8192);
    // Still reloadable afterwards.
    await s.reconfigure("max_payload: 2048");
    expect(await payloadOfNewConnection()).toBe(2048);
  });

  test("concurrent reconfigures apply in call order", async () => {
    await Promise.all([s.reconfigure("max_payload: 1000"), s.reconfigure("max_payload: 3000")]);
    expect(await payloadOfNewConnection()).toBe(3000);
  });
});
