// Properties files and the key tables behind them.
//
// A process's configuration is one table (`KeyTable`): every key is declared once, spelled as in
// conf/*.properties, with its default as written in the file, a one-line description and a
// parser. From the table we derive the config type, the environment names (TSYNC_<KEY>), the
// validation and the sample conf file, so code, docs and samples cannot drift (rclone's option
// registry does the same).
//
// Why not Effect's `Config`: its messages do not show the value (`Expected a value between 1 and
// 65535 at ["server_port"]`), `Config.Port` refuses the seed's port 0, `Config.Boolean` accepts
// yes/1/on, and it cannot report unknown keys. Plain parsers give the messages operators need;
// failures are still typed (`ConfigError`).
import { readFile, stat, access, constants as fsConstants } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { parse } from "dot-properties";
import ipaddr from "ipaddr.js";
import { Effect, Redacted, Result } from "effect";
import { ConfigError, invalidValue, keyConflict, missingKey, unknownKey, type Origin } from "./errors.js";

// ---------------------------------------------------------------------------------------------
// Reading

/** Parses .properties text (Java syntax: `=`, `:` or blank separators, `#`/`!` comments, `\` escapes). */
export const parseProperties = (text: string): Record<string, string> => {
  const tree = parse(text.startsWith("\uFEFF") ? text.slice(1) : text);
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(tree)) {
    // Without the `path` option dot-properties returns a flat object of strings.
    if (typeof value === "string") out.push([key, value]);
  }
  return Object.fromEntries(out);
};

const fsProblem = (error: unknown): string => {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
  switch (code) {
    case "ENOENT":
      return "does not exist";
    case "ENOTDIR":
      return "does not exist (a parent is not a directory)";
    case "EACCES":
    case "EPERM":
      return "cannot be read (permission denied)";
    case "EISDIR":
      return "is a directory, not a file";
    default:
      return `cannot be read (${code ?? (error instanceof Error ? error.message : String(error))})`;
  }
};

const fileError = (path: string, error: unknown): ConfigError =>
  new ConfigError({
    key: "conf",
    value: path,
    message: `config error: properties file ${JSON.stringify(path)} ${fsProblem(error)}`,
  });

/** Reads and parses a properties file; rejects with a `ConfigError` (key "conf") if it cannot be read. */
export const readPropertiesFile = (path: string): Promise<Record<string, string>> =>
  readFile(path, "utf8").then(parseProperties, (error: unknown) => {
    throw fileError(path, error);
  });

/** `readPropertiesFile` as an Effect. */
export const readProperties = (path: string): Effect.Effect<Record<string, string>, ConfigError> =>
  Effect.tryPromise({ try: () => readFile(path, "utf8"), catch: (error) => fileError(path, error) }).pipe(Effect.map(parseProperties));

// ---------------------------------------------------------------------------------------------
// Key tables

export interface ParseContext {
  /** Relative paths resolve against this (the process's working directory). */
  readonly cwd: string;
}

/** Parses a trimmed value; a failure is the rest of the sentence after `key="value"`. */
export type Parser<T> = (raw: string, ctx: ParseContext) => Result.Result<T, string>;

export interface KeySpec<T> {
  /** Heading the key is rendered under in the sample file. */
  readonly section: string;
  /** One line, rendered as the comment above the key. */
  readonly description: string;
  /** The default as written in the file; `undefined` = the key is required. */
  readonly default: string | undefined;
  /** Value written to the sample file for a required key (e.g. `./data`). */
  readonly example?: string;
  /** Never echo the value in messages. */
  readonly sensitive?: boolean;
  /** Checked on disk by `checkPaths` when set. */
  readonly mustExist?: "file" | "directory";
  readonly parse: Parser<T>;
}

/** Declares one key; keeps `T` for the derived config type. */
export const key = <T>(spec: KeySpec<T>): KeySpec<T> => spec;

export type KeyTable = Readonly<Record<string, KeySpec<unknown>>>;

/** The parsed values of a table: one readonly field per key, named as in the file. */
export type ValuesOf<Tb extends KeyTable> = {
  readonly [K in keyof Tb]: Tb[K] extends KeySpec<infer T> ? T : never;
};

export type Env = Readonly<Record<string, string | undefined>>;

/** The environment variable that overrides a key: `server_port` → `TSYNC_SERVER_PORT`. */
export const envNameOf = (key: string): string => `TSYNC_${key.toUpperCase()}`;

export const PLUGIN_PREFIX = "plugin.";

const editDistance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
};

/** The known key closest to a mistyped one, if it is close enough to be a typo. */
export const suggestKey = (unknown: string, known: ReadonlyArray<string>): string | undefined => {
  const typed = unknown.toLowerCase();
  let best: { readonly key: string; readonly distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(typed, candidate);
    if (best === undefined || distance < best.distance) best = { key: candidate, distance };
  }
  if (best === undefined) return undefined;
  return best.distance <= Math.min(3, Math.floor(unknown.length / 3)) ? best.key : undefined;
};

export interface Resolved<V> {
  readonly values: V;
  /** `plugin.*` keys with the prefix removed. */
  readonly plugin: Readonly<Record<string, string>>;
}

/**
 * Validates `props` (from `source`) against `table`. For each key the value is the environment
 * variable `TSYNC_<KEY>` if set (even to ""), else the file's, else the default; values are
 * trimmed. Unknown keys are an error, except `plugin.*` keys, which are collected. The first
 * problem wins: unknown keys first (a typo explains a "missing" key), then keys in table order.
 */
export const resolveKeys = <Tb extends KeyTable>(
  table: Tb,
  props: Readonly<Record<string, string>>,
  env: Env,
  source: string,
  cwd: string,
): Result.Result<Resolved<ValuesOf<Tb>>, ConfigError> => {
  const known = Object.keys(table);
  const plugin: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(props)) {
    if (name.startsWith(PLUGIN_PREFIX) && name.length > PLUGIN_PREFIX.length) {
      plugin.push([name.slice(PLUGIN_PREFIX.length), value.trim()]);
    } else if (!Object.hasOwn(table, name)) {
      return Result.fail(unknownKey(name, source, suggestKey(name, known)));
    }
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const envName = envNameOf(name);
    const fromEnv = env[envName];
    const fromFile = Object.hasOwn(props, name) ? props[name] : undefined;
    const [raw, origin]: [string | undefined, Origin] =
      fromEnv !== undefined
        ? [fromEnv, { kind: "env", name: envName }]
        : fromFile !== undefined
          ? [fromFile, { kind: "file" }]
          : [spec.default, { kind: "default" }];
    if (raw === undefined) return Result.fail(missingKey(name, source, envName));
    const value = raw.trim();
    const parsed = spec.parse(value, { cwd });
    if (Result.isFailure(parsed)) {
      const options = spec.sensitive === true ? { origin, sensitive: true } : { origin };
      return Result.fail(invalidValue(name, value, parsed.failure, options));
    }
    values[name] = parsed.success;
  }
  return Result.succeed({ values: values as ValuesOf<Tb>, plugin: Object.fromEntries(plugin) });
};

/** Checks on disk every set key marked `mustExist` (exists, right kind, readable). */
export const checkPaths = <Tb extends KeyTable>(table: Tb, values: ValuesOf<Tb>): Effect.Effect<void, ConfigError> =>
  Effect.forEach(
    Object.entries(table),
    ([name, spec]) => {
      const kind = spec.mustExist;
      const value: unknown = (values as Readonly<Record<string, unknown>>)[name];
      if (kind === undefined || typeof value !== "string") return Effect.void;
      const fail = (problem: string) => invalidValue(name, value, problem);
      return Effect.tryPromise({ try: () => stat(value), catch: (error) => fail(fsProblem(error)) }).pipe(
        Effect.flatMap((stats) =>
          kind === "directory" && !stats.isDirectory()
            ? Effect.fail(fail("is not a directory"))
            : kind === "file" && !stats.isFile()
              ? Effect.fail(fail("is not a file"))
              : Effect.tryPromise({
                  try: () => access(value, fsConstants.R_OK),
                  catch: () => fail("is not readable"),
                }),
        ),
      );
    },
    { discard: true },
  );

// ---------------------------------------------------------------------------------------------
// Rendering the sample file

export interface RenderOptions {
  /** Comment lines at the top (without `# `). */
  readonly header: ReadonlyArray<string>;
  /** Comment lines at the end (without `# `). */
  readonly footer?: ReadonlyArray<string>;
}

/** The sample properties file: every key under its section, its description above it, its default. */
export const renderProperties = (table: KeyTable, options: RenderOptions): string => {
  const comment = (line: string) => (line === "" ? "#" : `# ${line}`);
  const lines: Array<string> = options.header.map(comment);
  let section: string | undefined;
  for (const [name, spec] of Object.entries(table)) {
    if (spec.section !== section) {
      section = spec.section;
      lines.push("", "####################", `### ${section}`, "####################");
    }
    lines.push("", comment(spec.description), `${name}=${spec.default ?? spec.example ?? ""}`);
  }
  if (options.footer !== undefined && options.footer.length > 0) lines.push("", ...options.footer.map(comment));
  return `${lines.join("\n")}\n`;
};

// ---------------------------------------------------------------------------------------------
// Value parsers

const ok = Result.succeed;
const problem = (text: string): Result.Result<never, string> => Result.fail(text);

/** Decimal integer in `min..max` (both inclusive, safe integers). */
export const integer =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^[+-]?\d+$/.test(raw)) return problem("is not an integer");
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > max) return problem(`is out of range ${min}..${max}`);
    return ok(n + 0); // normalises -0
  };

export const INT_MAX = 2147483647;
export const port: Parser<number> = integer(0, 65535);

/** `true` or `false` (any case, like Java's `Boolean.parseBoolean` without its lenience). */
export const boolean: Parser<boolean> = (raw) => {
  const lower = raw.toLowerCase();
  return lower === "true" ? ok(true) : lower === "false" ? ok(false) : problem("is not a boolean (use true or false)");
};

/** One of a fixed set of lowercase words (any case accepted). */
export const oneOf =
  <const L extends string>(choices: ReadonlyArray<L>): Parser<L> =>
  (raw) => {
    const lower = raw.toLowerCase();
    const found = choices.find((c) => c === lower);
    return found !== undefined ? ok(found) : problem(`is not one of ${choices.join(", ")}`);
  };

/** A name used as a NATS subject token. */
export const token: Parser<string> = (raw) =>
  /^[A-Za-z0-9_-]+$/.test(raw) ? ok(raw) : problem("is not a valid name (use letters, digits, _ and -)");

/** Empty = `undefined` (the key is off); otherwise `parser`. */
export const optional =
  <T>(parser: Parser<T>): Parser<T | undefined> =>
  (raw, ctx) =>
    raw === "" ? ok(undefined) : parser(raw, ctx);

/**
 * A filesystem path, resolved against the process's working directory rather than the properties
 * file's directory: like the IoTDB sync tool, operators start tsync from its install directory,
 * so `./data` means `<install dir>/data` whichever conf file names it.
 */
export const path: Parser<string> = (raw, ctx) => (raw === "" ? problem("is empty") : ok(resolve(ctx.cwd, raw)));

/** Comma-separated list; entries are trimmed, empty entries dropped, an empty list allowed. */
export const list =
  <T>(item: Parser<T>): Parser<ReadonlyArray<T>> =>
  (raw, ctx) => {
    const out: Array<T> = [];
    for (const entry of raw.split(",").map((s) => s.trim())) {
      if (entry === "") continue;
      const parsed = item(entry, ctx);
      if (Result.isFailure(parsed)) return problem(`has an invalid entry ${JSON.stringify(entry)}, which ${parsed.failure}`);
      out.push(parsed.success);
    }
    return ok(out);
  };

/** An IoTDB storage group path such as `root.sg1`. */
export const storageGroup: Parser<string> = (raw) =>
  /^root(\.[^.\s]+)+$/.test(raw) ? ok(raw) : problem("is not a storage group path (like root.sg1)");

const HOST_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** An IPv4 address (four decimal parts), an IPv6 address or a host name. */
export const host: Parser<string> = (raw) => {
  if (ipaddr.IPv4.isValidFourPartDecimal(raw) || (raw.includes(":") && ipaddr.IPv6.isValid(raw))) return ok(raw);
  if (HOST_NAME.test(raw) && !/^[\d.]+$/.test(raw)) return ok(raw);
  return problem("is not an IP address or host name");
};

/** A NATS server URL: `nats://`, `tls://`, `ws://`, `wss://`, or `host[:port]` (as nats.js accepts). */
export const natsServerUrl: Parser<string> = (raw) => {
  const withScheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(raw) ? raw : `nats://${raw}`;
  if (!URL.canParse(withScheme)) return problem("is not a URL");
  const url = new URL(withScheme);
  if (!["nats:", "tls:", "ws:", "wss:"].includes(url.protocol)) return problem("is not a NATS URL (use nats://, tls://, ws:// or wss://)");
  if (url.hostname === "") return problem("has no host");
  return ok(raw);
};

/** An `http://` or `https://` URL. */
export const httpUrl: Parser<string> = (raw) => {
  if (!URL.canParse(raw)) return problem("is not a URL");
  const url = new URL(raw);
  return url.protocol === "http:" || url.protocol === "https:" ? ok(raw) : problem("is not an http:// or https:// URL");
};

const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*(?:\/[A-Za-z0-9._~-]+)*$/;

/**
 * A plugin: a built-in name, a path (starting with `./`, `../` or `/`; resolved against the
 * working directory) or a package name (imported as is).
 */
export const pluginRef =
  (builtins: ReadonlyArray<string>): Parser<string> =>
  (raw, ctx) => {
    if (builtins.includes(raw)) return ok(raw);
    if (raw.startsWith("./") || raw.startsWith("../") || isAbsolute(raw)) return ok(resolve(ctx.cwd, raw));
    if (PACKAGE_NAME.test(raw)) return ok(raw);
    return problem(`is not a built-in plugin (${builtins.join(", ")}), a path or a package name`);
  };

/** Any non-empty string kept out of logs; empty = unset. */
export const secret: Parser<Redacted.Redacted<string> | undefined> = (raw) => (raw === "" ? ok(undefined) : ok(Redacted.make(raw)));

/** Any string; empty = unset. */
export const text: Parser<string | undefined> = (raw) => ok(raw === "" ? undefined : raw);

// ---------------------------------------------------------------------------------------------
// Keys shared by the sender and the receiver (declared once here, spread into both tables)

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const AUTH = "NATS authentication and TLS (client side)";

/** How a process authenticates to a NATS server and verifies it. */
export const natsClientKeys = {
  nats_user: key({ section: AUTH, default: "", parse: text, description: "NATS user name (with nats_password); empty = none" }),
  nats_password: key({ section: AUTH, default: "", sensitive: true, parse: secret, description: "NATS password (with nats_user)" }),
  nats_token: key({ section: AUTH, default: "", sensitive: true, parse: secret, description: "NATS authentication token; empty = none" }),
  nats_nkey_seed_file: key({
    section: AUTH,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "File holding an NKey seed to authenticate with; must exist when set",
  }),
  nats_creds_file: key({
    section: AUTH,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "NATS credentials (.creds) file with a JWT and NKey seed; must exist when set",
  }),
  tls_ca_file: key({
    section: AUTH,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "CA certificates (PEM) to verify the NATS server; empty = system CAs",
  }),
  tls_cert_file: key({
    section: AUTH,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "Client certificate (PEM) for TLS client authentication (with tls_key_file)",
  }),
  tls_key_file: key({
    section: AUTH,
    default: "",
    mustExist: "file",
    parse: optional(path),
    description: "Private key (PEM) of tls_cert_file",
  }),
} as const;

/** A `ws://` or `wss://` URL. */
export const webSocketUrl: Parser<string> = (raw) => {
  if (!URL.canParse(raw)) return problem("is not a URL");
  const url = new URL(raw);
  return url.protocol === "ws:" || url.protocol === "wss:" ? ok(raw) : problem("is not a ws:// or wss:// URL");
};

/** The live dashboard (docs/dashboard.md) and Stately's inspector, the same on both sides. */
export const dashboardPortKey = {
  dashboard_port: key({ section: "Dashboard", default: "0", parse: port, description: "Port of the live dashboard, 1..65535; 0 = off" }),
  stately_inspect_url: key({
    section: "Dashboard",
    default: "",
    parse: optional(webSocketUrl),
    description:
      "WebSocket URL of a Stately inspector server (e.g. ws://127.0.0.1:8080, started with `tsync inspector`): every actor's events go there too, for Stately's inspector; empty = off",
  }),
} as const;

/** The logging keys, the same on both sides: how much (log_level) and in which form (log_format). */
export const logLevelKey = {
  log_level: key({
    section: "Logging",
    default: "info",
    parse: oneOf(LOG_LEVELS),
    description: "Least severe messages logged: debug, info, warn or error",
  }),
  log_format: key({
    section: "Logging",
    default: "text",
    parse: oneOf(LOG_FORMATS),
    description:
      "text = one escaped line per event; json = one JSON object per line (time, level, message, and sender, session, file and code where they apply)",
  }),
} as const;

/** Rules between the NATS client keys: pairs set together, one way to authenticate. */
export const natsClientProblem = (v: ValuesOf<typeof natsClientKeys>): ConfigError | undefined => {
  if (v.nats_user !== undefined && v.nats_password === undefined) return keyConflict("nats_password", "is required when nats_user is set");
  if (v.nats_password !== undefined && v.nats_user === undefined) return keyConflict("nats_user", "is required when nats_password is set");
  const methods = (
    [
      ["nats_user", v.nats_user],
      ["nats_token", v.nats_token],
      ["nats_nkey_seed_file", v.nats_nkey_seed_file],
      ["nats_creds_file", v.nats_creds_file],
    ] as const
  ).filter(([, value]) => value !== undefined);
  const [first, second] = methods;
  if (first !== undefined && second !== undefined)
    return keyConflict(second[0], `and ${first[0]} are both set; use one way to authenticate`);
  if (v.tls_cert_file !== undefined && v.tls_key_file === undefined)
    return keyConflict("tls_key_file", "is required when tls_cert_file is set");
  if (v.tls_key_file !== undefined && v.tls_cert_file === undefined)
    return keyConflict("tls_cert_file", "is required when tls_key_file is set");
  return undefined;
};
