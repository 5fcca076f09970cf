// Every `tsync` command once: its arguments, flags, the config keys it reads and its own exit
// statuses. Help, parsing and docs/cli.md derive from these; main.ts maps each to its module.
import { natsClientKeys } from "../config/properties.js";
import { receiverKeys } from "../config/receiver.js";
import { senderKeys } from "../config/sender.js";
import type { CommandSpec, FlagSpec, Tables } from "./help.js";

const senderConfig: FlagSpec = {
  type: "string",
  value: "FILE",
  default: "conf/sender.properties",
  description: "The sender's properties file",
};
const receiverConfig: FlagSpec = {
  type: "string",
  value: "FILE",
  default: "conf/receiver.properties",
  description: "The receiver's properties file",
};
const json: FlagSpec = { type: "boolean", description: "Print JSON instead of text" };

/** What an admin command needs to reach the receiver's NATS server and its JetStream store. */
const adminConnectionKeys = [
  "receiver_data_directory",
  "receiver_group",
  "nats_url",
  "embedded_server_open",
  ...Object.keys(natsClientKeys),
];

/** Keys that locate a sender's work directory, where its status file is. */
export const senderLocationKeys = ["data_directory", "work_directory", "server_ip", "server_port", "nats_url", "receiver_group"] as const;

export const commandSpecs: ReadonlyArray<CommandSpec> = [
  {
    name: "demo",
    summary: "A sample IoTDB data directory, a receiver on an embedded nats-server and one sender round, then what arrived where.",
    flags: {
      dir: { type: "string", value: "DIR", description: "Work in DIR (kept) instead of a temporary directory" },
      keep: { type: "boolean", description: "Keep the temporary directory afterwards" },
    },
    exits: [[1, "a file did not arrive identical"]],
  },
  {
    name: "sender",
    summary: "Runs a sender: a sync round every sync_period_in_second until SIGTERM/SIGINT, or one round with --once.",
    about:
      "With --once in a terminal, progress (file, bytes, rate, ETA) is shown on one rewritten line; without a terminal, as a log line every few seconds. The round's summary follows. `tsync status` reads the running sender's state.",
    flags: { config: senderConfig, once: { type: "boolean", description: "Run one round and exit: 0 only if every file synced" } },
    config: [{ file: "sender", keys: "all" }],
    exits: [
      [1, "--once: the round failed, or files failed or met a storage-group conflict"],
      [0, "stopped by SIGTERM/SIGINT: a stop is not a failure, the next run resumes"],
    ],
  },
  {
    name: "receiver",
    summary: "Runs a receiver until SIGTERM/SIGINT: admits enrolled senders, verifies their files and loads them into storage.",
    about: "`tsync status` reads the running receiver's state.",
    flags: { config: receiverConfig },
    config: [{ file: "receiver", keys: "all" }],
  },
  {
    name: "status",
    summary:
      "What a running sender or receiver is doing, asked of the process itself. Sender: last round, next round, files and bytes pending, quarantined files, conflicts. Receiver: open sessions, totals per sender.",
    about:
      "ROLE is sender or receiver; without it, a --config file with data_directory is a sender's, any other a receiver's. The running process writes its status address to a file only its user can read (the sender's work directory, the receiver's <receiver_data_directory>/.tsync).",
    args: [{ name: "ROLE", optional: true, description: "sender or receiver" }],
    flags: {
      config: { type: "string", value: "FILE", description: "The properties file the process runs with (default conf/<ROLE>.properties)" },
      json,
    },
    config: [
      { file: "sender", keys: senderLocationKeys },
      { file: "receiver", keys: ["receiver_data_directory"] },
    ],
    exits: [
      [1, "the process runs and did not answer, or its last round failed or left files quarantined or in conflict"],
      [3, "no process runs with that config (as `systemctl status` says for a stopped unit)"],
    ],
  },
  {
    name: "senders add",
    summary: "Enrolls an edge box: writes its credential (an nkey seed) to --out and records its public key with the receiver.",
    about: "A running receiver lets the new sender in within about two seconds, with no restart.",
    args: [{ name: "ID", description: "The name the sender syncs as (its sender_name): letters, digits, _ and -" }],
    flags: {
      out: {
        type: "string",
        value: "FILE",
        required: true,
        description: "Where the credential is written, once (mode 600, never overwritten)",
      },
      config: receiverConfig,
    },
    config: [{ file: "receiver", keys: ["receiver_data_directory", "receiver_group", "nats_url", "embedded_server_open"] }],
  },
  {
    name: "senders list",
    summary: "Lists the enrolled senders: id, public key, when added.",
    flags: { json, config: receiverConfig },
    config: [{ file: "receiver", keys: ["receiver_data_directory"] }],
  },
  {
    name: "senders remove",
    summary: "Revokes a sender: a running receiver ends its session and the embedded server drops its connection.",
    args: [{ name: "ID", description: "The enrolled sender's id" }],
    flags: { config: receiverConfig },
    config: [{ file: "receiver", keys: ["receiver_data_directory", "nats_url", "embedded_server_open"] }],
    exits: [[1, "ID is not enrolled"]],
  },
  {
    name: "senders site",
    summary:
      "Prints the hub's user for an edge site's leaf node, allowed exactly what the site's senders may do, and the lines that go with it on the site and the receivers.",
    about:
      'For senders behind leaf nodes of an external hub (docs/scale-out.md, "Edges behind leaf nodes"): paste the user into the hub\'s top-level authorization users, with a password of your choosing.',
    args: [{ name: "SITE", description: "The site's user name on the hub: letters, digits, _ and -" }],
    flags: {
      senders: {
        type: "string",
        value: "ID,...",
        required: true,
        description: "The ids of the senders behind that site's leaf node, comma-separated",
      },
      config: receiverConfig,
    },
    config: [{ file: "receiver", keys: ["receiver_group"] }],
  },
  {
    name: "owners list",
    summary: "Lists storage groups with the sender that owns each, and transfers pending.",
    flags: { json, config: receiverConfig },
    config: [{ file: "receiver", keys: adminConnectionKeys }],
  },
  {
    name: "owners release",
    summary: "Frees a storage group: the next sender that loads a file of it becomes its owner.",
    args: [{ name: "GROUP", description: "The storage group, e.g. root.sg1" }],
    flags: {
      yes: { type: "boolean", description: "Do it (without it, the command only says what it would do, and exits 2)" },
      "transfer-files": {
        type: "boolean",
        description: "The next owner also inherits, and may overwrite and delete, the files loaded so far",
      },
      config: receiverConfig,
    },
    config: [{ file: "receiver", keys: adminConnectionKeys }],
    exits: [[1, "GROUP had no owner (or its transfer was already pending)"]],
  },
  {
    name: "catalog",
    summary: "What has arrived from whom: files with their devices and time ranges, from the receiver's catalog.",
    flags: {
      group: { type: "string", value: "G", description: "Only files of storage group G" },
      device: { type: "string", value: "D", description: "Only files holding device D" },
      json,
      config: receiverConfig,
    },
    config: [{ file: "receiver", keys: ["receiver_data_directory"] }],
  },
  {
    name: "tsfile inspect",
    summary: "Validates a TsFile and lists its version, devices with time ranges, and measurements with data types.",
    args: [{ name: "FILE", description: "The TsFile" }],
    flags: { json },
    exits: [[1, "FILE is not a usable TsFile, or cannot be read"]],
  },
  {
    name: "tsfile generate",
    summary:
      "Writes a valid TsFile of about SIZE bytes with deterministic pseudo-random data: N devices, six series each, many chunks per series.",
    args: [{ name: "OUT", description: "Where the file is written" }],
    flags: {
      size: { type: "string", value: "SIZE", required: true, description: "About this many bytes: a number with B, KiB, MiB or GiB" },
      devices: { type: "string", value: "N", default: "10", description: "Devices in the file" },
      version: { type: "string", value: "3|4", default: "3", description: "TsFile format version" },
      seed: { type: "string", value: "N", description: "Seed of the pseudo-random data" },
    },
    exits: [[1, "OUT cannot be written"]],
  },
  {
    name: "inspector",
    summary:
      "Serves Stately's inspector on this machine until SIGTERM/SIGINT: senders and receivers with stately_inspect_url send their actors' events to it.",
    about:
      "The page at http://127.0.0.1:PORT/ embeds Stately's inspector (loaded from stately.ai by the browser); the same port takes the WebSocket of each process, e.g. stately_inspect_url=ws://127.0.0.1:8080.",
    flags: {
      port: { type: "string", value: "PORT", default: "8080", description: "Port of the page and of the WebSocket" },
      "no-open": { type: "boolean", description: "Do not open a browser" },
    },
  },
  {
    name: "diagrams",
    summary: "Writes the state machines as Mermaid diagrams: DIR/statecharts.md and DIR/machines/*.mmd.",
    flags: { out: { type: "string", value: "DIR", default: "docs", description: "Where to write them" } },
  },
];

/** Commands with subcommands, and what the group is for. */
export const commandGroups: Readonly<Record<string, string>> = {
  senders: "Who may connect to the receiver's embedded nats-server.",
  owners: "Which sender owns each storage group.",
  tsfile: "Look inside a TsFile, or make one.",
};

/** The key tables the help renders config keys from. */
export const keyTables: Tables = { sender: senderKeys, receiver: receiverKeys };
