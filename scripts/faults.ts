// The whole fault matrix: every fault in every state it is defined for, with real child
// processes and a real nats-server, one cell after another. The suite runs the cells marked quick
// (test/faults/*.test.ts); this runs them all and prints the matrix for docs/faults.md.
//
//   npx tsx scripts/faults.ts                 all cells, a Markdown table on stdout
//   npx tsx scripts/faults.ts --only deleting cells whose name matches a regular expression
//   npx tsx scripts/faults.ts --quick         only the suite's cells
//   npx tsx scripts/faults.ts --json out.json also write the results as JSON
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";
import { allCells, canMountTmpfs, cellName, senderTransientStates, type CellResult } from "../test/faults/cells.js";

const { values } = parseArgs({
  options: { only: { type: "string" }, quick: { type: "boolean", default: false }, json: { type: "string" } },
});
const only = values.only === undefined ? undefined : new RegExp(values.only);
const mountable = await canMountTmpfs(tmpdir());

const mb = (n: number) => (n / 1e6).toFixed(2);
const cells = allCells().filter((c) => (!values.quick || c.quick) && (!only || only.test(cellName(c))));
const rows: Array<{ fault: string; state: string; quick: boolean; ms: number } & CellResult> = [];
let failed = 0;
for (const cell of cells) {
  const name = cellName(cell);
  if (cell.fault.includes("tmpfs") && !mountable) {
    process.stderr.write(`skip  ${name}: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)\n`);
    continue;
  }
  const started = Date.now();
  let result: CellResult;
  try {
    result = await cell.run();
  } catch (e) {
    result = { outcome: "the cell could not run", resumes: [], problems: [e instanceof Error ? e.message : String(e)] };
  }
  const ms = Date.now() - started;
  if (result.problems.length > 0) failed++;
  rows.push({ fault: cell.fault, state: cell.state, quick: cell.quick, ms, ...result });
  process.stderr.write(
    `${result.problems.length === 0 ? "ok  " : "FAIL"}  ${name} (${(ms / 1000).toFixed(1)} s)${result.problems.map((p) => `\n      ${p}`).join("")}\n`,
  );
}

const lines = [
  "| fault | state | suite | outcome | file (MB) | held at fault (MB) | resumed from (MB) | sent after (MB) | re-sent (bytes) | result |",
  "|---|---|---|---|---|---|---|---|---|---|",
];
for (const r of rows) {
  const x = r.resumes[0];
  lines.push(
    [
      r.fault,
      `\`${r.state}\``,
      r.quick ? "yes" : "",
      r.outcome.replaceAll("|", "\\|"),
      x ? mb(x.size) : "",
      x ? mb(x.held) : "",
      x ? mb(x.resumedFrom) : "",
      x ? mb(x.sent) : "",
      x ? String(x.resent) : "",
      r.problems.length === 0 ? "pass" : `FAIL: ${r.problems.join("; ").replaceAll("|", "\\|")}`,
    ]
      .join(" | ")
      .replace(/^/, "| ") + " |",
  );
}
process.stdout.write(lines.join("\n") + "\n");
process.stdout.write(
  `\nStates passed through in one step (no kill point between entry and exit): ${senderTransientStates()
    .map((s) => `\`${s}\``)
    .join(", ")}.\n`,
);
process.stdout.write(`${rows.length - failed} of ${rows.length} cells passed\n`);
if (values.json) await writeFile(values.json, JSON.stringify(rows, null, 2) + "\n");
process.exitCode = failed === 0 ? 0 : 1;
