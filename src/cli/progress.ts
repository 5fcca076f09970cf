// The progress of `tsync sender --once`: one rewritten line in a terminal, a log line every few
// seconds elsewhere (a pipe, a file, a journal).
import { Effect, type Scope } from "effect";
import type { Logger } from "./log.js";
import { oneLine } from "./log.js";
import type { RoundProgress } from "./senderWatch.js";

/** How often progress is sampled (and a terminal's line redrawn), and how often a log line is written without a terminal. */
export const terminalEveryMs = 250;
export const logEveryMs = 3000;
/** The rate is measured over about this long, so a stall shows within seconds. */
const rateWindowMs = 5000;

const size = (n: number): string =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} kB` : `${n} B`;

const duration = (s: number): string => {
  if (!Number.isFinite(s)) return "?";
  const t = Math.round(s);
  return t >= 3600
    ? `${Math.floor(t / 3600)} h ${Math.floor((t % 3600) / 60)} min`
    : t >= 60
      ? `${Math.floor(t / 60)} min ${t % 60} s`
      : `${t} s`;
};

/** Bytes per second over the last few seconds of samples. */
export class RateMeter {
  private readonly samples: Array<{ at: number; bytes: number }> = [];

  add(at: number, bytes: number): void {
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && (this.samples[1]?.at ?? at) <= at - rateWindowMs) this.samples.shift();
  }

  /** Undefined until two samples are apart. */
  perSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at <= first.at) return undefined;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }
}

/** One line: the file in hand and the whole round, with the rate and the time left at that rate. */
export const progressLine = (p: RoundProgress, rate: number | undefined): string => {
  if (p.files === 0) return `${p.state}…`;
  const pct = p.totalBytes > 0 ? Math.floor((p.doneBytes * 100) / p.totalBytes) : 100;
  const speed = rate === undefined ? "" : `, ${size(rate)}/s`;
  const eta = rate === undefined || rate <= 0 ? "" : `, ETA ${duration((p.totalBytes - p.doneBytes) / rate)}`;
  const file = p.file ? `file ${p.file.number}/${p.files} ${p.file.name} ${size(p.file.done)}/${size(p.file.size)}; ` : "";
  return oneLine(`${file}total ${size(p.doneBytes)}/${size(p.totalBytes)} (${pct}%)${speed}${eta}`);
};

/** A pseudo-terminal nobody sized says 0 columns. */
const width = (): number => (process.stdout.columns > 0 ? process.stdout.columns : 120);

/** A line of at most `columns` characters (a wrapped line could not be rewritten in place). */
const fit = (line: string, columns: number): string => (line.length < columns ? line : `${line.slice(0, Math.max(1, columns - 2))}…`);

/**
 * Shows the progress of a round until the scope closes: redrawn on one line of the terminal
 * (`\r`, then erase to the end of line) when stdout is one, else a log line every few seconds.
 * The terminal's line is erased at the end, so the summary starts on a clean line.
 */
export const showProgress = (read: () => RoundProgress | undefined, log: Logger): Effect.Effect<void, never, Scope.Scope> => {
  const tty = process.stdout.isTTY === true;
  const meter = new RateMeter();
  let drawn = false;
  let loggedAt = Date.now();
  const erase = () => {
    if (drawn) process.stdout.write("\r\u001b[K");
    drawn = false;
  };
  const tick = () => {
    const p = read();
    if (!p) return;
    const now = Date.now();
    meter.add(now, p.doneBytes);
    if (tty) {
      process.stdout.write(`\r${fit(progressLine(p, meter.perSecond()), width())}\u001b[K`);
      drawn = true;
    } else if (p.files > 0 && now - loggedAt >= logEveryMs) {
      loggedAt = now;
      log.info(`progress: ${progressLine(p, meter.perSecond())}`, { file: p.file?.name });
    }
  };
  return Effect.asVoid(
    Effect.acquireRelease(
      Effect.sync(() => {
        if (tty) log.beforeLine(erase);
        // Sampled as often either way, so the first log line already has a rate.
        return setInterval(tick, terminalEveryMs);
      }),
      (timer) =>
        Effect.sync(() => {
          clearInterval(timer);
          log.beforeLine(undefined);
          erase();
        }),
    ),
  );
};
