// The cluster tests' rig: a 3-node JetStream cluster (test/harness/cluster.ts), several
// `tsync receiver` processes in one receiver group on it, each with its own data directory, all
// placing files in one shared storage root (the stand-in for a shared volume), and `tsync sender`
// processes, all child processes so any of them can be killed -9. The checks are the fault rig's:
// byte-identical, each part placed exactly once, every file the sender calls synced loaded.
import { spawn } from "node:child_process";
import { jetstreamManager, type StreamInfo } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  asRegistryFailure,
  ownersBucket,
  OwnershipRegistry,
  RegistryUnavailable,
  type Owner,
} from "../../src/actors/receiver/ownership.js";
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

/** The JetStream stream behind the group's ownership registry (a KV bucket). */
export const ownersStream = `KV_${ownersBucket(group)}`;

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

  /** The instance that opened `sender`'s first session, once one has. */
  async servingInstance(sender: string): Promise<number> {
    return waitUntil(`an instance to open a session for ${sender}`, async () => this.instancesServing(sender)[0], 30_000);
  }

  /** Sessions opened for `sender`, per receiver instance. */
  sessionsOf(sender: string): number[] {
    return this.receivers.map((p) => p?.output.match(new RegExp(`session \\S+ opened for sender ${sender} `, "g"))?.length ?? 0);
  }

  /** Writes `big` large TsFiles and `small` small ones of `sg` under partition directory `tp` of `dir`. */
  private async writeFiles(
    id: string,
    dir: string,
    sg: string,
    tp: string,
    big: ReadonlyArray<number>,
    small: number,
  ): Promise<EdgeFile[]> {
    const files: EdgeFile[] = [];
    for (const [k, bytes] of big.entries()) {
      const at = join(dir, "sequence", sg, "0", tp);
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
      files.push({ key: `${sg}/0/${tp}/${name}`, tsfile });
    }
    if (small > 0) {
      const tmp = join(this.root, `small-${id}-${tp}`);
      const made = await buildSampleDataDir(tmp, {
        groups: { [sg]: ["d1", "d2"] },
        virtualGroups: 1,
        partitions: 1,
        filesPerPartition: small,
        pointsPerSeries: 50,
        withUnsealed: false,
      });
      const at = join(dir, "sequence", sg, "0", tp);
      await mkdir(at, { recursive: true });
      for (const f of made) {
        await rename(f.path, join(at, f.name));
        await rename(`${f.path}.resource`, join(at, `${f.name}.resource`));
        files.push({ key: `${sg}/0/${tp}/${f.name}`, tsfile: join(at, f.name) });
      }
      await rm(tmp, { recursive: true, force: true });
    }
    return files;
  }

  /** An edge box with `big` large TsFiles (partition 0) and `small` small ones (partition 1) in `sg`. */
  async edge(
    id: string,
    sg: string,
    { big = [], small = 2, natsUrl, props = {} }: { big?: number[]; small?: number; natsUrl?: string; props?: Record<string, string> } = {},
  ): Promise<Edge> {
    const dir = join(this.root, `edge-${id}`);
    const files = [...(await this.writeFiles(id, dir, sg, "0", big, 0)), ...(await this.writeFiles(id, dir, sg, "1", [], small))];
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

  /**
   * New sealed files on `edge`: the big ones in partition directory `tp`, the small ones in the
   * next (two the edge does not use yet; the two kinds' names may coincide). The edge with them.
   */
  async grow(edge: Edge, sg: string, tp: number, { big = [], small = 0 }: { big?: number[]; small?: number }): Promise<Edge> {
    const added = [
      ...(await this.writeFiles(edge.id, edge.dir, sg, String(tp), big, 0)),
      ...(await this.writeFiles(edge.id, edge.dir, sg, String(tp + 1), [], small)),
    ];
    return { ...edge, files: [...edge.files, ...added] };
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

  /** A client of `nodes` (default: every running node), closed once `f` is done. */
  async withClient<A>(f: (nc: NatsConnection) => Promise<A>, nodes?: ReadonlyArray<number>): Promise<A> {
    const servers = nodes ? nodes.map((i) => this.cluster.nodes[i]!.url) : this.cluster.urls;
    const nc = await connect({ servers, timeout: 5_000 });
    try {
      return await f(nc);
    } finally {
      await nc.close();
    }
  }

  /**
   * Who owns `sg`, as the registry's leader answers a client of `nodes` (default: every running
   * node); asked again while the registry cannot answer (an election after a kill or a heal).
   */
  async owner(sg: string, nodes?: ReadonlyArray<number>): Promise<Owner | undefined> {
    const asked = await waitUntil(`the ownership registry to answer for ${sg}`, () =>
      this.withClient(async (nc) => (await OwnershipRegistry.open(nc, group)).owner(sg), nodes).then(
        (owner) => ({ owner }),
        (e: unknown) => (asRegistryFailure(e) instanceof RegistryUnavailable ? undefined : Promise.reject(e)),
      ),
    );
    return asked.owner;
  }

  /** The ownership registry's stream as its leader describes it; undefined while no leader answers. */
  private async ownersInfo(nc: NatsConnection): Promise<StreamInfo | undefined> {
    // Both steps ask the cluster (the manager checks JetStream first): either one timing out means no leader answered yet.
    try {
      return await (await jetstreamManager(nc, { timeout: 2_000 })).streams.info(ownersStream);
    } catch {
      return undefined;
    }
  }

  /**
   * Waits until the registry's stream has a leader among `among` (node indexes) with every
   * replica on a running, connected node current, as a client of `among` sees it; answers the
   * leader's node index.
   */
  async ownersSettled(among: ReadonlyArray<number> = this.cluster.nodes.map((_, i) => i), timeoutMs = 60_000): Promise<number> {
    const names = among.map((i) => this.cluster.nodes[i]!.name);
    return this.withClient(
      (nc) =>
        waitUntil(
          `a leader of ${ownersStream} among ${names.join(", ")} with its peers there current`,
          async () => {
            const c = (await this.ownersInfo(nc))?.cluster;
            if (!c?.leader || !names.includes(c.leader)) return undefined;
            const current = (c.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name);
            return names.every((n) => n === c.leader || current.includes(n)) ? names.indexOf(c.leader) : undefined;
          },
          timeoutMs,
        ),
      among,
    ).then((k) => among[k]!);
  }

  /**
   * Makes node `i` the leader of the registry's stream: steps the leader down until the election
   * lands on `i` (each election picks one of the other, current peers).
   */
  async leadOwnersFrom(i: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = await this.ownersSettled(undefined, Math.max(1_000, deadline - Date.now()));
      if (leader === i) return;
      if (Date.now() > deadline) throw new Error(`node ${this.cluster.nodes[i]!.name} did not become the leader of ${ownersStream}`);
      const was = this.cluster.nodes[leader]!.name;
      // Until another node leads, asking again would step down the same leader twice: wait for the
      // move, or for 15 s after which the loop asks again (an election may re-elect `was`).
      const moved = await this.withClient(async (nc) => {
        await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${ownersStream}`, undefined, { timeout: 5_000 });
        return waitUntil(
          `leadership of ${ownersStream} to leave ${was}`,
          async () => {
            const l = (await this.ownersInfo(nc))?.cluster?.leader;
            return l !== undefined && l !== was ? l : undefined;
          },
          15_000,
        ).then(
          (l) => l,
          () => undefined,
        );
      });
      if (moved === undefined && Date.now() > deadline) throw new Error(`the leader of ${ownersStream} stayed on ${was}`);
    }
  }

  /** Receiver instances (their service connections) each node serves; undefined for a node that is down. */
  async receiversByNode(): Promise<Array<number | undefined>> {
    const prefix = `tsync-receiver-${group}-`;
    return Promise.all(
      this.cluster.nodes.map(async (_, i) => (await this.cluster.connectionNames(i))?.filter((n) => n.startsWith(prefix)).length),
    );
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

  /**
   * The size of `f`'s part in instance `i`'s staging once it has stopped growing for half a second:
   * with the sender stopped, every chunk it sent has been written (and answered).
   */
  async settledStaged(i: number, edge: Edge, f: EdgeFile): Promise<number> {
    let last = -1;
    let since = Date.now();
    return waitUntil(
      `${f.key} to stop growing in instance ${i}'s staging`,
      async () => {
        const n = await this.staged(i, edge, f);
        if (n !== last) {
          last = n;
          since = Date.now();
          return undefined;
        }
        return Date.now() - since >= 500 ? n : undefined;
      },
      15_000,
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
