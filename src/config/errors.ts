// Configuration errors. Every message starts with "config error:" and names the key and, when
// there is one, the offending value as written (JSON-quoted, so blanks and odd characters show).
import { Data } from "effect";

/** A configuration problem: `key` names the setting, `value` is what was given (if anything). */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly key: string;
  readonly value: string | undefined;
  readonly message: string;
}> {}

/** Where a value came from: the properties file, an environment variable or the built-in default. */
export type Origin = { readonly kind: "file" } | { readonly kind: "env"; readonly name: string } | { readonly kind: "default" };

const REDACTED = "<redacted>";

const originNote = (origin: Origin | undefined): string =>
  origin?.kind === "env" ? ` (from ${origin.name})` : origin?.kind === "default" ? " (the default)" : "";

/**
 * `config error: server_port="70000" is out of range 0..65535`.
 * `problem` is the rest of the sentence. Sensitive values are never echoed.
 */
export const invalidValue = (
  key: string,
  value: string,
  problem: string,
  options: { readonly origin?: Origin; readonly sensitive?: boolean } = {},
): ConfigError => {
  const shown = options.sensitive === true ? REDACTED : JSON.stringify(value);
  return new ConfigError({
    key,
    value: options.sensitive === true ? undefined : value,
    message: `config error: ${key}=${shown}${originNote(options.origin)} ${problem}`,
  });
};

/** `config error: data_directory is required (set it in conf/sender.properties or TSYNC_DATA_DIRECTORY)`. */
export const missingKey = (key: string, source: string, envName: string): ConfigError =>
  new ConfigError({
    key,
    value: undefined,
    message: `config error: ${key} is required (set it in ${source} or ${envName})`,
  });

/** `config error: unknown key "sever_port" in conf/sender.properties (did you mean "server_port"?)`. */
export const unknownKey = (key: string, source: string, suggestion: string | undefined): ConfigError =>
  new ConfigError({
    key,
    value: undefined,
    message:
      `config error: unknown key ${JSON.stringify(key)} in ${source}` +
      (suggestion === undefined ? "" : ` (did you mean ${JSON.stringify(suggestion)}?)`),
  });

/** A rule between keys, e.g. `config error: nats_password is required when nats_user is set`. */
export const keyConflict = (key: string, problem: string): ConfigError =>
  new ConfigError({ key, value: undefined, message: `config error: ${key} ${problem}` });
