// The `tsync` command: usage and dispatch to one entry point per command (commands.ts declares them).
import { Effect, type Scope } from "effect";
import { tsyncVersion } from "../version.js";
import { commandGroups, commandSpecs, keyTables } from "./commands.js";
import { exitCodes, resolveCommand, usageLine, type Parsed } from "./help.js";

const overview = (): string =>
  [
    `tsync ${tsyncVersion}: ship sealed IoTDB TsFiles from edge to centre over NATS`,
    "",
    "Usage:",
    ...commandSpecs.map((s) => `  ${usageLine(s)}`),
    "  tsync --version",
    "",
    "tsync <command> --help shows a command's flags, the config keys it reads and its exit statuses.",
    "",
  ].join("\n");

/** A command's run: an Effect run once, in a scope that releases what it acquired when it ends. */
type Run = (p: Parsed) => Effect.Effect<number, unknown, Scope.Scope>;

/** Command modules load on demand: `tsync --version` should not pay for the receiver. */
const lazily =
  <M>(load: () => Promise<M>, run: (m: M, p: Parsed) => Effect.Effect<number, unknown, Scope.Scope>): Run =>
  (p) =>
    Effect.flatMap(Effect.promise(load), (m) => run(m, p));

const promised = (work: () => Promise<number>) => Effect.tryPromise({ try: work, catch: (e) => e });

const str = (p: Parsed, name: string): string | undefined => {
  const v = p.values[name];
  return typeof v === "string" ? v : undefined;
};
const flag = (p: Parsed, name: string): boolean => p.values[name] === true;
/** Flags with a default in their spec are always set; the fallback only satisfies the type. */
const config = (p: Parsed): string => str(p, "config") ?? "";

const runs: Readonly<Record<string, Run>> = {
  demo: lazily(
    () => import("./demo.js"),
    (m, p) => promised(() => m.runDemo({ dir: str(p, "dir"), keep: flag(p, "keep") })),
  ),
  sender: lazily(
    () => import("./runSender.js"),
    (m, p) => m.runSender(config(p), flag(p, "once")),
  ),
  receiver: lazily(
    () => import("./runReceiver.js"),
    (m, p) => m.runReceiver(config(p)),
  ),
  status: lazily(
    () => import("./status.js"),
    (m, p) => m.runStatus({ role: p.positionals[0], config: str(p, "config"), json: flag(p, "json") }),
  ),
  "senders add": lazily(
    () => import("./senders.js"),
    (m, p) => m.addSender(config(p), p.positionals[0] ?? "", str(p, "out") ?? ""),
  ),
  "senders list": lazily(
    () => import("./senders.js"),
    (m, p) => m.listSenders(config(p), flag(p, "json")),
  ),
  "senders remove": lazily(
    () => import("./senders.js"),
    (m, p) => m.removeSenderCommand(config(p), p.positionals[0] ?? ""),
  ),
  "senders site": lazily(
    () => import("./senders.js"),
    (m, p) => m.printSiteUser(config(p), p.positionals[0] ?? "", str(p, "senders") ?? ""),
  ),
  "owners list": lazily(
    () => import("./owners.js"),
    (m, p) => m.listOwners(config(p), flag(p, "json")),
  ),
  "owners release": lazily(
    () => import("./owners.js"),
    (m, p) => m.releaseOwner(config(p), p.positionals[0] ?? "", { yes: flag(p, "yes"), transferFiles: flag(p, "transfer-files") }),
  ),
  catalog: lazily(
    () => import("./catalog.js"),
    (m, p) => m.runCatalog({ config: config(p), group: str(p, "group"), device: str(p, "device"), json: flag(p, "json") }),
  ),
  "tsfile inspect": lazily(
    () => import("./tsfileCommand.js"),
    (m, p) => promised(() => m.runTsfile("inspect", p)),
  ),
  "tsfile generate": lazily(
    () => import("./tsfileCommand.js"),
    (m, p) => promised(() => m.runTsfile("generate", p)),
  ),
  inspector: lazily(
    () => import("./inspectorCommand.js"),
    (m, p) => {
      const port = Number(str(p, "port"));
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        process.stderr.write(`tsync inspector: --port ${str(p, "port") ?? ""} is not a port (1..65535)\n`);
        return Effect.succeed(exitCodes.usage);
      }
      return m.runInspector(port, !flag(p, "no-open"));
    },
  ),
  diagrams: lazily(
    () => import("./diagrams.js"),
    (m, p) => promised(() => m.runDiagrams(str(p, "out") ?? "docs")),
  ),
};

const main = (argv: string[]): Effect.Effect<number, unknown, Scope.Scope> => {
  const [name] = argv;
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${tsyncVersion}\n`);
    return Effect.succeed(exitCodes.ok);
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? process.stderr : process.stdout).write(overview());
    return Effect.succeed(name === undefined ? exitCodes.usage : exitCodes.ok);
  }
  if (!(name in commandGroups) && !commandSpecs.some((s) => s.name === name)) {
    process.stderr.write(`tsync: unknown command "${name}"\n\n${overview()}`);
    return Effect.succeed(exitCodes.usage);
  }
  const resolved = resolveCommand(commandSpecs, commandGroups, keyTables, argv);
  switch (resolved.kind) {
    case "help":
      process.stdout.write(resolved.text);
      return Effect.succeed(exitCodes.ok);
    case "usage":
      process.stderr.write(resolved.text);
      return Effect.succeed(exitCodes.usage);
    case "run": {
      const run = runs[resolved.spec.name];
      return run ? run(resolved.parsed) : Effect.die(`no entry point for ${resolved.spec.name}`);
    }
  }
};

// The process's one run: everything a command acquires is released when its scope closes, before exit.
Effect.runPromise(Effect.scoped(main(process.argv.slice(2)))).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Typed errors (config, plugin, lock) carry a message meant for the operator; print just that.
    const message =
      e instanceof Error
        ? e.message
        : typeof e === "object" && e !== null && "message" in e
          ? String((e as { message: unknown }).message)
          : String(e);
    process.stderr.write(`tsync ${process.argv[2] ?? ""}: ${message}\n`);
    process.exitCode = exitCodes.usage;
  },
);
