// tsync as users run it: `tsync receiver` and `tsync sender` as separate processes, each with its
// own properties file.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { enrollSender } from "../src/actors/receiver/senderRegistry.js";
import { cpuOfAll, cpuSpent, start, type CpuSeconds, type PeakRss, type RssWatch, type Running } from "./procs.js";

export const repoRoot = fileURLToPath(new URL("..", import.meta.url));
export const tsyncBin = join(repoRoot, "bin", "tsync.js");

const properties = (values: Readonly<Record<string, string | number | boolean>>): string =>
  Object.entries(values)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join("\n") + "\n";

/** How to start a tsync process: inside `wrap` (e.g. `ip netns exec NS`), with extra node flags. */
export interface SpawnHow {
  readonly wrap?: ReadonlyArray<string>;
  readonly nodeFlags?: ReadonlyArray<string>;
  /** The tsync entry point: `bin/tsync.js` (TypeScript through tsx) unless a compiled one is given. */
  readonly bin?: string;
  readonly echo?: boolean;
}

const command = (how: SpawnHow, tsyncArgs: ReadonlyArray<string>): [string, string[]] => {
  const [cmd, ...args] = [...(how.wrap ?? []), process.execPath, ...(how.nodeFlags ?? []), how.bin ?? tsyncBin, ...tsyncArgs];
  return [cmd!, args];
};

export interface ReceiverProc {
  readonly proc: Running;
  readonly port: number;
  readonly dataDir: string;
  /** Where the enrolled senders' credentials are: `<id>.nk`. */
  readonly credentialsDir: string;
  /** Sender properties of enrolled sender `id`: its name and credential. */
  credentials(id: string): Record<string, string>;
  /** SIGTERM; returns the peak RSS of the receiver and of its embedded nats-server. */
  stop(): Promise<PeakRss>;
}

/** A receiver with its embedded nats-server on a free port, with `senders` enrolled as `tsync senders add` does. */
export const startReceiver = async (
  dir: string,
  extra: Readonly<Record<string, string | number | boolean>> = {},
  spawn: SpawnHow = {},
  senders: ReadonlyArray<string> = ["bench"],
): Promise<ReceiverProc> => {
  await mkdir(dir, { recursive: true });
  const dataDir = join(dir, "centre");
  const credentialsDir = join(dir, "credentials");
  await mkdir(credentialsDir, { recursive: true });
  for (const id of senders)
    await enrollSender(dataDir, id, (seed) => writeFile(join(credentialsDir, `${id}.nk`), seed + "\n", { mode: 0o600 }));
  const conf = join(dir, "receiver.properties");
  await writeFile(conf, properties({ is_sync_enable: true, sync_server_port: 0, receiver_data_directory: dataDir, ...extra }));
  const [cmd, args] = command(spawn, ["receiver", "--config", conf]);
  const proc = start(cmd, args, { role: "receiver", cwd: dir, ...(spawn.echo ? { echo: true } : {}) });
  const { match } = await proc.line(/sync service started on port (\d+)/, 60_000);
  return {
    proc,
    port: Number(match[1]),
    dataDir,
    credentialsDir,
    credentials: (id) => ({ sender_name: id, nats_nkey_seed_file: join(credentialsDir, `${id}.nk`) }),
    stop: async () => {
      const rss = await proc.rss.stop();
      await proc.stop();
      return rss;
    },
  };
};

export interface SenderRun {
  /** From the sender's first log line (connected, round about to start) to its exit. */
  readonly ms: number;
  readonly rss: PeakRss;
  /** CPU seconds per process over `ms`: the sender's and those of `alongside`. */
  readonly cpu: CpuSeconds;
  readonly output: string;
}

export const writeSenderConf = async (
  dir: string,
  dataDir: string,
  receiverPort: number,
  extra: Readonly<Record<string, string | number | boolean>> = {},
): Promise<string> => {
  await mkdir(dir, { recursive: true });
  const conf = join(dir, "sender.properties");
  await writeFile(conf, properties({ data_directory: dataDir, server_ip: "127.0.0.1", server_port: receiverPort, ...extra }));
  return conf;
};

/** Starts `tsync sender` with `conf`; `once` makes one round and exits. */
export const startSender = (dir: string, conf: string, once: boolean, spawn: SpawnHow = {}): Running => {
  const [cmd, args] = command(spawn, ["sender", "--config", conf, ...(once ? ["--once"] : [])]);
  return start(cmd, args, { role: "sender", cwd: dir, ...(spawn.echo ? { echo: true } : {}) });
};

/** One `tsync sender --once` round; fails unless every file synced. */
export const senderOnce = async (
  dir: string,
  dataDir: string,
  receiverPort: number,
  extra: Readonly<Record<string, string | number | boolean>> = {},
  spawn: SpawnHow = {},
  alongside: ReadonlyArray<RssWatch> = [],
): Promise<SenderRun> => {
  const conf = await writeSenderConf(dir, dataDir, receiverPort, extra);
  const proc = startSender(dir, conf, true, spawn);
  const began = await proc.line(/INFO  sender: sender \S+ for /, 120_000);
  const watches = [proc.rss, ...alongside];
  const before = await cpuOfAll(watches);
  const end = await proc.exited;
  // The sender is gone: its figure is its last sample, at most one sampling period short.
  const cpu = cpuSpent(before, await cpuOfAll(watches));
  const rss = await proc.rss.stop();
  if (end.code !== 0) throw new Error(`tsync sender --once failed (${end.code ?? end.signal}):\n${proc.output().slice(-4000)}`);
  return { ms: end.at - began.at, rss, cpu, output: proc.output() };
};
