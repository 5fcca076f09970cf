// Child processes for the bench: spawn, wait for a line or an exit, and follow each process's
// peak resident memory (VmHWM) for as long as it runs, including the processes it forks.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";

/** Peak RSS in bytes per process name (the largest process of that name in the tree). */
export type PeakRss = Record<string, number>;
/** CPU seconds (user + system) per labelled process. */
export type CpuSeconds = Record<string, number>;

/** What each process spent between two `cpuNow` snapshots. */
export const cpuSpent = (before: CpuSeconds, after: CpuSeconds): CpuSeconds =>
  Object.fromEntries(Object.entries(after).map(([k, v]) => [k, Math.max(0, v - (before[k] ?? 0))]));

/** Snapshots several watches at once, as one record. */
export const cpuOfAll = async (watches: ReadonlyArray<RssWatch>): Promise<CpuSeconds> =>
  Object.assign({}, ...(await Promise.all(watches.map((w) => w.cpuNow()))));

/** Clock ticks per second of /proc/<pid>/stat times; 100 on every Linux this runs on. */
const ticksPerSecond = 100;

const readStatus = async (pid: number): Promise<{ name: string; hwm: number; cpu: number } | undefined> => {
  const [text, stat] = await Promise.all([
    readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined),
    readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined),
  ]);
  if (!text || !stat) return undefined;
  const name = /^Name:\s+(.+)$/m.exec(text)?.[1]?.trim() ?? "?";
  const kb = Number(/^VmHWM:\s+(\d+) kB$/m.exec(text)?.[1] ?? NaN);
  // Fields after the parenthesised command: state is field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  return Number.isFinite(kb) ? { name, hwm: kb * 1024, cpu: Number.isFinite(cpu) ? cpu : 0 } : undefined;
};

const childrenOf = async (pid: number): Promise<number[]> => {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
  return text.split(/\s+/).filter(Boolean).map(Number);
};

/**
 * Samples VmHWM of `rootPid` and its descendants every `everyMs`. VmHWM only grows, so the last
 * sample before a process exits is its peak up to then; a 20 ms period misses at most that much.
 */
export class RssWatch {
  private readonly peaks = new Map<number, { name: string; hwm: number; cpu: number }>();
  private readonly timer: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly rootPid: number,
    private readonly label: (name: string, pid: number) => string = (name) => name,
    everyMs = 20,
  ) {
    this.timer = setInterval(() => void this.sample(), everyMs);
    this.timer.unref();
    void this.sample();
  }

  async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const todo = [this.rootPid];
      while (todo.length > 0) {
        const pid = todo.pop()!;
        const s = await readStatus(pid);
        if (!s) continue;
        const prev = this.peaks.get(pid);
        this.peaks.set(pid, { name: s.name, hwm: Math.max(prev?.hwm ?? 0, s.hwm), cpu: Math.max(prev?.cpu ?? 0, s.cpu) });
        todo.push(...(await childrenOf(pid)));
      }
    } finally {
      this.busy = false;
    }
  }

  private stopped = false;

  /** Stops sampling and returns the peak per labelled process. */
  async stop(): Promise<PeakRss> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 5));
    if (!this.stopped) await this.sample();
    this.stopped = true;
    const out: PeakRss = {};
    for (const [pid, p] of this.peaks) {
      const key = this.label(p.name, pid);
      out[key] = Math.max(out[key] ?? 0, p.hwm);
    }
    return out;
  }

  /** Samples now and returns CPU seconds per labelled process (see `cpuSeconds`). */
  async cpuNow(): Promise<Record<string, number>> {
    while (this.busy) await new Promise((r) => setTimeout(r, 1));
    await this.sample();
    return this.cpuSeconds();
  }

  /** CPU seconds (user + system) per labelled process, summed over processes of a label, as last sampled. */
  cpuSeconds(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [pid, p] of this.peaks) {
      const key = this.label(p.name, pid);
      out[key] = (out[key] ?? 0) + p.cpu;
    }
    return out;
  }
}

export interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything printed so far (stdout and stderr, interleaved), for error messages. */
  output(): string;
  /** How much has been printed so far: pass it to `line` to wait only for what comes after. */
  mark(): number;
  /** Resolves with the time (performance.now) at which output after `after` matched `re`. */
  line(re: RegExp, timeoutMs?: number, after?: number): Promise<{ at: number; match: RegExpExecArray }>;
  /** Resolves when the process exits, with its code and the time it exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  readonly rss: RssWatch;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions extends SpawnOptions {
  /** Name used for the root process in peak-RSS reports (default: its process name). */
  readonly role?: string;
  /** Copies output to this process's stderr, prefixed; for debugging a bench. */
  readonly echo?: boolean;
}

/** Starts a child, following its output line by line and its memory. */
export const start = (command: string, args: ReadonlyArray<string>, options: StartOptions = {}): Running => {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
  if (child.pid === undefined) throw new Error(`cannot start ${command}`);
  const pid = child.pid;
  let text = "";
  // When each piece of output arrived, so a line already printed is dated when it came, not when asked.
  const arrivals: { end: number; at: number }[] = [];
  const arrivedAt = (pos: number): number => arrivals.find((a) => a.end >= pos)?.at ?? performance.now();
  const waiters: { re: RegExp; after: number; resolve: (v: { at: number; match: RegExpExecArray }) => void }[] = [];
  const onData = (b: Buffer) => {
    const at = performance.now();
    const piece = b.toString();
    if (options.echo) process.stderr.write(piece.replace(/^/gm, `[${options.role ?? command}] `));
    text += piece;
    arrivals.push({ end: text.length, at });
    for (const w of [...waiters]) {
      const m = w.re.exec(text.slice(w.after));
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve({ at, match: m });
      }
    }
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal, at: performance.now() }));
    child.once("error", (e) => {
      text += `\n${e.message}`;
      resolve({ code: -1, signal: null, at: performance.now() });
    });
  });
  const rss = new RssWatch(pid, (name, p) => (p === pid && options.role ? options.role : name));
  void exited.then(() => rss.stop());
  return {
    child,
    pid,
    output: () => text,
    mark: () => text.length,
    line: (re, timeoutMs = 60_000, after = 0) =>
      new Promise((resolve, reject) => {
        const m = re.exec(text.slice(after));
        if (m) return resolve({ at: arrivedAt(after + m.index + m[0].length), match: m });
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${re} within ${timeoutMs} ms from ${command}:\n${text.slice(-3000)}`)),
          timeoutMs,
        );
        const w = {
          re,
          after,
          resolve: (v: { at: number; match: RegExpExecArray }) => {
            clearTimeout(timer);
            resolve(v);
          },
        };
        waiters.push(w);
        void exited.then(() => {
          if (!waiters.includes(w)) return;
          waiters.splice(waiters.indexOf(w), 1);
          clearTimeout(timer);
          reject(new Error(`${command} exited before printing ${re}:\n${text.slice(-3000)}`));
        });
      }),
    exited,
    rss,
    stop: async (graceMs = 15_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
};

const gnuTime = "/usr/bin/time";
const hasGnuTime = existsSync(gnuTime);
const maxRssLine = /^tsync-bench-maxrss-kb=(\d+)$/m;

/**
 * Runs a command to the end; rejects with its output when it fails. Native tools often finish
 * before the first sample, so their peak comes from the kernel's own count (GNU time's %M) where
 * that is installed; the few milliseconds of `time` itself are inside `ms`.
 */
export const run = async (
  command: string,
  args: ReadonlyArray<string>,
  options: StartOptions = {},
): Promise<{ ms: number; output: string; rss: PeakRss }> => {
  const t0 = performance.now();
  const p = hasGnuTime ? start(gnuTime, ["-f", "tsync-bench-maxrss-kb=%M", command, ...args], options) : start(command, args, options);
  const e = await p.exited;
  const sampled = await p.rss.stop();
  const output = p.output().replace(maxRssLine, "");
  if (e.code !== 0) throw new Error(`${command} ${args.join(" ")} failed (${e.code ?? e.signal}):\n${output.slice(-3000)}`);
  const kb = maxRssLine.exec(p.output())?.[1];
  const role = options.role ?? command;
  return { ms: e.at - t0, output, rss: kb === undefined ? sampled : { [role]: Number(kb) * 1024 } };
};

/** tsx's loader, resolved here: a child started in another directory could not find it by name. */
export const tsxLoader = import.meta.resolve("tsx");

/** `node` with tsx, so bench children run from their TypeScript sources like `bin/tsync.js`. */
export const tsxArgs = (script: string, args: ReadonlyArray<string> = []): string[] => ["--import", tsxLoader, script, ...args];
