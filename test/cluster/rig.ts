// The cluster tests' rig: a 3-node JetStream cluster (test/harness/cluster.ts), several
// `tsync receiver` processes in one receiver group on it, each with its own data directory, all
// placing files in one shared storage root (the stand-in for a shared volume), and `tsync sender`
// processes, all child processes so any of them can be killed -9. The checks are the fault rig's:
// byte-identical, each part placed exactly once, every file the sender calls synced loaded.
import { spawn } from "node:child_process";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSampleDataDir } from "../../src/actors/sampleDataDir.js";
import { generateTsFileToPath, inspectTsFile } from "../../src/actors/tsfileFiles.js";
import type { RoundSummary } from "../../src/machines/senderTypes.js";
import { serializeTsFileResource } from "../../src/tsfile/resource.js";
import type { CountedLoad } from "../faults/countingStorage.js";
import { Proc, type Exit } from "../faults/rig.js";
import { TestCluster, waitUntil, type ClusterOptions } from "../harness/cluster.js";
import { projectRoot, tsyncBin } from "../harness/cli.js";

const sharedStorage = fileURLToPath(new URL("./sharedStorage.ts", import.meta.url));

export const group = "fleet";

export interface EdgeFile {
  readonly key: string;
  readonly tsfile: string;
}

/** One edge box: its data directory, work directory and properties. */
export interface Edge {
  readonly id: string;
  readonly dir: string;
  readonly work: string;
  readonly conf: string;
  readonly files: ReadonlyArray<EdgeFile>;
}

const properties = (p: Readonly<Record<string, string | undefined>>) =>
  Object.entries(p)
    .flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]))
    .join("\n") + "\n";

/** Receivers, senders and the storage every receiver instance shares, on one cluster. */
export class ClusterRig {
  private readonly procs = new Set<Proc>();
  /** The running receiver of each instance slot, by index. */
  readonly receivers: Array<Proc | undefined> = [];

  private constructor(readonly cluster: TestCluster) {}

  static async create(options: ClusterOptions = {}): Promise<ClusterRig> {
    const rig = new ClusterRig(await TestCluster.start(options));
    await mkdir(rig.shared, { recursive: true });
    return rig;
  }

  get root(): string {
    return this.cluster.root;
  }
  get shared(): string {
    return join(this.root, "shared");
  }
  get countFile(): string {
    return join(this.root, "loads.jsonl");
  }
  centre(i: number): string {
    return join(this.root, `centre-${i}`);
  }

  /** Receiver instance `i`'s properties: every node's URL (so it fails over), replicas 3, the shared storage. */
  async receiverConf(i: number, props: Readonly<Record<string, string>> = {}): Promise<string> {
    const conf = join(this.root, `receiver-${i}.properties`);
    await writeFile(
      conf,
      properties({
        is_sync_enable: "true",
        nats_url: this.cluster.nodes.map((n) => n.url).join(","),
        receiver_group: group,
        replicas: "3",
        receiver_data_directory: this.centre(i),
        storage_plugin: sharedStorage,
        "plugin.shared_root": this.shared,
        "plugin.count_file": this.countFile,
        ...props,
      }),
    );
    return conf;
  }

  spawn(name: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Proc {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("TSYNC_")));
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

  /** `tsync receiver` instance `i`, resolved once it serves. */
  async startReceiver(i: number, props: Readonly<Record<string, string>> = {}, env: Readonly<Record<string, string>> = {}): Promise<Proc> {
    const p = this.spawn(`receiver-${i}`, ["receiver", "--config", await this.receiverConf(i, props)], env);
    this.receivers[i] = p;
    await p.waitFor(/sync service started/);
    return p;
  }

  /** The receiver instances that opened a session for `sender`. */
  instancesServing(sender: string): number[] {
    return this.sessionsOf(sender).flatMap((n, i) => (n > 0 ? [i] : []));
  }

  /** Sessions opened for `sender`, per receiver instance. */
  sessionsOf(sender: string): number[] {
    return this.receivers.map((p) => p?.output.match(new RegExp(`session \\S+ opened for sender ${sender} `, "g"))?.length ?? 0);
  }

  /** An edge box with `big` large TsFiles (partition 0) and `small` small ones (partition 1) in `sg`. */
  async edge(
    id: string,
    sg: string,
    { big = [], small = 2, natsUrl, props = {} }: { big?: number[]; small?: number; natsUrl?: string; props?: Record<string, string> } = {},
  ): Promise<Edge> {
    const dir = join(this.root, `edge-${id}`);
    const files: EdgeFile[] = [];
    for (const [k, bytes] of big.entries()) {
      const at = join(dir, "sequence", sg, "0", "0");
      await mkdir(at, { recursive: true });
      const name = `${1_700_000_000_000 + k * 1000}-${k + 1}-0-0.tsfile`;
      const tsfile = join(at, name);
      await generateTsFileToPath(tsfile, { targetBytes: bytes, seed: k + 11 });
      const info = await inspectTsFile(tsfile);
      const resource = serializeTsFileResource({
        devices: info.devices.map((d) => ({ id: d.id, startTime: d.startTime ?? 0n, endTime: d.endTime ?? 0n })),
      });
      await writeFile(`${tsfile}.resource.temp`, resource);
      await rename(`${tsfile}.resource.temp`, `${tsfile}.resource`);
      files.push({ key: `${sg}/0/0/${name}`, tsfile });
    }
    if (small > 0) {
      const tmp = join(this.root, `small-${id}`);
      const made = await buildSampleDataDir(tmp, {
        groups: { [sg]: ["d1", "d2"] },
        virtualGroups: 1,
        partitions: 1,
        filesPerPartition: small,
        pointsPerSeries: 50,
        withUnsealed: false,
      });
      const at = join(dir, "sequence", sg, "0", "1");
      await mkdir(at, { recursive: true });
      for (const f of made) {
        await rename(f.path, join(at, f.name));
        await rename(`${f.path}.resource`, join(at, `${f.name}.resource`));
        files.push({ key: `${sg}/0/1/${f.name}`, tsfile: join(at, f.name) });
      }
      await rm(tmp, { recursive: true, force: true });
    }
    const conf = join(this.root, `sender-${id}.properties`);
    const work = join(this.root, `work-${id}`);
    await writeFile(
      conf,
      properties({
        data_directory: dir,
        nats_url: natsUrl ?? this.cluster.nodes.map((n) => n.url).join(","),
        receiver_group: group,
        work_directory: work,
        sender_name: id,
        max_number_of_sync_file_retry: "3",
        sync_period_in_second: "1",
        ...props,
      }),
    );
    return { id, dir, work, conf, files };
  }

  startSender(edge: Edge, env: Readonly<Record<string, string>> = {}): Proc {
    return this.spawn(`sender-${edge.id}`, ["sender", "--config", edge.conf, "--once"], env);
  }

  /** One `--once` round to its end, with its summary. */
  async runSender(
    edge: Edge,
    env: Readonly<Record<string, string>> = {},
    timeoutMs = 60_000,
  ): Promise<{ exit: Exit; summary: RoundSummary; proc: Proc }> {
    return this.finish(this.startSender(edge, env), timeoutMs);
  }

  async finish(proc: Proc, timeoutMs = 60_000): Promise<{ exit: Exit; summary: RoundSummary; proc: Proc }> {
    const exit = await Promise.race([
      proc.exit,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${proc.name} did not end in ${timeoutMs} ms:\n${proc.output}`)), timeoutMs).unref(),
      ),
    ]);
    const summary = proc.summary();
    if (!summary) throw new Error(`${proc.name} printed no summary (exit ${JSON.stringify(exit)}):\n${proc.output}`);
    return { exit, summary, proc };
  }

  async loads(): Promise<CountedLoad[]> {
    const text = await readFile(this.countFile, "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as CountedLoad);
  }

  /** Bytes of `f`'s TsFile held in instance `i`'s staging. */
  async staged(i: number, edge: Edge, f: EdgeFile): Promise<number> {
    const [sg, vg, tp, name] = f.key.split("/") as [string, string, string, string];
    const part = join(this.centre(i), ".tsync", "staging", edge.id, sg, vg, tp, `${name}.part`);
    return (await stat(part).catch(() => undefined))?.size ?? 0;
  }

  async waitStaged(i: number, edge: Edge, f: EdgeFile, bytes: number, timeoutMs = 30_000): Promise<number> {
    return waitUntil(
      `${f.key} to pass ${bytes} bytes in instance ${i}'s staging`,
      async () => {
        const n = await this.staged(i, edge, f);
        return n > bytes ? n : undefined;
      },
      timeoutMs,
    );
  }

  /** Files the sender recorded as synced. */
  async confirmed(edge: Edge): Promise<Set<string>> {
    const text = await readFile(join(edge.work, "confirmed.jsonl"), "utf8").catch(() => "");
    const keys = new Set<string>();
    for (const line of text.split("\n").filter(Boolean)) {
      const rec = JSON.parse(line) as { op: string; unit?: { ref: { sg: string; vg: string; tp: string; name: string } }; key?: string };
      if (rec.op === "add" && rec.unit) keys.add(`${rec.unit.ref.sg}/${rec.unit.ref.vg}/${rec.unit.ref.tp}/${rec.unit.ref.name}`);
      else if (rec.op === "del" && rec.key) keys.delete(rec.key);
    }
    return keys;
  }

  /**
   * What every test ends with, as a list of broken promises: each of `edge`'s files byte-identical
   * in the shared storage, each part placed exactly once by whichever instance, all marked synced.
   */
  async problems(edge: Edge): Promise<string[]> {
    const problems: string[] = [];
    const counts = new Map<string, number>();
    for (const l of await this.loads())
      if (l.sender === edge.id) counts.set(`${l.key}:${l.kind}`, (counts.get(`${l.key}:${l.kind}`) ?? 0) + 1);
    const synced = await this.confirmed(edge);
    for (const f of edge.files) {
      for (const [suffix, kind] of [
        ["", "tsfile"],
        [".resource", "resource"],
      ] as const) {
        const [a, b] = await Promise.all([
          readFile(f.tsfile + suffix),
          readFile(join(this.shared, "sequence", ...f.key.split("/")) + suffix).catch(() => undefined),
        ]);
        if (!b || !a.equals(b)) problems.push(`${f.key}${suffix} is not byte-identical in storage`);
        const n = counts.get(`${f.key}:${kind}`) ?? 0;
        if (n !== 1) problems.push(`${f.key}:${kind} placed ${n} times`);
      }
      if (!synced.has(f.key)) problems.push(`${f.key} not marked synced`);
    }
    return problems;
  }

  async cleanup(): Promise<void> {
    for (const p of [...this.procs]) await p.kill9();
    await this.cluster.cleanup();
  }
}
