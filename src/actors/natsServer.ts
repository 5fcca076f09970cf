import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A nats-server child process that this process started and must stop. */
export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  /** Monitoring endpoint on loopback; serves /connz, which tells us the address each client connected from. */
  readonly monitorUrl: string;
  readonly pid: number;
  readonly stop: () => Promise<void>;
  /** SIGKILL, for fault tests that need the server to vanish mid-transfer. */
  readonly kill: () => Promise<void>;
}

export interface NatsServerOptions {
  /** Directory for the config, the ports file and the JetStream store. */
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

interface PortsFile { readonly nats: ReadonlyArray<string>; readonly monitoring?: ReadonlyArray<string> }

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServerProcess> {
  const host = options.host ?? "127.0.0.1";
  await mkdir(join(options.dir, "jetstream"), { recursive: true });
  const confPath = join(options.dir, "nats-server.conf");
  await writeFile(
    confPath,
    [
      `host: "${host}"`,
      `port: ${options.port ?? -1}`,
      `http: "127.0.0.1:-1"`,
      `ports_file_dir: "${options.dir}"`,
      `jetstream { store_dir: "${join(options.dir, "jetstream")}" }`,
      options.extraConfig ?? "",
    ].join("\n"),
  );
  const proc: ChildProcess = spawn(natsServerBinary(), ["-c", confPath], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  proc.stderr?.on("data", (b: Buffer) => {
    log = (log + b.toString()).slice(-20_000);
  });
  proc.on("error", (e) => {
    log += e.message;
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const pid = proc.pid ?? -1;
  const portsPath = join(options.dir, `nats-server_${pid}.ports`);
  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
    // Missing, or caught half-written: try again.
    const ports = await readFile(portsPath, "utf8").then((t) => JSON.parse(t) as PortsFile).catch(() => null);
    // The ports file appears before the client listener accepts; "Server is ready" comes after.
    if (ports?.nats[0] && log.includes("Server is ready")) {
      const url = ports.nats[0].replace(/^nats:\/\//, "");
      const port = Number(url.slice(url.lastIndexOf(":") + 1));
      const monitorUrl = ports.monitoring?.[0] ?? "";
      const stopWith = (signal: NodeJS.Signals) => async () => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        await exited;
      };
      return { url, port, monitorUrl, pid, stop: stopWith("SIGTERM"), kill: stopWith("SIGKILL") };
    }
    await sleep(20);
  }
  proc.kill("SIGKILL");
  await exited;
  throw new Error(`nats-server did not start on ${host}:${options.port ?? "any port"}:\n${log}`);
}
