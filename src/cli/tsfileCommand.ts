// `tsync tsfile inspect|generate`: look inside a TsFile, or make a valid one of a given size for tests and benches.

import { parseArgs } from "node:util";
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

const USAGE = `Usage:
  tsync tsfile inspect FILE [--json]
      Validate FILE and list its version, devices with time ranges, and measurements with data types.
      Exit status 1 when FILE is not a usable TsFile.
  tsync tsfile generate OUT --size SIZE [--devices N] [--version 3|4] [--seed N]
      Write a valid TsFile of about SIZE bytes (suffixes B, KiB, MiB, GiB) with deterministic
      pseudo-random data: N devices (default 10), six series each, many chunks per series.
`;

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {
  override readonly name = "UsageError";
}

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

async function inspect(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: "boolean" } } });
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) throw new UsageError("inspect takes exactly one FILE");
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

async function generate(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { size: { type: "string" }, devices: { type: "string" }, version: { type: "string" }, seed: { type: "string" } },
  });
  const [out, ...extra] = positionals;
  if (out === undefined || extra.length > 0) throw new UsageError("generate takes exactly one OUT path");
  if (values.size === undefined) throw new UsageError("generate needs --size, e.g. --size 1GiB");
  const version = values.version === undefined ? 3 : values.version === "3" ? 3 : values.version === "4" ? 4 : undefined;
  if (version === undefined) throw new UsageError(`--version must be 3 or 4, got "${values.version}"`);
  const targetBytes = parseSize(values.size);
  const options = {
    targetBytes,
    version,
    ...(values.devices === undefined ? {} : { devices: parseInteger(values.devices, "devices", 1) }),
    ...(values.seed === undefined ? {} : { seed: parseInteger(values.seed, "seed", 0) }),
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

/** `tsync tsfile …`; `args` are the words after "tsfile". Returns the exit status. */
export async function runTsfileCommand(args: string[], io: CliIo = processIo): Promise<number> {
  const [subcommand, ...rest] = args;
  try {
    if (subcommand === undefined || subcommand === "--help" || subcommand === "-h" || subcommand === "help" || rest.includes("--help")) {
      (subcommand === undefined ? io.err : io.out)(USAGE);
      return subcommand === undefined ? EXIT_USAGE : EXIT_OK;
    }
    if (subcommand === "inspect") return await inspect(rest, io);
    if (subcommand === "generate") return await generate(rest, io);
    throw new UsageError(`unknown subcommand "${subcommand}"`);
  } catch (error) {
    // parseArgs signals bad flags with TypeErrors carrying an ERR_PARSE_ARGS_* code.
    const parseError = error instanceof TypeError && String((error as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");
    if (error instanceof UsageError || parseError) {
      io.err(`${(error as Error).message}\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    throw error;
  }
}
