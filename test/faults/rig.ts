// The fault tests' rig: a real nats-server, `tsync receiver` and `tsync sender` as child processes
// (so they can be killed -9), real data directories, and the checks every fault ends with.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSampleDataDir } from "../../src/actors/sampleDataDir.js";
import { startNatsServer, type NatsServerProcess } from "../../src/actors/natsServer.js";
import { generateTsFileToPath, inspectTsFile } from "../../src/actors/tsfileFiles.js";
import { faultArmingValue, faultVariables } from "../../src/cli/faultHooks.js";
import type { RoundSummary } from "../../src/machines/senderTypes.js";
import { serializeTsFileResource } from "../../src/tsfile/resource.js";
import type { CountedLoad } from "./countingStorage.js";

const projectRoot = fileURLToPath(new URL("../../", import.meta.url));
const tsyncBin = join(projectRoot, "bin", "tsync.js");
const countingStorage = fileURLToPath(new URL("./countingStorage.ts", import.meta.url));

export const senderName = "edge1";

const poll = async <A>(what: string, probe: () => Promise<A | undefined> | A | undefined, timeoutMs: number, everyMs = 25): Promise<A> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
};

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A `tsync` child process with its output. */
export class Proc {
  private text = "";
  private ended: Exit | undefined;
  readonly exit: Promise<Exit>;
  readonly startedAt = Date.now();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on("data", (b: Buffer) => (this.text += b.toString()));
    child.stderr?.on("data", (b: Buffer) => (this.text += b.toString()));
    this.exit = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.ended = { code, signal };
        resolve(this.ended);
      }),
    );
  }

  get output(): string {
    return this.text;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Waits until `pattern` has matched `count` times in the output; fails if the process ends first. */
  async waitFor(pattern: RegExp, { count = 1, timeoutMs = 30_000 } = {}): Promise<void> {
    const global = new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g");
    await poll(
      `${this.name} to print ${pattern} ×${count}`,
      () => {
        if ((this.text.match(global)?.length ?? 0) >= count) return true;
        if (this.ended)
          throw new Error(`${this.name} exited (${JSON.stringify(this.ended)}) before printing ${pattern} ×${count}:\n${this.text}`);
        return undefined;
      },
      timeoutMs,
    );
  }

  /** Waits until the process stopped itself (SIGSTOP) at a freeze point. */
  async waitStopped(timeoutMs = 30_000): Promise<void> {
    await poll(
      `${this.name} to stop itself`,
      async () => {
        if (this.ended) throw new Error(`${this.name} exited (${JSON.stringify(this.ended)}) before stopping:\n${this.text}`);
        const s = await readFile(`/proc/${this.pid}/stat`, "utf8").catch(() => "");
        return /^\d+ \(.*\) T /.test(s) ? true : undefined;
      },
      timeoutMs,
    );
  }

  async kill9(): Promise<Exit> {
    if (!this.ended) this.child.kill("SIGKILL");
    return this.exit;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.ended) this.child.kill(signal);
  }

  /** The last round summary the sender printed (`TSYNC_TRACE_STATES=1`). */
  summary(): RoundSummary | undefined {
    const lines = this.text.split("\n").filter((l) => l.startsWith("summary {"));
    const last = lines[lines.length - 1];
    return last === undefined ? undefined : (JSON.parse(last.slice("summary ".length)) as RoundSummary);
  }

  /** States of `machine` in the order they were entered. */
  states(machine: string): string[] {
    return [...this.text.matchAll(new RegExp(`^state ${machine} (\\S+)$`, "gm"))].map((m) => m[1] ?? "");
  }
}

/** Env for a child with fault injection armed and `hooks` set. */
export const armed = (hooks: Partial<Record<keyof typeof faultVariables, string>>): Record<string, string> => {
  const env: Record<string, string> = { TSYNC_FAULT_INJECTION: faultArmingValue };
  for (const [k, v] of Object.entries(hooks)) if (v !== undefined) env[faultVariables[k as keyof typeof faultVariables]] = v;
  return env;
};

export interface EdgeFile {
  readonly key: string;
  readonly dir: string;
  readonly name: string;
  readonly tsfile: string;
  /** TsFile + .resource bytes: what a round sends for it. */
  readonly bytes: number;
}

export interface RigOptions {
  /** Sizes of big sealed TsFiles, in partition 0 (sent first). */
  readonly big?: ReadonlyArray<number>;
  /** Small sealed TsFiles, in partition 1. */
  readonly small?: number;
  readonly receiverProps?: Readonly<Record<string, string>>;
  readonly senderProps?: Readonly<Record<string, string>>;
  /** Staging on its own filesystem (a directory the test mounts), by a symlink-free path. */
  readonly prepare?: (rig: Rig) => Promise<void>;
}

const properties = (p: Readonly<Record<string, string>>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${v}`)
    .join("\n") + "\n";

/** Writes a TsFile of about `bytes` and then its .resource, the way IoTDB seals one. */
export const writeBigSealed = async (dir: string, name: string, bytes: number, seed: number): Promise<void> => {
  await mkdir(dir, { recursive: true });
  const tsfile = join(dir, name);
  await generateTsFileToPath(tsfile, { targetBytes: bytes, seed });
  const info = await inspectTsFile(tsfile);
  const resource = serializeTsFileResource({
    devices: info.devices.map((d) => ({ id: d.id, startTime: d.startTime ?? 0n, endTime: d.endTime ?? 0n })),
  });
  await writeFile(`${tsfile}.resource.temp`, resource);
  await rename(`${tsfile}.resource.temp`, `${tsfile}.resource`);
};

export const storageGroup = "root.fault";

export class Rig {
  nats!: NatsServerProcess;
  private natsPort = 0;
  private monitorPort = 0;
  private readonly procs = new Set<Proc>();
  private readonly cleanups: Array<() => Promise<void>> = [];
  files: EdgeFile[] = [];

  private constructor(readonly root: string) {}

  get edge(): string {
    return join(this.root, "edge");
  }
  get centre(): string {
    return join(this.root, "centre");
  }
  get work(): string {
    return join(this.root, "sender-work");
  }
  get countFile(): string {
    return join(this.root, "loads.jsonl");
  }
  get natsDir(): string {
    return join(this.root, "nats");
  }
  get stagingDir(): string {
    return join(this.centre, ".tsync", "staging");
  }
  get receiverConf(): string {
    return join(this.root, "receiver.properties");
  }
  get senderConf(): string {
    return join(this.root, "sender.properties");
  }

  static async create(o: RigOptions = {}): Promise<Rig> {
    const rig = new Rig(await mkdtemp(join(tmpdir(), "tsync-fault-")));
    try {
      await rig.startNats();
      await rig.writeData(o.big ?? [], o.small ?? 2);
      await mkdir(rig.centre, { recursive: true });
      await writeFile(
        rig.receiverConf,
        properties({
          is_sync_enable: "true",
          nats_url: `nats://127.0.0.1:${rig.natsPort}`,
          nats_monitor_url: `http://127.0.0.1:${rig.monitorPort}`,
          receiver_data_directory: rig.centre,
          storage_plugin: countingStorage,
          "plugin.count_file": rig.countFile,
          ...o.receiverProps,
        }),
      );
      await writeFile(
        rig.senderConf,
        properties({
          data_directory: rig.edge,
          nats_url: `nats://127.0.0.1:${rig.natsPort}`,
          work_directory: rig.work,
          sender_name: senderName,
          max_number_of_sync_file_retry: "3",
          sync_period_in_second: "1",
          ...o.senderProps,
        }),
      );
      await o.prepare?.(rig);
      return rig;
    } catch (e) {
      await rig.cleanup();
      throw e;
    }
  }

  private async writeData(big: ReadonlyArray<number>, small: number): Promise<void> {
    const files: EdgeFile[] = [];
    const bigDir = join(this.edge, "sequence", storageGroup, "0", "0");
    for (const [i, bytes] of big.entries()) {
      const name = `${1_700_000_000_000 + i * 1000}-${i + 1}-0-0.tsfile`;
      await writeBigSealed(bigDir, name, bytes, i + 11);
      files.push(await this.edgeFile(bigDir, "0", name));
    }
    if (small > 0) {
      const tmp = join(this.root, "small");
      const made = await buildSampleDataDir(tmp, {
        groups: { [storageGroup]: ["d1", "d2"] },
        virtualGroups: 1,
        partitions: 1,
        filesPerPartition: small,
        pointsPerSeries: 50,
        withUnsealed: false,
      });
      const dir = join(this.edge, "sequence", storageGroup, "0", "1");
      await mkdir(dir, { recursive: true });
      for (const f of made) {
        await rename(f.path, join(dir, f.name));
        await rename(`${f.path}.resource`, join(dir, `${f.name}.resource`));
        files.push(await this.edgeFile(dir, "1", f.name));
      }
      await rm(tmp, { recursive: true, force: true });
    }
    this.files = files;
  }

  private async edgeFile(dir: string, tp: string, name: string): Promise<EdgeFile> {
    const tsfile = join(dir, name);
    const bytes = (await stat(tsfile)).size + (await stat(`${tsfile}.resource`)).size;
    return { key: `${storageGroup}/0/${tp}/${name}`, dir, name, tsfile, bytes };
  }

  /** Starts (or restarts, on the same port, monitor port and store) the nats-server. */
  async startNats(): Promise<void> {
    this.nats = await startNatsServer({
      dir: this.natsDir,
      ...(this.natsPort ? { port: this.natsPort, extraConfig: `http: "127.0.0.1:${this.monitorPort}"` } : {}),
    });
    this.natsPort = this.nats.port;
    this.monitorPort = Number(new URL(this.nats.monitorUrl).port);
  }

  async killNats(): Promise<void> {
    await this.nats.kill();
  }

  private spawn(name: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>>): Proc {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("TSYNC_") && k !== "COUNTING_STORAGE_FREEZE_AFTER"),
    );
    const child = spawn(process.execPath, [tsyncBin, ...args], {
      cwd: projectRoot,
      env: { ...clean, TSYNC_TRACE_STATES: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new Proc(name, child);
    this.procs.add(p);
    void p.exit.then(() => this.procs.delete(p));
    return p;
  }

  /** `tsync receiver`, resolved once it serves. */
  async startReceiver(env: Readonly<Record<string, string>> = {}): Promise<Proc> {
    const p = this.spawn("receiver", ["receiver", "--config", this.receiverConf], env);
    await p.waitFor(/sync service started/);
    return p;
  }

  /** `tsync sender --once` (or the periodic sender with `once: false`). */
  startSender(env: Readonly<Record<string, string>> = {}, once = true): Proc {
    return this.spawn("sender", ["sender", "--config", this.senderConf, ...(once ? ["--once"] : [])], env);
  }

  /** One round to its end. */
  async runSender(
    env: Readonly<Record<string, string>> = {},
    timeoutMs = 60_000,
  ): Promise<{ exit: Exit; summary: RoundSummary; proc: Proc }> {
    const proc = this.startSender(env);
    const exit = await Promise.race([
      proc.exit,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`sender --once did not end in ${timeoutMs} ms:\n${proc.output}`)), timeoutMs).unref(),
      ),
    ]);
    const summary = proc.summary();
    if (!summary) throw new Error(`sender printed no summary (exit ${JSON.stringify(exit)}):\n${proc.output}`);
    return { exit, summary, proc };
  }

  partPath(f: EdgeFile): string {
    return join(this.stagingDir, senderName, storageGroup, "0", f.key.split("/")[2] ?? "0", `${f.name}.part`);
  }

  async partSize(f: EdgeFile): Promise<number> {
    return (await stat(this.partPath(f)).catch(() => undefined))?.size ?? 0;
  }

  /** Waits until the receiver holds more than `bytes` of `f` in staging. */
  async waitForPart(f: EdgeFile, bytes: number, timeoutMs = 30_000): Promise<number> {
    return poll(
      `${f.name}.part to pass ${bytes} bytes`,
      async () => ((await this.partSize(f)) > bytes ? this.partSize(f) : undefined),
      timeoutMs,
    );
  }

  /** The partial copy's size once nothing more arrives (chunks already sent still land). */
  async settledPartSize(f: EdgeFile): Promise<number> {
    let last = -1;
    return poll(
      `${f.name}.part to settle`,
      async () => {
        const now = await this.partSize(f);
        const settled = now === last;
        last = now;
        return settled ? now : undefined;
      },
      10_000,
      250,
    );
  }

  async loads(): Promise<CountedLoad[]> {
    const text = await readFile(this.countFile, "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as CountedLoad);
  }

  /** Files the sender recorded as synced (confirmed by the receiver). */
  async confirmed(): Promise<Set<string>> {
    const text = await readFile(join(this.work, "confirmed.jsonl"), "utf8").catch(() => "");
    const keys = new Set<string>();
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        const rec = JSON.parse(line) as { op: string; unit?: { ref: { sg: string; vg: string; tp: string; name: string } }; key?: string };
        if (rec.op === "add" && rec.unit) keys.add(`${rec.unit.ref.sg}/${rec.unit.ref.vg}/${rec.unit.ref.tp}/${rec.unit.ref.name}`);
        else if (rec.op === "del" && rec.key) keys.delete(rec.key);
      } catch {
        // a torn last line of a killed sender: that confirmation never happened
      }
    }
    return keys;
  }

  /**
   * What every fault must end with: each edge file (TsFile and .resource) byte-identical on the
   * receiver, each part placed exactly once, every file the sender calls synced actually loaded.
   */
  async verdict(
    files: ReadonlyArray<EdgeFile> = this.files,
  ): Promise<{ mismatched: string[]; loadCounts: Record<string, number>; syncedNotLoaded: string[]; notSynced: string[] }> {
    const mismatched: string[] = [];
    for (const f of files) {
      for (const suffix of ["", ".resource"]) {
        const at = join(this.centre, "sequence", ...f.key.split("/")) + suffix;
        const [a, b] = await Promise.all([readFile(f.tsfile + suffix), readFile(at).catch(() => undefined)]);
        if (!b || !a.equals(b)) mismatched.push(f.key + suffix);
      }
    }
    const loadCounts: Record<string, number> = {};
    for (const l of await this.loads()) loadCounts[`${l.key}:${l.kind}`] = (loadCounts[`${l.key}:${l.kind}`] ?? 0) + 1;
    const loadedKeys = new Set(Object.keys(loadCounts).map((k) => k.slice(0, k.lastIndexOf(":"))));
    const synced = await this.confirmed();
    return {
      mismatched,
      loadCounts,
      syncedNotLoaded: [...synced].filter((k) => !loadedKeys.has(k)),
      notSynced: files.map((f) => f.key).filter((k) => !synced.has(k)),
    };
  }

  /** Every part of `files` placed exactly once: `{ "<key>:tsfile": 1, "<key>:resource": 1, ... }`. */
  onceEach(files: ReadonlyArray<EdgeFile> = this.files): Record<string, number> {
    return Object.fromEntries(
      files.flatMap((f) => [
        [`${f.key}:resource`, 1],
        [`${f.key}:tsfile`, 1],
      ]),
    );
  }

  /** Runs after the processes are killed, before the files go (an unmount). */
  onCleanup(f: () => Promise<void>): void {
    this.cleanups.push(f);
  }

  async cleanup(): Promise<void> {
    for (const p of [...this.procs]) await p.kill9();
    for (const f of this.cleanups.reverse()) await f().catch(() => undefined);
    await this.nats?.stop().catch(() => undefined);
    await rm(this.root, { recursive: true, force: true });
  }
}

export const sentFor = (summary: RoundSummary, f: EdgeFile) => summary.sent.find((s) => s.file === f.key);
