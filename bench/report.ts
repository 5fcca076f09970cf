// The results as Markdown: the machine, one table of every measurement, the targets, the notes;
// and the generated part of docs/benchmarks.md.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { promisify } from "node:util";
import { cpuBreakdown, filesPerSecond, mbps, type Outcome, type Row, type Target } from "./workloads.js";

const exec = promisify(execFile);
const firstLine = async (cmd: string, args: string[]): Promise<string> =>
  exec(cmd, args).then(
    (r) =>
      (r.stdout || r.stderr)
        .split("\n")
        .find((l) => l.trim() !== "")
        ?.trim() ?? "?",
    () => "not installed",
  );

export interface Machine {
  readonly lines: ReadonlyArray<string>;
}

/** What the numbers were measured on; the load average says whether the machine was shared at the time. */
export const describeMachine = async (scratch: string): Promise<Machine> => {
  const cpu = cpus();
  const flags = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const sha = /\bsha_ni\b/.test(flags) ? "SHA-NI" : "no SHA-NI";
  const fs = await exec("df", ["--output=fstype,source", scratch]).then(
    (r) => r.stdout.split("\n")[1]?.trim().replace(/\s+/, " on ") ?? "?",
    () => "?",
  );
  return {
    lines: [
      `CPU: ${cpu.length} × ${cpu[0]?.model.trim() ?? "?"} (${sha})`,
      `Memory: ${(totalmem() / 2 ** 30).toFixed(0)} GiB; scratch directory on ${fs}`,
      `Kernel: Linux ${release()}; Node ${process.version}; ${await firstLine("nats-server", ["--version"])}; ${await firstLine("rsync", ["--version"])}`,
      `Load average at start: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(", ")} (the machine is shared: other work on it slows every tool alike, so compare ratios within one run)`,
    ],
  };
};

const fmt = (x: number | undefined, digits: number): string => (x === undefined || !Number.isFinite(x) ? "" : x.toFixed(digits));
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

const rssText = (rss: Row["rss"]): string =>
  Object.entries(rss)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${mb(v)}`)
    .join(", ");

/** tsync's figure over this row's, on the row's metric (for time: how many times longer tsync took). */
export const ratioFor = (row: Row, rows: ReadonlyArray<Row>): string => {
  if (!row.compare || row.seconds === undefined) return "";
  const t = rows.find((r) => r.workload === row.workload && r.tool.startsWith("tsync") && r.seconds !== undefined);
  if (!t) return "";
  const x =
    row.compare === "MB/s"
      ? mbps(t) / mbps(row)
      : row.compare === "files/s"
        ? filesPerSecond(t) / filesPerSecond(row)
        : t.seconds! / row.seconds;
  return Number.isFinite(x) ? `${x.toFixed(2)} (${row.compare})` : "";
};

const cell = (s: string) => s.replaceAll("|", "\\|").replaceAll("\n", " ");

export const resultsTable = (rows: ReadonlyArray<Row>): string => {
  const head = [
    "workload",
    "tool",
    "MB/s",
    "files/s",
    "seconds",
    "peak RSS (MB) per process",
    "CPU ms/MiB per process",
    "tsync ÷ this",
    "note",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    const hasTime = r.seconds !== undefined;
    lines.push(
      `| ${[
        r.workload,
        r.tool,
        hasTime && r.bytes !== undefined ? fmt(mbps(r), 1) : "",
        hasTime && r.files !== undefined && r.files > 1 ? fmt(filesPerSecond(r), r.files / r.seconds! >= 100 ? 0 : 1) : "",
        fmt(r.seconds, 3),
        rssText(r.rss),
        r.cpu ? cpuBreakdown(r) : "",
        ratioFor(r, rows),
        r.note ?? "",
      ]
        .map(cell)
        .join(" | ")} |`,
    );
  }
  return lines.join("\n");
};

export const targetsTable = (targets: ReadonlyArray<Target>): string => {
  const lines = ["| target | measured | holds |", "|---|---|---|"];
  for (const t of targets)
    lines.push(`| ${cell(t.name)} | ${cell(t.measured)} | ${t.holds === undefined ? "not measured" : t.holds ? "yes" : "**no**"} |`);
  return lines.join("\n");
};

export interface Report {
  readonly plan: string;
  readonly command: string;
  readonly machine: Machine;
  readonly outcome: Outcome;
  readonly minutes: number;
  readonly loadAtEnd: ReadonlyArray<number>;
}

export const renderReport = (r: Report): string =>
  [
    `Plan \`${r.plan}\` (\`${r.command}\`), ${new Date().toISOString().slice(0, 10)}, ${r.minutes.toFixed(1)} minutes.`,
    "",
    ...r.machine.lines.map((l) => `- ${l}`),
    `- Load average at end: ${r.loadAtEnd.map((x) => x.toFixed(2)).join(", ")}`,
    "",
    "MB/s = 10^6 bytes per second, over the TsFiles and their .resource files. Seconds run from a tool's first byte to its last (process start-up left out, connections made); " +
      "tsync's include the whole round (scan, hello, digest on both sides, fsync, load, journal). " +
      "Peak RSS is each process's VmHWM. \"tsync ÷ this\" is tsync's figure over this row's on the metric named (for time: how many times as long tsync took).",
    "",
    resultsTable(r.outcome.rows),
    "",
    targetsTable(r.outcome.targets),
    ...(r.outcome.notes.length > 0 ? ["", ...r.outcome.notes.map((n) => `- ${n}`)] : []),
  ].join("\n");

export const startMarker = "<!-- bench:results:start (written by `npm run bench`; edit outside the markers) -->";
export const endMarker = "<!-- bench:results:end -->";

/** Replaces the generated part of docs/benchmarks.md, keeping what is written around it. */
export const writeDocs = async (path: string, body: string): Promise<void> => {
  const old = await readFile(path, "utf8").catch(() => "");
  const s = old.indexOf(startMarker);
  const e = old.indexOf(endMarker);
  const generated = `${startMarker}\n${body}\n${endMarker}`;
  const text = s >= 0 && e > s ? old.slice(0, s) + generated + old.slice(e + endMarker.length) : `# Benchmarks\n\n${generated}\n`;
  await writeFile(path, text);
};
