import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Redacted, Result } from "effect";
import { fc, test as propTest } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, expectTypeOf, test } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { loadSenderConfig, parseSenderConfig, senderKeys, senderWorkDirectory, type SenderConfig } from "../../src/config/sender.js";

const CWD = "/opt/tsync";
const SOURCE = "conf/sender.properties";
const parse = (props: Record<string, string>, env: Record<string, string> = {}) =>
  parseSenderConfig({ data_directory: "./data", ...props }, env, SOURCE, CWD);
const ok = (props: Record<string, string>, env: Record<string, string> = {}): SenderConfig => Result.getOrThrow(parse(props, env));
const fail = (props: Record<string, string>, env: Record<string, string> = {}): ConfigError => {
  const result = parse(props, env);
  if (Result.isSuccess(result)) throw new Error(`expected a ConfigError, got ${JSON.stringify(result.success)}`);
  return result.failure;
};

describe("defaults", () => {
  test("the seed's keys keep their defaults, ours have theirs", () => {
    expect(ok({})).toEqual({
      server_ip: "127.0.0.1",
      server_port: 5555,
      sync_period_in_second: 600,
      iotdb_schema_directory: undefined,
      sync_storage_groups: [],
      max_number_of_sync_file_retry: 5,
      data_directory: "/opt/tsync/data",
      source_plugin: "iotdb",
      sync_on_seal: false,
      nats_url: undefined,
      receiver_group: "tsync",
      sender_name: undefined,
      work_directory: undefined,
      chunk_size_bytes: 0,
      window: 16,
      files_in_flight: 16,
      max_bandwidth_bytes_per_second: 0,
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
      log_level: "info",
      log_format: "text",
      plugin: {},
    } satisfies SenderConfig);
  });

  test("field types follow the table", () => {
    const c = ok({});
    expectTypeOf(c.server_port).toEqualTypeOf<number>();
    expectTypeOf(c.sync_on_seal).toEqualTypeOf<boolean>();
    expectTypeOf(c.nats_url).toEqualTypeOf<ReadonlyArray<string> | undefined>();
    expectTypeOf(c.sender_name).toEqualTypeOf<string | undefined>();
    expectTypeOf(c.nats_password).toEqualTypeOf<Redacted.Redacted<string> | undefined>();
    expectTypeOf(c.log_level).toEqualTypeOf<"debug" | "info" | "warn" | "error">();
  });

  test("data_directory is required and the message says where to set it", () => {
    const result = parseSenderConfig({}, {}, SOURCE, CWD);
    expect(Result.isFailure(result) && result.failure).toMatchObject({
      _tag: "ConfigError",
      key: "data_directory",
      value: undefined,
      message: "config error: data_directory is required (set it in conf/sender.properties or TSYNC_DATA_DIRECTORY)",
    });
  });

  test("work_directory defaults to <data_directory>/sync-sender/<receiver address>_<receiver_group>", () => {
    expect(senderWorkDirectory(ok({ receiver_group: "centre" }))).toBe("/opt/tsync/data/sync-sender/127.0.0.1_5555_centre");
    expect(senderWorkDirectory(ok({ work_directory: "state" }))).toBe("/opt/tsync/state");
  });
});

describe("values", () => {
  test("values are trimmed and parsed", () => {
    const c = ok({
      server_ip: "  10.0.0.5 ",
      server_port: " 6000\t",
      sync_storage_groups: " root.sg1 ,root.sg2, ",
      sync_on_seal: "TRUE",
      nats_url: "nats://a:4222, tls://b:4443,c:4222",
      sender_name: "edge-01",
      chunk_size_bytes: "1048576",
      log_level: "DEBUG",
      nats_user: "alice",
      nats_password: "s3cret",
    });
    expect(c).toMatchObject({
      server_ip: "10.0.0.5",
      server_port: 6000,
      sync_storage_groups: ["root.sg1", "root.sg2"],
      sync_on_seal: true,
      nats_url: ["nats://a:4222", "tls://b:4443", "c:4222"],
      sender_name: "edge-01",
      chunk_size_bytes: 1048576,
      log_level: "debug",
      nats_user: "alice",
    });
    expect(c.nats_password !== undefined && Redacted.value(c.nats_password)).toBe("s3cret");
    expect(JSON.stringify(c)).not.toContain("s3cret");
  });

  test("relative paths resolve against the working directory, absolute ones stay", () => {
    const c = ok({ data_directory: "../iotdb/data", iotdb_schema_directory: "/var/iotdb/mlog.txt", work_directory: "w" });
    expect(c.data_directory).toBe("/opt/iotdb/data");
    expect(c.iotdb_schema_directory).toBe("/var/iotdb/mlog.txt");
    expect(c.work_directory).toBe("/opt/tsync/w");
  });

  test("host names and IPv6 addresses are accepted for server_ip", () => {
    expect(ok({ server_ip: "centre.example.com" }).server_ip).toBe("centre.example.com");
    expect(ok({ server_ip: "fd00::1" }).server_ip).toBe("fd00::1");
  });

  test("source_plugin: built-in name, path (resolved) or package name", () => {
    expect(ok({ source_plugin: "./plugins/src.js" }).source_plugin).toBe("/opt/tsync/plugins/src.js");
    expect(ok({ source_plugin: "@acme/tsync-source" }).source_plugin).toBe("@acme/tsync-source");
  });
});

describe("every validation error names the key and the value", () => {
  const cases: ReadonlyArray<readonly [key: string, value: string, message: string]> = [
    ["server_port", "70000", 'config error: server_port="70000" is out of range 0..65535'],
    ["server_port", "-1", 'config error: server_port="-1" is out of range 0..65535'],
    ["server_port", "", 'config error: server_port="" is not an integer'],
    ["server_ip", "999.1.1.1", 'config error: server_ip="999.1.1.1" is not an IP address or host name'],
    ["server_ip", "a b", 'config error: server_ip="a b" is not an IP address or host name'],
    ["sync_period_in_second", "ten", 'config error: sync_period_in_second="ten" is not an integer'],
    ["sync_period_in_second", "1.5", 'config error: sync_period_in_second="1.5" is not an integer'],
    ["sync_period_in_second", "2147483648", 'config error: sync_period_in_second="2147483648" is out of range 0..2147483647'],
    [
      "sync_storage_groups",
      "root.sg1, sg2",
      'config error: sync_storage_groups="root.sg1, sg2" has an invalid entry "sg2", which is not a storage group path (like root.sg1)',
    ],
    ["max_number_of_sync_file_retry", "-3", 'config error: max_number_of_sync_file_retry="-3" is out of range 0..2147483647'],
    ["data_directory", "", 'config error: data_directory="" is empty'],
    [
      "source_plugin",
      "Not A Plugin",
      'config error: source_plugin="Not A Plugin" is not a built-in plugin (iotdb), a path or a package name',
    ],
    ["sync_on_seal", "yes", 'config error: sync_on_seal="yes" is not a boolean (use true or false)'],
    [
      "nats_url",
      "ftp://x",
      'config error: nats_url="ftp://x" has an invalid entry "ftp://x", which is not a NATS URL (use nats://, tls://, ws:// or wss://)',
    ],
    ["nats_url", "nats://a:99999", 'config error: nats_url="nats://a:99999" has an invalid entry "nats://a:99999", which is not a URL'],
    ["receiver_group", "a.b", 'config error: receiver_group="a.b" is not a valid name (use letters, digits, _ and -)'],
    ["receiver_group", "", 'config error: receiver_group="" is not a valid name (use letters, digits, _ and -)'],
    ["sender_name", "edge*", 'config error: sender_name="edge*" is not a valid name (use letters, digits, _ and -)'],
    [
      "chunk_size_bytes",
      "512",
      'config error: chunk_size_bytes="512" is out of range (0 = the server\'s max_payload, else 1024..67108864)',
    ],
    [
      "chunk_size_bytes",
      "67108865",
      'config error: chunk_size_bytes="67108865" is out of range (0 = the server\'s max_payload, else 1024..67108864)',
    ],
    ["window", "0", 'config error: window="0" is out of range 1..1024'],
    ["window", "1025", 'config error: window="1025" is out of range 1..1024'],
    ["max_bandwidth_bytes_per_second", "-1", 'config error: max_bandwidth_bytes_per_second="-1" is out of range 0..9007199254740991'],
    ["log_level", "verbose", 'config error: log_level="verbose" is not one of debug, info, warn, error'],
  ];
  test.each(cases)("%s=%j", (key, value, message) => {
    expect(fail({ [key]: value })).toMatchObject({ _tag: "ConfigError", key, value, message });
  });

  test("the error is a ConfigError and an Error", () => {
    const e = fail({ server_port: "x" });
    expect(e).toBeInstanceOf(ConfigError);
    expect(e).toBeInstanceOf(Error);
  });

  test("a value from the environment says so", () => {
    expect(fail({}, { TSYNC_SERVER_PORT: "70000" }).message).toBe(
      'config error: server_port="70000" (from TSYNC_SERVER_PORT) is out of range 0..65535',
    );
  });
});

describe("rules between keys", () => {
  test.each([
    [{ nats_user: "alice" }, "nats_password", "config error: nats_password is required when nats_user is set"],
    [{ nats_password: "pw" }, "nats_user", "config error: nats_user is required when nats_password is set"],
    [
      { nats_user: "a", nats_password: "b", nats_token: "t" },
      "nats_token",
      "config error: nats_token and nats_user are both set; use one way to authenticate",
    ],
    [
      { nats_token: "t", nats_creds_file: "x.creds" },
      "nats_creds_file",
      "config error: nats_creds_file and nats_token are both set; use one way to authenticate",
    ],
    [{ tls_cert_file: "c.pem" }, "tls_key_file", "config error: tls_key_file is required when tls_cert_file is set"],
    [{ tls_key_file: "k.pem" }, "tls_cert_file", "config error: tls_cert_file is required when tls_key_file is set"],
  ] as const)("%j", (props, key, message) => {
    expect(fail(props)).toMatchObject({ key, message });
  });
});

describe("environment override", () => {
  test("TSYNC_<KEY> wins over the file", () => {
    const c = ok({ server_port: "5555", receiver_group: "a" }, { TSYNC_SERVER_PORT: "6000", TSYNC_RECEIVER_GROUP: "b" });
    expect(c.server_port).toBe(6000);
    expect(c.receiver_group).toBe("b");
  });

  test("TSYNC_<KEY> supplies a required key", () => {
    const result = parseSenderConfig({}, { TSYNC_DATA_DIRECTORY: "/srv/iotdb/data" }, SOURCE, CWD);
    expect(Result.getOrThrow(result).data_directory).toBe("/srv/iotdb/data");
  });

  test("an empty TSYNC_<KEY> switches an optional key off", () => {
    expect(ok({ nats_url: "nats://x:4222" }, { TSYNC_NATS_URL: "" }).nats_url).toBeUndefined();
  });

  test("other environment variables are ignored", () => {
    expect(ok({}, { TSYNC_SYNC_SERVER_PORT: "1", TSYNC_SEVER_PORT: "2", PATH: "/bin" }).server_port).toBe(5555);
  });
});

describe("unknown keys", () => {
  test("a typo is an error with a suggestion", () => {
    expect(fail({ sever_port: "6000" })).toMatchObject({
      key: "sever_port",
      value: undefined,
      message: 'config error: unknown key "sever_port" in conf/sender.properties (did you mean "server_port"?)',
    });
  });

  test("a wrongly cased key suggests the key; a stranger gets no suggestion", () => {
    expect(fail({ Server_IP: "x" }).message).toContain('(did you mean "server_ip"?)');
    expect(fail({ colour: "blue" }).message).toBe('config error: unknown key "colour" in conf/sender.properties');
  });

  test("unknown keys are reported before missing ones", () => {
    const result = parseSenderConfig({ data_directroy: "./data" }, {}, SOURCE, CWD);
    expect(Result.isFailure(result) && result.failure.message).toBe(
      'config error: unknown key "data_directroy" in conf/sender.properties (did you mean "data_directory"?)',
    );
  });

  test("plugin.* keys are collected with the prefix removed and values trimmed", () => {
    const c = ok({ "plugin.iotdb.version": " 1.3 ", "plugin.bucket": "b" });
    expect(c.plugin).toEqual({ "iotdb.version": "1.3", bucket: "b" });
    expect(fail({ "plugin.": "x" }).key).toBe("plugin.");
  });
});

propTest.prop([fc.integer({ min: 0, max: 65535 })])("any port in 0..65535 round-trips", (port) => {
  expect(ok({ server_port: String(port) }).server_port).toBe(port);
  expect(ok({}, { TSYNC_SERVER_PORT: ` ${port} ` }).server_port).toBe(port);
});

propTest.prop([fc.oneof(fc.integer({ min: -(2 ** 40), max: -1 }), fc.integer({ min: 65536, max: 2 ** 40 }))])(
  "any port out of range is rejected, naming the key and value",
  (port) => {
    const e = fail({ server_port: String(port) });
    expect(e.key).toBe("server_port");
    expect(e.value).toBe(String(port));
    expect(e.message).toBe(`config error: server_port="${port}" is out of range 0..65535`);
  },
);

describe("loadSenderConfig (file and disk)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "tsync-config-"));
    await mkdir(join(dir, "data"));
    await writeFile(join(dir, "ca.pem"), "not really a pem");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const load = async (text: string, env: Record<string, string> = {}) => {
    const file = join(dir, `sender-${Math.random().toString(36).slice(2)}.properties`);
    await writeFile(file, text);
    return Effect.runPromise(Effect.result(loadSenderConfig(file, env)));
  };

  test("reads, validates and checks a good file", async () => {
    const result = await load(`data_directory=${dir}/data\ntls_ca_file=${dir}/ca.pem\nserver_port = 6000\n`);
    expect(Result.getOrThrow(result)).toMatchObject({ data_directory: `${dir}/data`, server_port: 6000 });
  });

  test("a missing data_directory is named", async () => {
    const result = await load("data_directory=/nope/not/here\n");
    expect(Result.isFailure(result) && result.failure).toMatchObject({
      key: "data_directory",
      value: "/nope/not/here",
      message: 'config error: data_directory="/nope/not/here" does not exist',
    });
  });

  test("data_directory must be a directory; files must be files", async () => {
    const notDir = await load(`data_directory=${dir}/ca.pem\n`);
    expect(Result.isFailure(notDir) && notDir.failure.message).toBe(`config error: data_directory="${dir}/ca.pem" is not a directory`);
    const notFile = await load(`data_directory=${dir}/data\ntls_ca_file=${dir}/data\n`);
    expect(Result.isFailure(notFile) && notFile.failure.message).toBe(`config error: tls_ca_file="${dir}/data" is not a file`);
    const missing = await load(`data_directory=${dir}/data\nnats_creds_file=${dir}/x.creds\n`);
    expect(Result.isFailure(missing) && missing.failure.message).toBe(`config error: nats_creds_file="${dir}/x.creds" does not exist`);
  });

  test("a missing properties file is a clear ConfigError", async () => {
    const result = await Effect.runPromise(Effect.result(loadSenderConfig(join(dir, "absent.properties"), {})));
    expect(Result.isFailure(result) && result.failure).toMatchObject({
      _tag: "ConfigError",
      key: "conf",
      value: join(dir, "absent.properties"),
      message: `config error: properties file "${join(dir, "absent.properties")}" does not exist`,
    });
  });

  test("env wins over the file when loading too", async () => {
    const result = await load(`data_directory=${dir}/data\n`, { TSYNC_WINDOW: "64" });
    expect(Result.getOrThrow(result).window).toBe(64);
  });
});

test("every key has a one-line description and a TSYNC_ name that maps back", () => {
  for (const [name, spec] of Object.entries(senderKeys)) {
    expect(name).toMatch(/^[a-z0-9_]+$/);
    expect(spec.description).not.toMatch(/\n/);
    expect(spec.description.length).toBeGreaterThan(10);
  }
});
