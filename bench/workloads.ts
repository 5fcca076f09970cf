// Each workload generates its data, runs tsync and the peers on it, removes what it wrote and
// returns table rows. Sizes come from the plan (smoke, quick, full).
import { esbuildOptions } from "../bin/esbuildOptions.mjs";
import { execFile } from "node:child_process";
import { link, mkdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { senderKeys } from "../src/config/sender.js";
import { chunkSizeFor } from "../src/protocol/subjects.js";
import { bigFileTree, partitionDir, smallFilesTree, tsFileName, writeSealed, type Tree } from "./data.js";
import { emulatorText, longLinkPath, startLinkRelay, type LinkHow, type LinkPath, type LinkRelay } from "./longLink.js";
import { cp, find, objectStore, rawNats, rsync, type Measured } from "./peers.js";
import { TestCluster } from "../test/harness/cluster.js";
import { RssWatch, start, tsxArgs, tsxLoader, type CpuSeconds, type PeakRss } from "./procs.js";
import { repoRoot, senderOnce, startReceiver, startSender, writeSenderConf, type SpawnHow } from "./tsyncProcs.js";

const MiB = 1024 * 1024;

export type WorkloadId =
  | "big"
  | "small"
  | "tiny"
  | "fanin"
  | "clusterfanin"
  | "unchanged"
  | "memory"
  | "longlink"
  | "smalllink"
  | "bandwidth"
  | "seal";
export const workloadIds: ReadonlyArray<WorkloadId> = [
  "big",
  "small",
  "tiny",
  "fanin",
  "clusterfanin",
  "unchanged",
  "memory",
  "longlink",
  "smalllink",
  "bandwidth",
  "seal",
];

export interface Plan {
  readonly name: "smoke" | "quick" | "full";
  /** Runs of each throughput measurement; the median is reported. */
  readonly reps: number;
  readonly big: number;
  readonly small: { readonly count: number; readonly bytes: number };
  /**
   * Many more, much smaller files: what a file costs apart from its bytes. `reps` (default: the
   * plan's) runs of each tool: at 20,000 files one run takes minutes and already averages over them.
   */
  readonly tiny: { readonly count: number; readonly bytes: number; readonly reps?: number };
  readonly fanIn: { readonly senders: number; readonly files: number; readonly bytes: number };
  /** Fan-in on a 3-node cluster: the same senders into three receiver instances, then into one. */
  readonly clusterFanIn: { readonly senders: number; readonly files: number; readonly bytes: number };
  /** Rounds include the first of the process, reported apart; `large`: a second, sparse tree (hard links). */
  readonly unchanged: { readonly files: number; readonly rounds: number; readonly large?: number };
  readonly memory: number;
  readonly longLink: { readonly bytes: number };
  /** Small files over the same emulated link, tsync against rsync. */
  readonly smallLink: { readonly count: number; readonly bytes: number };
  readonly bandwidth: { readonly bytes: number; readonly limit: number };
  readonly seal: { readonly samples: number };
  readonly workloads: ReadonlyArray<WorkloadId>;
}

export const plans: Readonly<Record<Plan["name"], Plan>> = {
  smoke: {
    name: "smoke",
    reps: 1,
    big: 8 * MiB,
    small: { count: 10, bytes: 64 * 1024 },
    tiny: { count: 20, bytes: 16 * 1024 },
    fanIn: { senders: 2, files: 2, bytes: 64 * 1024 },
    clusterFanIn: { senders: 2, files: 2, bytes: 64 * 1024 },
    unchanged: { files: 200, rounds: 2 },
    memory: 8 * MiB,
    longLink: { bytes: 4 * MiB },
    smallLink: { count: 5, bytes: 64 * 1024 },
    bandwidth: { bytes: 4 * MiB, limit: 4_000_000 },
    seal: { samples: 1 },
    // The test suite runs this plan: the big file through every tool, and the emulated link's relays for both tools.
    workloads: ["big", "smalllink"],
  },
  quick: {
    name: "quick",
    reps: 1,
    big: 64 * MiB,
    small: { count: 100, bytes: 256 * 1024 },
    tiny: { count: 1_000, bytes: 16 * 1024 },
    fanIn: { senders: 5, files: 4, bytes: 256 * 1024 },
    clusterFanIn: { senders: 10, files: 4, bytes: 256 * 1024 },
    unchanged: { files: 2_000, rounds: 3 },
    memory: 128 * MiB,
    longLink: { bytes: 16 * MiB },
    smallLink: { count: 50, bytes: 64 * 1024 },
    bandwidth: { bytes: 16 * MiB, limit: 8_000_000 },
    seal: { samples: 2 },
    workloads: workloadIds,
  },
  full: {
    name: "full",
    reps: 3,
    big: 1024 * MiB,
    small: { count: 2_000, bytes: 256 * 1024 },
    tiny: { count: 20_000, bytes: 16 * 1024, reps: 1 },
    fanIn: { senders: 50, files: 20, bytes: 256 * 1024 },
    clusterFanIn: { senders: 200, files: 5, bytes: 256 * 1024 },
    unchanged: { files: 100_000, rounds: 4, large: 1_000_000 },
    memory: 4096 * MiB,
    longLink: { bytes: 256 * MiB },
    smallLink: { count: 500, bytes: 64 * 1024 },
    bandwidth: { bytes: 256 * MiB, limit: 25_000_000 },
    seal: { samples: 5 },
    workloads: workloadIds,
  },
};

/** One line of the results table. */
export interface Row {
  readonly workload: string;
  readonly tool: string;
  readonly bytes?: number;
  readonly files?: number;
  readonly seconds?: number;
  readonly rss: PeakRss;
  /** CPU seconds per process while the tool moved the bytes, where measured. */
  readonly cpu?: CpuSeconds;
  /** The tsync row of the workload is compared with this one, on this metric. */
  readonly compare?: "MB/s" | "files/s" | "time";
  readonly note?: string;
}

/** A target of the issue, judged from the rows of the same run. */
export interface Target {
  readonly name: string;
  readonly measured: string;
  /** undefined: not measured in this run (skipped, or not in the plan). */
  readonly holds: boolean | undefined;
}

export interface Outcome {
  readonly rows: Row[];
  readonly targets: Target[];
  readonly notes: string[];
}

export interface Context {
  readonly plan: Plan;
  readonly scratch: string;
  readonly rsync: boolean;
  /** How tsync's processes start: the build compiled at the start of the run, or bin/tsync.js. */
  readonly tsync: SpawnHow;
  readonly log: (line: string) => void;
}

/** The TypeScript sources through tsx, as bin/tsync.js runs them when they are newer than dist/. */
const throughTsx: SpawnHow = { bin: join(repoRoot, "src", "cli", "main.ts"), nodeFlags: ["--import", tsxLoader] };

/** tsync's chunk and window as a default sender uses them against a default server (max_payload 1 MiB). */
export const tsyncChunk = chunkSizeFor(1 << 20, 0);
export const tsyncWindow = Number(senderKeys.window.default);

const sync = promisify(execFile);
/** Data written just before a measurement must not be flushed during it. */
const settle = async () => {
  await sync("sync");
};

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const maxRss = (all: ReadonlyArray<PeakRss>): PeakRss => {
  const out: PeakRss = {};
  for (const r of all) for (const [k, v] of Object.entries(r)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
};

/** Per process, the median CPU of the runs that measured it. */
const medianCpu = (runs: ReadonlyArray<Measured>): CpuSeconds | undefined => {
  const measured = runs.flatMap((r) => (r.cpu ? [r.cpu] : []));
  if (measured.length === 0) return undefined;
  const keys = new Set(measured.flatMap((c) => Object.keys(c)));
  return Object.fromEntries([...keys].map((k) => [k, median(measured.map((c) => c[k] ?? 0))]));
};

/** Runs `f` `reps` times; the median time and CPU, the largest memory of any run. */
const repeat = async (reps: number, f: () => Promise<Measured>): Promise<Measured> => {
  const runs: Measured[] = [];
  for (let i = 0; i < reps; i++) {
    await settle();
    runs.push(await f());
  }
  const cpu = medianCpu(runs);
  return { seconds: median(runs.map((r) => r.seconds)), rss: maxRss(runs.map((r) => r.rss)), ...(cpu ? { cpu } : {}) };
};

/** One tsync round of `tree` into a fresh receiver, both as CLI processes. */
const tsyncRound = async (
  ctx: Context,
  tree: Tree,
  senderProps: Readonly<Record<string, string | number | boolean>> = {},
  how: Partial<Omit<LinkHow, "senderProps">> = {},
): Promise<Measured> => {
  const dir = join(ctx.scratch, "tsync");
  const receiver = await startReceiver(join(dir, "receiver"), {}, { ...ctx.tsync, ...how.receiver });
  try {
    const port = how.senderPort ? await how.senderPort(receiver.port) : receiver.port;
    const s = await senderOnce(
      join(dir, "sender"),
      tree.dataDir,
      port,
      { ...receiver.credentials("bench"), ...(how.serverIp ? { server_ip: how.serverIp } : {}), ...senderProps },
      { ...ctx.tsync, ...how.sender },
      [receiver.proc.rss],
    );
    return { seconds: s.ms / 1000, rss: { ...s.rss, ...(await receiver.stop()) }, cpu: s.cpu };
  } finally {
    await receiver.stop();
    await rm(dir, { recursive: true, force: true });
    // The sender's state lives in the data dir: the next run starts from nothing again.
    await rm(join(tree.dataDir, "sync-sender"), { recursive: true, force: true });
  }
};

const row = (
  workload: string,
  tool: string,
  tree: { bytes?: number; files: number },
  m: Measured,
  compare?: Row["compare"],
  note?: string,
): Row => ({
  workload,
  tool,
  ...(tree.bytes === undefined ? {} : { bytes: tree.bytes }),
  files: tree.files,
  seconds: m.seconds,
  rss: m.rss,
  ...(m.cpu ? { cpu: m.cpu } : {}),
  ...(compare ? { compare } : {}),
  ...(note ? { note } : {}),
});

export const mbps = (r: Pick<Row, "bytes" | "seconds">): number => (r.bytes ?? NaN) / (r.seconds ?? NaN) / 1e6;
/** Milliseconds of CPU per MiB moved, summed over every process of the row. */
export const cpuMsPerMiB = (r: Pick<Row, "bytes" | "cpu">): number =>
  r.cpu && r.bytes ? (Object.values(r.cpu).reduce((a, b) => a + b, 0) * 1000) / (r.bytes / MiB) : NaN;
/** Each process's CPU per MiB, e.g. "sender 0.41, receiver 0.62, nats-server 0.30 ms/MiB". */
export const cpuBreakdown = (r: Pick<Row, "bytes" | "cpu">): string =>
  r.cpu && r.bytes
    ? `${Object.entries(r.cpu)
        // Helpers that barely ran (a shell around a child) would only add noise.
        .filter(([, v]) => v >= 0.005)
        .map(([k, v]) => `${k} ${((v * 1000) / (r.bytes! / MiB)).toFixed(2)}`)
        .join(", ")} ms/MiB`
    : "n/a";
export const filesPerSecond = (r: Pick<Row, "files" | "seconds">): number => (r.files ?? NaN) / (r.seconds ?? NaN);

const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");
const ratioTarget = (name: string, ratio: number, atLeast: number, detail: string): Target => ({
  name,
  measured: `${fmt(ratio)}× (${detail})`,
  holds: Number.isFinite(ratio) ? ratio >= atLeast : undefined,
});

const peersOf = async (
  ctx: Context,
  workload: string,
  tree: Tree,
  count: { bytes: number; files: number },
  compare: Row["compare"],
  withRaw: boolean,
): Promise<Row[]> => {
  const rows: Row[] = [];
  if (withRaw) {
    ctx.log(`${workload}: raw NATS request/reply`);
    rows.push(
      row(
        workload,
        `raw NATS request/reply (${(tsyncChunk / MiB).toFixed(3)} MiB chunks, window ${tsyncWindow})`,
        count,
        await repeat(ctx.plan.reps, () => rawNats(ctx.scratch, tree.files, tsyncChunk, tsyncWindow)),
        compare,
      ),
    );
  }
  ctx.log(`${workload}: object store put/get`);
  const obj: { put: Measured; get: Measured }[] = [];
  for (let i = 0; i < ctx.plan.reps; i++) {
    await settle();
    obj.push(await objectStore(ctx.scratch, tree.dataDir, tsyncChunk));
  }
  const pick = (k: "put" | "get") => ({ seconds: median(obj.map((o) => o[k].seconds)), rss: maxRss(obj.map((o) => o[k].rss)) });
  rows.push(row(workload, "NATS object store put", count, pick("put"), compare, "native SHA-256, same chunk size"));
  rows.push(row(workload, "NATS object store get", count, pick("get"), compare, "digest checked, no fsync"));
  if (ctx.rsync) {
    ctx.log(`${workload}: rsync`);
    rows.push(
      row(
        workload,
        "rsync -a to rsync daemon (loopback)",
        count,
        await repeat(ctx.plan.reps, () => rsync(ctx.scratch, tree.dataDir)),
        compare,
        "no fsync",
      ),
    );
  } else {
    rows.push({ workload, tool: "rsync -a to rsync daemon (loopback)", rss: {}, note: "skipped: rsync is not installed" });
  }
  ctx.log(`${workload}: cp`);
  rows.push(row(workload, "cp -a + fsync", count, await repeat(ctx.plan.reps, () => cp(ctx.scratch, tree.dataDir)), compare));
  return rows;
};

const measuredRow = (rows: ReadonlyArray<Row>, prefix: string) => rows.find((r) => r.tool.startsWith(prefix) && r.seconds !== undefined);

/** 1. One big file: tsync against every peer, MB/s. */
export const bigFile = async (ctx: Context): Promise<Outcome> => {
  const label = `${ctx.plan.big / MiB >= 1024 ? `${ctx.plan.big / 1024 / MiB} GiB` : `${ctx.plan.big / MiB} MiB`} file`;
  const tree = await bigFileTree(join(ctx.scratch, "big-edge"), ctx.plan.big);
  try {
    const count = { bytes: tree.bytes, files: 1 };
    ctx.log(`${label}: tsync`);
    const rows = [row(label, "tsync", count, await repeat(ctx.plan.reps, () => tsyncRound(ctx, tree)))];
    rows.push(...(await peersOf(ctx, label, tree, count, "MB/s", true)));
    const t = mbps(rows[0]!);
    const raw = measuredRow(rows, "raw NATS");
    const put = measuredRow(rows, "NATS object store put");
    const rs = measuredRow(rows, "rsync");
    const cpuT = cpuMsPerMiB(rows[0]!);
    const cpuRaw = raw ? cpuMsPerMiB(raw) : NaN;
    const targets: Target[] = [
      {
        name: `${label}: total CPU per MiB (all processes) ≤ 1.4 × raw NATS request/reply's`,
        measured: `${fmt(cpuT / cpuRaw)}× (${fmt(cpuT)} vs ${fmt(cpuRaw)} ms/MiB; tsync ${cpuBreakdown(rows[0]!)}; raw ${raw ? cpuBreakdown(raw) : "n/a"})`,
        holds: Number.isFinite(cpuT / cpuRaw) ? cpuT / cpuRaw <= 1.4 : undefined,
      },
      ratioTarget(
        `${label}: tsync ≥ 0.8 × raw NATS request/reply`,
        raw ? t / mbps(raw) : NaN,
        0.8,
        `${fmt(t, 0)} vs ${raw ? fmt(mbps(raw), 0) : "n/a"} MB/s`,
      ),
      ratioTarget(
        `${label}: tsync ≥ 1.5 × object store put`,
        put ? t / mbps(put) : NaN,
        1.5,
        `${fmt(t, 0)} vs ${put ? fmt(mbps(put), 0) : "n/a"} MB/s`,
      ),
      ratioTarget(
        `${label}: tsync ≥ 0.5 × rsync (aim)`,
        rs ? t / mbps(rs) : NaN,
        0.5,
        `${fmt(t, 0)} vs ${rs ? fmt(mbps(rs), 0) : "n/a"} MB/s`,
      ),
    ];
    return { rows, targets, notes: [] };
  } finally {
    await rm(join(ctx.scratch, "big-edge"), { recursive: true, force: true });
  }
};

/** Many small files with their .resource, tsync against the object store, rsync and cp: files/s. */
const manyFiles = async (ctx: Context, n: number, bytes: number, dir: string, withRsyncTarget: boolean): Promise<Outcome> => {
  const label = `${n.toLocaleString("en-US")} × ${bytes / 1024} KiB files`;
  const base = join(ctx.scratch, dir);
  const tree = await smallFilesTree(base, join(base, "edge"), { count: n, bytes });
  try {
    const count = { bytes: tree.bytes, files: n };
    ctx.log(`${label}: tsync`);
    const rows = [row(label, "tsync", count, await repeat(ctx.plan.reps, () => tsyncRound(ctx, tree)))];
    rows.push(...(await peersOf(ctx, label, tree, count, "files/s", false)));
    const t = filesPerSecond(rows[0]!);
    const put = measuredRow(rows, "NATS object store put");
    const rs = measuredRow(rows, "rsync");
    const targets = [
      ratioTarget(
        `${label}: tsync files/s ≥ 3 × object store put`,
        put ? t / filesPerSecond(put) : NaN,
        3,
        `${fmt(t, 0)} vs ${put ? fmt(filesPerSecond(put), 0) : "n/a"} files/s`,
      ),
    ];
    if (withRsyncTarget)
      targets.push(
        ratioTarget(
          `${label}: tsync ≥ 0.5 × rsync (aim)`,
          rs ? t / filesPerSecond(rs) : NaN,
          0.5,
          `${fmt(t, 0)} vs ${rs ? fmt(filesPerSecond(rs), 0) : "n/a"} files/s`,
        ),
      );
    return { rows, targets, notes: [] };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
};

/** 2. Many small files with their .resource: files/s. */
export const smallFiles = (ctx: Context): Promise<Outcome> => manyFiles(ctx, ctx.plan.small.count, ctx.plan.small.bytes, "small", true);

/** 2b. Many more, much smaller files (20,000 × 16 KiB in the full plan): what a file costs apart from its bytes. */
export const tinyFiles = async (ctx: Context): Promise<Outcome> => {
  const { count, bytes, reps = ctx.plan.reps } = ctx.plan.tiny;
  const out = await manyFiles({ ...ctx, plan: { ...ctx.plan, reps } }, count, bytes, "tiny", false);
  if (reps !== ctx.plan.reps)
    out.notes.push(
      `${count.toLocaleString("en-US")} × ${bytes / 1024} KiB files: ${reps === 1 ? "one run" : `the median of ${reps} runs`} of each tool ` +
        `(the other throughput figures: the median of ${ctx.plan.reps}); a run takes minutes at this count and averages over every file.`,
    );
  return out;
};

/** Senders in one process (see children/senders.ts) into one receiver process. */
const sendersRound = async (
  ctx: Context,
  dataDirs: ReadonlyArray<string>,
): Promise<{ rounds: { endMs: number; files: number; bytes: number }[]; rss: PeakRss }> => {
  const dir = join(ctx.scratch, "fanin-tsync");
  const receiver = await startReceiver(
    join(dir, "receiver"),
    {},
    ctx.tsync,
    dataDirs.map((_, i) => `bench-${i}`),
  );
  try {
    const p = start(
      process.execPath,
      tsxArgs(join(repoRoot, "bench", "children", "senders.ts"), [String(receiver.port), receiver.credentialsDir, ...dataDirs]),
      { role: "senders" },
    );
    const { match } = await p.line(/^(\{.*\})$/m, 1_200_000);
    const e = await p.exited;
    if (e.code !== 0) throw new Error(`senders failed:\n${p.output().slice(-4000)}`);
    const r = JSON.parse(match[1]!) as { rounds: { endMs: number; files: number; bytes: number }[] };
    return { rounds: r.rounds, rss: { ...(await p.rss.stop()), ...(await receiver.stop()) } };
  } finally {
    await receiver.stop();
    await rm(dir, { recursive: true, force: true });
    for (const d of dataDirs) await rm(join(d, "sync-sender"), { recursive: true, force: true });
  }
};

/** One data directory per sender under `base`, each its own storage group `<sgPrefix><i>`, files hard-linked from templates. */
const senderTrees = async (
  base: string,
  senders: number,
  each: { count: number; bytes: number },
  sgPrefix: string,
): Promise<{ dirs: string[]; total: number }> => {
  const dirs: string[] = [];
  let total = 0;
  for (let i = 0; i < senders; i++) {
    const t = await smallFilesTree(join(base, `tmpl-${i}`), join(base, `edge-${i}`), { ...each, sg: `${sgPrefix}${i}`, how: "link" });
    dirs.push(t.dataDir);
    total += t.bytes;
  }
  return { dirs, total };
};

/** 3. Fan-in: many senders at once into one receiver, against one sender with all their files. */
export const fanIn = async (ctx: Context): Promise<Outcome> => {
  const { senders, files, bytes } = ctx.plan.fanIn;
  const label = `fan-in: ${senders} senders × ${files} files of ${bytes / 1024} KiB`;
  const base = join(ctx.scratch, "fanin");
  try {
    const { dirs, total } = await senderTrees(base, senders, { count: files, bytes }, "root.fan");
    const single = await smallFilesTree(join(base, "tmpl-single"), join(base, "edge-single"), {
      count: senders * files,
      bytes,
      sg: "root.single",
      how: "link",
    });
    await settle();
    ctx.log(`${label}: one sender`);
    const one = await sendersRound(ctx, [single.dataDir]);
    await settle();
    ctx.log(`${label}: ${senders} senders`);
    const many = await sendersRound(ctx, dirs);
    const oneSeconds = one.rounds[0]!.endMs / 1000;
    const ends = many.rounds.map((r) => r.endMs);
    const manySeconds = Math.max(...ends) / 1000;
    const rows: Row[] = [
      row(
        label,
        `tsync, ${senders} senders at once (aggregate)`,
        { bytes: total, files: senders * files },
        { seconds: manySeconds, rss: many.rss },
        undefined,
        `each sender's round: fastest ${fmt(Math.min(...ends) / 1000)} s, median ${fmt(median(ends) / 1000)} s, slowest ${fmt(Math.max(...ends) / 1000)} s`,
      ),
      row(
        label,
        "tsync, 1 sender with all the files",
        { bytes: single.bytes, files: senders * files },
        { seconds: oneSeconds, rss: one.rss },
      ),
    ];
    const agg = mbps(rows[0]!) / mbps(rows[1]!);
    const spread = Math.max(...ends) / Math.min(...ends);
    return {
      rows,
      targets: [
        ratioTarget(
          `fan-in: aggregate ≥ 0.8 × single-sender rate`,
          agg,
          0.8,
          `${fmt(mbps(rows[0]!), 1)} vs ${fmt(mbps(rows[1]!), 1)} MB/s`,
        ),
        {
          name: "fan-in: slowest sender within 3 × the fastest",
          measured: `${fmt(spread)}×`,
          holds: Number.isFinite(spread) ? spread <= 3 : undefined,
        },
      ],
      notes: [],
    };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
};

/**
 * Senders in one process (children/senders.ts, every node in their nats_url) into `instances`
 * receiver instances of `group` on `cluster`, instance i connected to node i, replicas=3.
 */
const clusterSendersRound = async (
  ctx: Context,
  cluster: TestCluster,
  dataDirs: ReadonlyArray<string>,
  instances: number,
  group: string,
): Promise<{ rounds: { endMs: number; files: number; bytes: number }[]; rss: PeakRss; sessions: number[] }> => {
  const dir = join(ctx.scratch, `clusterfanin-${group}`);
  const servers = cluster.nodes.map((n) => new RssWatch(n.server!.pid, () => "nats-server"));
  const started = await Promise.allSettled(
    Array.from({ length: instances }, (_, i) =>
      startReceiver(join(dir, `receiver-${i}`), { nats_url: cluster.nodes[i]!.url, receiver_group: group, replicas: 3 }, ctx.tsync, []),
    ),
  );
  const receivers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  try {
    const failed = started.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    const p = start(
      process.execPath,
      tsxArgs(join(repoRoot, "bench", "children", "senders.ts"), ["--cluster", cluster.urls.join(","), group, ...dataDirs]),
      { role: "senders" },
    );
    const { match } = await p.line(/^(\{.*\})$/m, 1_200_000);
    const e = await p.exited;
    if (e.code !== 0) throw new Error(`senders failed:\n${p.output().slice(-4000)}`);
    const r = JSON.parse(match[1]!) as { rounds: { endMs: number; files: number; bytes: number }[] };
    const sessions = receivers.map((x) => x.proc.output().match(/session \S+ opened for sender /g)?.length ?? 0);
    const rss = maxRss([
      await p.rss.stop(),
      ...(await Promise.all(receivers.map((x) => x.stop()))),
      ...(await Promise.all(servers.map((s) => s.stop()))),
    ]);
    return { rounds: r.rounds, rss, sessions };
  } finally {
    await Promise.all(receivers.map((x) => x.stop()));
    await Promise.all(servers.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
    for (const d of dataDirs) await rm(join(d, "sync-sender"), { recursive: true, force: true });
  }
};

/**
 * 3b. Fan-in on a 3-node JetStream cluster: many senders at once into three receiver instances of
 * one group (one per node), then the same senders into one instance on the same cluster.
 */
export const clusterFanIn = async (ctx: Context): Promise<Outcome> => {
  const { senders, files, bytes } = ctx.plan.clusterFanIn;
  const label = `cluster fan-in: ${senders} senders × ${files} files of ${bytes / 1024} KiB, 3-node cluster`;
  const base = join(ctx.scratch, "clusterfanin");
  const cluster = await TestCluster.start();
  try {
    const { dirs, total } = await senderTrees(base, senders, { count: files, bytes }, "root.cfan");
    const count = { bytes: total, files: senders * files };
    await settle();
    ctx.log(`${label}: 3 receiver instances`);
    // Each run its own receiver group: its own ownership registry and queue group on the same cluster.
    const three = await clusterSendersRound(ctx, cluster, dirs, 3, "fanin3");
    await settle();
    ctx.log(`${label}: 1 receiver instance`);
    const one = await clusterSendersRound(ctx, cluster, dirs, 1, "fanin1");
    const measured = (r: typeof three) => {
      const ends = r.rounds.map((x) => x.endMs);
      return {
        seconds: Math.max(...ends) / 1000,
        note: `sessions per instance ${r.sessions.join(", ")}; each sender's round: fastest ${fmt(Math.min(...ends) / 1000)} s, median ${fmt(median(ends) / 1000)} s, slowest ${fmt(Math.max(...ends) / 1000)} s`,
      };
    };
    const m3 = measured(three);
    const m1 = measured(one);
    const rows: Row[] = [
      row(label, "tsync, 3 receiver instances (aggregate)", count, { seconds: m3.seconds, rss: three.rss }, undefined, m3.note),
      row(label, "tsync, 1 receiver instance (aggregate)", count, { seconds: m1.seconds, rss: one.rss }, "files/s", m1.note),
    ];
    const ratio = filesPerSecond(rows[0]!) / filesPerSecond(rows[1]!);
    rows.push({
      workload: label,
      tool: "ratio: 3 instances ÷ 1 instance",
      rss: {},
      note: `${fmt(ratio)}× in files/s and in MB/s (${fmt(filesPerSecond(rows[0]!), 0)} vs ${fmt(filesPerSecond(rows[1]!), 0)} files/s, ${fmt(mbps(rows[0]!), 1)} vs ${fmt(mbps(rows[1]!), 1)} MB/s)`,
    });
    return {
      rows,
      targets: [],
      notes: [
        `${label}: the three nats-server nodes, the receiver instances and the senders all run on this one machine, so three instances share its cores with everything else; the ratio shows what a second and third instance cost or gain here, not what instances on machines of their own would.`,
      ],
    };
  } finally {
    await cluster.cleanup();
    await rm(base, { recursive: true, force: true });
  }
};

/**
 * The unchanged-round child as an installed sender runs: compiled like bin/build.mjs
 * (bin/esbuildOptions.mjs) when the run uses a build, from its sources through tsx under `--tsx`.
 */
const unchangedChild = async (
  ctx: Context,
): Promise<{ args: (rest: ReadonlyArray<string>) => string[]; how: string; dispose: () => Promise<void> }> => {
  const script = join(repoRoot, "bench", "children", "unchangedRound.ts");
  if (ctx.tsync.bin === undefined) return { args: (rest) => tsxArgs(script, rest), how: "through tsx", dispose: async () => undefined };
  const dir = join(repoRoot, "bench", "out", `unchanged-${process.pid}`);
  const esbuild = await import("esbuild");
  await esbuild.build({ ...esbuildOptions([script]), outfile: join(dir, "unchangedRound.mjs"), logLevel: "silent" });
  return {
    args: (rest) => [join(dir, "unchangedRound.mjs"), ...rest],
    how: "compiled",
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
};

/**
 * `count` sealed files linked to 16 templates, 1,000 to a partition: a million files cost their
 * directory entries, not their bytes. Nothing is kept per file (data.ts's trees list every path).
 */
const linkedTree = async (scratch: string, dataDir: string, count: number, perPartition: number): Promise<void> => {
  const tmpl: string[] = [];
  for (let i = 0; i < 16; i++) tmpl.push((await writeSealed(join(scratch, "templates"), tsFileName(i), 4096, i + 1)).tsfile);
  let next = 0;
  const worker = async () => {
    for (let p = next++; p * perPartition < count; p = next++) {
      const dir = partitionDir(dataDir, "root.bench", p);
      await mkdir(dir, { recursive: true });
      const links: Promise<void>[] = [];
      for (let i = p * perPartition; i < Math.min(count, (p + 1) * perPartition); i++) {
        const src = tmpl[i % tmpl.length]!;
        const dest = join(dir, tsFileName(i));
        links.push(link(src, dest), link(`${src}.resource`, `${dest}.resource`));
      }
      await Promise.all(links);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
};

/** One size of the unchanged-round workload: rows, targets, notes. */
const unchangedAt = async (ctx: Context, files: number, rounds: number, targets: boolean): Promise<Outcome> => {
  const label = `unchanged data dir, ${files.toLocaleString("en-US")} sealed files`;
  const base = join(ctx.scratch, `unchanged-${files}`);
  const child = await unchangedChild(ctx);
  try {
    ctx.log(`${label}: making the tree`);
    const dataDir = join(base, "edge");
    await linkedTree(base, dataDir, files, 1000);
    const receiver = await startReceiver(join(base, "receiver"), {}, ctx.tsync, ["bench-unchanged"]);
    let result: { rounds: number[]; rssLoaded: number; rssOpened: number };
    let rss: PeakRss;
    try {
      await settle();
      ctx.log(`${label}: priming the sender's state`);
      const prime = start(process.execPath, child.args(["prime", String(receiver.port), receiver.credentialsDir, dataDir]), {
        role: "prime",
      });
      if ((await prime.exited).code !== 0) throw new Error(`priming the sender's state failed:\n${prime.output().slice(-4000)}`);
      ctx.log(`${label}: tsync rounds`);
      const p = start(process.execPath, child.args(["rounds", String(receiver.port), receiver.credentialsDir, dataDir, String(rounds)]), {
        role: "sender",
      });
      const { match } = await p.line(/^(\{.*\})$/m, 1_200_000);
      const e = await p.exited;
      if (e.code !== 0) throw new Error(`unchanged round failed:\n${p.output().slice(-4000)}`);
      result = JSON.parse(match[1]!) as typeof result;
      rss = { ...(await p.rss.stop()), ...(await receiver.stop()) };
    } finally {
      await receiver.stop();
    }
    ctx.log(`${label}: find`);
    await find(dataDir); // warm the same caches the sender's rounds had
    const f = await repeat(Math.max(3, ctx.plan.reps), () => find(dataDir));
    // The first round of a process lists every partition (it remembers none yet); the rest are what a running sender pays.
    const [first = NaN, ...steady] = result.rounds;
    const t = { seconds: median(steady) / 1000, rss };
    const sender = rss["sender"] ?? NaN;
    const rows: Row[] = [
      row(
        label,
        "tsync round that finds nothing new",
        { files },
        t,
        undefined,
        `median of ${steady.length} rounds in a running sender (${child.how}); its first round after start, which lists every partition: ${fmt(first, 0)} ms; sender RSS with its modules loaded, before opening its state: ${fmt(result.rssLoaded / 1e6, 0)} MB, after: ${fmt(result.rssOpened / 1e6, 0)} MB`,
      ),
      row(label, "find DIR -type f", { files }, f, "time"),
    ];
    const ratio = t.seconds / f.seconds;
    return {
      rows,
      targets: targets
        ? [
            {
              name: `${label}: round ≤ 3 × find`,
              measured: `${fmt(ratio)}× (${fmt(t.seconds * 1000, 0)} vs ${fmt(f.seconds * 1000, 0)} ms)`,
              holds: ratio <= 3,
            },
            {
              name: `${label}: sender peak RSS < 100 MB`,
              measured: `${fmt(sender / 1e6, 0)} MB (${fmt(result.rssLoaded / 1e6, 0)} MB of it before the state was opened)`,
              holds: Number.isFinite(sender) ? sender < 100e6 : undefined,
            },
          ]
        : [],
      notes: [],
    };
  } finally {
    await child.dispose();
    // rm(1) removes two million links in seconds; Node's recursive rm takes minutes.
    await promisify(execFile)("rm", ["-rf", base]).catch(() => rm(base, { recursive: true, force: true }));
  }
};

/** 4. A round over an unchanged data directory, against `find` over the same tree; then the same at a million files when the plan has them. */
export const unchanged = async (ctx: Context): Promise<Outcome> => {
  const { files, rounds, large } = ctx.plan.unchanged;
  const out = await unchangedAt(ctx, files, rounds, true);
  if (large !== undefined) {
    const big = await unchangedAt(ctx, large, rounds, false);
    out.rows.push(...big.rows);
  }
  return out;
};

/** 5. Memory with a big file: peak RSS of each side. */
export const memory = async (ctx: Context): Promise<Outcome> => {
  const label = `memory: ${ctx.plan.memory / MiB >= 1024 ? `${ctx.plan.memory / 1024 / MiB} GiB` : `${ctx.plan.memory / MiB} MiB`} file`;
  const edge = join(ctx.scratch, "memory-edge");
  try {
    const tree = await bigFileTree(edge, ctx.plan.memory);
    await settle();
    ctx.log(`${label}: tsync`);
    const m = await tsyncRound(ctx, tree);
    const limit = 200 * 1e6;
    const sides = (x: Measured) => ({ s: x.rss["sender"] ?? NaN, v: x.rss["receiver"] ?? NaN });
    const { s, v } = sides(m);
    const compiled = ctx.tsync.bin !== undefined;
    const rows = [row(label, compiled ? "tsync (compiled JavaScript)" : "tsync (bin/tsync.js)", { bytes: tree.bytes, files: 1 }, m)];
    const targets: Target[] = [
      {
        name: `${label}: peak RSS < 200 MB on each side${compiled ? " (compiled)" : ""}`,
        measured: `sender ${fmt(s / 1e6, 0)} MB, receiver ${fmt(v / 1e6, 0)} MB`,
        holds: s < limit && v < limit,
      },
    ];
    if (compiled) {
      // What the same round costs when the sources run through tsx instead (an edited tree).
      ctx.log(`${label}: tsync through tsx`);
      await settle();
      const t = await tsyncRound(ctx, tree, {}, { receiver: throughTsx, sender: throughTsx });
      const ts = sides(t);
      rows.push(row(label, "tsync (TypeScript through tsx)", { bytes: tree.bytes, files: 1 }, t));
      targets.push({
        name: `${label}: peak RSS < 200 MB on each side (through tsx)`,
        measured: `sender ${fmt(ts.s / 1e6, 0)} MB, receiver ${fmt(ts.v / 1e6, 0)} MB`,
        holds: ts.s < limit && ts.v < limit,
      });
    }
    return { rows, targets, notes: [] };
  } finally {
    await rm(edge, { recursive: true, force: true });
  }
};

/** 6. A long thin link: 50 ms, 100 Mbit/s. */
export const longLink = async (ctx: Context): Promise<Outcome> => {
  const rate = 12_500_000;
  const label = `long thin link (50 ms, 100 Mbit/s): ${ctx.plan.longLink.bytes / MiB} MiB file`;
  const edge = join(ctx.scratch, "longlink-edge");
  let path: LinkPath | undefined;
  try {
    const tree = await bigFileTree(edge, ctx.plan.longLink.bytes);
    path = await longLinkPath({ delayMs: 50, rate });
    ctx.log(`${label}: tsync over ${path.kind}`);
    await settle();
    const m = await path.run(async (how) => tsyncRound(ctx, tree, how.senderProps, how));
    const r = row(
      label,
      `tsync over ${path.kind === "netem" ? "netns + veth + tc netem" : "a user-space link emulator"}`,
      { bytes: tree.bytes, files: 1 },
      m,
    );
    const share = tree.bytes / m.seconds / rate;
    return {
      rows: [r],
      targets: [
        {
          name: `long thin link: ≥ 90 % of the link rate`,
          measured: `${fmt(share * 100, 1)} % (${fmt(mbps(r), 2)} of ${fmt(rate / 1e6, 1)} MB/s, ${path.kind})`,
          holds: share >= 0.9,
        },
      ],
      notes: path.note ? [path.note] : [],
    };
  } finally {
    await path?.close();
    await rm(edge, { recursive: true, force: true });
  }
};

/**
 * 6b. Small files over the same 50 ms, 100 Mbit/s link, tsync against rsync: always through the
 * user-space emulator, one relay per run in front of the receiver's nats-server for tsync and in
 * front of the rsync daemon for rsync, so both cross the same kind of link.
 */
export const smallLink = async (ctx: Context): Promise<Outcome> => {
  const { count: n, bytes } = ctx.plan.smallLink;
  const link = { delayMs: 50, rate: 12_500_000 };
  const label = `small files over a 50 ms, 100 Mbit/s link: ${n.toLocaleString("en-US")} × ${bytes / 1024} KiB files`;
  const base = join(ctx.scratch, "smalllink");
  /** Runs `f` with a fresh relay in front of whatever port it dials; the relay is stopped afterwards. */
  const overLink = async (f: (via: (port: number) => Promise<number>) => Promise<Measured>): Promise<Measured> => {
    const relays: LinkRelay[] = [];
    try {
      return await f(async (port) => {
        const relay = await startLinkRelay(link, port);
        relays.push(relay);
        return relay.port;
      });
    } finally {
      for (const r of relays) await r.stop();
    }
  };
  try {
    const tree = await smallFilesTree(base, join(base, "edge"), { count: n, bytes });
    const count = { bytes: tree.bytes, files: n };
    ctx.log(`${label}: tsync over the link emulator`);
    const rows: Row[] = [
      row(
        label,
        "tsync over the link emulator",
        count,
        await repeat(ctx.plan.reps, () => overLink((via) => tsyncRound(ctx, tree, {}, { senderPort: via }))),
      ),
    ];
    const rsyncTool = "rsync -a to rsync daemon over the link emulator";
    if (ctx.rsync) {
      ctx.log(`${label}: rsync over the link emulator`);
      rows.push(
        row(
          label,
          rsyncTool,
          count,
          await repeat(ctx.plan.reps, () => overLink((via) => rsync(ctx.scratch, tree.dataDir, via))),
          "files/s",
          "no fsync; its time includes the daemon handshake over the link",
        ),
      );
    } else {
      rows.push({ workload: label, tool: rsyncTool, rss: {}, note: "skipped: rsync is not installed" });
    }
    const t = filesPerSecond(rows[0]!);
    const rs = measuredRow(rows, "rsync");
    return {
      rows,
      targets: [
        ratioTarget(
          `small files over the 50 ms link: tsync ≥ 0.5 × rsync over the same relay`,
          rs ? t / filesPerSecond(rs) : NaN,
          0.5,
          `${fmt(t, 0)} vs ${rs ? fmt(filesPerSecond(rs), 0) : "n/a"} files/s, ${n.toLocaleString("en-US")} × ${bytes / 1024} KiB`,
        ),
      ],
      notes: [`Small files over the link: both tools through bench/children/slowLink.ts, ${emulatorText(link)}`],
    };
  } finally {
    await rm(base, { recursive: true, force: true });
  }
};

/** 7. max_bandwidth_bytes_per_second: the measured rate against the limit. */
export const bandwidth = async (ctx: Context): Promise<Outcome> => {
  const { bytes, limit } = ctx.plan.bandwidth;
  const label = `bandwidth limit ${fmt(limit / 1e6, 1)} MB/s: ${bytes / MiB} MiB file`;
  const edge = join(ctx.scratch, "bandwidth-edge");
  try {
    const tree = await bigFileTree(edge, bytes);
    await settle();
    ctx.log(`${label}: tsync`);
    const m = await tsyncRound(ctx, tree, { max_bandwidth_bytes_per_second: limit });
    const r = row(label, `tsync, max_bandwidth_bytes_per_second=${limit}`, { bytes: tree.bytes, files: 1 }, m);
    const off = (mbps(r) * 1e6) / limit - 1;
    return {
      rows: [r],
      targets: [
        {
          name: "bandwidth limit: measured rate within 5 % of the limit",
          measured: `${fmt(mbps(r), 2)} MB/s for a limit of ${fmt(limit / 1e6, 2)} MB/s (${off >= 0 ? "+" : ""}${fmt(off * 100, 1)} %)`,
          holds: Math.abs(off) <= 0.05,
        },
      ],
      notes: [],
    };
  } finally {
    await rm(edge, { recursive: true, force: true });
  }
};

/** 8. sync_on_seal: from a new .resource on the edge to the file loaded at the centre. */
export const sealLatency = async (ctx: Context): Promise<Outcome> => {
  const label = "seal to loaded, sync_on_seal=true";
  const base = join(ctx.scratch, "seal");
  const edge = join(base, "edge");
  await mkdir(join(edge, "sequence"), { recursive: true });
  const receiver = await startReceiver(join(base, "receiver"), {}, ctx.tsync);
  const conf = await writeSenderConf(join(base, "sender"), edge, receiver.port, {
    ...receiver.credentials("bench"),
    sync_on_seal: true,
    sync_period_in_second: 3600,
  });
  const sender = startSender(join(base, "sender"), conf, false, ctx.tsync);
  const loaded: number[] = [];
  const started: number[] = [];
  try {
    await sender.line(/round ok/, 60_000);
    for (let i = 0; i < ctx.plan.seal.samples; i++) {
      const mark = sender.mark();
      const dir = partitionDir(edge, "root.seal", 0);
      const name = tsFileName(i);
      // writeSealed renames the .resource into place last, as IoTDB does: that instant is t0.
      await writeSealed(dir, name, 256 * 1024, i + 1);
      const t0 = performance.now();
      const target = join(partitionDir(receiver.dataDir, "root.seal", 0), `${name}.resource`);
      const deadline = t0 + 60_000;
      while (
        !(await stat(target).then(
          () => true,
          () => false,
        ))
      ) {
        if (performance.now() > deadline) throw new Error(`${name} did not arrive within 60 s:\n${sender.output().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      loaded.push(performance.now() - t0);
      const scan = await sender.line(/scan: /, 60_000, mark);
      started.push(scan.at - t0);
      await sender.line(/round ok/, 60_000, mark);
    }
    const rss = { ...(await sender.rss.stop()), ...(await receiver.proc.rss.stop()) };
    const rows: Row[] = [
      {
        workload: label,
        tool: "tsync sender (running) + receiver",
        seconds: median(loaded) / 1000,
        rss,
        note: `seal → loaded median ${fmt(median(loaded), 0)} ms, max ${fmt(Math.max(...loaded), 0)} ms; seal → round scanned median ${fmt(median(started), 0)} ms, max ${fmt(Math.max(...started), 0)} ms`,
      },
    ];
    return {
      rows,
      targets: [
        {
          name: "sync_on_seal: a round starts within 1 s of a new .resource",
          measured: `round scanned after ${fmt(Math.max(...started), 0)} ms at most; loaded after ${fmt(Math.max(...loaded), 0)} ms at most`,
          holds: Math.max(...started) <= 1000,
        },
      ],
      notes: [],
    };
  } finally {
    await sender.stop();
    await receiver.stop();
    await rm(base, { recursive: true, force: true });
  }
};

export const workloads: Readonly<Record<WorkloadId, (ctx: Context) => Promise<Outcome>>> = {
  big: bigFile,
  small: smallFiles,
  tiny: tinyFiles,
  fanin: fanIn,
  clusterfanin: clusterFanIn,
  unchanged,
  memory,
  longlink: longLink,
  smalllink: smallLink,
  bandwidth,
  seal: sealLatency,
};
