// The bench's fan-in on a cluster (bench/workloads.ts, `clusterfanin`) at its smoke size: the same
// senders into three receiver instances on a 3-node cluster and into one, both measured, with
// their ratio. The figures are docs/scale-out.md's; this keeps the workload that makes them working.
import { expect, test } from "vitest";
import { runBench } from "../../bench/run.js";
import { plans } from "../../bench/workloads.js";

/** The cells of a Markdown table row, `|` escapes respected. */
const cells = (line: string): string[] =>
  line
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

test("cluster fan-in: three receiver instances and one, each measured, with their ratio", async () => {
  const lines: string[] = [];
  const plan = { ...plans.smoke, workloads: ["clusterfanin" as const] };
  const result = await runBench({ plan, install: false, log: (l) => lines.push(l) });
  expect(result.failed, lines.join("\n")).toEqual([]);

  const rows = result.markdown
    .split("\n")
    .filter((l) => l.startsWith("| cluster fan-in: "))
    .map(cells);
  const { senders } = plan.clusterFanIn;
  expect(rows.map((r) => r[1])).toEqual([
    "tsync, 3 receiver instances (aggregate)",
    "tsync, 1 receiver instance (aggregate)",
    "ratio: 3 instances ÷ 1 instance",
  ]);
  const [three, one, ratio] = rows as [string[], string[], string[]];
  for (const r of [three, one]) {
    expect(Number(r[2]), `${r[1]} MB/s`).toBeGreaterThan(0);
    expect(Number(r[3]), `${r[1]} files/s`).toBeGreaterThan(0);
    expect(r[5], `${r[1]} RSS`).toMatch(/senders \d+/);
    expect(r[5], `${r[1]} RSS`).toMatch(/receiver \d+/);
    expect(r[5], `${r[1]} RSS`).toMatch(/nats-server \d+/);
  }
  // Every sender had one session: over the three instances, then all on the one.
  const sessions = (r: string[]) => /sessions per instance ([\d, ]+);/.exec(r[8]!)![1]!.split(", ").map(Number);
  expect(sessions(three)).toHaveLength(3);
  expect(sessions(three).reduce((a, b) => a + b, 0)).toBe(senders);
  expect(sessions(one)).toEqual([senders]);
  expect(one[7]).toMatch(/^\d+\.\d\d \(files\/s\)$/);
  expect(ratio[8]).toMatch(/^\d+\.\d\d× in files\/s and in MB\/s \(\d+ vs \d+ files\/s, \d+\.\d vs \d+\.\d MB\/s\)$/);
});
