// The processes' logger: one escaped line per event, by level, as text or as JSON lines (log_format).
import type { LogFormat } from "../config/properties.js";

export type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** What an event is about, where it applies; JSON lines carry them as fields, text lines only in the message. */
export interface LogFields {
  readonly sender?: string | undefined;
  readonly session?: string | undefined;
  readonly file?: string | undefined;
  /** The receiver's status code (src/protocol/status.ts). */
  readonly code?: number | undefined;
}

export interface Logger {
  readonly debug: (line: string, fields?: LogFields) => void;
  readonly info: (line: string, fields?: LogFields) => void;
  readonly warn: (line: string, fields?: LogFields) => void;
  readonly error: (line: string, fields?: LogFields) => void;
  /** Whether events of `level` are written at all: callers skip building the ones that are not. */
  readonly enabled: (level: Level) => boolean;
  /** Adds fields to every later event (the sender's id, known once its work directory is open). */
  readonly tag: (fields: LogFields) => void;
  /** Runs before each line is written: a terminal's progress line erases itself there (undefined = nothing). */
  readonly beforeLine: (hook: (() => void) | undefined) => void;
}

/**
 * C0 and C1 controls (line feeds, carriage returns, escapes, NEL), DEL, the Unicode line and
 * paragraph separators, and the bidirectional overrides that reorder what a terminal shows.
 */
const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const unicodeEscape = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Log lines carry text from the wire (sender names, ids, error messages), so every character that
 * could end a line or disguise one is escaped: one call always yields one line, which a sender
 * cannot break into a forged entry.
 */
export const oneLine = (text: string): string => text.replace(unsafe, (c) => named[c] ?? unicodeEscape(c));

/**
 * One JSON object on one line. JSON.stringify already escapes C0 controls; what it leaves raw
 * (DEL, C1 controls, line separators, bidirectional overrides) can only sit inside strings, where
 * a `\uXXXX` escape means the same character to a parser and nothing to a terminal.
 */
export const jsonLine = (value: unknown): string => JSON.stringify(value).replace(unsafe, unicodeEscape);

const text = (name: string, l: Level, line: string): string =>
  `${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${oneLine(name)}: ${oneLine(line)}\n`;

const json = (name: string, l: Level, line: string, fields: LogFields): string => {
  const present = Object.entries(fields).filter(([, v]) => v !== undefined && v !== "");
  return `${jsonLine({ time: new Date().toISOString(), level: l, process: name, message: line, ...Object.fromEntries(present) })}\n`;
};

/** One line per event, timestamped, to stdout (errors to stderr), as operators grep them or a collector parses them. */
export const makeLogger = (name: string, level: Level = "info", format: LogFormat = "text"): Logger => {
  let tagged: LogFields = {};
  let before: (() => void) | undefined;
  const at = (l: Level) => (line: string, fields?: LogFields) => {
    if (rank[l] < rank[level]) return;
    before?.();
    const out = format === "json" ? json(name, l, String(line), { ...tagged, ...fields }) : text(name, l, String(line));
    (l === "error" ? process.stderr : process.stdout).write(out);
  };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    enabled: (l) => rank[l] >= rank[level],
    tag: (fields) => {
      tagged = { ...tagged, ...fields };
    },
    beforeLine: (hook) => {
      before = hook;
    },
  };
};
