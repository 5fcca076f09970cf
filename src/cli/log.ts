export type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  readonly debug: (line: string) => void;
  readonly info: (line: string) => void;
  readonly warn: (line: string) => void;
  readonly error: (line: string) => void;
}

/** One line per event, timestamped, to stdout (errors to stderr), as operators grep them. */
export const makeLogger = (name: string, level: Level = "info"): Logger => {
  const at = (l: Level) => (line: string) => {
    if (rank[l] < rank[level]) return;
    const text = `${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${name}: ${line}\n`;
    (l === "error" ? process.stderr : process.stdout).write(text);
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
};
