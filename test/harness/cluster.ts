// Real NATS topologies for tests: an N-node JetStream cluster (routes between every pair of nodes)
// and leaf servers that dial its leafnode port, each a nats-server process on loopback ports with
// its own store directory (src/actors/natsServer.ts starts them). Every route and leaf link goes
// through a relay of ours, so a test can cut one node off the others (a partition) or cut a leaf's
// link to the hub and restore it, without root or firewall rules; kill -9 and restart reuse the
// node's ports and store.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./cli.js";
import { startNatsServer, type NatsServerProcess } from "../../src/actors/natsServer.js";

/**
 * A TCP relay on a loopback port to `target`: a link we can cut (every connection through it is
 * dropped and new ones are refused until `restore`) without touching either end.
 */
export class Relay {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private cut = false;
  port = 0;

  private constructor(private readonly target: () => number) {
    this.server = createServer((inbound) => this.accept(inbound));
  }

  static async open(target: () => number): Promise<Relay> {
    const relay = new Relay(target);
    relay.port = await new Promise<number>((resolve, reject) => {
      relay.server.once("error", reject);
      relay.server.listen(0, "127.0.0.1", () => resolve((relay.server.address() as { port: number }).port));
    });
    return relay;
  }

  private accept(inbound: Socket): void {
    if (this.cut) {
      inbound.destroy();
      return;
    }
    const outbound = tcpConnect(this.target(), "127.0.0.1");
    for (const s of [inbound, outbound]) {
      this.sockets.add(s);
      s.on("error", () => undefined); // a reset peer is what a cut link looks like; the close below ends both sides
      s.on("close", () => {
        this.sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  }

  /** Drops every connection through the relay and refuses new ones. */
  sever(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.cut = false;
  }

  get isCut(): boolean {
    return this.cut;
  }

  async close(): Promise<void> {
    this.sever();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface ClusterOptions {
  readonly size?: number;
  /** Config text every node gets (accounts, authorization, system_account...). */
  readonly extraConfig?: string;
  /** A leafnode listener on every node, for `startLeaf`; its own config text (authorization) if given. */
  readonly leafnodes?: boolean | string;
  readonly name?: string;
}

/** One node of a cluster; its ports and store survive kill and restart. */
export interface ClusterNode {
  readonly name: string;
  readonly dir: string;
  readonly clusterPort: number;
  /** Where the node's leafnode listener is (0 without one). */
  readonly leafPort: number;
  port: number;
  monitorPort: number;
  server: NatsServerProcess | undefined;
  readonly url: string;
  readonly monitorUrl: string;
}

const nodeUrl = (n: ClusterNode) => `nats://127.0.0.1:${n.port}`;

/** The monitoring endpoint's view of JetStream's meta group. */
interface Jsz {
  readonly meta_cluster?: {
    readonly leader?: string;
    readonly cluster_size?: number;
    readonly replicas?: ReadonlyArray<{ readonly name: string; readonly current: boolean; readonly offline?: boolean }>;
  };
}

const jsz = async (n: ClusterNode): Promise<Jsz | undefined> =>
  fetch(`${n.monitorUrl}/jsz`, { signal: AbortSignal.timeout(1_000) }).then(
    (r) => (r.ok ? (r.json() as Promise<Jsz>) : undefined),
    () => undefined,
  );

export const waitUntil = async <A>(what: string, probe: () => Promise<A | undefined> | A | undefined, timeoutMs = 30_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
};

/** An N-node JetStream cluster on loopback: routes between every pair, each route through a relay. */
export class TestCluster {
  /** relays[i][j]: the link node i dials to reach node j. */
  private readonly relays: Relay[][] = [];
  readonly leafs: LeafServer[] = [];

  private constructor(
    readonly root: string,
    readonly nodes: ReadonlyArray<ClusterNode>,
    private readonly options: ClusterOptions,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<TestCluster> {
    const size = options.size ?? 3;
    const root = await mkdtemp(join(tmpdir(), "tsync-cluster-"));
    const nodes: ClusterNode[] = [];
    for (let i = 0; i < size; i++) {
      const dir = join(root, `n${i + 1}`);
      await mkdir(dir, { recursive: true });
      const node: ClusterNode = {
        name: `n${i + 1}`,
        dir,
        clusterPort: await freePort(),
        leafPort: options.leafnodes ? await freePort() : 0,
        port: -1,
        monitorPort: -1,
        server: undefined,
        get url() {
          return nodeUrl(node);
        },
        get monitorUrl() {
          return `http://127.0.0.1:${node.monitorPort}`;
        },
      };
      nodes.push(node);
    }
    const cluster = new TestCluster(root, nodes, options);
    try {
      for (const [i] of nodes.entries()) {
        const row: Relay[] = [];
        for (const [j, to] of nodes.entries()) row.push(i === j ? (undefined as unknown as Relay) : await Relay.open(() => to.clusterPort));
        cluster.relays.push(row);
      }
      // All nodes start at once: each waits for its routes, and the meta group needs a quorum.
      await Promise.all(nodes.map((_, i) => cluster.startNode(i)));
      await cluster.waitForMetaLeader();
      return cluster;
    } catch (e) {
      await cluster.cleanup();
      throw e;
    }
  }

  /** Client URLs of the running nodes, for `nats_url`. */
  get urls(): string[] {
    return this.nodes.filter((n) => n.server).map(nodeUrl);
  }

  private config(i: number): string {
    const n = this.nodes[i]!;
    const routes = this.nodes.flatMap((_, j) => (j === i ? [] : [`"nats-route://127.0.0.1:${this.relays[i]![j]!.port}"`]));
    const leaf = this.options.leafnodes;
    return [
      `server_name: ${n.name}`,
      // Pinned after the first start, so a restarted node is where its clients and peers look.
      n.monitorPort > 0 ? `http: "127.0.0.1:${n.monitorPort}"` : "",
      // no_advertise: peers reach each other only through the relays, so a cut is a partition.
      `cluster { name: ${this.options.name ?? "tsync-test"}, listen: "127.0.0.1:${n.clusterPort}", no_advertise: true, routes: [${routes.join(", ")}] }`,
      leaf ? `leafnodes { listen: "127.0.0.1:${n.leafPort}"\n${typeof leaf === "string" ? leaf : ""}\n}` : "",
      this.options.extraConfig ?? "",
    ].join("\n");
  }

  /** Starts node `i` (again, after a kill or stop: same ports, same store). */
  async startNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    const server = await startNatsServer({ dir: n.dir, port: n.port, extraConfig: this.config(i), startTimeoutMs: 20_000 });
    n.server = server;
    n.port = server.port;
    n.monitorPort = Number(new URL(server.monitorUrl).port);
  }

  /** kill -9 of node `i`. */
  async killNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    await n.server?.kill();
    n.server = undefined;
  }

  async stopNode(i: number): Promise<void> {
    const n = this.nodes[i]!;
    await n.server?.stop();
    n.server = undefined;
  }

  /** Cuts every route of node `i`: it keeps running and serving its clients, alone. */
  partition(i: number): void {
    for (const [j] of this.nodes.entries()) {
      if (j === i) continue;
      this.relays[i]![j]!.sever();
      this.relays[j]![i]!.sever();
    }
  }

  heal(i: number): void {
    for (const [j] of this.nodes.entries()) {
      if (j === i) continue;
      this.relays[i]![j]!.restore();
      this.relays[j]![i]!.restore();
    }
  }

  /** The meta leader every running, connected node agrees on, once the meta group is whole again. */
  async waitForMetaLeader(timeoutMs = 30_000): Promise<string> {
    return waitUntil(
      "a JetStream meta leader all nodes agree on",
      async () => {
        const running = this.nodes.filter((n) => n.server && !this.isPartitioned(n));
        const views = await Promise.all(running.map(jsz));
        const leaders = new Set(views.map((v) => v?.meta_cluster?.leader ?? ""));
        const [leader] = leaders;
        if (leaders.size !== 1 || !leader) return undefined;
        // The leader must see every other connected node as a current peer.
        const lead = views.find((_, k) => running[k]!.name === leader)?.meta_cluster;
        const current = (lead?.replicas ?? []).filter((r) => r.current && !r.offline).map((r) => r.name);
        return running.every((n) => n.name === leader || current.includes(n.name)) ? leader : undefined;
      },
      timeoutMs,
    );
  }

  /** Names of the client connections node `i` serves (undefined while it is down or does not answer). */
  async connectionNames(i: number): Promise<string[] | undefined> {
    const n = this.nodes[i]!;
    if (!n.server) return undefined;
    const r = await fetch(`${n.monitorUrl}/connz?limit=4096`, { signal: AbortSignal.timeout(2_000) }).then(
      (x) => (x.ok ? (x.json() as Promise<{ connections?: ReadonlyArray<{ name?: string }> }>) : undefined),
      () => undefined,
    );
    return r?.connections?.map((c) => c.name ?? "");
  }

  /** The running node that serves the client connection named `name`, if one does. */
  async nodeOf(name: string): Promise<number | undefined> {
    for (const [i] of this.nodes.entries()) if ((await this.connectionNames(i))?.includes(name)) return i;
    return undefined;
  }

  private isPartitioned(n: ClusterNode): boolean {
    const i = this.nodes.indexOf(n);
    return this.nodes.length > 1 && this.relays[i]!.every((r, j) => j === i || r.isCut);
  }

  /** A leaf server whose leafnode remote dials node `hub` through a relay (so the link can be cut). */
  async startLeaf(name: string, options: LeafOptions = {}): Promise<LeafServer> {
    const leaf = await LeafServer.start(join(this.root, `leaf-${name}`), name, this.nodes[options.hub ?? 0]!, options);
    this.leafs.push(leaf);
    return leaf;
  }

  async cleanup(): Promise<void> {
    for (const l of this.leafs) await l.cleanup().catch(() => undefined);
    await Promise.all(this.nodes.map((n) => n.server?.stop().catch(() => undefined)));
    for (const row of this.relays) for (const r of row) await r?.close();
    await rm(this.root, { recursive: true, force: true });
  }
}

export interface LeafOptions {
  /** Index of the hub node the leaf dials. */
  readonly hub?: number;
  /** The leafnode user the leaf authenticates as on the hub. */
  readonly credentials?: { readonly user: string; readonly password: string };
  readonly extraConfig?: string;
}

/**
 * A leaf nats-server, as an edge site runs one: local clients connect to it, and its leafnode
 * remote dials the hub. It runs no JetStream of its own (senders need none), so every JetStream
 * request goes to the hub's.
 */
export class LeafServer {
  server: NatsServerProcess | undefined;
  port = -1;
  monitorPort = -1;

  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly link: Relay,
    private readonly extra: string,
  ) {}

  static async start(dir: string, name: string, hub: ClusterNode, options: LeafOptions): Promise<LeafServer> {
    if (!hub.leafPort) throw new Error("the cluster was started without leafnodes");
    const link = await Relay.open(() => hub.leafPort);
    const extra = [
      `server_name: ${name}`,
      "jetstream: disabled",
      `leafnodes { reconnect: 1, remotes = [ { url: "nats-leaf://${options.credentials ? `${options.credentials.user}:${options.credentials.password}@` : ""}127.0.0.1:${link.port}" } ] }`,
      options.extraConfig ?? "",
    ].join("\n");
    const leaf = new LeafServer(dir, name, link, extra);
    try {
      await leaf.startServer();
    } catch (e) {
      await link.close();
      throw e;
    }
    return leaf;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.monitorPort}`;
  }

  async startServer(): Promise<void> {
    const server = await startNatsServer({
      dir: this.dir,
      port: this.port,
      extraConfig: (this.monitorPort > 0 ? `http: "127.0.0.1:${this.monitorPort}"\n` : "") + this.extra,
    });
    this.server = server;
    this.port = server.port;
    this.monitorPort = Number(new URL(server.monitorUrl).port);
  }

  /** Whether the leaf's link to the hub is up, as the leaf sees it. */
  async connected(): Promise<boolean> {
    const r = await fetch(`${this.monitorUrl}/leafz`, { signal: AbortSignal.timeout(1_000) }).then(
      (x) => x.json() as Promise<{ leafnodes?: number }>,
      () => undefined,
    );
    return (r?.leafnodes ?? 0) > 0;
  }

  async waitConnected(timeoutMs = 15_000): Promise<void> {
    await waitUntil(`leaf ${this.name} to reach the hub`, async () => ((await this.connected()) ? true : undefined), timeoutMs);
  }

  /** The site loses its uplink: the leaf and its local clients keep running. */
  cut(): void {
    this.link.sever();
  }

  restore(): void {
    this.link.restore();
  }

  async kill(): Promise<void> {
    await this.server?.kill();
    this.server = undefined;
  }

  async cleanup(): Promise<void> {
    await this.server?.stop().catch(() => undefined);
    await this.link.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
