import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Result } from "effect";
import { fc, test as propTest } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { ConfigError } from "../../src/config/errors.js";
import { formatIpWhiteList, isAllowed } from "../../src/config/ipWhiteList.js";
import { loadReceiverConfig, parseReceiverConfig, type ReceiverConfig } from "../../src/config/receiver.js";

const CWD = "/srv/tsync";
const SOURCE = "conf/receiver.properties";
const parse = (props: Record<string, string>, env: Record<string, string> = {}) => parseReceiverConfig(props, env, SOURCE, CWD);
const ok = (props: Record<string, string>, env: Record<string, string> = {}): ReceiverConfig => Result.getOrThrow(parse(props, env));
const fail = (props: Record<string, string>, env: Record<string, string> = {}): ConfigError => {
  const result = parse(props, env);
  if (Result.isSuccess(result)) throw new Error("expected a ConfigError");
  return result.failure;
};

test("defaults: the seed's keys keep theirs, ours have theirs", () => {
  const c = ok({});
  expect({ ...c, ip_white_list: formatIpWhiteList(c.ip_white_list) }).toEqual({
    is_sync_enable: false,
    sync_server_port: 5555,
    ip_white_list: "0.0.0.0/0",
    nats_url: undefined,
    nats_monitor_url: undefined,
    receiver_group: "tsync",
    replicas: 1,
    admit_leaf_nodes: false,
    embedded_server_open: false,
    receiver_data_directory: "/srv/tsync/receiver-data",
    storage_plugin: "fs",
    session_idle_timeout_in_second: 300,
    staging_quota_bytes_per_sender: 137438953472,
    staging_grace_in_second: 86400,
    max_sessions: 1000,
    max_file_size_bytes: 68719476736,
    tsfile_max_index_bytes: 268435456,
    tsfile_max_devices: 100000,
    tsfile_max_device_id_bytes: 16777216,
    tsfile_max_series: 5000000,
    dashboard_port: 0,
    stately_inspect_url: undefined,
    nats_user: undefined,
    nats_password: undefined,
    nats_token: undefined,
    nats_nkey_seed_file: undefined,
    nats_creds_file: undefined,
    tls_ca_file: undefined,
    tls_cert_file: undefined,
    tls_key_file: undefined,
    tls_server_cert_file: undefined,
    tls_server_key_file: undefined,
    tls_server_ca_file: undefined,
    log_level: "info",
    log_format: "text",
    plugin: {},
  });
  expect(isAllowed(c.ip_white_list, "203.0.113.9")).toBe(true);
  expect(isAllowed(c.ip_white_list, "2001:db8::1")).toBe(false);
});

test("values parse", () => {
  const c = ok({
    is_sync_enable: "true",
    ip_white_list: "192.168.0.0/16, fd00::/8",
    nats_url: "nats://centre:4222",
    nats_monitor_url: "http://centre:8222",
    storage_plugin: "objectstore",
    dashboard_port: "8080",
    "plugin.objectstore.bucket": "tsync",
  });
  expect(c).toMatchObject({
    is_sync_enable: true,
    nats_url: ["nats://centre:4222"],
    nats_monitor_url: "http://centre:8222",
    storage_plugin: "objectstore",
    dashboard_port: 8080,
    plugin: { "objectstore.bucket": "tsync" },
  });
  expect(formatIpWhiteList(c.ip_white_list)).toBe("192.168.0.0/16, fd00::/8");
  expect(ok({ storage_plugin: "../plugins/s3.js" }).storage_plugin).toBe("/srv/plugins/s3.js");
});

test("an empty ip_white_list admits nobody", () => {
  const c = ok({ ip_white_list: "" });
  expect(c.ip_white_list).toEqual([]);
  expect(isAllowed(c.ip_white_list, "127.0.0.1")).toBe(false);
});

describe("every validation error names the key and the value", () => {
  const cases: ReadonlyArray<readonly [key: string, value: string, message: string]> = [
    ["is_sync_enable", "1", 'config error: is_sync_enable="1" is not a boolean (use true or false)'],
    ["sync_server_port", "65536", 'config error: sync_server_port="65536" is out of range 0..65535'],
    [
      "ip_white_list",
      "10.0.0.0/8, 10.0.0.0/33",
      'config error: ip_white_list="10.0.0.0/8, 10.0.0.0/33" has an invalid entry "10.0.0.0/33", which is not an IPv4 CIDR (like 192.168.0.0/16)',
    ],
    [
      "ip_white_list",
      "fd00::/129",
      'config error: ip_white_list="fd00::/129" has an invalid entry "fd00::/129", which is not an IPv6 CIDR (like fd00::/8)',
    ],
    [
      "nats_url",
      "http://x",
      'config error: nats_url="http://x" has an invalid entry "http://x", which is not a NATS URL (use nats://, tls://, ws:// or wss://)',
    ],
    [
      "nats_monitor_url",
      "centre:8222",
      'config error: nats_monitor_url="centre:8222" has an invalid entry "centre:8222", which is not an http:// or https:// URL',
    ],
    ["receiver_group", "a b", 'config error: receiver_group="a b" is not a valid name (use letters, digits, _ and -)'],
    ["receiver_data_directory", "", 'config error: receiver_data_directory="" is empty'],
    [
      "storage_plugin",
      "S3 Bucket",
      'config error: storage_plugin="S3 Bucket" is not a built-in plugin (fs, objectstore, exec), a path or a package name',
    ],
    ["session_idle_timeout_in_second", "0", 'config error: session_idle_timeout_in_second="0" is out of range 1..2147483647'],
    ["max_sessions", "many", 'config error: max_sessions="many" is not an integer'],
    ["max_file_size_bytes", "0", 'config error: max_file_size_bytes="0" is out of range 1..9007199254740991'],
    ["dashboard_port", "99999", 'config error: dashboard_port="99999" is out of range 0..65535'],
    ["log_level", "trace", 'config error: log_level="trace" is not one of debug, info, warn, error'],
    [
      "stately_inspect_url",
      "http://127.0.0.1:8080",
      'config error: stately_inspect_url="http://127.0.0.1:8080" is not a ws:// or wss:// URL',
    ],
  ];
  test.each(cases)("%s=%j", (key, value, message) => {
    expect(fail({ [key]: value })).toMatchObject({ _tag: "ConfigError", key, value, message });
  });

  test("a value from the environment says so", () => {
    expect(fail({}, { TSYNC_IP_WHITE_LIST: "banana" }).message).toBe(
      'config error: ip_white_list="banana" (from TSYNC_IP_WHITE_LIST) has an invalid entry "banana", which is not an IPv4 CIDR (like 192.168.0.0/16)',
    );
  });
});

describe("rules between keys", () => {
  test.each([
    [
      { nats_url: "nats://c:4222", admit_leaf_nodes: "true" },
      "admit_leaf_nodes",
      "config error: admit_leaf_nodes needs nats_monitor_url (and nats_url): the hub lists its leaf node connections only on its HTTP monitoring endpoint",
    ],
    [
      { admit_leaf_nodes: "true" },
      "admit_leaf_nodes",
      "config error: admit_leaf_nodes needs nats_monitor_url (and nats_url): the hub lists its leaf node connections only on its HTTP monitoring endpoint",
    ],
    [
      { nats_monitor_url: "http://c:8222" },
      "nats_monitor_url",
      "config error: nats_monitor_url is only used with an external server; set nats_url too or leave it empty",
    ],
    [
      { nats_url: "nats://c:4222", tls_server_cert_file: "s.pem", tls_server_key_file: "k.pem" },
      "tls_server_cert_file",
      "config error: tls_server_cert_file configures the embedded nats-server, which does not run when nats_url is set",
    ],
    [
      { tls_server_cert_file: "s.pem" },
      "tls_server_key_file",
      "config error: tls_server_key_file is required when tls_server_cert_file is set",
    ],
    [
      { tls_server_key_file: "k.pem" },
      "tls_server_cert_file",
      "config error: tls_server_cert_file is required when tls_server_key_file is set",
    ],
    [
      { tls_server_ca_file: "ca.pem" },
      "tls_server_cert_file",
      "config error: tls_server_cert_file is required when tls_server_ca_file is set",
    ],
    [
      { nats_token: "t", nats_nkey_seed_file: "seed.nk" },
      "nats_nkey_seed_file",
      "config error: nats_nkey_seed_file and nats_token are both set; use one way to authenticate",
    ],
  ] as const)("%j", (props, key, message) => {
    expect(fail(props)).toMatchObject({ key, value: undefined, message });
  });
});

test("environment override and unknown keys", () => {
  expect(ok({ is_sync_enable: "false" }, { TSYNC_IS_SYNC_ENABLE: "true" }).is_sync_enable).toBe(true);
  expect(fail({ ip_whitelist: "0.0.0.0/0" }).message).toBe(
    'config error: unknown key "ip_whitelist" in conf/receiver.properties (did you mean "ip_white_list"?)',
  );
  expect(fail({ IP_white_list: "0.0.0.0/0" }).message).toContain('(did you mean "ip_white_list"?)');
  // A sender key in the receiver's file is unknown too.
  expect(fail({ server_port: "5555" }).key).toBe("server_port");
});

propTest.prop([fc.integer({ min: 0, max: 65535 })])("any sync_server_port in range round-trips", (port) => {
  expect(ok({ sync_server_port: `${port}` }).sync_server_port).toBe(port);
});

propTest.prop([fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 65536 }))])(
  "any sync_server_port out of range is rejected, naming the key",
  (port) => {
    expect(fail({ sync_server_port: `${port}` })).toMatchObject({ key: "sync_server_port", value: `${port}` });
  },
);

describe("loadReceiverConfig", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tsync-config-"));
    await writeFile(join(dir, "server.pem"), "pem");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("receiver_data_directory need not exist (the caller creates it); TLS files must", async () => {
    const file = join(dir, "receiver.properties");
    await writeFile(
      file,
      `receiver_data_directory=${dir}/not-yet\ntls_server_cert_file=${dir}/server.pem\ntls_server_key_file=${dir}/missing.pem\n`,
    );
    const result = await Effect.runPromise(Effect.result(loadReceiverConfig(file, {})));
    expect(Result.isFailure(result) && result.failure).toMatchObject({
      key: "tls_server_key_file",
      value: `${dir}/missing.pem`,
      message: `config error: tls_server_key_file="${dir}/missing.pem" does not exist`,
    });
    const good = await Effect.runPromise(Effect.result(loadReceiverConfig(file, { TSYNC_TLS_SERVER_KEY_FILE: `${dir}/server.pem` })));
    expect(Result.getOrThrow(good).receiver_data_directory).toBe(`${dir}/not-yet`);
  });
});
