import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Effect, Result } from "effect";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeJson, encodeJson, Hello, protocolVersion } from "../../protocol/messages.js";
import { Code } from "../../protocol/status.js";
import { helloWildcard, receiverQueue } from "../../protocol/subjects.js";
import type { ReceiverConfig } from "../../config/receiver.js";
import { openStorage } from "../../plugins/loadStorage.js";
import type { Storage } from "../../plugins/storage.js";
import { connectNats } from "../natsConnect.js";
import { startNatsServer, type NatsServerProcess } from "../natsServer.js";
import { accountAddressBook, monitorAddressBook, type AddressBook } from "./addressOf.js";
import { Catalog } from "./catalog.js";
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
    readonly nc: NatsConnection,
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
    if (c.nats_url === undefined) {
      server = await startNatsServer({
        dir: embeddedStoreDir(dataDir),
        host: "0.0.0.0",
        port: c.sync_server_port === 0 ? -1 : c.sync_server_port,
        extraConfig: embeddedTlsConfig(c),
      });
      servers = [`127.0.0.1:${server.port}`];
    } else {
      servers = c.nats_url;
    }
    const instance = newId().replace(/[^A-Za-z0-9]/g, "x");
    let nc: NatsConnection | undefined;
    let addresses: AddressBook | undefined;
    try {
      nc = await connectNats(servers, `tsync-receiver-${c.receiver_group}-${instance}`, c);
      addresses = addressBookFor(c, nc, server?.monitorUrl);
      const storage = await Effect.runPromise(
        openStorage(c.storage_plugin, { dataDir, options: c.plugin, natsServers: servers.join(","), natsOptions: {}, nc, log }),
      );
      const journal = await Journal.open(join(dataDir, ".tsync", "journal.jsonl"));
      const owners = await OwnershipRegistry.open(nc, c.receiver_group);
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
        },
        journal,
        new Staging(stagingRoot(dataDir)),
        storage,
        owners,
        options.validateTsFile,
        log,
        (sessionId) => (options.inspect ? { inspect: (e: unknown) => options.inspect?.(sessionId, e) } : {}),
        new Catalog(catalogPath(dataDir)),
      );
      const port = server?.port ?? Number(servers[0]?.split(":").pop() ?? 0);
      const receiver = new Receiver(core, nc, server, storage, options, port, servers[0] ?? "", addresses);
      receiver.listen();
      await nc.flush();
      log(`sync service started on port ${port} (receiver group ${c.receiver_group}, sync ${c.is_sync_enable ? "enabled" : "disabled"})`);
      return receiver;
    } catch (e) {
      await addresses?.close().catch(() => undefined);
      await nc?.close().catch(() => undefined);
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

  get openSessions(): ReadonlyArray<SessionHost> {
    return [...this.sessions.values()];
  }

  async stop(): Promise<void> {
    this.helloSub?.unsubscribe();
    for (const s of [...this.sessions.values()]) await s.stop();
    await this.addresses?.close().catch(() => undefined);
    await this.nc.drain().catch(() => undefined);
    await this.core.journal.close();
    await Effect.runPromise(this.storage.close);
    await this.server?.stop();
  }
}
