// The built-in `exec` storage: runs operator commands to load, remove and check files.
import { spawn } from "node:child_process";
import { copyFile, link, mkdir, rm } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { Effect, Schema } from "effect";
import { fsFailure } from "../files/fsFailure.js";
import { FileRef, PartKind } from "../protocol/messages.js";
import { fileKey, partFileName } from "../protocol/parts.js";
import { AppendLog } from "../files/appendLog.js";
import { summarizeFacts } from "./tsfileFacts.js";
import { appendSchemaLog } from "./storageFs.js";
import { StorageError, type LoadRequest, type SchemaBatch, type Storage, type StorageFactory } from "./storage.js";

/** Most of a failing command's stderr that reaches the sender's summary. */
const stderrTail = 4096;

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/**
 * Runs `command` with `sh -c`, the arguments as `$1`, `$2`, … and `env` added to the receiver's
 * environment. Values reach the command as arguments and variables, never spliced into the
 * command text, so a name cannot inject shell syntax. On timeout the whole process group goes.
 */
export const runCommand = (
  shell: string,
  command: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
  timeoutMs: number,
  stdin?: Uint8Array,
): Promise<CommandResult> =>
  new Promise((done, fail) => {
    const child = spawn(shell, ["-c", command, "tsync", ...args], {
      env: { ...process.env, ...env },
      stdio: [stdin === undefined ? "ignore" : "pipe", "ignore", "pipe"],
      detached: true,
    });
    let stderr = "";
    let timedOut = false;
    child.stderr?.setEncoding("utf8").on("data", (s: string) => {
      stderr = (stderr + s).slice(-stderrTail);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stderr: stderr.trim(), timedOut });
    });
    if (stdin !== undefined && child.stdin) {
      // A command that exits without reading its input is its own business, not a write error.
      child.stdin.on("error", () => undefined);
      child.stdin.end(stdin);
    }
  });

const describeExit = (what: string, r: CommandResult, timeoutMs: number): string =>
  `${what} ${r.timedOut ? `timed out after ${timeoutMs / 1000} s` : r.code === null ? `was killed by ${r.signal}` : `exited with ${r.code}`}` +
  (r.stderr ? `: ${r.stderr}` : " (no stderr)");

/**
 * A command that did not succeed. Its message goes to the sender: the stderr with the command's
 * work directory told as the protocol names it (`sg/vg/tp`); `detail` keeps the stderr as it was,
 * for the receiver's log.
 */
class CommandFailed extends Error {
  readonly detail: string;
  constructor(what: string, r: CommandResult, timeoutMs: number, dir: string | undefined, shownAs: string) {
    super(
      describeExit(
        what,
        dir === undefined
          ? r
          : {
              ...r,
              stderr: r.stderr
                .split(dir + sep)
                .join(shownAs + "/")
                .split(dir)
                .join(shownAs),
            },
        timeoutMs,
      ),
    );
    this.detail = describeExit(what, r, timeoutMs);
  }
}

const Line = Schema.Union([
  Schema.Struct({ op: Schema.Literal("accepted"), ref: FileRef, kind: PartKind, sha256: Schema.String }),
  Schema.Struct({ op: Schema.Literal("deleted"), ref: FileRef }),
]);
type Line = typeof Line.Type;
type Accepted = Extract<Line, { op: "accepted" }>;

/** What the commands accepted, so `has` can answer without asking the destination. */
class AcceptedLog {
  private readonly map = new Map<string, Accepted>();

  private constructor(private readonly log: AppendLog<Line>) {}

  /** An unreadable or damaged log rejects (naming the file): replayed empty, `has` would answer no and the commands would load again what they accepted. */
  static async open(path: string, log: (line: string) => void): Promise<AcceptedLog> {
    const opened = await AppendLog.open(path, Line, log);
    const accepted = new AcceptedLog(opened.log);
    accepted.apply(opened.records);
    return accepted;
  }

  private apply(lines: ReadonlyArray<Line>): void {
    for (const l of lines) {
      if (l.op === "accepted") this.map.set(fileKey(l.ref, { kind: l.kind }), l);
      else for (const kind of PartKind.literals) this.map.delete(fileKey(l.ref, { kind }));
    }
  }

  get(ref: FileRef, kind: PartKind): Accepted | undefined {
    return this.map.get(fileKey(ref, { kind }));
  }

  holds(ref: FileRef): boolean {
    return PartKind.literals.some((kind) => this.map.has(fileKey(ref, { kind })));
  }

  async write(lines: ReadonlyArray<Line>): Promise<void> {
    await this.log.append(lines);
    this.apply(lines);
  }

  async close(): Promise<void> {
    await this.log.close();
  }
}

/** `TSYNC_TSFILE`, `TSYNC_RESOURCE`, `TSYNC_MODS`, `TSYNC_MODS2`: one variable per part kind. */
const envName = (kind: PartKind): string => `TSYNC_${kind.toUpperCase()}`;

/** What a command learns about a file: see docs/plugins.md for the list. */
export const fileEnv = (senderId: string, ref: FileRef, dir: string): Record<string, string> => ({
  TSYNC_SENDER: senderId,
  TSYNC_STORAGE_GROUP: ref.sg,
  TSYNC_VIRTUAL_GROUP: ref.vg,
  TSYNC_TIME_PARTITION: ref.tp,
  TSYNC_FILE_NAME: ref.name,
  TSYNC_FILE: join(dir, ref.name),
});

export interface ExecSettings {
  readonly dataDir: string;
  readonly loadCommand: string;
  readonly deleteCommand: string | undefined;
  readonly schemaCommand: string | undefined;
  readonly shell: string;
  readonly timeoutMs: number;
  /** The receiver's log: what a failed command or file operation said, with its local paths. */
  readonly log?: ((line: string) => void) | undefined;
}

/**
 * Runs a command per loaded file (`plugin.load_command`) and per deleted file
 * (`plugin.delete_command`), e.g. an IoTDB CLI `load`. The parts are linked under their IoTDB
 * names into `<receiver_data_directory>/.tsync/exec/<sender>/<sg>/<vg>/<tp>/` for the command and
 * removed when it returns. Exit 0 = accepted and recorded; anything else fails the load with the
 * command's stderr, and the staged parts stay for the sender's retry.
 */
export const execStorage = async (s: ExecSettings): Promise<Storage> => {
  const root = resolve(s.dataDir, ".tsync", "exec");
  await mkdir(root, { recursive: true });
  const accepted = await AcceptedLog.open(join(root, "accepted.jsonl"), s.log ?? ((line) => process.stderr.write(line + "\n")));
  const workDir = (senderId: string, ref: FileRef) => {
    const p = resolve(root, senderId, ref.sg, ref.vg, ref.tp);
    if (!p.startsWith(root + sep)) throw new Error(`refusing a path outside ${root}: ${p}`);
    return p;
  };
  // The message is the sender's reply: a command's stderr as CommandFailed tells it, otherwise only
  // the errno code; the full error, with its local paths, goes to the log.
  const attempt = <A>(op: string, what: string, f: () => Promise<A>) =>
    Effect.tryPromise({
      try: f,
      catch: (cause) => {
        const full =
          cause instanceof CommandFailed ? cause.detail : cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
        s.log?.(`exec storage: ${op} of ${what} failed: ${full}`);
        return new StorageError({
          op,
          message: cause instanceof CommandFailed ? cause.message : `${op} of ${what} failed: ${fsFailure(cause)}`,
          cause,
        });
      },
    });
  const named = (ref: FileRef) => `${ref.sg}/${ref.vg}/${ref.tp}/${ref.name}`;

  const load = async (req: LoadRequest) => {
    const dir = workDir(req.senderId, req.ref);
    await mkdir(dir, { recursive: true });
    // Every variable is set, empty when it does not apply, so nothing leaks in from the receiver's own environment.
    const env: Record<string, string> = {
      ...fileEnv(req.senderId, req.ref, dir),
      TSYNC_PARTS: req.parts.map((p) => p.kind).join(","),
      TSYNC_TSFILE: "",
      TSYNC_RESOURCE: "",
      TSYNC_MODS: "",
      TSYNC_MODS2: "",
      TSYNC_SHA256: "",
      TSYNC_DEVICES: "",
      TSYNC_DEVICE_COUNT: "",
      TSYNC_START_TIME: "",
      TSYNC_END_TIME: "",
      TSYNC_TSFILE_VERSION: "",
    };
    const placed: string[] = [];
    try {
      for (const part of req.parts) {
        const path = join(dir, partFileName(req.ref.name, part.kind));
        await rm(path, { force: true });
        // A link keeps the staged copy for a retry if the command fails; another disk means a copy.
        await link(part.path, path).catch(async (e: NodeJS.ErrnoException) => {
          if (e.code === "EXDEV" || e.code === "EPERM") await copyFile(part.path, path);
          else throw e;
        });
        placed.push(path);
        env[envName(part.kind)] = path;
        if (part.kind === "tsfile") env["TSYNC_SHA256"] = part.sha256;
      }
      if (req.facts) {
        const f = summarizeFacts(req.facts);
        env["TSYNC_DEVICE_COUNT"] = String(f.deviceCount);
        env["TSYNC_TSFILE_VERSION"] = String(f.version);
        if (f.devices !== undefined) env["TSYNC_DEVICES"] = f.devices;
        if (f.startTime !== undefined) env["TSYNC_START_TIME"] = f.startTime;
        if (f.endTime !== undefined) env["TSYNC_END_TIME"] = f.endTime;
      }
      const r = await runCommand(s.shell, s.loadCommand, [join(dir, req.ref.name), req.senderId], env, s.timeoutMs);
      if (r.code !== 0)
        throw new CommandFailed(`load command for ${named(req.ref)}`, r, s.timeoutMs, dir, `${req.ref.sg}/${req.ref.vg}/${req.ref.tp}`);
      await accepted.write(req.parts.map((p) => ({ op: "accepted", ref: req.ref, kind: p.kind, sha256: p.sha256 })));
    } finally {
      await Promise.all(placed.map((p) => rm(p, { force: true })));
    }
  };

  const remove = async (senderId: string, ref: FileRef) => {
    const existed = accepted.holds(ref);
    if (s.deleteCommand !== undefined) {
      const dir = workDir(senderId, ref);
      const r = await runCommand(
        s.shell,
        s.deleteCommand,
        [join(dir, ref.name), senderId],
        { ...fileEnv(senderId, ref, dir), TSYNC_KNOWN: existed ? "1" : "0" },
        s.timeoutMs,
      );
      if (r.code !== 0) throw new CommandFailed(`delete command for ${named(ref)}`, r, s.timeoutMs, dir, `${ref.sg}/${ref.vg}/${ref.tp}`);
    }
    if (existed) await accepted.write([{ op: "deleted", ref }]);
    return existed;
  };

  const applySchema = async (senderId: string, records: ReadonlyArray<string>, batch: SchemaBatch | undefined) => {
    if (s.schemaCommand === undefined) return appendSchemaLog(resolve(s.dataDir, "schema"), senderId, records, batch);
    const bytes = batch?.bytes ?? Buffer.from(records.map((r) => r + "\n").join(""));
    const env = {
      TSYNC_SENDER: senderId,
      TSYNC_SCHEMA_FORMAT: batch?.format ?? "mlog.txt",
      TSYNC_SCHEMA_EPOCH: String(batch?.epoch ?? 0),
      TSYNC_SCHEMA_OFFSET: String(batch?.offset ?? 0),
      TSYNC_SCHEMA_RECORDS: String(records.length),
    };
    const r = await runCommand(s.shell, s.schemaCommand, [env.TSYNC_SCHEMA_FORMAT, senderId], env, s.timeoutMs, bytes);
    if (r.code !== 0) throw new CommandFailed(`schema command`, r, s.timeoutMs, undefined, "");
  };

  return {
    name: "exec",
    load: (req) => attempt("load", named(req.ref), () => load(req)),
    remove: (senderId, ref) => attempt("remove", named(ref), () => remove(senderId, ref)),
    has: (ref, kind, sha256) => Effect.sync(() => accepted.get(ref, kind)?.sha256 === sha256),
    applySchema: (senderId, records, batch) =>
      attempt("applySchema", `sender ${senderId}'s schema`, () => applySchema(senderId, records, batch)),
    close: Effect.promise(() => accepted.close()),
  };
};

export const createExecStorage: StorageFactory = (ctx) =>
  Effect.tryPromise({
    try: async () => {
      const loadCommand = ctx.options["load_command"]?.trim();
      if (!loadCommand) throw new Error("plugin.load_command is required (a shell command run per loaded file; see docs/plugins.md)");
      const timeoutSeconds = Number(ctx.options["command_timeout_in_second"] ?? "600");
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1)
        throw new Error(
          `plugin.command_timeout_in_second must be a whole number of seconds ≥ 1, not ${ctx.options["command_timeout_in_second"]}`,
        );
      const optional = (k: string) => ctx.options[k]?.trim() || undefined;
      return execStorage({
        dataDir: ctx.dataDir,
        loadCommand,
        deleteCommand: optional("delete_command"),
        schemaCommand: optional("schema_command"),
        shell: optional("shell") ?? "/bin/sh",
        timeoutMs: timeoutSeconds * 1000,
        log: ctx.log,
      });
    },
    catch: (cause) =>
      new StorageError({ op: "open", message: `exec storage: ${cause instanceof Error ? cause.message : String(cause)}`, cause }),
  });
