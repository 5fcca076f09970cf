// The embedded nats-server: its config, a child process that dies with us, and its pid and ports files.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { replaceFile } from "../files/durableFile.js";

/** A nats-server child process that this process started and must stop. */
export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  /** Monitoring endpoint on loopback; serves /connz, which tells us the address each client connected from. */
  readonly monitorUrl: string;
  /** nats-server's own pid (not its watchdog's). */
  readonly pid: number;
  readonly stop: () => Promise<void>;
  /** SIGKILL, for fault tests that need the server to vanish mid-transfer. */
  readonly kill: () => Promise<void>;
  /**
   * Rewrites the config with the same base settings and `extraConfig` in place of the previous
   * extra text, and has the running server reload it. Rejects with the server's complaint (and
   * puts the previous config file back) when the server refuses the new text.
   */
  readonly reconfigure: (extraConfig: string) => Promise<void>;
}

export interface NatsServerOptions {
  /** Directory for the config, the pid and ports files and the JetStream store. */
  readonly dir: string;
  readonly host?: string;
  /** -1 (the default) lets the server pick a free port. */
  readonly port?: number;
  /** Extra nats-server config text (authorization, tls, max_payload, ...). */
  readonly extraConfig?: string;
  readonly startTimeoutMs?: number;
}

export const natsServerBinary = (): string => {
  const fromEnv = process.env["NATS_SERVER_BIN"];
  if (fromEnv) return fromEnv;
  for (const dir of (process.env["PATH"] ?? "").split(":").concat(["/usr/sbin", "/usr/local/sbin", "/usr/bin"])) {
    if (dir && existsSync(join(dir, "nats-server"))) return join(dir, "nats-server");
  }
  throw new Error("nats-server not found: install it (apt-get install nats-server) or set NATS_SERVER_BIN");
};

interface PortsFile {
  readonly nats: ReadonlyArray<string>;
  readonly monitoring?: ReadonlyArray<string>;
}

/** What the pid file says: the server, its config, and the process that started it (to tell a live owner from a dead one). */
interface PidFile {
  readonly pid: number;
  readonly config: string;
  readonly owner: number;
  /** The owner's start time in clock ticks since boot (/proc/<pid>/stat), so a reused owner pid is not taken for it. */
  readonly ownerStart?: string;
}

export const natsConfigPath = (dir: string): string => join(resolve(dir), "nats-server.conf");
export const natsPidPath = (dir: string): string => join(resolve(dir), "nats-server.pid");

/** Time nats-server gets to shut down (JetStream flushes its store) before SIGKILL. */
const terminateGraceMs = 5_000;

/**
 * Runs nats-server ("$@") as a child of this shell, prints its pid and waits for it. Node has no
 * parent-death signal, so the shell's stdin is a pipe from us: when we die, even by SIGKILL, the
 * kernel closes our end, the guard's read sees EOF and it stops the server (SIGKILL if it
 * lingers). A background job's stdin is /dev/null unless redirected explicitly, hence fd 3.
 */
const watchdogScript = `
exec 3<&0
"$@" </dev/null >/dev/null 3<&- &
server=$!
echo "$server"
( while read -r _; do :; done; kill -TERM "$server" 2>/dev/null; sleep ${terminateGraceMs / 1000}; kill -KILL "$server" 2>/dev/null ) <&3 >/dev/null 2>&1 &
guard=$!
exec 3<&-
wait "$server"
status=$?
kill "$guard" 2>/dev/null
exit "$status"
`;

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat; the command name may hold spaces and parentheses. */
const procStat = async (pid: number, n: number): Promise<string | undefined> => {
  const text = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  return text.slice(text.lastIndexOf(")") + 2).split(" ")[n - 3];
};

const isAlive = async (pid: number): Promise<boolean> => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // A zombie still answers signal 0 but serves nothing.
  return (await procStat(pid, 3)) !== "Z";
};

/** Whether `pid` is a nats-server running the config at `configPath`, as its command line says. */
const runsConfig = async (pid: number, configPath: string): Promise<boolean> => {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  const argv = cmdline.split("\0");
  const c = argv.indexOf("-c");
  return basename(argv[0] ?? "").startsWith("nats-server") && c > 0 && argv[c + 1] === configPath;
};

const readPidFile = async (dir: string): Promise<PidFile | undefined> => {
  const p = await readFile(natsPidPath(dir), "utf8")
    .then((t) => JSON.parse(t) as Partial<PidFile> | null)
    .catch(() => undefined);
  return p && typeof p.pid === "number" && typeof p.config === "string" && typeof p.owner === "number" ? (p as PidFile) : undefined;
};

const waitGone = async (pid: number, ms: number): Promise<boolean> => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await isAlive(pid))) return true;
    await sleep(20);
  }
  return !(await isAlive(pid));
};

/**
 * A server left running on this dir by a process that died (its watchdog killed too, or still
 * within its grace) holds the port and the store: stop it. A server whose owner is still alive is
 * refused instead, and a pid that now names any other process is left alone.
 */
const stopOrphan = async (dir: string, configPath: string): Promise<void> => {
  const previous = await readPidFile(dir);
  if (!previous || previous.config !== configPath) return;
  if (!(await isAlive(previous.pid)) || !(await runsConfig(previous.pid, configPath))) return;
  const ownerAlive =
    (await isAlive(previous.owner)) && (previous.ownerStart === undefined || (await procStat(previous.owner, 22)) === previous.ownerStart);
  if (ownerAlive)
    throw new Error(`nats-server ${previous.pid} already serves ${dir} for the running process ${previous.owner}; stop that first`);
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(previous.pid, s);
    } catch {
      // Gone in the meantime.
    }
  };
  signal("SIGTERM");
  if (await waitGone(previous.pid, terminateGraceMs)) return;
  if (await runsConfig(previous.pid, configPath)) signal("SIGKILL");
  if (!(await waitGone(previous.pid, terminateGraceMs)))
    throw new Error(`nats-server ${previous.pid} left running on ${dir} would not stop`);
};

/** A server that another process started on `dir` and that still runs: where to reach it. */
export interface RunningServer {
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly monitorUrl: string;
}

/**
 * The embedded server a receiver runs on `dir`, if one runs: admin commands find its port here,
 * since `sync_server_port=0` gives a random one.
 */
export const readRunningServer = async (dir: string): Promise<RunningServer | undefined> => {
  const p = await readPidFile(dir);
  if (!p || !(await isAlive(p.pid))) return undefined;
  // Without /proc the command line cannot be read; the ports file named after the pid must do.
  if (existsSync(`/proc/${process.pid}`) && !(await runsConfig(p.pid, p.config))) return undefined;
  const ports = await readFile(join(resolve(dir), `nats-server_${p.pid}.ports`), "utf8")
    .then((t) => JSON.parse(t) as PortsFile)
    .catch(() => undefined);
  const nats = ports?.nats[0];
  if (!nats) return undefined;
  const url = nats.replace(/^nats:\/\//, "");
  return { pid: p.pid, port: Number(url.slice(url.lastIndexOf(":") + 1)), url, monitorUrl: ports.monitoring?.[0] ?? "" };
};

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServerProcess> {
  const host = options.host ?? "127.0.0.1";
  const dir = resolve(options.dir);
  await mkdir(join(dir, "jetstream"), { recursive: true });
  const confPath = natsConfigPath(dir);
  const configText = (extra: string) =>
    [
      `host: "${host}"`,
      `port: ${options.port ?? -1}`,
      `http: "127.0.0.1:-1"`,
      `ports_file_dir: "${dir}"`,
      `jetstream { store_dir: "${join(dir, "jetstream")}" }`,
      extra,
    ].join("\n");
  let extraConfig = options.extraConfig ?? "";
  await stopOrphan(dir, confPath);
  await replaceFile(confPath, configText(extraConfig));
  const proc: ChildProcess = spawn("/bin/sh", ["-c", watchdogScript, "tsync-nats-watchdog", natsServerBinary(), "-c", confPath], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let log = "";
  let partial = "";
  const lineListeners = new Set<(line: string) => void>();
  proc.stderr?.on("data", (b: Buffer) => {
    const text = b.toString();
    log = (log + text).slice(-20_000);
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) for (const l of lineListeners) l(line);
  });
  let pid = -1;
  let pidText = "";
  proc.stdout?.on("data", (b: Buffer) => {
    pidText += b.toString();
    const m = /^(\d+)\n/.exec(pidText);
    if (m && pid < 0) pid = Number(m[1]);
  });
  proc.on("error", (e) => {
    log += e.message;
  });
  // The pipe exists for its end-of-file only; a write error on it must not crash us.
  proc.stdin?.on("error", () => undefined);
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const running = () => proc.exitCode === null && proc.signalCode === null;
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  let pidWritten = false;
  while (Date.now() < deadline && running()) {
    if (pid > 0 && !pidWritten) {
      const record: PidFile = { pid, config: confPath, owner: process.pid, ...optional("ownerStart", await procStat(process.pid, 22)) };
      await replaceFile(natsPidPath(dir), JSON.stringify(record));
      pidWritten = true;
    }
    // Missing, or caught half-written: try again.
    const ports =
      pid > 0
        ? await readFile(join(dir, `nats-server_${pid}.ports`), "utf8")
            .then((t) => JSON.parse(t) as PortsFile)
            .catch(() => null)
        : null;
    // The ports file appears before the client listener accepts; "Server is ready" comes after.
    if (ports?.nats[0] && log.includes("Server is ready")) {
      const url = ports.nats[0].replace(/^nats:\/\//, "");
      const port = Number(url.slice(url.lastIndexOf(":") + 1));
      const monitorUrl = ports.monitoring?.[0] ?? "";
      const serverPid = pid;
      // While the watchdog runs the pid is surely the server's (it waits for it); after, only /proc can tell.
      const isServer = async () => running() || ((await isAlive(serverPid)) && (await runsConfig(serverPid, confPath)));
      const signalServer = (signal: NodeJS.Signals) => {
        try {
          process.kill(serverPid, signal);
        } catch {
          // Gone already.
        }
      };
      const stopWith = (signal: NodeJS.Signals) => async () => {
        if (await isServer()) signalServer(signal);
        await exited;
        // The watchdog's exit means the server's, unless the watchdog itself was killed.
        if (!(await waitGone(serverPid, terminateGraceMs)) && (await isServer())) signalServer("SIGKILL");
        const recorded = await readPidFile(dir);
        if (recorded?.pid === serverPid) await rm(natsPidPath(dir), { force: true });
      };
      let reloads: Promise<void> = Promise.resolve();
      const reload = async (extra: string): Promise<void> => {
        if (!running()) throw new Error("nats-server is not running");
        await replaceFile(confPath, configText(extra));
        let settle: ((error?: Error) => void) | undefined;
        const outcome = new Promise<void>((resolve, reject) => {
          settle = (error) => (error ? reject(error) : resolve());
        });
        const onLine = (line: string) => {
          if (line.includes("Reloaded server configuration")) settle?.();
          const failed = /Failed to reload server configuration: (.*)$/.exec(line);
          if (failed) settle?.(new Error(`nats-server refused the new configuration: ${failed[1] ?? line}`));
        };
        lineListeners.add(onLine);
        const timer = setTimeout(
          () => settle?.(new Error(`nats-server did not confirm the reload within 10 s:\n${log.slice(-2_000)}`)),
          10_000,
        );
        const gone = () => settle?.(new Error(`nats-server exited while reloading its configuration:\n${log.slice(-2_000)}`));
        proc.once("exit", gone);
        try {
          process.kill(serverPid, "SIGHUP");
          await outcome;
          extraConfig = extra;
        } catch (e) {
          // The file must describe what runs, or the next start would fail on the rejected text.
          await replaceFile(confPath, configText(extraConfig));
          throw e;
        } finally {
          clearTimeout(timer);
          lineListeners.delete(onLine);
          proc.off("exit", gone);
        }
      };
      const reconfigure = (extra: string): Promise<void> => {
        const next = reloads.then(() => reload(extra));
        reloads = next.catch(() => undefined);
        return next;
      };
      return { url, port, monitorUrl, pid: serverPid, stop: stopWith("SIGTERM"), kill: stopWith("SIGKILL"), reconfigure };
    }
    await sleep(20);
  }
  if (pid > 0 && (await isAlive(pid))) process.kill(pid, "SIGKILL");
  if (running()) proc.kill("SIGKILL");
  await exited;
  if (pid > 0 && (await readPidFile(dir))?.pid === pid) await rm(natsPidPath(dir), { force: true });
  throw new Error(`nats-server did not start on ${host}:${options.port ?? "any port"}:\n${log}`);
}

const optional = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
