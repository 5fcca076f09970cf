// The sender process: work directory, NATS connection and source in one scope, and its rounds.
import type { NatsConnection } from "@nats-io/transport-node";
import { Context, Effect, Exit, Layer, Scope } from "effect";
import { createActor, toPromise, type InspectionEvent } from "xstate";
import { senderLifecycle } from "../../machines/senderLifecycle.js";
import type { RoundSummary } from "../../machines/senderTypes.js";
import type { Source } from "../../plugins/source.js";
import { runEffect } from "../runtime.js";
import { fleetReporter, type FleetReporter } from "./fleetReporter.js";
import { SenderLink } from "./link.js";
import { bandwidthPacer } from "./pacer.js";
import { senderRoundWith } from "./roundActors.js";
import type { WorkDir } from "./workDir.js";
import { SenderNats, SenderSource, type SenderStartError, SenderWork, senderServices } from "./services.js";
import type { SenderConfig } from "../../config/sender.js";

export interface SenderOptions {
  readonly config: SenderConfig;
  readonly log?: (line: string) => void;
  readonly inspect?: (e: InspectionEvent) => void;
  /** Tests only: a transform applied to chunks on the wire. */
  readonly transformChunk?: (chunk: Buffer, offset: number) => Buffer;
  /** Tests and embedding: this source instead of the one `source_plugin` names. */
  readonly source?: Source;
}

/** The sender process for one data directory and one receiver group. */
export class Sender {
  private constructor(
    readonly options: SenderOptions,
    readonly work: WorkDir,
    readonly nc: NatsConnection,
    private readonly link: SenderLink,
    /** Where sealed files are found: the `source_plugin` (or `options.source`). */
    readonly source: Source,
    /** Holds the work dir (and its lock) and the connection; closing it releases them in reverse order. */
    private readonly scope: Scope.Closeable,
    private readonly fleet: FleetReporter,
  ) {
    const given = options.inspect;
    this.inspect = (e) => {
      given?.(e);
      fleet.inspect(e);
    };
  }

  /** The embedder's inspector, if any, and the fleet report to the receiver. */
  private readonly inspect: (e: InspectionEvent) => void;

  /**
   * Starts a sender: its services (work dir with its lock, NATS connection, source; services.ts)
   * are acquired in a scope of its own, which `close` releases in reverse order.
   */
  static make(options: SenderOptions): Effect.Effect<Sender, SenderStartError> {
    const c = options.config;
    return Effect.gen(function* () {
      const scope = yield* Scope.make();
      const services = yield* Layer.buildWithScope(senderServices(c, options.log, options.source), scope).pipe(
        Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
      );
      const work = Context.get(services, SenderWork);
      const nc = Context.get(services, SenderNats);
      const source = Context.get(services, SenderSource);
      const pace = bandwidthPacer(c.max_bandwidth_bytes_per_second);
      const link = new SenderLink(nc, {
        group: c.receiver_group,
        senderId: work.senderId,
        senderName: c.sender_name,
        window: c.window,
        filesInFlight: c.files_in_flight,
        chunkBytes: c.chunk_size_bytes,
        ...(pace ? { pace } : {}),
        ...(options.transformChunk ? { transformChunk: options.transformChunk } : {}),
      });
      const fleet = fleetReporter(nc, c.receiver_group, work.senderId, options.log ?? (() => undefined));
      return new Sender(options, work, nc, link, source, scope, fleet);
    });
  }

  /** `make` for callers outside an Effect runtime (tests, embedding); rejects with the SenderStartError. */
  static open(options: SenderOptions): Promise<Sender> {
    return runEffect(Sender.make(options));
  }

  get senderId(): string {
    return this.work.senderId;
  }

  roundMachine() {
    const c = this.options.config;
    return senderRoundWith({
      link: this.link,
      work: this.work,
      source: this.source,
      storageGroups: c.sync_storage_groups ?? [],
      ...(c.iotdb_schema_directory
        ? {
            schemaLog: {
              nc: this.nc,
              workDir: this.work.dir,
              path: c.iotdb_schema_directory,
              ...(this.options.log ? { log: this.options.log } : {}),
            },
          }
        : {}),
      ...(this.options.log ? { log: this.options.log } : {}),
    });
  }

  /** One round, as `tsync sender --once` runs it. */
  async runOnce(signal?: AbortSignal): Promise<RoundSummary> {
    const actor = createActor(this.roundMachine(), {
      input: { maxRetries: this.options.config.max_number_of_sync_file_retry },
      inspect: this.inspect,
    });
    const onAbort = () => actor.send({ type: "stop" });
    signal?.addEventListener("abort", onAbort, { once: true });
    actor.start();
    try {
      return await toPromise(actor);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Rounds every `sync_period_in_second` until `signal` aborts. */
  async runForever(signal: AbortSignal, onRound: (s: RoundSummary) => void): Promise<void> {
    const c = this.options.config;
    const actor = createActor(senderLifecycle.provide({ actors: { round: this.roundMachine() } }), {
      input: { periodMs: c.sync_period_in_second * 1000, maxRetries: c.max_number_of_sync_file_retry },
      inspect: this.inspect,
    });
    this.lifecycle = actor;
    let rounds = 0;
    actor.subscribe((s) => {
      if (s.context.rounds > rounds) {
        rounds = s.context.rounds;
        if (s.context.lastSummary) onRound(s.context.lastSummary);
      }
    });
    signal.addEventListener("abort", () => actor.send({ type: "stop" }), { once: true });
    actor.start();
    await toPromise(actor);
  }

  private lifecycle: { send: (e: { type: "sealed" } | { type: "syncNow" }) => void } | undefined;

  /** Starts a round early when a new sealed file appears (`sync_on_seal`); mid-round, the next round follows this one at once. */
  sealed(): void {
    this.lifecycle?.send({ type: "sealed" });
  }

  /** Starts a round now (SIGUSR1); asked mid-round, the next round follows this one at once. */
  syncNow(): void {
    this.lifecycle?.send({ type: "syncNow" });
  }

  async close(): Promise<void> {
    // The last states go out before the connection drains, so the fleet view sees where it stopped.
    this.fleet.close();
    await runEffect(Scope.close(this.scope, Exit.void));
  }
}
