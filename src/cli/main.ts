// The `tsync` command: usage and dispatch to one entry point per subcommand.
import { parseArgs } from "node:util";
import { Effect, type Scope } from "effect";
import { tsyncVersion } from "../version.js";

const usage = `tsync ${tsyncVersion}: ship sealed IoTDB TsFiles from edge to centre over NATS

usage:
  tsync demo [--dir DIR] [--keep]           sample data dir → embedded receiver, one round, show the result
  tsync sender [--config FILE] [--once]     sync rounds every sync_period_in_second (default conf/sender.properties)
  tsync receiver [--config FILE]            receive from senders (default conf/receiver.properties)
  tsync senders add ID --out FILE [--config FILE]   enroll an edge box; writes its credential (nkey seed)
  tsync senders list | remove ID [--config FILE]    who may connect; remove revokes at once
  tsync owners list [--config FILE]         storage groups and the sender that owns each
  tsync owners release GROUP --yes [--transfer-files] [--config FILE]
  tsync catalog [--group G] [--device D] [--json] [--config FILE]
  tsync tsfile inspect FILE [--json]        validate a TsFile, list devices, time ranges, measurements
  tsync tsfile generate OUT --size 1GiB     write a valid TsFile of about that size
  tsync diagrams [--out DIR]                write the state machines as Mermaid diagrams
  tsync --version
`;

/** A subcommand: an Effect run once, in a scope that releases what it acquired when it ends. */
type Command = (args: string[]) => Effect.Effect<number, unknown, Scope.Scope>;

/** Subcommand modules load on demand: `tsync --version` should not pay for the receiver. */
const lazily =
  <M>(load: () => Promise<M>, run: (m: M, args: string[]) => Effect.Effect<number, unknown, Scope.Scope>): Command =>
  (args) =>
    Effect.flatMap(Effect.promise(load), (m) => run(m, args));

const promised = (work: () => Promise<number>) => Effect.tryPromise({ try: work, catch: (e) => e });

const commands: Readonly<Record<string, Command>> = {
  demo: lazily(
    () => import("./demo.js"),
    (m, args) => {
      const { values } = parseArgs({ args, options: { dir: { type: "string" }, keep: { type: "boolean", default: false } } });
      return promised(() => m.runDemo({ dir: values.dir, keep: values.keep ?? false }));
    },
  ),
  sender: lazily(
    () => import("./runSender.js"),
    (m, args) => {
      const { values } = parseArgs({
        args,
        options: { config: { type: "string", default: "conf/sender.properties" }, once: { type: "boolean", default: false } },
      });
      return m.runSender(values.config ?? "conf/sender.properties", values.once ?? false);
    },
  ),
  receiver: lazily(
    () => import("./runReceiver.js"),
    (m, args) => {
      const { values } = parseArgs({ args, options: { config: { type: "string", default: "conf/receiver.properties" } } });
      return m.runReceiver(values.config ?? "conf/receiver.properties");
    },
  ),
  senders: lazily(
    () => import("./senders.js"),
    (m, args) => m.runSenders(args),
  ),
  owners: lazily(
    () => import("./owners.js"),
    (m, args) => m.runOwners(args),
  ),
  catalog: lazily(
    () => import("./catalog.js"),
    (m, args) => m.runCatalog(args),
  ),
  tsfile: lazily(
    () => import("./tsfileCommand.js"),
    (m, args) => promised(() => m.runTsfileCommand(args)),
  ),
  diagrams: lazily(
    () => import("./diagrams.js"),
    (m, args) => promised(() => m.runDiagrams(args)),
  ),
};

const main = (argv: string[]): Effect.Effect<number, unknown, Scope.Scope> => {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${tsyncVersion}\n`);
    return Effect.succeed(0);
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage);
    return Effect.succeed(name === undefined ? 2 : 0);
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`tsync: unknown command "${name}"\n\n${usage}`);
    return Effect.succeed(2);
  }
  return command(rest);
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
    process.exitCode = 2;
  },
);
