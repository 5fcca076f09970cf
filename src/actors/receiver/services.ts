// The services a receiver process is made of, each a scoped layer: closing the receiver's scope
// releases them in the reverse order they were acquired (sweeper, journal, storage, address book,
// connections, and the embedded nats-server last).
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Context, Data, Duration, Effect, Layer, Schedule } from "effect";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ReceiverConfig } from "../../config/receiver.js";
import { openStorage } from "../../plugins/loadStorage.js";
import type { Storage as StorageShape } from "../../plugins/storage.js";
import { connectNats, type NatsClientSettings } from "../natsConnect.js";
import { startNatsServer, type NatsServerProcess } from "../natsServer.js";
import { accountAddressBook, monitorAddressBook, type AddressBook } from "./addressOf.js";
import { Catalog } from "./catalog.js";
import { renderAuthorization } from "./embeddedAuth.js";
import { FleetStore } from "./fleet.js";
import { Journal } from "./journal.js";
import { OwnershipRegistry } from "./ownership.js";
import { receiverIdentity, type ReceiverIdentity } from "./receiverIdentity.js";
import { readSenderRegistry, type EnrolledSender } from "./senderRegistry.js";
import { Staging, stagingRoot } from "./staging.js";

/** A receiver could not start: which step, and why (the message is meant for the operator). */
export class ReceiverStartError extends Data.TaggedError("ReceiverStartError")<{
  readonly step: string;
  readonly message: string;
  readonly cause?: unknown;
}> {}

const step =
  (name: string) =>
  <A>(run: () => Promise<A>): Effect.Effect<A, ReceiverStartError> =>
    Effect.tryPromise({
      try: run,
      catch: (cause) => new ReceiverStartError({ step: name, message: cause instanceof Error ? cause.message : String(cause), cause }),
    });

/**
 * A step that creates or opens a JetStream bucket. A cluster that has just started (or lost a
 * node) answers "timeout" or no responders until it has elected its leaders: such a step waits for
 * that, trying again every second for up to half a minute, rather than failing the start.
 */
const jetStreamStep =
  (name: string) =>
  <A>(run: () => Promise<A>): Effect.Effect<A, ReceiverStartError> =>
    step(name)(run).pipe(
      Effect.retry({
        schedule: Schedule.spaced(Duration.seconds(1)),
        times: 30,
        while: (e) => /timeout|no responders|jetstream .*(not|un)available|leader/i.test(e.message),
      }),
    );

export const catalogPath = (dataDir: string): string => join(dataDir, ".tsync", "catalog.jsonl");
export const journalPath = (dataDir: string): string => join(dataDir, ".tsync", "journal.jsonl");
export const embeddedStoreDir = (dataDir: string): string => join(dataDir, ".tsync", "nats");

/** Extra nats-server config for the embedded server's TLS, when the properties ask for it. */
export const embeddedTlsConfig = (c: ReceiverConfig): string =>
  c.tls_server_cert_file === undefined
    ? ""
    : `tls {\n  cert_file: "${c.tls_server_cert_file}"\n  key_file: "${c.tls_server_key_file ?? ""}"\n` +
      (c.tls_server_ca_file ? `  ca_file: "${c.tls_server_ca_file}"\n  verify: true\n` : "") +
      `}\n`;

/** The client settings of one of the receiver's own users on its embedded server: its nkey, the TLS of `c`. */
const asIdentity = (c: ReceiverConfig, id: ReceiverIdentity): NatsClientSettings => ({
  nats_user: undefined,
  nats_password: undefined,
  nats_token: undefined,
  nats_creds_file: undefined,
  nats_nkey_seed_file: id.seedFile,
  tls_ca_file: c.tls_ca_file,
  tls_cert_file: c.tls_cert_file,
  tls_key_file: c.tls_key_file,
});

/** Whether `ip_white_list` admits every IPv4 address, i.e. restricts nothing that matters. */
const admitsEveryone = (c: ReceiverConfig): boolean => c.ip_white_list.some((cidr) => cidr.kind === "ipv4" && cidr.prefixLength === 0);

/** What the process was started with. */
export class ReceiverEnv extends Context.Service<
  ReceiverEnv,
  { readonly config: ReceiverConfig; readonly dataDir: string; readonly log: (line: string) => void; readonly instance: string }
>()("tsync/receiver/Env") {
  static layer = (config: ReceiverConfig, log: (line: string) => void, instance: string) =>
    Layer.effect(
      ReceiverEnv,
      Effect.gen(function* () {
        const dataDir = resolve(config.receiver_data_directory);
        yield* step("data directory")(() => mkdir(join(dataDir, ".tsync"), { recursive: true }));
        return { config, dataDir, log, instance };
      }),
    );
}

/** The NATS servers senders reach: the embedded one (started here, stopped last) or `nats_url`. */
export class NatsServers extends Context.Service<
  NatsServers,
  {
    readonly servers: ReadonlyArray<string>;
    readonly embedded: NatsServerProcess | undefined;
    readonly service: NatsClientSettings;
    readonly store: NatsClientSettings;
    /** Enrolled senders by id, when the embedded server requires enrollment (kept current by the receiver). */
    readonly enrolled: Map<string, EnrolledSender> | undefined;
  }
>()("tsync/receiver/NatsServers") {
  static layer = Layer.effect(
    NatsServers,
    Effect.gen(function* () {
      const { config: c, dataDir, log } = yield* ReceiverEnv;
      if (c.nats_url !== undefined) return { servers: c.nats_url, embedded: undefined, service: c, store: c, enrolled: undefined };
      let auth = "";
      let service: NatsClientSettings = c;
      let store: NatsClientSettings = c;
      let enrolled: Map<string, EnrolledSender> | undefined;
      if (c.embedded_server_open) {
        log(
          `WARNING: embedded_server_open=true: the embedded nats-server on port ${c.sync_server_port} accepts anyone without authentication. ` +
            "Any host that reaches it can read every sender's bytes, act as any sender, and rewrite or purge the ownership registry and stored objects. " +
            "Use it only on a network you fully trust; enroll senders (tsync senders add) and set it to false otherwise.",
        );
      } else {
        const [serviceId, storeId, senders] = yield* step("receiver keys and sender registry")(() =>
          Promise.all([receiverIdentity(dataDir, "service"), receiverIdentity(dataDir, "store"), readSenderRegistry(dataDir)]),
        );
        service = asIdentity(c, serviceId);
        store = asIdentity(c, storeId);
        enrolled = new Map(senders.map((s) => [s.id, s]));
        auth = renderAuthorization(c.receiver_group, serviceId, storeId, senders);
        if (senders.length === 0)
          log(`no sender is enrolled yet: enroll each edge box with \`tsync senders add ID --out ID.nk\` (see docs/security.md)`);
      }
      const embedded = yield* Effect.acquireRelease(
        step("embedded nats-server")(() =>
          startNatsServer({
            dir: embeddedStoreDir(dataDir),
            host: "0.0.0.0",
            port: c.sync_server_port === 0 ? -1 : c.sync_server_port,
            extraConfig: embeddedTlsConfig(c) + auth,
          }),
        ),
        (s) => Effect.promise(() => s.stop()),
      );
      return { servers: [`127.0.0.1:${embedded.port}`], embedded, service, store, enrolled };
    }),
  );
}

const drained = (nc: NatsConnection) => Effect.promise(() => nc.drain().catch(() => undefined));

/**
 * Two connections: `service` hears senders and answers them (on the embedded server it may publish
 * only into senders' inboxes); `store` does JetStream, KV, object store and address lookups and
 * hears nothing from senders.
 */
export class NatsLinks extends Context.Service<NatsLinks, { readonly service: NatsConnection; readonly store: NatsConnection }>()(
  "tsync/receiver/NatsLinks",
) {
  static layer = Layer.effect(
    NatsLinks,
    Effect.gen(function* () {
      const { config: c, instance } = yield* ReceiverEnv;
      const { servers, embedded, service: serviceSettings, store: storeSettings } = yield* NatsServers;
      const service = yield* Effect.acquireRelease(
        step("NATS connection")(() => connectNats(servers, `tsync-receiver-${c.receiver_group}-${instance}`, serviceSettings)),
        drained,
      );
      const store = yield* Effect.acquireRelease(
        step("NATS connection")(() => connectNats(servers, `tsync-receiver-store-${c.receiver_group}-${instance}`, storeSettings)),
        drained,
      );
      if (embedded === undefined && service.info?.auth_required !== true && !admitsEveryone(c))
        return yield* new ReceiverStartError({
          step: "ip_white_list",
          message:
            `ip_white_list=${c.ip_white_list.map((x) => x.text).join(", ")} cannot be enforced on ${servers.join(", ")}: that NATS server requires no authentication, ` +
            "so any client could answer the receiver's address lookups or borrow a sender's identity. Turn on authentication with per-sender permissions (docs/security.md), " +
            "or use the embedded server, or set ip_white_list=0.0.0.0/0, ::/0 to admit every address knowingly.",
        });
      return { service, store };
    }),
  );
}

/**
 * Who tells us the address of a sender's connection: the embedded server's monitoring endpoint,
 * `nats_monitor_url`, or else the servers of the receiver's account, over the store connection.
 */
export class Addresses extends Context.Service<Addresses, AddressBook>()("tsync/receiver/Addresses") {
  static layer = Layer.effect(
    Addresses,
    Effect.gen(function* () {
      const { config: c } = yield* ReceiverEnv;
      const { embedded } = yield* NatsServers;
      const { store } = yield* NatsLinks;
      const book =
        embedded !== undefined
          ? monitorAddressBook(embedded.monitorUrl)
          : c.nats_monitor_url !== undefined
            ? monitorAddressBook(c.nats_monitor_url)
            : accountAddressBook(store);
      return yield* Effect.acquireRelease(Effect.succeed(book), (b) => Effect.promise(() => b.close().catch(() => undefined)));
    }),
  );
}

/** The plugin's options; a bucket the plugin creates (objectstore) gets `replicas` copies unless `plugin.replicas` says otherwise. */
const withReplicas = (c: ReceiverConfig): Readonly<Record<string, string>> =>
  c.plugin["replicas"] === undefined ? { ...c.plugin, replicas: String(c.replicas) } : c.plugin;

/** The storage plugin, closed when the receiver stops. */
export class ReceiverStorage extends Context.Service<ReceiverStorage, StorageShape>()("tsync/receiver/Storage") {
  static layer = Layer.effect(
    ReceiverStorage,
    Effect.gen(function* () {
      const { config: c, dataDir, log } = yield* ReceiverEnv;
      const { servers } = yield* NatsServers;
      const { store } = yield* NatsLinks;
      return yield* Effect.acquireRelease(
        openStorage(c.storage_plugin, {
          dataDir,
          options: withReplicas(c),
          natsServers: servers.join(","),
          natsOptions: {},
          nc: store,
          log,
        }).pipe(Effect.mapError((e) => new ReceiverStartError({ step: "storage plugin", message: e.message, cause: e }))),
        (s) => s.close.pipe(Effect.ignore),
      );
    }),
  );
}

/** The load journal (exactly-once), closed when the receiver stops. */
export class LoadJournal extends Context.Service<LoadJournal, Journal>()("tsync/receiver/LoadJournal") {
  static layer = Layer.effect(
    LoadJournal,
    Effect.gen(function* () {
      const { dataDir, log } = yield* ReceiverEnv;
      return yield* Effect.acquireRelease(
        step("load journal")(() => Journal.open(journalPath(dataDir), log)),
        (j) => Effect.promise(() => j.close()),
      );
    }),
  );
}

/** Storage group → owning sender, in JetStream KV over the store connection. */
export class Owners extends Context.Service<Owners, OwnershipRegistry>()("tsync/receiver/Owners") {
  static layer = Layer.effect(
    Owners,
    Effect.gen(function* () {
      const { config: c } = yield* ReceiverEnv;
      const { store } = yield* NatsLinks;
      return yield* jetStreamStep("ownership registry")(() => OwnershipRegistry.open(store, c.receiver_group, c.replicas));
    }),
  );
}

/** The fleet view's bucket: senders' reports heard over the service connection, stored over the store one. */
export class Fleet extends Context.Service<Fleet, FleetStore>()("tsync/receiver/Fleet") {
  static layer = Layer.effect(
    Fleet,
    Effect.gen(function* () {
      const { config: c, log } = yield* ReceiverEnv;
      const { service, store } = yield* NatsLinks;
      return yield* Effect.acquireRelease(
        jetStreamStep("fleet bucket")(() => FleetStore.open(service, store, c.receiver_group, { replicas: c.replicas, log })),
        (f) => Effect.promise(() => f.close()),
      );
    }),
  );
}

/** Per-sender staging, with its sweeper running while the receiver runs. */
export class ReceiverStaging extends Context.Service<ReceiverStaging, Staging>()("tsync/receiver/Staging") {
  static layer = Layer.effect(
    ReceiverStaging,
    Effect.gen(function* () {
      const { config: c, dataDir, log } = yield* ReceiverEnv;
      const staging = new Staging(stagingRoot(dataDir), log, {
        quotaBytesPerSender: c.staging_quota_bytes_per_sender,
        graceMs: c.staging_grace_in_second * 1000,
      });
      return yield* Effect.acquireRelease(step("staging sweep")(() => staging.startSweeper()).pipe(Effect.as(staging)), (s) =>
        Effect.sync(() => s.stopSweeper()),
      );
    }),
  );
}

/** The catalog of loaded TsFiles (devices and time ranges). */
export class ReceiverCatalog extends Context.Service<ReceiverCatalog, Catalog>()("tsync/receiver/Catalog") {
  static layer = Layer.effect(
    ReceiverCatalog,
    Effect.gen(function* () {
      const { dataDir, log } = yield* ReceiverEnv;
      return new Catalog(catalogPath(dataDir), undefined, log);
    }),
  );
}

/** Everything a receiver runs on, in dependency order (released in reverse). */
export const receiverServices = (config: ReceiverConfig, log: (line: string) => void, instance: string) =>
  Layer.mergeAll(
    ReceiverStorage.layer,
    LoadJournal.layer,
    Owners.layer,
    Fleet.layer,
    ReceiverStaging.layer,
    ReceiverCatalog.layer,
    Addresses.layer,
  ).pipe(
    Layer.provideMerge(NatsLinks.layer),
    Layer.provideMerge(NatsServers.layer),
    Layer.provideMerge(ReceiverEnv.layer(config, log, instance)),
  );
