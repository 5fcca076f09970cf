// The `tsync` command: usage and dispatch to one entry point per subcommand.
import { parseArgs } from "node:util";
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

const commands: Readonly<Record<string, (args: string[]) => Promise<number>>> = {
  demo: async (args) => {
    const { values } = parseArgs({ args, options: { dir: { type: "string" }, keep: { type: "boolean", default: false } } });
    return (await import("./demo.js")).runDemo({ dir: values.dir, keep: values.keep ?? false });
  },
  sender: async (args) => {
    const { values } = parseArgs({
      args,
      options: { config: { type: "string", default: "conf/sender.properties" }, once: { type: "boolean", default: false } },
    });
    return (await import("./runSender.js")).runSender(values.config ?? "conf/sender.properties", values.once ?? false);
  },
  receiver: async (args) => {
    const { values } = parseArgs({ args, options: { config: { type: "string", default: "conf/receiver.properties" } } });
    return (await import("./runReceiver.js")).runReceiver(values.config ?? "conf/receiver.properties");
  },
  senders: async (args) => (await import("./senders.js")).runSenders(args),
  owners: async (args) => (await import("./owners.js")).runOwners(args),
  catalog: async (args) => (await import("./catalog.js")).runCatalog(args),
  tsfile: async (args) => (await import("./tsfileCommand.js")).runTsfileCommand(args),
  diagrams: async (args) => (await import("./diagrams.js")).runDiagrams(args),
};

const main = async (argv: string[]): Promise<number> => {
  const [name, ...rest] = argv;
  if (name === "--version" || name === "-v") {
    process.stdout.write(`${tsyncVersion}\n`);
    return 0;
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`tsync: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  return command(rest);
};

main(process.argv.slice(2)).then(
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
