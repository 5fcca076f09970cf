// The processes' logger: one escaped line per event, by level.
export type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  readonly debug: (line: string) => void;
  readonly info: (line: string) => void;
  readonly warn: (line: string) => void;
  readonly error: (line: string) => void;
}

/**
 * C0 and C1 controls (line feeds, carriage returns, escapes, NEL), DEL, the Unicode line and
 * paragraph separators, and the bidirectional overrides that reorder what a terminal shows.
 */
const unsafe = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * Log lines carry text from the wire (sender names, ids, error messages), so every character that
 * could end a line or disguise one is escaped: one call always yields one line, which a sender
 * cannot break into a forged entry.
 */
export const oneLine = (text: string): string =>
  text.replace(unsafe, (c) => named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** One line per event, timestamped, to stdout (errors to stderr), as operators grep them. */
export const makeLogger = (name: string, level: Level = "info"): Logger => {
  const at = (l: Level) => (line: string) => {
    if (rank[l] < rank[level]) return;
    const text = `${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${oneLine(name)}: ${oneLine(String(line))}\n`;
    (l === "error" ? process.stderr : process.stdout).write(text);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
};
