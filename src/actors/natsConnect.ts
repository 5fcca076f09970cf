// NATS client connections for both processes: options from the shared nats_*/tls_* keys, and connection names.
import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { Redacted } from "effect";

/** The NATS client keys both processes share (`nats_*`, `tls_*` in the properties). */
export interface NatsClientSettings {
  readonly nats_user: string | undefined;
  readonly nats_password: Redacted.Redacted<string> | undefined;
  readonly nats_token: Redacted.Redacted<string> | undefined;
  readonly nats_nkey_seed_file: string | undefined;
  readonly nats_creds_file: string | undefined;
  readonly tls_ca_file: string | undefined;
  readonly tls_cert_file: string | undefined;
  readonly tls_key_file: string | undefined;
}

export const connectionOptions = (servers: ReadonlyArray<string>, name: string, s: NatsClientSettings): ConnectionOptions => {
  const opts: ConnectionOptions = {
    servers: [...servers],
    name,
    // Edge links drop: keep reconnecting for as long as the process lives.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Otherwise every request (one per chunk) builds an Error to keep its stack: measurable CPU.
    noAsyncTraces: true,
  };
  if (s.nats_user !== undefined && s.nats_password !== undefined) {
    opts.user = s.nats_user;
    opts.pass = Redacted.value(s.nats_password);
  }
  if (s.nats_token !== undefined) opts.token = Redacted.value(s.nats_token);
  if (s.nats_nkey_seed_file !== undefined) {
    opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(s.nats_nkey_seed_file, "utf8").trim()));
  }
  if (s.nats_creds_file !== undefined) opts.authenticator = credsAuthenticator(readFileSync(s.nats_creds_file));
  if (s.tls_ca_file !== undefined || s.tls_cert_file !== undefined) {
    opts.tls = {
      ...(s.tls_ca_file !== undefined ? { caFile: s.tls_ca_file } : {}),
      ...(s.tls_cert_file !== undefined ? { certFile: s.tls_cert_file } : {}),
      ...(s.tls_key_file !== undefined ? { keyFile: s.tls_key_file } : {}),
    };
  }
  return opts;
};

export const connectNats = (
  servers: ReadonlyArray<string>,
  name: string,
  s: NatsClientSettings,
  overrides: Partial<ConnectionOptions> = {},
): Promise<NatsConnection> => connect({ ...connectionOptions(servers, name, s), ...overrides });

/**
 * A sender's connection name. The receiver admits a hello only from the connection that owns its
 * reply inbox and carries this name, so a hello cannot borrow another client's inbox (and with
 * it that client's address); see docs/security.md.
 */
export const senderConnectionName = (senderId: string): string => `tsync-sender-${senderId}`;
