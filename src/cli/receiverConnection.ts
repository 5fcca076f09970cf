// A NATS connection for admin commands, to a running receiver's server or its store directly.
import { resolve } from "node:path";
import { Effect, type Scope } from "effect";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ReceiverConfig } from "../config/receiver.js";
import { connectNats, type NatsClientSettings } from "../actors/natsConnect.js";
import { readRunningServer, startNatsServer } from "../actors/natsServer.js";
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
 * A connection for admin commands, closed when the command's scope ends. With the embedded
 * default, the running receiver's server is used (found through its pid and ports files, so
 * `sync_server_port=0` works), as the receiver's store user; when no receiver runs, its JetStream
 * store is opened by a short-lived server on loopback that admits that user only, stopped after.
 */
export const receiverNats = (c: ReceiverConfig): Effect.Effect<NatsConnection, unknown, Scope.Scope> => {
  const connection = (open: () => Promise<NatsConnection>) =>
    Effect.acquireRelease(Effect.tryPromise({ try: open, catch: (e) => e }), (nc) => Effect.promise(() => nc.close()));
  if (c.nats_url !== undefined) {
    const urls = c.nats_url;
    return connection(() => connectNats(urls, "tsync-admin", c));
  }
  const dataDir = resolve(c.receiver_data_directory);
  const dir = embeddedStoreDir(dataDir);
  return Effect.gen(function* () {
    const store = c.embedded_server_open
      ? undefined
      : yield* Effect.tryPromise({ try: () => receiverIdentity(dataDir, "store"), catch: (e) => e });
    const as: NatsClientSettings = { ...c, ...noAuth, ...(store ? { nats_nkey_seed_file: store.seedFile } : {}) };
    const running = yield* Effect.promise(() => readRunningServer(dir));
    if (running) return yield* connection(() => connectNats([`127.0.0.1:${running.port}`], "tsync-admin", as, { maxReconnectAttempts: 0 }));
    const server = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          startNatsServer({
            dir,
            host: "127.0.0.1",
            ...(store ? { extraConfig: `authorization { users = [ { nkey: "${store.publicKey}" } ] }\n` } : {}),
          }),
        catch: (e) => e,
      }),
      (s) => Effect.promise(() => s.stop()),
    );
    return yield* connection(() =>
      connectNats([server.url], "tsync-admin", { ...as, tls_ca_file: undefined, tls_cert_file: undefined, tls_key_file: undefined }),
    );
  });
};
