// A NATS connection for admin commands, to a running receiver's server or its store directly.
import { resolve } from "node:path";
import { Effect } from "effect";
import type { NatsConnection } from "@nats-io/transport-node";
import { loadReceiverConfig, type ReceiverConfig } from "../config/receiver.js";
import { connectNats, type NatsClientSettings } from "../actors/natsConnect.js";
import { readRunningServer, startNatsServer, type NatsServerProcess } from "../actors/natsServer.js";
import { embeddedStoreDir } from "../actors/receiver/receiver.js";
import { receiverIdentity } from "../actors/receiver/receiverIdentity.js";

const noAuth = {
  nats_user: undefined,
  nats_password: undefined,
  nats_token: undefined,
  nats_creds_file: undefined,
  nats_nkey_seed_file: undefined,
};

/**
 * A connection for admin commands. With the embedded default, the running receiver's server is
 * used (found through its pid and ports files, so `sync_server_port=0` works), as the receiver's
 * store user; when no receiver runs, its JetStream store is opened by a short-lived server on
 * loopback that admits that user only.
 */
export const withReceiverNats = async <A>(configPath: string, use: (nc: NatsConnection, c: ReceiverConfig) => Promise<A>): Promise<A> => {
  const c = await Effect.runPromise(loadReceiverConfig(configPath));
  let server: NatsServerProcess | undefined;
  let nc: NatsConnection;
  if (c.nats_url !== undefined) nc = await connectNats(c.nats_url, "tsync-admin", c);
  else {
    const dataDir = resolve(c.receiver_data_directory);
    const dir = embeddedStoreDir(dataDir);
    const store = c.embedded_server_open ? undefined : await receiverIdentity(dataDir, "store");
    const as: NatsClientSettings = { ...c, ...noAuth, ...(store ? { nats_nkey_seed_file: store.seedFile } : {}) };
    const running = await readRunningServer(dir);
    if (running) {
      nc = await connectNats([`127.0.0.1:${running.port}`], "tsync-admin", as, { maxReconnectAttempts: 0 });
    } else {
      server = await startNatsServer({
        dir,
        host: "127.0.0.1",
        ...(store ? { extraConfig: `authorization { users = [ { nkey: "${store.publicKey}" } ] }\n` } : {}),
      });
      nc = await connectNats([server.url], "tsync-admin", {
        ...as,
        tls_ca_file: undefined,
        tls_cert_file: undefined,
        tls_key_file: undefined,
      });
    }
  }
  try {
    return await use(nc, c);
  } finally {
    await nc.close();
    await server?.stop();
  }
};
