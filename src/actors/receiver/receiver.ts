// The receiver process: its services, the hello subscription of the receiver group, and one session per admitted sender.
import { stat } from "node:fs/promises";
import { Context, Effect, Exit, Layer, Result, Scope } from "effect";
import { runEffect } from "../runtime.js";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeJson, encodeJson, Hello, protocolVersion } from "../../protocol/messages.js";
import { Code } from "../../protocol/status.js";
import { helloWildcard, isSenderInbox, receiverQueue } from "../../protocol/subjects.js";
import type { ReceiverConfig } from "../../config/receiver.js";
import type { NatsServerProcess } from "../natsServer.js";
import { renderAuthorization } from "./embeddedAuth.js";
import { receiverIdentity } from "./receiverIdentity.js";
import { readSenderRegistry, registryPollMs, senderRegistryPath, type EnrolledSender } from "./senderRegistry.js";
import { ReceiverCore, type TsFileCheck } from "./core.js";
import type { FleetStore } from "./fleet.js";
import { newId, SessionHost } from "./sessionHost.js";

export interface ReceiverOptions {
  readonly config: ReceiverConfig;
  readonly log?: (line: string) => void;
  readonly validateTsFile: (file: string | Uint8Array) => Promise<TsFileCheck>;
  /** Receives every session's inspection events (the dashboard). */
  readonly inspect?: (sessionId: string, event: unknown) => void;
  readonly onSession?: (host: SessionHost, event: "open" | "end") => void;
}

/** Hellos being admitted at once; more are answered `busy` at once, so a flood cannot pile up. */
export const maxPendingHellos = 256;

import {
  Addresses,
  embeddedTlsConfig,
  Fleet,
  LoadJournal,
  NatsLinks,
  NatsServers,
  Owners,
  ReceiverCatalog,
  ReceiverEnv,
  ReceiverStaging,
  ReceiverStartError,
  ReceiverStorage,
  receiverServices,
} from "./services.js";

export { catalogPath, embeddedStoreDir, ReceiverStartError } from "./services.js";

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
    private readonly options: ReceiverOptions,
    readonly port: number,
    readonly url: string,
    /** Holds every service the receiver runs on; closing it releases them in reverse order. */
    private readonly scope: Scope.Closeable,
    /** The last state of every sender's actors, for the fleet view. */
    readonly fleet: FleetStore,
  ) {}

  /**
   * Starts a receiver: its services are acquired in a scope of its own (see services.ts), then it
   * listens for hellos. Stopping it ends its sessions and closes that scope.
   */
  static make(options: ReceiverOptions): Effect.Effect<Receiver, ReceiverStartError> {
    const c = options.config;
    const log = options.log ?? ((line: string) => process.stdout.write(line + "\n"));
    const instance = newId().replace(/[^A-Za-z0-9]/g, "x");
    return Effect.gen(function* () {
      const scope = yield* Scope.make();
      const services = yield* Layer.buildWithScope(receiverServices(c, log, instance), scope).pipe(
        Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
      );
      const { dataDir } = Context.get(services, ReceiverEnv);
      const { embedded, servers, enrolled } = Context.get(services, NatsServers);
      const { service, store } = Context.get(services, NatsLinks);
      const core = new ReceiverCore(
        {
          group: c.receiver_group,
          instance,
          enabled: c.is_sync_enable,
          whiteList: c.ip_white_list,
          addresses: Context.get(services, Addresses),
          maxSessions: c.max_sessions,
          maxChunkBytes: service.info?.max_payload ?? 1 << 20,
          maxFileBytes: c.max_file_size_bytes,
          idleTimeoutMs: c.session_idle_timeout_in_second * 1000,
          admitLeafNodes: c.admit_leaf_nodes,
          ...(enrolled ? { enrolledKey: (id: string) => enrolled.get(id)?.nkey } : {}),
        },
        Context.get(services, LoadJournal),
        Context.get(services, ReceiverStaging),
        Context.get(services, ReceiverStorage),
        Context.get(services, Owners),
        options.validateTsFile,
        log,
        (sessionId) => (options.inspect ? { inspect: (e: unknown) => options.inspect?.(sessionId, e) } : {}),
        Context.get(services, ReceiverCatalog),
      );
      const port = embedded?.port ?? Number(servers[0]?.split(":").pop() ?? 0);
      const receiver = new Receiver(
        core,
        service,
        store,
        enrolled,
        embedded,
        options,
        port,
        servers[0] ?? "",
        scope,
        Context.get(services, Fleet),
      );
      receiver.listen();
      if (enrolled) receiver.watchRegistry(dataDir);
      yield* Effect.promise(() => service.flush());
      log(`sync service started on port ${port} (receiver group ${c.receiver_group}, sync ${c.is_sync_enable ? "enabled" : "disabled"})`);
      return receiver;
    });
  }

  /** `make` for callers outside an Effect runtime (tests, embedding); rejects with the ReceiverStartError. */
  static start(options: ReceiverOptions): Promise<Receiver> {
    return runEffect(Receiver.make(options));
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
            this.core.log(
              `dropped a hello whose reply subject is not sender ${JSON.stringify(subjectId)}'s inbox: ${JSON.stringify(m.reply ?? "")}`,
            );
          continue;
        }
        if (this.pendingHellos >= maxPendingHellos) {
          // A burst beyond what admission can look up: answer at once rather than queue it.
          this.core.stats.refused++;
          if (m.reply)
            m.respond(encodeJson({ code: Code.busy, message: `receiver is admitting ${this.pendingHellos} senders; try later` }));
          continue;
        }
        this.pendingHellos++;
        void this.hello(m)
          .catch((e: unknown) => {
            this.core.log(`hello failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
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
      m.respond(
        encodeJson({
          code: Code.protocolMismatch,
          message: `protocol ${hello.protocol} is not spoken here (receiver speaks ${protocolVersion})`,
        }),
      );
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
    if (host.address) this.fleet.sawAddress(hello.senderId, host.address);
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
        if (failed !== stamp)
          this.core.log(`sender registry not applied, the previous one stays: ${e instanceof Error ? e.message : String(e)}`);
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
    clearInterval(this.registryTimer);
    this.helloSub?.unsubscribe();
    for (const s of [...this.sessions.values()]) await s.stop();
    await runEffect(Scope.close(this.scope, Exit.void));
  }
}
