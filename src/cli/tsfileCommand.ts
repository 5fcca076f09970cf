// `tsync tsfile inspect|generate`: look inside a TsFile, or make a valid one of a given size for tests and benches.

import { commandGroups, commandSpecs, keyTables } from "./commands.js";
import { exitCodes, resolveCommand, UsageError, type Parsed } from "./help.js";
import { generateTsFileToPath, inspectTsFile } from "../actors/tsfileFiles.js";
import { TsFileFormatError } from "../tsfile/bytes.js";
import type { TsFileDevice, TsFileInfo } from "../tsfile/reader.js";
import type { TsFileWriteSummary } from "../tsfile/writer.js";

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

const EXIT_OK = exitCodes.ok;
const EXIT_FAILED = exitCodes.failed;

const SIZE_UNITS: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** "3MiB" → 3145728. Binary units only, so that "1GiB" means what `ls -l` will show. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(text.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "B").toLowerCase()];
  if (!match || unit === undefined) throw new UsageError(`invalid size "${text}": use a number with B, KiB, MiB or GiB`);
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`size "${text}" is too large`);
  return bytes;
}

function parseInteger(text: string, flag: string, min: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got "${text}"`);
  return n;
}

const formatRange = (d: TsFileDevice): string =>
  d.startTime === null || d.endTime === null ? "no data points" : `time ${d.startTime}..${d.endTime}`;

function formatInfo(file: string, info: TsFileInfo): string {
  const lines = [
    `${file}`,
    `  TsFile v${info.version}, ${info.size} bytes, data section [7, ${info.metaOffset}), ${info.devices.length} device(s)`,
  ];
  for (const t of info.tables ?? []) {
    lines.push(`  table ${t.name ?? "null"}: ${t.columns.map((c) => `${c.name ?? "null"} ${c.dataType} ${c.category}`).join(", ")}`);
  }
  for (const d of info.devices) {
    const notes = [formatRange(d), ...(d.table === undefined ? [] : [`table ${d.table}`]), ...(d.aligned ? ["aligned"] : [])];
    lines.push(`  ${JSON.stringify(d.id).slice(1, -1)}  ${notes.join(", ")}`);
    for (const m of d.measurements) lines.push(`    ${m.name}  ${m.dataType}`);
  }
  return lines.join("\n") + "\n";
}

const toJson = (file: string, info: TsFileInfo): string =>
  JSON.stringify({ file, ...info }, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value), 2) + "\n";

async function inspect({ values, positionals: [file = ""] }: Parsed, io: CliIo): Promise<number> {
  let info: TsFileInfo;
  try {
    info = await inspectTsFile(file);
  } catch (error) {
    if (error instanceof TsFileFormatError) {
      io.err(`invalid TsFile ${file}: ${error.reason}\n`);
      return EXIT_FAILED;
    }
    io.err(`cannot read ${file}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILED;
  }
  io.out(values.json ? toJson(file, info) : formatInfo(file, info));
  return EXIT_OK;
}

async function generate({ values, positionals: [out = ""] }: Parsed, io: CliIo): Promise<number> {
  const text = (name: string): string | undefined => (typeof values[name] === "string" ? (values[name] as string) : undefined);
  const asked = text("version");
  const version = asked === "3" ? 3 : asked === "4" ? 4 : undefined;
  if (version === undefined) throw new UsageError(`--version must be 3 or 4, got "${asked}"`);
  const targetBytes = parseSize(text("size") ?? "");
  const devices = text("devices");
  const seed = text("seed");
  const options = {
    targetBytes,
    version,
    ...(devices === undefined ? {} : { devices: parseInteger(devices, "devices", 1) }),
    ...(seed === undefined ? {} : { seed: parseInteger(seed, "seed", 0) }),
  } as const;
  let summary: TsFileWriteSummary;
  try {
    summary = await generateTsFileToPath(out, options);
  } catch (error) {
    io.err(`cannot write ${out}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILED;
  }
  io.out(
    `wrote ${out}: ${summary.size} bytes (target ${targetBytes}), TsFile v${version}, ` +
      `${summary.devices} devices, ${summary.series} series, ${summary.chunks} chunks\n`,
  );
  return EXIT_OK;
}

const usageText = (command: string, message: string): string => {
  const resolved = resolveCommand(commandSpecs, commandGroups, keyTables, ["tsfile", command, "--help"]);
  return `${message}\n\n${resolved.kind === "run" ? "" : resolved.text}`;
};

/** `tsync tsfile inspect|generate` with its parsed flags; a bad value is a usage error (exit status 2). */
export async function runTsfile(command: "inspect" | "generate", parsed: Parsed, io: CliIo = processIo): Promise<number> {
  try {
    return command === "inspect" ? await inspect(parsed, io) : await generate(parsed, io);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(usageText(command, `tsync tsfile ${command}: ${error.message}`));
    return exitCodes.usage;
  }
}

/** `tsync tsfile …` from its words (those after "tsfile"), parsed as main.ts parses every command. */
export async function runTsfileCommand(args: string[], io: CliIo = processIo): Promise<number> {
  const resolved = resolveCommand(commandSpecs, commandGroups, keyTables, ["tsfile", ...args]);
  if (resolved.kind === "help") io.out(resolved.text);
  if (resolved.kind === "usage") io.err(resolved.text);
  if (resolved.kind !== "run") return resolved.kind === "help" ? exitCodes.ok : exitCodes.usage;
  return runTsfile(resolved.spec.name === "tsfile inspect" ? "inspect" : "generate", resolved.parsed, io);
}
