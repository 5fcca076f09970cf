import { expect, test } from "vitest";
import { runBench } from "../../bench/run.js";
import { plans } from "../../bench/workloads.js";

/** The cells of a Markdown table row, `|` escapes respected. */
const cells = (line: string): string[] =>
  line
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());

test("the bench's smallest variant measures every tool and prints one well-formed table", async () => {
  const lines: string[] = [];
  const result = await runBench({ plan: plans.smoke, install: false, log: (l) => lines.push(l) });
  expect(result.failed, lines.join("\n")).toEqual([]);

  const all = result.markdown.split("\n");
  const start = all.findIndex((l) => l.startsWith("| workload |"));
  expect(start, result.markdown).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (let i = start + 2; i < all.length && all[i]!.startsWith("|"); i++) rows.push(cells(all[i]!));
  const header = cells(all[start]!);
  expect(header).toEqual([
    "workload",
    "tool",
    "MB/s",
    "files/s",
    "seconds",
    "peak RSS (MB) per process",
    "CPU ms/MiB per process",
    "tsync ÷ this",
    "note",
  ]);
  expect(all[start + 1]).toMatch(/^\|(---\|){9}$/);
  for (const r of rows) expect(r).toHaveLength(header.length);

  const byTool = (prefix: string) => rows.find((r) => r[1]!.startsWith(prefix));
  for (const tool of ["tsync", "raw NATS request/reply", "NATS object store put", "NATS object store get", "cp -a + fsync"]) {
    const r = byTool(tool);
    expect(r, tool).toBeDefined();
    expect(Number(r![2]), `${tool} MB/s`).toBeGreaterThan(0);
    expect(Number(r![4]), `${tool} seconds`).toBeGreaterThan(0);
    expect(r![5], `${tool} RSS`).toMatch(/^[a-z -]+ \d+(, [a-z -]+ \d+)*$/);
  }
  // tsync's own process memory is on its row, and every peer carries its ratio to tsync.
  expect(byTool("tsync")![5]).toMatch(/sender \d+, receiver \d+/);
  // CPU per MiB is measured per process over the transfer, for tsync and for raw request/reply alike.
  expect(byTool("tsync")![6]).toMatch(/^sender \d+\.\d\d, receiver \d+\.\d\d, nats-server \d+\.\d\d ms\/MiB$/);
  expect(byTool("raw NATS request/reply")![6]).toMatch(/^requester \d+\.\d\d, responder \d+\.\d\d, nats-server \d+\.\d\d ms\/MiB$/);
  for (const r of rows.filter((r) => r[0] === "8 MiB file" && r[1] !== "tsync" && r[4] !== ""))
    expect(r[7]).toMatch(/^\d+\.\d\d \(MB\/s\)$/);
  // rsync runs where it is installed; elsewhere its row says why it was skipped.
  const rsync = byTool("rsync")!;
  expect(rsync[4] !== "" || /skipped: rsync is not installed/.test(rsync[8]!)).toBe(true);

  // The targets of this workload are judged, one line each.
  expect(result.markdown).toMatch(/\| 8 MiB file: tsync ≥ 0\.8 × raw NATS request\/reply \| \d+\.\d\d× .* \| (yes|\*\*no\*\*) \|/);
  expect(result.markdown).toMatch(
    /\| 8 MiB file: total CPU per MiB \(all processes\) ≤ 1\.4 × raw NATS request\/reply's \| \d+\.\d\d× \(\d+\.\d\d vs \d+\.\d\d ms\/MiB; .* \| (yes|\*\*no\*\*) \|/,
  );

  // Small files over the emulated link: tsync, then rsync through a relay of its own, compared in files/s.
  const link = rows.filter((r) => r[0]!.startsWith("small files over a 50 ms, 100 Mbit/s link: "));
  expect(link.map((r) => r[1])).toEqual(["tsync over the link emulator", "rsync -a to rsync daemon over the link emulator"]);
  expect(Number(link[0]![3]), "tsync files/s over the link").toBeGreaterThan(0);
  expect(link[0]![5]).toMatch(/sender \d+, receiver \d+/);
  if (link[1]![4] !== "") expect(link[1]![7]).toMatch(/^\d+\.\d\d \(files\/s\)$/);
  else expect(link[1]![8]).toMatch(/skipped: rsync is not installed/);
  expect(result.markdown).toMatch(
    /\| small files over the 50 ms link: tsync ≥ 0\.5 × rsync over the same relay \| .* \| (yes|\*\*no\*\*|not measured) \|/,
  );
});
