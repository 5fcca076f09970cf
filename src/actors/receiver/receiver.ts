import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { stat } from "node:fs/promises";
import { Effect, Result } from "effect";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeJson, encodeJson, Hello, protocolVersion } from "../../protocol/messages.js";
import { Code } from "../../protocol/status.js";
import { helloWildcard, isSenderInbox, receiverQueue } from "../../protocol/subjects.js";
import type { ReceiverConfig } from "../../config/receiver.js";
import { openStorage } from "../../plugins/loadStorage.js";
import type { Storage } from "../../plugins/storage.js";
import { connectNats, type NatsClientSettings } from "../natsConnect.js";
import { startNatsServer, type NatsServerProcess } from "../natsServer.js";
import { accountAddressBook, monitorAddressBook, type AddressBook } from "./addressOf.js";
import { Catalog } from "./catalog.js";
import { renderAuthorization } from "./embeddedAuth.js";
import { receiverIdentity, type ReceiverIdentity } from "./receiverIdentity.js";
import { readSenderRegistry, registryPollMs, senderRegistryPath, type EnrolledSender } from "./senderRegistry.js";
import { ReceiverCore, type TsFileCheck } from "./core.js";
import { Journal } from "./journal.js";
import { OwnershipRegistry } from "./ownership.js";
import { newId, SessionHost } from "./sessionHost.js";
import { Staging, stagingRoot } from "./staging.js";

export interface ReceiverOptions {
  readonly config: ReceiverConfig;
  readonly log?: (line: string) => void;
  readonly validateTsFile: (path: string) => Promise<TsFileCheck>;
  /** Receives every session's inspection events (the dashboard). */
  readonly inspect?: (sessionId: string, event: unknown) => void;
  readonly onSession?: (host: SessionHost, event: "open" | "end") => void;
}

/** Hellos being admitted at once; more are answered `busy` at once, so a flood cannot pile up. */
export const maxPendingHellos = 256;

export const catalogPath = (dataDir: string): string => join(dataDir, ".tsync", "catalog.jsonl");
export const embeddedStoreDir = (dataDir: string): string => join(dataDir, ".tsync", "nats");

/** Extra nats-server config for the embedded server's TLS, when the properties ask for it. */
const embeddedTlsConfig = (c: ReceiverConfig): string =>
  c.tls_server_cert_file === undefined
    ? ""
    : `tls {\n  cert_file: "${c.tls_server_cert_file}"\n  key_file: "${c.tls_server_key_file ?? ""}"\n` +
      (c.tls_server_ca_file ? `  ca_file: "${c.tls_server_ca_file}"\n  verify: true\n` : "") +
      `}\n`;

/**
 * Who tells us the address of a sender's connection: the embedded server's monitoring endpoint,
 * `nats_monitor_url`, or else the servers of the receiver's account, over its own connection.
 */
const addressBookFor = (c: ReceiverConfig, nc: NatsConnection, embeddedMonitor: string | undefined): AddressBook => {
  if (embeddedMonitor !== undefined) return monitorAddressBook(embeddedMonitor);
  if (c.nats_monitor_url !== undefined) return monitorAddressBook(c.nats_monitor_url);
  return accountAddressBook(nc);
};

/** Whether `ip_white_list` admits every IPv4 address, i.e. restricts nothing that matters. */
const admitsEveryone = (c: ReceiverConfig): boolean => c.ip_white_list.some((cidr) => cidr.kind === "ipv4" && cidr.prefixLength === 0);

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

/**
 * The receiver process: its NATS server (embedded unless `nats_url` is set), the hello
 * subscription shared by the receiver group, and one SessionHost per admitted sender.
 */
export class Receiver {
  private readonly sessions = new Map<string, SessionHost>();
  private helloSub: Subscription | undefined;
  private pendingHellos = 0;

  private constructor(
    readonly core: ReceiverCore,
    /** Hears senders and answers them; may publish only into senders' inboxes (embedded server). */
    readonly nc: NatsConnection,
    /** JetStream, KV, object store and address lookups; hears nothing from senders. */
    readonly store: NatsConnection,
    private readonly enrolled: Map<string, EnrolledSender> | undefined,
    readonly server: NatsServerProcess | undefined,
    private readonly storage: Storage,
    private readonly options: ReceiverOptions,
    readonly port: number,
    readonly url: string,
    private readonly addresses: AddressBook | undefined,
  ) {}

  static async start(options: ReceiverOptions): Promise<Receiver> {
    const c = options.config;
    const log = options.log ?? ((line: string) => process.stdout.write(line + "\n"));
    const dataDir = resolve(c.receiver_data_directory);
    await mkdir(join(dataDir, ".tsync"), { recursive: true });
    let server: NatsServerProcess | undefined;
    let servers: ReadonlyArray<string>;
    let serviceSettings: NatsClientSettings = c;
    let storeSettings: NatsClientSettings = c;
    let enrolled: Map<string, EnrolledSender> | undefined;
    if (c.nats_url === undefined) {
      let auth = "";
      if (c.embedded_server_open) {
        log(
          `WARNING: embedded_server_open=true: the embedded nats-server on port ${c.sync_server_port} accepts anyone without authentication. ` +
            "Any host that reaches it can read every sender's bytes, act as any sender, and rewrite or purge the ownership registry and stored objects. " +
            "Use it only on a network you fully trust; enroll senders (tsync senders add) and set it to false otherwise.",
        );
      } else {
        const [service, store, senders] = await Promise.all([receiverIdentity(dataDir, "service"), receiverIdentity(dataDir, "store"), readSenderRegistry(dataDir)]);
        serviceSettings = asIdentity(c, service);
        storeSettings = asIdentity(c, store);
        enrolled = new Map(senders.map((s) => [s.id, s]));
        auth = renderAuthorization(c.receiver_group, service, store, senders);
        if (senders.length === 0) log(`no sender is enrolled yet: enroll each edge box with \`tsync senders add ID --out ID.nk\` (see docs/security.md)`);
      }
      server = await startNatsServer({
        dir: embeddedStoreDir(dataDir),
        host: "0.0.0.0",
        port: c.sync_server_port === 0 ? -1 : c.sync_server_port,
        extraConfig: embeddedTlsConfig(c) + auth,
      });
      servers = [`127.0.0.1:${server.port}`];
    } else {
      servers = c.nats_url;
    }
    const instance = newId().replace(/[^A-Za-z0-9]/g, "x");
    let nc: NatsConnection | undefined;
    let store: NatsConnection | undefined;
    let addresses: AddressBook | undefined;
    try {
      nc = await connectNats(servers, `tsync-receiver-${c.receiver_group}-${instance}`, serviceSettings);
      store = await connectNats(servers, `tsync-receiver-store-${c.receiver_group}-${instance}`, storeSettings);
      if (server === undefined && nc.info?.auth_required !== true && !admitsEveryone(c))
        throw new Error(
          `ip_white_list=${c.ip_white_list.map((x) => x.text).join(", ")} cannot be enforced on ${servers.join(", ")}: that NATS server requires no authentication, ` +
            "so any client could answer the receiver's address lookups or borrow a sender's identity. Turn on authentication with per-sender permissions (docs/security.md), " +
            "or use the embedded server, or set ip_white_list=0.0.0.0/0, ::/0 to admit every address knowingly.",
        );
      addresses = addressBookFor(c, store, server?.monitorUrl);
      const storage = await Effect.runPromise(
        openStorage(c.storage_plugin, { dataDir, options: c.plugin, natsServers: servers.join(","), natsOptions: {}, nc: store, log }),
      );
      const journal = await Journal.open(join(dataDir, ".tsync", "journal.jsonl"));
      const owners = await OwnershipRegistry.open(store, c.receiver_group);
      const maxPayload = nc.info?.max_payload ?? 1 << 20;
      const core = new ReceiverCore(
        {
          group: c.receiver_group,
          instance,
          enabled: c.is_sync_enable,
          whiteList: c.ip_white_list,
          addresses,
          maxSessions: c.max_sessions,
          maxChunkBytes: maxPayload,
          maxFileBytes: c.max_file_size_bytes,
          idleTimeoutMs: c.session_idle_timeout_in_second * 1000,
          ...(enrolled ? { enrolledKey: (id: string) => enrolled?.get(id)?.nkey } : {}),
        },
        journal,
        new Staging(stagingRoot(dataDir), log, { quotaBytesPerSender: c.staging_quota_bytes_per_sender, graceMs: c.staging_grace_in_second * 1000 }),
        storage,
        owners,
        options.validateTsFile,
        log,
        (sessionId) => (options.inspect ? { inspect: (e: unknown) => options.inspect?.(sessionId, e) } : {}),
        new Catalog(catalogPath(dataDir)),
      );
      const port = server?.port ?? Number(servers[0]?.split(":").pop() ?? 0);
      const receiver = new Receiver(core, nc, store, enrolled, server, storage, options, port, servers[0] ?? "", addresses);
      receiver.listen();
      if (enrolled) receiver.watchRegistry(dataDir);
      await nc.flush();
      // Last, so nothing after it can fail and leave a sweeper running; offers racing the start-up
      // sweep are safe: a sender that uses staging is never swept.
      await core.staging.startSweeper();
      log(`sync service started on port ${port} (receiver group ${c.receiver_group}, sync ${c.is_sync_enable ? "enabled" : "disabled"})`);
      return receiver;
    } catch (e) {
      await addresses?.close().catch(() => undefined);
      await nc?.close().catch(() => undefined);
      await store?.close().catch(() => undefined);
      await server?.stop();
      throw e;
    }
  }

  private listen(): void {
    const c = this.options.config;
    const sub = this.nc.subscribe(helloWildcard(c.receiver_group), { queue: receiverQueue(c.receiver_group) });
    this.helloSub = sub;
    void (async () => {
      for await (const m of sub) {
        const subjectId = m.subject.slice(m.subject.lastIndexOf(".") + 1);
        if (!m.reply || !isSenderInbox(m.reply, subjectId)) {
          // The answer would go wherever the request says, with the receiver's rights (a JetStream
          // API subject, another sender's session): only the asking sender's own inbox is answered.
          this.core.stats.droppedReplies++;
          if (this.core.stats.droppedReplies % 1000 === 1)
            this.core.log(`dropped a hello whose reply subject is not sender ${JSON.stringify(subjectId)}'s inbox: ${JSON.stringify(m.reply ?? "")}`);
          continue;
        }
        if (this.pendingHellos >= maxPendingHellos) {
          // A burst beyond what admission can look up: answer at once rather than queue it.
          this.core.stats.refused++;
          if (m.reply) m.respond(encodeJson({ code: Code.busy, message: `receiver is admitting ${this.pendingHellos} senders; try later` }));
          continue;
        }
        this.pendingHellos++;
        void this.hello(m)
          .catch((e: unknown) => {
            this.core.log(`hello failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
            if (m.reply) m.respond(encodeJson({ code: Code.internal, message: "internal error; see the receiver log" }));
          })
          .finally(() => this.pendingHellos--);
      }
    })().catch((e: unknown) => this.core.log(`hello subscription ended: ${e instanceof Error ? e.message : String(e)}`));
  }

  private async hello(m: Msg): Promise<void> {
    if (!m.reply) return;
    const reply = m.reply;
    const decoded = decodeJson(Hello)(m.data);
    if (Result.isFailure(decoded)) {
      this.core.stats.rejected++;
      m.respond(encodeJson({ code: Code.badMessage, message: `bad hello: ${decoded.failure}` }));
      return;
    }
    const hello = decoded.success;
    const subjectId = m.subject.split(".").pop();
    if (subjectId !== hello.senderId) {
      // Permissions pin a sender to its subject; the id inside must agree with it.
      this.core.stats.refused++;
      m.respond(encodeJson({ code: Code.unauthorized, message: `hello on the subject of ${subjectId} claims to be ${hello.senderId}` }));
      return;
    }
    if (hello.protocol !== protocolVersion) {
      m.respond(encodeJson({ code: Code.protocolMismatch, message: `protocol ${hello.protocol} is not spoken here (receiver speaks ${protocolVersion})` }));
      return;
    }
    const sessionId = newId().replace(/[^A-Za-z0-9]/g, "x");
    const sameSender = () => [...this.sessions.values()].filter((s) => s.input.senderId === hello.senderId);
    const host = new SessionHost(
      this.core,
      this.nc,
      { senderId: hello.senderId, sessionId, address: "", idleTimeoutMs: this.core.settings.idleTimeoutMs },
      // The sender's live session does not count against max_sessions: the new one replaces it.
      () => this.core.admit(reply, hello.senderId, () => sameSender().length),
      (h) => {
        if (this.sessions.get(h.input.sessionId) === h) {
          this.sessions.delete(h.input.sessionId);
          this.core.activeSessions = this.sessions.size;
          this.options.onSession?.(h, "end");
        }
      },
    );
    const admitted = await host.start(m);
    if (!admitted) {
      this.core.log(`sender ${hello.senderId} refused: ${host.actor.getSnapshot().context.lastReply?.message ?? "?"}`);
      return;
    }
    // Only an admitted hello ends the sender's earlier session, so a refused one disturbs nothing.
    const earlier = sameSender();
    this.sessions.set(sessionId, host);
    this.core.settleAdmission();
    this.core.activeSessions = this.sessions.size;
    this.core.stats.sessionsOpened++;
    for (const s of earlier) await s.stop();
    this.core.log(
      `session ${sessionId} opened for sender ${hello.senderId}${hello.senderName ? ` (${hello.senderName})` : ""} from ${host.address ?? "?"}` +
        (earlier.length > 0 ? `, replacing ${earlier.map((s) => s.input.sessionId).join(", ")}` : ""),
    );
    this.options.onSession?.(host, "open");
  }

  private registryTimer: NodeJS.Timeout | undefined;

  /**
   * Follows the sender registry that `tsync senders add|remove` edits: the server's authorization
   * is regenerated and reloaded (nats-server closes connections whose user is gone), and live
   * sessions of removed senders end. A registry that cannot be read keeps the last good one.
   */
  private watchRegistry(dataDir: string): void {
    const path = senderRegistryPath(dataDir);
    let seen = "";
    let failed = "";
    let busy = false;
    const look = async (): Promise<void> => {
      const st = await stat(path).catch(() => undefined);
      const stamp = st ? `${st.mtimeMs}:${st.size}:${st.ino}` : "none";
      if (stamp === seen) return;
      try {
        await this.applyRegistry(dataDir, await readSenderRegistry(dataDir));
        seen = stamp;
      } catch (e) {
        // Tried again at the next look; said once per version of the file.
        if (failed !== stamp) this.core.log(`sender registry not applied, the previous one stays: ${e instanceof Error ? e.message : String(e)}`);
        failed = stamp;
      }
    };
    void look();
    this.registryTimer = setInterval(() => {
      if (busy) return;
      busy = true;
      look()
        .catch((e: unknown) => this.core.log(`sender registry: ${e instanceof Error ? e.message : String(e)}`))
        .finally(() => (busy = false));
    }, registryPollMs);
    this.registryTimer.unref();
  }

  private async applyRegistry(dataDir: string, senders: ReadonlyArray<EnrolledSender>): Promise<void> {
    const enrolled = this.enrolled;
    if (!enrolled || !this.server) return;
    const next = new Map(senders.map((s) => [s.id, s]));
    const changed = next.size !== enrolled.size || [...next.values()].some((s) => enrolled.get(s.id)?.nkey !== s.nkey);
    if (!changed) return;
    const c = this.options.config;
    const [service, store] = await Promise.all([receiverIdentity(dataDir, "service"), receiverIdentity(dataDir, "store")]);
    await this.server.reconfigure(embeddedTlsConfig(c) + renderAuthorization(c.receiver_group, service, store, senders));
    const gone = [...enrolled.values()].filter((s) => next.get(s.id)?.nkey !== s.nkey);
    const added = senders.filter((s) => enrolled.get(s.id)?.nkey !== s.nkey);
    enrolled.clear();
    for (const [id, s] of next) enrolled.set(id, s);
    for (const s of this.openSessions) if (gone.some((g) => g.id === s.input.senderId)) await s.stop();
    this.core.log(
      `sender registry applied: ${senders.length} enrolled` +
        (added.length > 0 ? `, added ${added.map((s) => s.id).join(", ")}` : "") +
        (gone.length > 0 ? `, removed ${gone.map((s) => s.id).join(", ")}` : ""),
    );
  }

  get openSessions(): ReadonlyArray<SessionHost> {
    return [...this.sessions.values()];
  }

  async stop(): Promise<void> {
    await this.core.staging.stopSweeper();
    clearInterval(this.registryTimer);
    this.helloSub?.unsubscribe();
    for (const s of [...this.sessions.values()]) await s.stop();
    await this.addresses?.close().catch(() => undefined);
    await this.nc.drain().catch(() => undefined);
    await this.core.journal.close();
    await Effect.runPromise(this.storage.close);
    await this.store.drain().catch(() => undefined);
    await this.server?.stop();
  }
}
