// A long, thin link between sender and receiver. Preferred: two network namespaces joined by a
// veth pair with `tc netem` on the sender's end. Where the kernel has no netem (or namespaces
// cannot be made), a user-space link emulator on loopback (children/slowLink.ts) stands in, and
// the report says so.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { start, tsxArgs, type Running } from "./procs.js";
import { repoRoot, type SpawnHow } from "./tsyncProcs.js";

const exec = promisify(execFile);

export interface LinkHow {
  readonly receiver: SpawnHow;
  readonly sender: SpawnHow;
  readonly serverIp?: string;
  /** The port the sender dials, given the receiver's. */
  readonly senderPort?: (receiverPort: number) => Promise<number>;
  readonly senderProps: Readonly<Record<string, string | number | boolean>>;
}

export interface LinkPath {
  readonly kind: "netem" | "emulated";
  /** Why the emulator stands in, when it does. */
  readonly note: string | undefined;
  run<A>(f: (how: LinkHow) => Promise<A>): Promise<A>;
  close(): Promise<void>;
}

const ip = (...args: string[]) => exec("ip", args);

/** netns + veth + netem, or the reason it cannot be had here. */
const netemPath = async (link: { delayMs: number; rate: number }): Promise<LinkPath | string> => {
  const tag = String(process.pid % 100_000);
  const [a, b] = [`tsb-a-${tag}`, `tsb-b-${tag}`];
  const [va, vb] = [`tsba${tag}`, `tsbb${tag}`];
  const net = `10.231.${process.pid % 250}`;
  const close = async () => {
    await ip("netns", "del", a).catch(() => undefined);
    await ip("netns", "del", b).catch(() => undefined);
  };
  try {
    await ip("netns", "add", a);
    await ip("netns", "add", b);
    await ip("link", "add", va, "type", "veth", "peer", "name", vb);
    await ip("link", "set", va, "netns", a);
    await ip("link", "set", vb, "netns", b);
    await ip("-n", a, "addr", "add", `${net}.1/30`, "dev", va);
    await ip("-n", b, "addr", "add", `${net}.2/30`, "dev", vb);
    for (const [ns, dev] of [
      [a, va],
      [b, vb],
    ] as const) {
      await ip("-n", ns, "link", "set", dev, "up");
      await ip("-n", ns, "link", "set", "lo", "up");
    }
    // netem's default queue of 1000 packets holds less than a bandwidth-delay product here.
    const qdisc = (
      process.env["TSYNC_BENCH_QDISC"] ?? `netem delay ${link.delayMs}ms rate ${Math.round((link.rate * 8) / 1e6)}mbit limit 100000`
    ).split(" ");
    await exec("ip", ["netns", "exec", a, "tc", "qdisc", "add", "dev", va, "root", ...qdisc]);
  } catch (e) {
    await close();
    const text = e instanceof Error ? ((e as { stderr?: string }).stderr ?? e.message) : String(e);
    return text.includes("qdisc kind is unknown")
      ? 'this kernel has no netem (CONFIG_NET_SCH_NETEM is off): `tc qdisc add … netem` answers "Specified qdisc kind is unknown"'
      : `network namespaces with netem cannot be made here: ${text.trim().split("\n")[0]}`;
  }
  return {
    kind: "netem",
    note: undefined,
    run: (f) =>
      f({
        receiver: { wrap: ["ip", "netns", "exec", b] },
        sender: { wrap: ["ip", "netns", "exec", a] },
        serverIp: `${net}.2`,
        senderProps: {},
      }),
    close,
  };
};

/** A running instance of the user-space link emulator, relaying to a target port on loopback. */
export interface LinkRelay {
  /** The port to dial instead of the target's. */
  readonly port: number;
  readonly proc: Running;
  stop(): Promise<void>;
}

/** Starts children/slowLink.ts in front of `targetPort`: the client's bytes held `delayMs`, let out at `rate` bytes/s. */
export const startLinkRelay = async (link: { delayMs: number; rate: number }, targetPort: number): Promise<LinkRelay> => {
  const proc = start(
    process.execPath,
    tsxArgs(join(repoRoot, "bench", "children", "slowLink.ts"), [
      "127.0.0.1",
      String(targetPort),
      String(link.delayMs),
      String(link.rate),
      "1500000",
    ]),
    { role: "link emulator" },
  );
  try {
    const { match } = await proc.line(/listening (\d+)/);
    return { port: Number(match[1]), proc, stop: () => proc.stop() };
  } catch (e) {
    await proc.stop();
    throw e;
  }
};

/** What the emulator models, for the report's notes. */
export const emulatorText = (link: { delayMs: number; rate: number }): string =>
  `a TCP relay on loopback that delays the sender's bytes by ${link.delayMs} ms and lets them out at ${((link.rate * 8) / 1e6).toFixed(0)} Mbit/s ` +
  "through a bounded queue. It models the delay and the rate, not packet loss or TCP's own windows.";

/** The user-space emulator: a relay per run, between the sender and the receiver's server. */
const emulatedPath = (link: { delayMs: number; rate: number }, why: string): LinkPath => {
  const relays: LinkRelay[] = [];
  return {
    kind: "emulated",
    note: `Long thin link: ${why}, so the bench ran it over a user-space link emulator (bench/children/slowLink.ts): ${emulatorText(link)}`,
    run: (f) =>
      f({
        receiver: {},
        sender: {},
        senderProps: {},
        senderPort: async (receiverPort) => {
          const relay = await startLinkRelay(link, receiverPort);
          relays.push(relay);
          return relay.port;
        },
      }),
    close: async () => {
      for (const r of relays) await r.stop();
    },
  };
};

export const longLinkPath = async (link: { delayMs: number; rate: number }): Promise<LinkPath> => {
  const netem = await netemPath(link);
  return typeof netem === "string" ? emulatedPath(link, netem) : netem;
};
