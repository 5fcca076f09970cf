// The receiver's configuration: every key once, spelled as in conf/receiver.properties. The
// seed's keys (IoTDB sync tool: is_sync_enable, sync_server_port, ip_white_list) keep their
// names and defaults; ours follow the same snake_case style.
import { Effect, Result } from "effect";
import { keyConflict, type ConfigError } from "./errors.js";
import { ipWhiteListParser } from "./ipWhiteList.js";
import {
  INT_MAX,
  boolean,
  checkPaths,
  httpUrl,
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
  token,
  type Env,
  type KeyTable,
  type ValuesOf,
} from "./properties.js";

const SYNC = "Sync server (keys of the IoTDB sync tool)";
const NATS = "NATS server";
const STORAGE = "Storage and limits";
const EMBEDDED_TLS = "TLS of the embedded nats-server";

export const STORAGE_PLUGINS = ["fs", "objectstore", "exec"] as const;

export const receiverKeys = {
  is_sync_enable: key({
    section: SYNC,
    default: "false",
    parse: boolean,
    description: "Whether senders may sync: set to true to receive files; false refuses every sender",
  }),
  sync_server_port: key({
    section: SYNC,
    default: "5555",
    parse: port,
    description: "Port the embedded nats-server listens on for senders, 0..65535; unused when nats_url is set",
  }),
  ip_white_list: key({
    section: SYNC,
    default: "0.0.0.0/0",
    parse: ipWhiteListParser,
    description: "Sender networks allowed, as CIDRs separated by commas (e.g. 192.168.0.0/16, fd00::/8); empty = nobody",
  }),

  nats_url: key({
    section: NATS,
    default: "",
    parse: optional(list(natsServerUrl)),
    description: "External NATS server URL(s), separated by commas; empty = run an embedded nats-server on sync_server_port",
  }),
  nats_monitor_url: key({
    section: NATS,
    default: "",
    // Several URLs stay one string (the address book splits it), so one URL reads as before.
    parse: optional((raw, ctx) => Result.map(list(httpUrl)(raw, ctx), (urls) => urls.join(","))),
    description:
      "Optional HTTP monitoring URL(s) of the external server (e.g. http://centre:8222), comma-separated, one per cluster node that senders connect to, to look up sender addresses; empty = ask the server over $SYS.REQ.ACCOUNT.PING.CONNZ; needs nats_url",
  }),
  receiver_group: key({
    section: NATS,
    default: "tsync",
    parse: token,
    description: "Receiver group this receiver serves (letters, digits, _ and -)",
  }),
  replicas: key({
    section: NATS,
    default: "1",
    parse: integer(1, 5),
    description:
      "Copies JetStream keeps of every bucket the receiver creates (the ownership registry; the objectstore plugin's bucket unless plugin.replicas is set), 1..5; 3 on a 3-node cluster, so losing one node loses nothing (docs/scale-out.md)",
  }),
  admit_leaf_nodes: key({
    section: NATS,
    default: "false",
    parse: boolean,
    description:
      "true admits senders connected to a leaf node server of the hub (an edge site's uplink): ip_white_list then applies to the address the hub sees for the leaf connection, and each leaf's user on the hub must be confined to its own senders' subjects, because the hub does not tell which of the leaf's clients asked (docs/scale-out.md); needs nats_monitor_url, where the hub lists leaf connections; false refuses such hellos",
  }),
  embedded_server_open: key({
    section: NATS,
    default: "false",
    parse: boolean,
    description:
      "true runs the embedded nats-server without authentication (the IoTDB sync tool's trusted-LAN model): anyone who reaches sync_server_port can read every sender's bytes, act as any sender and rewrite the ownership registry; false = only senders enrolled with `tsync senders add` may connect",
  }),

  receiver_data_directory: key({
    section: STORAGE,
    default: "./receiver-data",
    parse: path,
    description: "Where received files and receiver state are kept; created if missing",
  }),
  storage_plugin: key({
    section: STORAGE,
    default: "fs",
    parse: pluginRef(STORAGE_PLUGINS),
    description: "Where received files go: fs, objectstore or exec (built in), or a path or package name of a storage plugin",
  }),
  session_idle_timeout_in_second: key({
    section: STORAGE,
    default: "300",
    parse: integer(1, INT_MAX),
    description: "Seconds without a message before a sender's session is dropped, 1..2147483647",
  }),
  staging_quota_bytes_per_sender: key({
    section: STORAGE,
    default: "137438953472",
    parse: integer(1, Number.MAX_SAFE_INTEGER),
    description:
      "Most bytes one sender may hold in the receiver's staging: its parts arriving and verified ones waiting to be loaded, counted by announced size (at least 4096 per part); an offer past it is refused (tooLarge) and the sender's other parts stay. At least max_file_size_bytes; the default, 128 GiB, is twice max_file_size_bytes's default: the largest file with its side parts plus an abandoned copy of another",
  }),
  staging_grace_in_second: key({
    section: STORAGE,
    default: "86400",
    parse: integer(1, INT_MAX),
    description:
      "Seconds (1..2147483647) a sender's staged part may stay untouched before it is removed as abandoned, at start-up and by a sweep every quarter of this (at least every 10 min); parts of a sender still using staging are kept. The default, a day, is far past session_idle_timeout_in_second, so a sender back from a long outage still resumes",
  }),
  max_sessions: key({
    section: STORAGE,
    default: "1000",
    parse: integer(1, INT_MAX),
    description: "Most sender sessions open at once, 1..2147483647",
  }),
  max_file_size_bytes: key({
    section: STORAGE,
    default: "68719476736",
    parse: integer(1, Number.MAX_SAFE_INTEGER),
    description: "Largest file accepted, in bytes",
  }),
  tsfile_max_index_bytes: key({
    section: STORAGE,
    default: "268435456",
    parse: integer(1, Number.MAX_SAFE_INTEGER),
    description:
      "Largest TsFile index (metadata offset to TsFileMetadata) the verify step reads, in bytes; a file with a larger one is refused as badTsFile",
  }),
  tsfile_max_devices: key({
    section: STORAGE,
    default: "100000",
    parse: integer(1, INT_MAX),
    description:
      "Most devices a TsFile's index may list, 1..2147483647; the verify step refuses a file with more (badTsFile) before it reads them. Each costs the receiver a few hundred bytes while it verifies the file",
  }),
  tsfile_max_device_id_bytes: key({
    section: STORAGE,
    default: "16777216",
    parse: integer(1, Number.MAX_SAFE_INTEGER),
    description:
      "Most bytes the device ids of a TsFile's index may take together; the verify step keeps every id, and refuses a file over this (badTsFile)",
  }),
  tsfile_max_series: key({
    section: STORAGE,
    default: "5000000",
    parse: integer(1, INT_MAX),
    description:
      "Most time series (TimeseriesMetadata records) a TsFile's index may hold, 1..2147483647; the verify step refuses a file with more (badTsFile)",
  }),

  ...natsClientKeys,

  tls_server_cert_file: key({
    section: EMBEDDED_TLS,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "Server certificate (PEM) of the embedded nats-server (with tls_server_key_file); empty = no TLS",
  }),
  tls_server_key_file: key({
    section: EMBEDDED_TLS,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "Private key (PEM) of tls_server_cert_file",
  }),
  tls_server_ca_file: key({
    section: EMBEDDED_TLS,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "CA certificates (PEM) to verify sender certificates (mutual TLS); empty = not required",
  }),

  ...dashboardPortKey,
  ...logLevelKey,
} as const satisfies KeyTable;

/** One field per key of conf/receiver.properties (paths absolute, optional keys `undefined` when off). */
export interface ReceiverConfig extends ValuesOf<typeof receiverKeys> {
  /** `plugin.*` keys with the prefix removed. */
  readonly plugin: Readonly<Record<string, string>>;
}

const receiverProblem = (v: ValuesOf<typeof receiverKeys>): ConfigError | undefined => {
  const client = natsClientProblem(v);
  if (client !== undefined) return client;
  if (v.nats_monitor_url !== undefined && v.nats_url === undefined)
    return keyConflict("nats_monitor_url", "is only used with an external server; set nats_url too or leave it empty");
  if (v.nats_url !== undefined) {
    for (const name of ["tls_server_cert_file", "tls_server_key_file", "tls_server_ca_file"] as const) {
      if (v[name] !== undefined) return keyConflict(name, "configures the embedded nats-server, which does not run when nats_url is set");
    }
  }
  if (v.admit_leaf_nodes && v.nats_monitor_url === undefined)
    return keyConflict(
      "admit_leaf_nodes",
      "needs nats_monitor_url (and nats_url): the hub lists its leaf node connections only on its HTTP monitoring endpoint",
    );
  if (v.embedded_server_open && v.nats_url !== undefined)
    return keyConflict("embedded_server_open", "configures the embedded nats-server, which does not run when nats_url is set");
  if (v.tls_server_cert_file !== undefined && v.tls_server_key_file === undefined)
    return keyConflict("tls_server_key_file", "is required when tls_server_cert_file is set");
  if (v.tls_server_key_file !== undefined && v.tls_server_cert_file === undefined)
    return keyConflict("tls_server_cert_file", "is required when tls_server_key_file is set");
  if (v.tls_server_ca_file !== undefined && v.tls_server_cert_file === undefined)
    return keyConflict("tls_server_cert_file", "is required when tls_server_ca_file is set");
  if (v.staging_quota_bytes_per_sender < v.max_file_size_bytes)
    return keyConflict(
      "staging_quota_bytes_per_sender",
      `(${v.staging_quota_bytes_per_sender}) is below max_file_size_bytes (${v.max_file_size_bytes}): a sender could never send the largest files the receiver accepts`,
    );
  return undefined;
};

/**
 * Validates a receiver's properties (`source` names the file in messages). Environment variables
 * `TSYNC_<KEY>` win over the file; relative paths resolve against `cwd`. Does not touch the
 * disk: `checkReceiverPaths` does (the caller creates `receiver_data_directory`).
 */
export const parseReceiverConfig = (
  props: Readonly<Record<string, string>>,
  env: Env,
  source: string,
  cwd: string = process.cwd(),
): Result.Result<ReceiverConfig, ConfigError> =>
  Result.flatMap(resolveKeys(receiverKeys, props, env, source, cwd), ({ values, plugin }) => {
    const conflict = receiverProblem(values);
    return conflict === undefined ? Result.succeed({ ...values, plugin }) : Result.fail(conflict);
  });

/** Auth/TLS files, when set, are readable files. */
export const checkReceiverPaths = (config: ReceiverConfig): Effect.Effect<ReceiverConfig, ConfigError> =>
  checkPaths(receiverKeys, config).pipe(Effect.as(config));

/** Reads, validates and checks conf/receiver.properties (or `path`). */
export const loadReceiverConfig = (path: string, env: Env = process.env): Effect.Effect<ReceiverConfig, ConfigError> =>
  readProperties(path).pipe(
    Effect.flatMap((props) => Effect.fromResult(parseReceiverConfig(props, env, path))),
    Effect.flatMap(checkReceiverPaths),
  );

export const RECEIVER_CONF = "conf/receiver.properties";

/** conf/receiver.properties as generated from `receiverKeys`. */
export const renderReceiverProperties = (): string =>
  renderProperties(receiverKeys, {
    header: [
      "tsync receiver configuration.",
      "Generated from the key table in src/config/receiver.ts by `npx tsx src/config/renderConf.ts`:",
      "change the table and re-run it (a test fails when this file and the table differ).",
      "",
      "Every key can be overridden by the environment variable TSYNC_<KEY>, e.g. TSYNC_IS_SYNC_ENABLE=true.",
      "Values are trimmed; an empty value switches an optional key off.",
      "Relative paths resolve against the directory tsync is started from (like the IoTDB sync tool).",
    ],
    footer: ['Keys starting with "plugin." go to the plugins with the prefix removed, e.g.', "plugin.some_option=value"],
  });
