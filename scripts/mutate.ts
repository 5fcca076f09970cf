// `npm run mutate [-- --only machines,protocol] [-- --report-only]`: runs Stryker once per area of
// scripts/mutationAreas.ts (its mutate globs, its tests through vitest.mutation.config.ts), keeps
// each area's JSON report as reports/mutation/<area>.json and writes the scores into
// docs/testing.md ("Mutation score").
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { areaEnv, areaNames, areas, isAreaName, type AreaName } from "./mutationAreas.js";
import { readReport, reportPath, summarise, writeMutationSection, type AreaSummary, type StrykerReport } from "./mutationReport.js";

const usage =
  "usage: npm run mutate -- [--only AREA[,AREA...]] [--report-only] [--concurrency N] [--ignore-static]   (areas: " +
  areaNames.join(", ") +
  ")";

interface Options {
  readonly only: AreaName[];
  readonly reportOnly: boolean;
  readonly concurrency: number;
  /** Leaves out mutants of code run at import (a machine's definition): each needs every test again. */
  readonly ignoreStatic: boolean;
}

const parseArgs = (argv: ReadonlyArray<string>): Options => {
  let only: AreaName[] = [...areaNames];
  let reportOnly = false;
  // One test process by default: the receiver area's tests start nats-servers of their own.
  let concurrency = 1;
  let ignoreStatic = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--report-only") reportOnly = true;
    else if (arg === "--ignore-static") ignoreStatic = true;
    else if (arg === "--concurrency") {
      concurrency = Number(argv[++i]);
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency takes a whole number >= 1\n${usage}`);
    } else if (arg === "--only" || arg.startsWith("--only=")) {
      const value = arg === "--only" ? argv[++i] : arg.slice("--only=".length);
      const names = (value ?? "").split(",").filter((s) => s !== "");
      const bad = names.filter((n) => !isAreaName(n));
      if (names.length === 0 || bad.length > 0) throw new Error(`unknown area ${bad.join(", ") || "(none)"}\n${usage}`);
      only = names as AreaName[];
    } else throw new Error(`unknown argument ${arg}\n${usage}`);
  }
  return { only, reportOnly, concurrency, ignoreStatic };
};

const metaPath = (area: AreaName): string => `reports/mutation/${area}.meta.json`;

/**
 * One area's run. Incremental: a run reuses the results of the area's last one for mutants and
 * tests that did not change, so a run with --ignore-static can be completed by one without it.
 */
const runStryker = (area: AreaName, { concurrency, ignoreStatic }: Options): Promise<number> =>
  new Promise((resolve, reject) => {
    const args = [
      "run",
      "stryker.config.json",
      "--mutate",
      areas[area].mutate.join(","),
      "--concurrency",
      String(concurrency),
      "--incremental",
      "--incrementalFile",
      `reports/mutation/${area}.incremental.json`,
      ...(ignoreStatic ? ["--ignoreStatic"] : []),
    ];
    const child = spawn("node_modules/.bin/stryker", args, {
      stdio: "inherit",
      env: { ...process.env, [areaEnv]: area },
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  });

const main = async (): Promise<void> => {
  const options = parseArgs(process.argv.slice(2));
  const { only, reportOnly } = options;
  const runs: Array<{ summary: AreaSummary; report: StrykerReport }> = [];
  await mkdir("reports/mutation", { recursive: true });
  for (const area of only) {
    if (!reportOnly) {
      process.stdout.write(`\nmutate: ${area} (${areas[area].mutate.join(", ")})\n`);
      const started = Date.now();
      const code = await runStryker(area, options);
      if (code !== 0 || !existsSync("reports/mutation/mutation.json")) throw new Error(`Stryker failed on ${area} (exit ${code})`);
      await rename("reports/mutation/mutation.json", reportPath(area));
      const meta = { date: new Date().toISOString().slice(0, 10), minutes: Math.round((Date.now() - started) / 60_000) };
      await writeFile(metaPath(area), JSON.stringify(meta));
    }
    const report = await readReport(area);
    if (report === undefined) {
      process.stdout.write(`mutate: no report for ${area} yet (${reportPath(area)}); its part of the doc is kept\n`);
      continue;
    }
    const meta = existsSync(metaPath(area))
      ? (JSON.parse(await readFile(metaPath(area), "utf8")) as { date: string; minutes: number })
      : { date: "?", minutes: 0 };
    runs.push({ summary: summarise(area, report, meta.date, meta.minutes), report });
  }
  const table = await writeMutationSection(runs);
  process.stdout.write(`\n${table}\n\nmutate: docs/testing.md ("Mutation score") updated\n`);
};

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
