// docs/cli.md from the command table (commands.ts), so the page and `--help` cannot drift.
//   npx tsx src/cli/cliDoc.ts   writes it (a test fails when the page and the table differ)
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { commandSpecs } from "./commands.js";
import { commonExits, exitCodes, usageLine } from "./help.js";

const keyList = (keys: ReadonlyArray<string> | "all", file: string): string =>
  keys === "all" ? `every key of \`conf/${file}.properties\`` : keys.map((k) => `\`${k}\``).join(", ");

export const renderCliDoc = (): string => {
  const lines = [
    "# The tsync command",
    "",
    "Generated from `src/cli/commands.ts` by `npx tsx src/cli/cliDoc.ts`; a test fails when this page and the",
    "commands differ. `tsync <command> --help` (or `-h`) shows the same, with each config key's default and",
    "description from the key tables in `src/config`; `conf/*.properties` has them all.",
    "",
    "## Exit statuses",
    "",
    "Every command uses the same statuses; a command's own meanings are listed with it below.",
    "",
    "| status | meaning |",
    "|---|---|",
    ...commonExits.map(([code, meaning]) => `| ${code} | ${meaning} |`),
    `| ${exitCodes.notRunning} | \`tsync status\` only: no process runs with that config |`,
    "",
    "A first SIGTERM or SIGINT stops `tsync sender` and `tsync receiver` gracefully (exit 0, or 1 when",
    "the stop takes longer than 10 s); a second one exits at once with 128 + the signal's number.",
    "",
    "## Logs",
    "",
    "`log_format=text` (the default) writes one line per event, `<time> <LEVEL> <process>: <message>`, with",
    "every character that could end or disguise a line escaped (see [security.md](security.md)).",
    "`log_format=json` writes one JSON object per line: `time`, `level`, `process`, `message`, and `sender`,",
    "`session`, `file` and `code` (the receiver's status code, [protocol.md](protocol.md)) where they apply.",
    "Strings are JSON-escaped, and DEL, C1 controls, line separators and bidirectional overrides are",
    "written as `\\uXXXX`, so a JSON line is one line too. Errors go to stderr, the rest to stdout.",
    "",
    "## Service units",
    "",
    "`conf/systemd/tsync-receiver.service` and `conf/systemd/tsync-sender@.service` (one instance per",
    "properties file: `tsync-sender@plant-1` reads `/etc/tsync/sender-plant-1.properties`) run tsync",
    "from `/opt/tsync` as user `tsync`: SIGTERM to stop gracefully, restarted 10 s after a failure.",
    "`test/cli/systemdUnits.test.ts` checks them with `systemd-analyze verify`.",
    "",
    "## Commands",
    "",
  ];
  for (const spec of commandSpecs) {
    lines.push(`### tsync ${spec.name}`, "", "```", usageLine(spec), "```", "", spec.summary);
    if (spec.about) lines.push("", spec.about);
    const flags = Object.entries(spec.flags);
    if (spec.args?.length || flags.length) lines.push("");
    for (const a of spec.args ?? []) lines.push(`- \`${a.name}\`${a.optional ? " (optional)" : ""}: ${a.description}`);
    for (const [name, f] of flags)
      lines.push(
        `- \`--${name}${f.type === "string" ? ` ${f.value ?? "VALUE"}` : ""}\`${f.default !== undefined ? ` (default \`${f.default}\`)` : ""}: ${f.description}`,
      );
    for (const use of spec.config ?? []) lines.push("", `Reads from ${use.file}.properties: ${keyList(use.keys, use.file)}.`);
    if (spec.exits?.length) {
      lines.push("", "Exit statuses of its own:", "");
      for (const [code, meaning] of spec.exits) lines.push(`- ${code}: ${meaning}`);
    }
    lines.push("");
  }
  return lines.join("\n");
};

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await writeFile(new URL("../../docs/cli.md", import.meta.url), renderCliDoc());
  console.log("wrote docs/cli.md");
}
