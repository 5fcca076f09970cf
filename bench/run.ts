// `npm run bench [-- --quick] [--only big,small] [--write] [--keep] [--no-install]`: tsync against
// raw NATS, the NATS object store, rsync and cp on the same generated data; prints one table and
// (for the full run, or with --write) puts it into docs/benchmarks.md.
import { execFile } from "node:child_process";
import { mkdtemp, rm, rmdir, statfs } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { buildBundle } from "./bundle.js";
import { rsyncAvailable } from "./peers.js";
import { describeMachine, renderReport, writeDocs } from "./report.js";
import { repoRoot } from "./tsyncProcs.js";
import { plans, workloadIds, workloads, type Context, type Outcome, type Plan, type WorkloadId } from "./workloads.js";

const exec = promisify(execFile);
const GiB = 2 ** 30;

export interface BenchOptions {
  readonly plan: Plan;
  /** apt-get install rsync when it is missing. */
  readonly install: boolean;
  readonly keep?: boolean;
  /** false: run tsync from its TypeScript sources (bin/tsync.js) instead of a build made for the run. */
  readonly compiled?: boolean;
  /** Workloads not started once this many minutes have passed are reported as skipped. */
  readonly maxMinutes?: number;
  readonly log?: (line: string) => void;
}

export interface BenchResult {
  readonly markdown: string;
  readonly outcome: Outcome;
  readonly failed: ReadonlyArray<string>;
}

/** Disk each workload needs at its peak, in bytes (source, copies in flight, stores). */
const diskNeeded = (plan: Plan, id: WorkloadId): number =>
  id === "big"
    ? plan.big * 3.2
    : id === "memory"
      ? plan.memory * 2.2
      : id === "longlink"
        ? plan.longLink.bytes * 2.2
        : id === "bandwidth"
          ? plan.bandwidth.bytes * 2.2
          : 2 * GiB;

const ensureRsync = async (install: boolean, log: (l: string) => void): Promise<boolean> => {
  if (await rsyncAvailable()) return true;
  if (!install) return false;
  log("rsync is missing: installing it from Debian (apt-get install -y rsync) for the rsync baseline");
  await exec("apt-get", ["update", "-qq"]).catch(() => undefined);
  await exec("apt-get", ["install", "-y", "-qq", "rsync"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).catch(
    (e: unknown) => log(`apt-get install rsync failed: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`),
  );
  return rsyncAvailable();
};

export const runBench = async (o: BenchOptions): Promise<BenchResult> => {
  const log = o.log ?? ((l: string) => process.stderr.write(`bench: ${l}\n`));
  const t0 = performance.now();
  const scratch = await mkdtemp(join(tmpdir(), "tsync-bench-"));
  const df = await exec("df", ["-h", tmpdir()]).then(
    (r) => r.stdout.trim(),
    () => "",
  );
  log(`scratch ${scratch}\n${df}`);
  const rsync = await ensureRsync(o.install, log);
  // One build for the whole run: a tree edited meanwhile must not change what is measured.
  const bundle = o.compiled === false ? { error: "asked for the TypeScript sources (--tsx)" } : await buildBundle();
  const tsync = "entry" in bundle ? { bin: bundle.entry } : {};
  const entry =
    "entry" in bundle
      ? "tsync processes ran JavaScript compiled from `src/cli/main.ts` at the start of the run (bench/bundle.ts: esbuild with bin/esbuildOptions.mjs, `effect` bundled), as an installed tsync runs dist/"
      : `tsync processes ran bin/tsync.js (${bundle.error})`;
  const machine = await describeMachine(scratch);
  const ctx: Context = { plan: o.plan, scratch, rsync, tsync, log };
  const all: Outcome = { rows: [], targets: [], notes: [] };
  const failed: string[] = [];
  try {
    for (const id of o.plan.workloads) {
      const minutes = (performance.now() - t0) / 60_000;
      if (o.maxMinutes !== undefined && minutes > o.maxMinutes) {
        all.notes.push(`Workload ${id} not run: the bench had already taken ${minutes.toFixed(0)} of its ${o.maxMinutes} minutes.`);
        continue;
      }
      const s = await statfs(scratch);
      const free = s.bavail * s.bsize;
      if (free < diskNeeded(o.plan, id)) {
        all.notes.push(
          `Workload ${id} not run: it needs about ${(diskNeeded(o.plan, id) / GiB).toFixed(1)} GiB free in ${tmpdir()}, there are ${(free / GiB).toFixed(1)} GiB.`,
        );
        continue;
      }
      log(`workload ${id}`);
      try {
        const r = await workloads[id](ctx);
        all.rows.push(...r.rows);
        all.targets.push(...r.targets);
        all.notes.push(...r.notes);
      } catch (e) {
        failed.push(id);
        const message = e instanceof Error ? e.message : String(e);
        log(`workload ${id} failed: ${message}`);
        all.rows.push({ workload: id, tool: "tsync", rss: {}, note: `failed: ${message.split("\n")[0]}` });
      }
    }
  } finally {
    if (!o.keep) await rm(scratch, { recursive: true, force: true });
    if ("dir" in bundle) {
      await rm(bundle.dir, { recursive: true, force: true });
      await rmdir(dirname(bundle.dir)).catch(() => undefined); // only when no other run uses it
    }
  }
  const command = o.plan.name === "full" ? "npm run bench" : `npm run bench -- --${o.plan.name}`;
  const markdown = renderReport({
    plan: o.plan.name,
    command,
    machine: { lines: [...machine.lines, entry] },
    outcome: all,
    minutes: (performance.now() - t0) / 60_000,
    loadAtEnd: loadavg(),
  });
  return { markdown, outcome: all, failed };
};

const main = async (): Promise<number> => {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      only: { type: "string" },
      write: { type: "boolean" },
      keep: { type: "boolean", default: false },
      "no-install": { type: "boolean", default: false },
      tsx: { type: "boolean", default: false },
      "max-minutes": { type: "string", default: "40" },
    },
  });
  const base = values.smoke ? plans.smoke : values.quick ? plans.quick : plans.full;
  const only = values.only?.split(",").map((s) => s.trim()) ?? [];
  const unknown = only.filter((w) => !workloadIds.includes(w as WorkloadId));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown workload(s) ${unknown.join(", ")}; known: ${workloadIds.join(", ")}\n`);
    return 2;
  }
  const plan: Plan = only.length > 0 ? { ...base, workloads: only as WorkloadId[] } : base;
  const result = await runBench({
    plan,
    install: !values["no-install"],
    keep: values.keep ?? false,
    compiled: !values.tsx,
    maxMinutes: Number(values["max-minutes"]),
  });
  process.stdout.write(result.markdown + "\n");
  if (values.write ?? (plan.name === "full" && only.length === 0)) {
    const docs = join(repoRoot, "docs", "benchmarks.md");
    await writeDocs(docs, result.markdown);
    process.stderr.write(`bench: results written to ${docs}\n`);
  }
  return result.failed.length > 0 ? 1 : 0;
};

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
