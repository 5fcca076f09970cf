// `tsync diagrams`: docs/statecharts.md, every machine as a Mermaid diagram.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AnyStateMachine } from "xstate";
import { toMermaid } from "../machines/diagram.js";
import { receiverSession } from "../machines/receiverSession.js";
import { senderLifecycle } from "../machines/senderLifecycle.js";
import { senderRound } from "../machines/senderRound.js";

export const machines: ReadonlyArray<{ readonly machine: AnyStateMachine; readonly title: string; readonly about: string }> = [
  {
    machine: senderLifecycle,
    title: "Sender process",
    about: "Rounds every sync_period_in_second (or sooner on a sealed file with sync_on_seal), until stopped.",
  },
  {
    machine: senderRound,
    title: "Sender round",
    about:
      "Recover, scan, hello, ship the schema log from its persisted offset (when iotdb_schema_directory is set), then each new file part by part (transfer → verify), load, confirm; deletions; bye. Failures retry with jittered backoff up to max_number_of_sync_file_retry, then the file is quarantined for the round.",
  },
  {
    machine: receiverSession,
    title: "Receiver session",
    about:
      "One per connected sender: admission (is_sync_enable, ip_white_list, capacity), then offers, chunks, commits (digest + TsFile check), loads and deletes, until bye or the idle timeout.",
  },
];

/** docs/statecharts.md: every machine as a Mermaid diagram, regenerated from the definitions. */
export const renderStatecharts = (): string =>
  [
    "# State machines",
    "",
    "Generated from `src/machines` by `tsync diagrams`; a test fails when this page and the machines differ.",
    "The live dashboard draws the same charts with the active state of each running actor.",
    "",
    ...machines.flatMap(({ machine, title, about }) => [
      `## ${title} (\`${machine.id}\`)`,
      "",
      about,
      "",
      "```mermaid",
      toMermaid(machine).trimEnd(),
      "```",
      "",
    ]),
  ].join("\n");

/** `tsync diagrams [--out DIR]`. */
export const runDiagrams = async (out: string): Promise<number> => {
  await mkdir(join(out, "machines"), { recursive: true });
  for (const { machine } of machines) await writeFile(join(out, "machines", `${machine.id}.mmd`), toMermaid(machine));
  await writeFile(join(out, "statecharts.md"), renderStatecharts());
  process.stdout.write(`wrote ${join(out, "statecharts.md")} and ${machines.length} diagrams in ${join(out, "machines")}\n`);
  return 0;
};
