// The command line's one parser and help: each command declares its flags, arguments and the
// config keys it reads once (commands.ts); parsing, `--help` and usage errors derive from that.
//
// Why not `effect/cli` (Effect 4.1's command parser): running a command needs the platform
// services FileSystem, Path, Terminal, Stdio and ChildProcessSpawner, whose Node implementation is
// @effect/platform-node 4.1, which requires Node 22.19 (and undici 8). tsync runs on Node 20.
import { parseArgs } from "node:util";
import { envNameOf, type KeyTable } from "../config/properties.js";

export interface FlagSpec {
  readonly type: "string" | "boolean";
  /** The value's placeholder in help (`FILE`); string flags only. */
  readonly value?: string;
  readonly short?: string;
  readonly default?: string;
  /** A string flag the command cannot do without. */
  readonly required?: boolean;
  readonly description: string;
}

export interface ArgumentSpec {
  readonly name: string;
  readonly description: string;
  readonly optional?: boolean;
}

/** Which properties file a command reads, and which of its keys (all of them for the processes). */
export interface ConfigUse {
  readonly file: "sender" | "receiver";
  readonly keys: ReadonlyArray<string> | "all";
}

export interface CommandSpec {
  /** Words after `tsync`: "senders add". */
  readonly name: string;
  readonly summary: string;
  /** Longer explanation, shown under the usage. */
  readonly about?: string;
  readonly args?: ReadonlyArray<ArgumentSpec>;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  readonly config?: ReadonlyArray<ConfigUse>;
  /** Exit statuses beyond the common ones (exitCodes), as `[status, meaning]`. */
  readonly exits?: ReadonlyArray<readonly [number, string]>;
}

/** The exit statuses every command shares; docs/cli.md lists them with each command's own. */
export const exitCodes = {
  ok: 0,
  /** The command ran, and what it reports is not a success (a round with failed files, an id not found). */
  failed: 1,
  /** It could not run: a usage error, a config error, a failed start-up (lock held, server unreachable). */
  usage: 2,
  /** `tsync status`: no process of that config is running. */
  notRunning: 3,
} as const;

export const commonExits: ReadonlyArray<readonly [number, string]> = [
  [exitCodes.ok, "success"],
  [exitCodes.failed, "the command ran and its result is not a success (details on stdout)"],
  [exitCodes.usage, "usage error, bad config, or start-up failure (the message on stderr names the cause)"],
];

export const helpFlag: FlagSpec = { type: "boolean", short: "h", description: "Show this help and exit" };

/** A mistake in how the command was called, in a sentence that names the command; then its usage, exit status 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const usageLine = (spec: CommandSpec): string => {
  const args = (spec.args ?? []).map((a) => (a.optional ? `[${a.name}]` : a.name));
  const flags = Object.entries(spec.flags).map(([name, f]) => {
    const text = f.type === "string" ? `--${name} ${f.value ?? "VALUE"}` : `--${name}`;
    return f.required ? text : `[${text}]`;
  });
  return ["tsync", spec.name, ...args, ...flags].join(" ");
};

const wrap = (text: string, width: number, indent: string): string => {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines.map((l) => indent + l).join("\n");
};

const WIDTH = 100;

/** The config keys a command reads, with their defaults and descriptions from the key table itself. */
export const renderConfigKeys = (use: ConfigUse, table: KeyTable): string => {
  const names = use.keys === "all" ? Object.keys(table) : use.keys;
  const out = [
    `Config keys read from ${use.file}.properties (--config), each overridable as TSYNC_<KEY>, e.g. ${envNameOf(names[0] ?? "key")}:`,
  ];
  let section: string | undefined;
  for (const name of names) {
    const spec = table[name];
    if (spec === undefined) continue;
    if (use.keys === "all" && spec.section !== section) {
      section = spec.section;
      out.push(`  ${section}:`);
    }
    const shown = spec.default === undefined ? " (required)" : spec.default === "" ? " (empty by default)" : `=${spec.default}`;
    out.push(`  ${name}${shown}`, wrap(spec.description, WIDTH, "      "));
  }
  return out.join("\n");
};

/** `tsync <command> --help`: usage, what it does, arguments, flags, config keys, exit statuses. */
export const renderHelp = (spec: CommandSpec, tables: Tables): string => {
  const parts = [`Usage: ${usageLine(spec)}`, "", wrap(spec.summary, WIDTH, "")];
  if (spec.about) parts.push("", wrap(spec.about, WIDTH, ""));
  if (spec.args && spec.args.length > 0) {
    parts.push("", "Arguments:");
    for (const a of spec.args) parts.push(`  ${a.name}`, wrap(a.description, WIDTH, "      "));
  }
  parts.push("", "Flags:");
  for (const [name, f] of Object.entries({ ...spec.flags, help: helpFlag })) {
    const head = `  ${f.short ? `-${f.short}, ` : ""}--${name}${f.type === "string" ? ` ${f.value ?? "VALUE"}` : ""}`;
    parts.push(head + (f.default !== undefined ? ` (default ${f.default})` : ""), wrap(f.description, WIDTH, "      "));
  }
  for (const use of spec.config ?? []) parts.push("", renderConfigKeys(use, tables[use.file]));
  parts.push("", "Exit status:");
  for (const [code, meaning] of [...commonExits, ...(spec.exits ?? [])]) parts.push(`  ${code}  ${meaning}`);
  return `${parts.join("\n")}\n`;
};

export const wantsHelp = (args: ReadonlyArray<string>): boolean => args.includes("--help") || args.includes("-h");

export type Tables = Readonly<Record<ConfigUse["file"], KeyTable>>;

/** What the command line asks for: help to print, a usage error, or a command to run with its parsed flags. */
export type Resolved =
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "usage"; readonly text: string }
  | { readonly kind: "run"; readonly spec: CommandSpec; readonly parsed: Parsed };

/** `tsync senders --help`: the group's subcommands, one usage line each. */
export const renderGroupHelp = (group: string, about: string, specs: ReadonlyArray<CommandSpec>): string =>
  [
    `Usage: tsync ${group} <command> ...`,
    "",
    about,
    "",
    ...specs.filter((s) => s.name.startsWith(`${group} `)).flatMap((s) => [`  ${usageLine(s)}`, wrap(s.summary, WIDTH, "      ")]),
    "",
    `tsync ${group} <command> --help shows a command's flags and the config keys it reads.`,
    "",
  ].join("\n");

const usageError = (spec: CommandSpec, message: string): Resolved => ({
  kind: "usage",
  text: `${message}\nUsage: ${usageLine(spec)}\n(tsync ${spec.name} --help for more)\n`,
});

/**
 * Finds the command `args` (the words after `tsync`, or after a group's name when `group` is
 * given) names, and parses its flags: one way for every command and subcommand.
 */
export const resolveCommand = (
  specs: ReadonlyArray<CommandSpec>,
  groups: Readonly<Record<string, string>>,
  tables: Tables,
  args: ReadonlyArray<string>,
): Resolved => {
  const [name = "", ...rest] = args;
  const about = groups[name];
  let spec: CommandSpec | undefined;
  let tail = rest;
  if (about !== undefined) {
    const [sub, ...subRest] = rest;
    if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help")
      return { kind: sub === undefined ? "usage" : "help", text: renderGroupHelp(name, about, specs) };
    spec = specs.find((s) => s.name === `${name} ${sub}`);
    if (spec === undefined)
      return { kind: "usage", text: `tsync ${name}: unknown subcommand "${sub}"\n\n${renderGroupHelp(name, about, specs)}` };
    tail = subRest;
  } else spec = specs.find((s) => s.name === name);
  if (spec === undefined) return { kind: "usage", text: `tsync: unknown command "${name}"\n` };
  if (wantsHelp(tail)) return { kind: "help", text: renderHelp(spec, tables) };
  try {
    return { kind: "run", spec, parsed: parseCommand(spec, tail) };
  } catch (e) {
    if (e instanceof UsageError) return usageError(spec, e.message);
    throw e;
  }
};

export interface Parsed {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: ReadonlyArray<string>;
}

/**
 * Parses `args` against the spec: unknown flags, a missing or extra argument, a flag without its
 * value are `UsageError`s. `--help` is handled by the caller before this (`wantsHelp`).
 */
export const parseCommand = (spec: CommandSpec, args: ReadonlyArray<string>): Parsed => {
  const options = Object.fromEntries(
    Object.entries(spec.flags).map(([name, f]) => [
      name,
      {
        type: f.type,
        ...(f.short ? { short: f.short } : {}),
        ...(f.default !== undefined && f.type === "string" ? { default: f.default } : {}),
      },
    ]),
  );
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (e) {
    // parseArgs reports unknown flags and missing values as TypeErrors with an ERR_PARSE_ARGS_* code.
    throw new UsageError(`tsync ${spec.name}: ${e instanceof Error ? e.message : String(e)}`);
  }
  for (const [name, f] of Object.entries(spec.flags))
    if (f.required && parsed.values[name] === undefined)
      throw new UsageError(`tsync ${spec.name} needs --${name} ${f.value ?? "VALUE"}: ${f.description}`);
  const declared = spec.args ?? [];
  const required = declared.filter((a) => !a.optional).length;
  if (parsed.positionals.length < required)
    throw new UsageError(`tsync ${spec.name}: missing ${declared[parsed.positionals.length]?.name ?? "argument"}`);
  if (parsed.positionals.length > declared.length)
    throw new UsageError(`tsync ${spec.name}: unexpected argument ${JSON.stringify(parsed.positionals[declared.length])}`);
  // No flag is declared `multiple`, so no value is an array.
  return { values: parsed.values as Parsed["values"], positionals: parsed.positionals };
};
