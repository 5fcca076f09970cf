import { resolve } from "node:path";
import { Effect } from "effect";
import type { NatsConnection } from "@nats-io/transport-node";
import { loadReceiverConfig, type ReceiverConfig } from "../config/receiver.js";
import { connectNats } from "../actors/natsConnect.js";
import { startNatsServer, type NatsServerProcess } from "../actors/natsServer.js";
import { embeddedStoreDir } from "../actors/receiver/receiver.js";

const isConnectionRefused = (e: unknown): boolean =>
  (e as { cause?: { code?: unknown } } | undefined)?.cause?.code === "ECONNREFUSED" || /ECONNREFUSED|connection refused/.test(String(e));

/** The short-lived server listens on loopback without the embedded server's TLS. */
const noTls = { tls_ca_file: undefined, tls_cert_file: undefined, tls_key_file: undefined };

/**
 * A connection for admin commands. With the embedded default, the running receiver's server is
 * used; when no receiver runs, its JetStream store is opened by a short-lived server on loopback.
 */
export const withReceiverNats = async <A>(configPath: string, use: (nc: NatsConnection, c: ReceiverConfig) => Promise<A>): Promise<A> => {
  const c = await Effect.runPromise(loadReceiverConfig(configPath));
  let server: NatsServerProcess | undefined;
  let nc: NatsConnection;
  if (c.nats_url !== undefined) nc = await connectNats(c.nats_url, "tsync-admin", c);
  else {
    try {
      nc = await connectNats([`127.0.0.1:${c.sync_server_port}`], "tsync-admin", { ...c, tls_ca_file: c.tls_ca_file ?? c.tls_server_ca_file }, { maxReconnectAttempts: 0 });
    } catch (e) {
      // Only "nobody listens" means the receiver is down. Any other failure (TLS, auth) must not
      // start a second server on the store the running one owns.
      if (!isConnectionRefused(e)) throw e;
      server = await startNatsServer({ dir: embeddedStoreDir(resolve(c.receiver_data_directory)), host: "127.0.0.1" });
      nc = await connectNats([server.url], "tsync-admin", { ...c, ...noTls });
    }
  }
  try {
    return await use(nc, c);
  } finally {
    await nc.close();
    await server?.stop();
  }
};
