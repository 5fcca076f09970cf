// Reads Stryker's JSON reports (one per area, reports/mutation/<area>.json) and writes the
// "Mutation score" section of docs/testing.md between its markers. An area that was not run this
// time keeps what the section said of it before, so `npm run mutate -- --only machines` replaces
// only the machines' part.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { areaNames, areas, type AreaName } from "./mutationAreas.js";
import { areaNotes, notRunNotes, survivorNotes, type SurvivorNote } from "./mutationNotes.js";

type MutantStatus = "Killed" | "Survived" | "NoCoverage" | "CompileError" | "RuntimeError" | "Timeout" | "Ignored" | "Pending";

interface Position {
  readonly line: number;
  readonly column: number;
}
interface Mutant {
  readonly id: string;
  readonly mutatorName: string;
  readonly replacement?: string;
  readonly location: { readonly start: Position; readonly end: Position };
  readonly status: MutantStatus;
  readonly static?: boolean;
  readonly testsCompleted?: number;
}

/**
 * A mutant's status as the score counts it. A "survivor" against which no test ran was not tested:
 * Stryker 9 reports so the static mutants that `--ignoreStatic` leaves out when a test imported
 * their module, so they count as ignored, not as survivors.
 */
const statusOf = (m: Mutant): MutantStatus => (m.status === "Survived" && m.testsCompleted === 0 ? "Ignored" : m.status);
/** The parts of Stryker's report (the mutation-testing-report-schema) read here. */
export interface StrykerReport {
  readonly files: { readonly [path: string]: { readonly source: string; readonly mutants: ReadonlyArray<Mutant> } };
}

/** What the doc keeps of an area's run, in a comment beside its text, to rebuild the summary table. */
export interface AreaSummary {
  readonly area: AreaName;
  readonly killed: number;
  readonly timeout: number;
  readonly survived: number;
  readonly noCoverage: number;
  /** Mutants that did not compile or broke the run, and ignored ones: not in the score. */
  readonly errors: number;
  readonly ignored: number;
  /** The run's date (UTC) and minutes. */
  readonly date: string;
  readonly minutes: number;
}

export const reportPath = (area: AreaName): string => `reports/mutation/${area}.json`;

const docPath = "docs/testing.md";
const start = "<!-- mutation-score:start -->";
const end = "<!-- mutation-score:end -->";
const blockOpen = /<!-- mutation-area (\w+) (\{.*?\}) -->\n/g;
const blockClose = (area: AreaName) => `<!-- /mutation-area ${area} -->`;

/** Killed and timed-out mutants over all that were tested or had no test: Stryker's mutation score. */
export const scoreOf = (s: AreaSummary): number => {
  const detected = s.killed + s.timeout;
  const valid = detected + s.survived + s.noCoverage;
  return valid === 0 ? 100 : (100 * detected) / valid;
};

const pct = (n: number): string => `${n.toFixed(1)} %`;

interface Located {
  readonly file: string;
  readonly mutant: Mutant;
  /** The source line the mutant starts on. */
  readonly line: string;
}

const located = (report: StrykerReport): Located[] =>
  Object.entries(report.files).flatMap(([file, f]) => {
    const lines = f.source.split("\n");
    return f.mutants.map((mutant) => ({ file, mutant, line: lines[mutant.location.start.line - 1] ?? "" }));
  });

export const summarise = (area: AreaName, report: StrykerReport, date: string, minutes: number): AreaSummary => {
  const count = (...statuses: MutantStatus[]) =>
    Object.values(report.files).reduce((n, f) => n + f.mutants.filter((m) => statuses.includes(statusOf(m))).length, 0);
  return {
    area,
    killed: count("Killed"),
    timeout: count("Timeout"),
    survived: count("Survived"),
    noCoverage: count("NoCoverage"),
    errors: count("CompileError", "RuntimeError"),
    ignored: count("Ignored"),
    date,
    minutes,
  };
};

const noteFor = (area: AreaName, l: Located): SurvivorNote | undefined =>
  survivorNotes.find(
    (n) =>
      n.area === area &&
      l.file.endsWith(n.file) &&
      l.line.includes(n.line) &&
      (n.mutator === undefined || n.mutator === l.mutant.mutatorName) &&
      (n.replacement === undefined || (l.mutant.replacement ?? "").includes(n.replacement)),
  );

const oneLine = (s: string, max = 70): string => {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};
const code = (s: string): string => `\`${s.replaceAll("`", "'")}\``;
const where = (l: Located): string => `${l.file.replace(/^src\//, "")}:${l.mutant.location.start.line}`;

/** The markdown of one area: what ran, the survivors explained, the others listed, no-coverage counted. */
const areaBlock = (summary: AreaSummary, report: StrykerReport): string => {
  const area = summary.area;
  const def = areas[area];
  const all = located(report);
  const survivors = all.filter((l) => statusOf(l.mutant) === "Survived");
  const explained = new Map<SurvivorNote, Located[]>();
  const unexplained: Located[] = [];
  for (const l of survivors) {
    const note = noteFor(area, l);
    if (note === undefined) unexplained.push(l);
    else explained.set(note, [...(explained.get(note) ?? []), l]);
  }
  const score = scoreOf(summary);
  const out: string[] = [];
  out.push(`### ${def.title}: ${pct(score)}`);
  out.push("");
  const target =
    def.target === undefined
      ? "No target: measured only."
      : score >= def.target
        ? `Target ${def.target} %: met.`
        : `Target ${def.target} %: missed by ${(def.target - score).toFixed(1)} points.`;
  out.push(`${target} Tests run against its mutants: ${def.tests.map(code).join(", ")}.`);
  const note = areaNotes[area];
  if (note !== undefined) out.push("", note);
  if (explained.size > 0) {
    out.push("", "Survivors that matter, and why they survive:", "");
    for (const [n, ls] of explained) out.push(`- ${ls.map(where).join(", ")} (${ls.length}): ${n.why}`);
  }
  if (unexplained.length > 0) {
    const shown = unexplained.slice(0, 40);
    out.push("", `${explained.size > 0 ? "Other survivors" : "Survivors"} (${unexplained.length}):`, "");
    for (const l of shown)
      out.push(`- ${where(l)} ${l.mutant.mutatorName}: ${code(oneLine(l.line, 60))} → ${code(oneLine(l.mutant.replacement ?? ""))}`);
    if (unexplained.length > shown.length)
      out.push(`- and ${unexplained.length - shown.length} more, in \`${reportPath(area)}\` after a run`);
  }
  const uncovered = new Map<string, number>();
  for (const l of all) if (statusOf(l.mutant) === "NoCoverage") uncovered.set(l.file, (uncovered.get(l.file) ?? 0) + 1);
  if (uncovered.size > 0) {
    const list = [...uncovered].sort((a, b) => b[1] - a[1]).map(([f, n]) => `${code(f.replace(/^src\//, ""))} ${n}`);
    out.push("", `Mutants no test of the area reaches, per file: ${list.join(", ")}.`);
  }
  return out.join("\n");
};

interface Block {
  readonly summary: AreaSummary;
  readonly text: string;
}

/** The area blocks of the current section, by area. */
const readBlocks = (section: string): Map<AreaName, Block> => {
  const blocks = new Map<AreaName, Block>();
  for (const m of section.matchAll(blockOpen)) {
    const area = m[1] as AreaName;
    const closeAt = section.indexOf(blockClose(area), m.index);
    if (!areaNames.includes(area) || closeAt < 0) continue;
    const summary = JSON.parse(m[2] ?? "{}") as AreaSummary;
    blocks.set(area, { summary, text: section.slice(m.index + m[0].length, closeAt).trimEnd() });
  }
  return blocks;
};

const table = (blocks: Map<AreaName, Block>): string => {
  const rows = [
    "| area | score | target | killed | timeout | survived | no coverage | errors | ignored | run |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const area of areaNames) {
    const def = areas[area];
    const b = blocks.get(area);
    const target = def.target === undefined ? "–" : `${def.target} %`;
    if (b === undefined) {
      rows.push(`| ${def.title} | not run yet | ${target} | | | | | | | |`);
      continue;
    }
    const s = b.summary;
    const score = scoreOf(s);
    const mark = def.target === undefined ? "" : score >= def.target ? " (met)" : ` (${(score - def.target).toFixed(1)})`;
    rows.push(
      `| ${def.title} | ${pct(score)}${mark} | ${target} | ${s.killed} | ${s.timeout} | ${s.survived} | ${s.noCoverage} | ${s.errors} | ${s.ignored} | ${s.date}, ${s.minutes} min |`,
    );
  }
  return rows.join("\n");
};

const intro = [
  "Written by `npm run mutate`: StrykerJS (`stryker.config.json`, the vitest runner with",
  "`vitest.mutation.config.ts`, per-test coverage, one test process unless `--concurrency N`) mutates each area and",
  "runs the area's tests (`scripts/mutationAreas.ts`) against every mutant; `scripts/mutationReport.ts` writes what",
  "follows from Stryker's JSON reports. `npm run mutate -- --only machines,protocol` reruns some areas and keeps the",
  "others as they were; `--report-only` rewrites this section from the reports of the last runs. Runs are",
  "incremental (`reports/mutation/<area>.incremental.json`): mutants and tests unchanged since an area's last run",
  "keep their results. `--ignore-static` leaves out static mutants (code run at import, such as a machine's",
  "definition), which each rerun every test of the area; they are counted as ignored. In mutation runs each",
  "fast-check property stops after a second with the cases it ran (`scripts/mutationSetup.ts`), so a mutant only a",
  "late case would catch survives there. Mutation runs are not part of `npm test`.",
  "",
  "The score is Stryker's: mutants killed (a test failed) or timed out, over those plus the survivors (every",
  "test that reaches the mutant passed) and those no test of the area reaches. Mutants that did not compile or",
  "broke the run (errors) count for nothing.",
].join("\n");

/** Rewrites the section of docs/testing.md; `runs` are the areas run now, with their reports. */
export const writeMutationSection = async (runs: ReadonlyArray<{ summary: AreaSummary; report: StrykerReport }>): Promise<string> => {
  const doc = await readFile(docPath, "utf8");
  const heading = "## Mutation score";
  const at = doc.indexOf(heading);
  if (at < 0) throw new Error(`${docPath} has no "${heading}" section`);
  const startAt = doc.indexOf(start, at);
  const endAt = doc.indexOf(end, at);
  const hasMarkers = startAt >= 0 && endAt > startAt;
  const blocks = hasMarkers ? readBlocks(doc.slice(startAt, endAt)) : new Map<AreaName, Block>();
  for (const { summary, report } of runs) blocks.set(summary.area, { summary, text: areaBlock(summary, report) });
  const parts = [start, "", intro, "", table(blocks)];
  for (const area of areaNames) {
    const b = blocks.get(area);
    if (b === undefined) {
      const note = notRunNotes[area];
      if (note !== undefined) parts.push("", `### ${areas[area].title}: not run yet`, "", note);
      continue;
    }
    parts.push("", `<!-- mutation-area ${area} ${JSON.stringify(b.summary)} -->`, b.text, blockClose(area));
  }
  parts.push("", end);
  const section = parts.join("\n");
  // Without markers yet, the section's body (up to the next heading of its level or the end) is replaced.
  const bodyStart = at + heading.length;
  const next = doc.indexOf("\n## ", bodyStart);
  const [before, after] = hasMarkers
    ? [doc.slice(0, startAt), doc.slice(endAt + end.length)]
    : [`${doc.slice(0, bodyStart)}\n\n`, next < 0 ? "\n" : `\n${doc.slice(next)}`];
  await writeFile(docPath, `${before}${section}${after}`);
  return table(blocks);
};

export const readReport = async (area: AreaName): Promise<StrykerReport | undefined> =>
  existsSync(reportPath(area)) ? (JSON.parse(await readFile(reportPath(area), "utf8")) as StrykerReport) : undefined;
