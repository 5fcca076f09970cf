// The sender's configuration: every key once, spelled as in conf/sender.properties. The seed's
// keys (IoTDB sync tool) keep their names and defaults; ours follow the same snake_case style.
import { join } from "node:path";
import { Effect, Result } from "effect";
import type { ConfigError } from "./errors.js";
import {
  INT_MAX,
  checkPaths,
  host,
  integer,
  key,
  list,
  dashboardPortKey,
  logLevelKey,
  natsClientKeys,
  natsClientProblem,
  natsServerUrl,
  optional,
  path,
  pluginRef,
  port,
  readProperties,
  renderProperties,
  resolveKeys,
  storageGroup,
  token,
  boolean,
  type Env,
  type KeyTable,
  type Parser,
  type ValuesOf,
} from "./properties.js";

const SYNC = "Sync (keys of the IoTDB sync tool)";
const NATS = "Receiver and NATS connection";
const SOURCE = "Source";
const TRANSFER = "Transfer";

export const MIN_CHUNK_SIZE = 1024;
export const MAX_CHUNK_SIZE = 67108864;

/** 0 (use the server's max_payload) or MIN_CHUNK_SIZE..MAX_CHUNK_SIZE. */
const chunkSize: Parser<number> = (raw, ctx) =>
  Result.flatMap(integer(-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)(raw, ctx), (n) =>
    n === 0 || (n >= MIN_CHUNK_SIZE && n <= MAX_CHUNK_SIZE)
      ? Result.succeed(n)
      : Result.fail(`is out of range (0 = the server's max_payload, else ${MIN_CHUNK_SIZE}..${MAX_CHUNK_SIZE})`),
  );

export const SOURCE_PLUGINS = ["iotdb"] as const;

export const senderKeys = {
  server_ip: key({
    section: SYNC,
    default: "127.0.0.1",
    parse: host,
    description: "Receiver address (IP or host name); unused when nats_url is set",
  }),
  server_port: key({
    section: SYNC,
    default: "5555",
    parse: port,
    description: "Receiver port, 0..65535; the receiver's sync_server_port; unused when nats_url is set",
  }),
  sync_period_in_second: key({
    section: SYNC,
    default: "600",
    parse: integer(0, INT_MAX),
    description: "Seconds between sync rounds, 0..2147483647",
  }),
  iotdb_schema_directory: key({
    section: SYNC,
    default: "",
    parse: optional(path),
    description: "The sender IoTDB's schema file (e.g. $IOTDB_HOME/data/system/schema/mlog.txt); empty = do not sync the schema",
  }),
  sync_storage_groups: key({
    section: SYNC,
    default: "",
    parse: list(storageGroup),
    description: "Storage groups to sync, separated by commas (e.g. root.sg1, root.sg2); empty = all",
  }),
  max_number_of_sync_file_retry: key({
    section: SYNC,
    default: "5",
    parse: integer(0, INT_MAX),
    description: "Retries of a file whose transfer failed, 0..2147483647",
  }),

  data_directory: key({
    section: SOURCE,
    default: undefined,
    example: "./data",
    mustExist: "directory",
    parse: path,
    description: "Required: the IoTDB data directory holding the sealed TsFiles; must exist",
  }),
  source_plugin: key({
    section: SOURCE,
    default: "iotdb",
    parse: pluginRef(SOURCE_PLUGINS),
    description: "Where sealed files are found: iotdb (built in), or a path or package name of a source plugin",
  }),
  sync_on_seal: key({
    section: SOURCE,
    default: "false",
    parse: boolean,
    description: "true = also start a sync round as soon as a TsFile is sealed; false = only every sync_period_in_second",
  }),

  nats_url: key({
    section: NATS,
    default: "",
    parse: optional(list(natsServerUrl)),
    description: "NATS server URL(s), separated by commas (e.g. nats://centre:4222); empty = server_ip:server_port",
  }),
  receiver_group: key({
    section: NATS,
    default: "tsync",
    parse: token,
    description: "Receiver group to sync to (letters, digits, _ and -)",
  }),
  sender_name: key({
    section: NATS,
    default: "",
    parse: optional(token),
    description: "Name of this sender (letters, digits, _ and -); empty = a UUID generated once and kept",
  }),
  work_directory: key({
    section: NATS,
    default: "",
    parse: optional(path),
    description: "Sender state directory; empty = <data_directory>/sync-sender/<receiver address>_<receiver_group>, one per receiver",
  }),

  chunk_size_bytes: key({
    section: TRANSFER,
    default: "0",
    parse: chunkSize,
    description: "Bytes per chunk: 0 = the server's max_payload, else 1024..67108864",
  }),
  window: key({ section: TRANSFER, default: "16", parse: integer(1, 1024), description: "Chunks in flight per file, 1..1024" }),
  files_in_flight: key({
    section: TRANSFER,
    default: "16",
    parse: integer(1, 256),
    description: "Small files (one message each) in flight at once, 1..256; the receiver may allow fewer; 1 = one at a time",
  }),
  max_bandwidth_bytes_per_second: key({
    section: TRANSFER,
    default: "0",
    parse: integer(0, Number.MAX_SAFE_INTEGER),
    description: "Upload limit in bytes per second; 0 = unlimited",
  }),

  ...natsClientKeys,
  ...dashboardPortKey,
  ...logLevelKey,
} as const satisfies KeyTable;

/** One field per key of conf/sender.properties (paths absolute, optional keys `undefined` when off). */
export interface SenderConfig extends ValuesOf<typeof senderKeys> {
  /** `plugin.*` keys with the prefix removed. */
  readonly plugin: Readonly<Record<string, string>>;
}

/**
 * Validates a sender's properties (`source` names the file in messages). Environment variables
 * `TSYNC_<KEY>` win over the file; relative paths resolve against `cwd`. Does not touch the
 * disk: `checkSenderPaths` does.
 */
export const parseSenderConfig = (
  props: Readonly<Record<string, string>>,
  env: Env,
  source: string,
  cwd: string = process.cwd(),
): Result.Result<SenderConfig, ConfigError> =>
  Result.flatMap(resolveKeys(senderKeys, props, env, source, cwd), ({ values, plugin }) => {
    const conflict = natsClientProblem(values);
    return conflict === undefined ? Result.succeed({ ...values, plugin }) : Result.fail(conflict);
  });

/** `data_directory` is a readable directory; auth/TLS files, when set, are readable files. */
export const checkSenderPaths = (config: SenderConfig): Effect.Effect<SenderConfig, ConfigError> =>
  checkPaths(senderKeys, config).pipe(Effect.as(config));

/** Reads, validates and checks conf/sender.properties (or `path`). */
export const loadSenderConfig = (path: string, env: Env = process.env): Effect.Effect<SenderConfig, ConfigError> =>
  readProperties(path).pipe(
    Effect.flatMap((props) => Effect.fromResult(parseSenderConfig(props, env, path))),
    Effect.flatMap(checkSenderPaths),
  );

/** The receiver this sender feeds, as a folder name: two receivers never share sender state. */
export const receiverAddressName = (config: SenderConfig): string =>
  `${(config.nats_url?.[0] ?? `${config.server_ip}:${config.server_port}`).replace(/^[a-z]+:\/\//, "").replace(/[^A-Za-z0-9.-]/g, "_")}_${config.receiver_group}`;

/**
 * `work_directory`, or its default `<data_directory>/sync-sender/<receiver address>_<receiver_group>`,
 * so one data directory can feed two receivers (a sub-factory and two general factories).
 */
export const senderWorkDirectory = (config: SenderConfig): string =>
  config.work_directory ?? join(config.data_directory, "sync-sender", receiverAddressName(config));

export const SENDER_CONF = "conf/sender.properties";

/** conf/sender.properties as generated from `senderKeys`. */
export const renderSenderProperties = (): string =>
  renderProperties(senderKeys, {
    header: [
      "tsync sender configuration.",
      "Generated from the key table in src/config/sender.ts by `npx tsx src/config/renderConf.ts`:",
      "change the table and re-run it (a test fails when this file and the table differ).",
      "",
      "Every key can be overridden by the environment variable TSYNC_<KEY>, e.g. TSYNC_SERVER_PORT=6000.",
      "Values are trimmed; an empty value switches an optional key off.",
      "Relative paths resolve against the directory tsync is started from (like the IoTDB sync tool).",
    ],
    footer: ['Keys starting with "plugin." go to the plugins with the prefix removed, e.g.', "plugin.some_option=value"],
  });
