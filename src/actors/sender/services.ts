// The services a sender process is made of, each a scoped layer: closing the sender's scope drains
// its NATS connection, then releases the work directory and its lock.
import type { NatsConnection } from "@nats-io/transport-node";
import { Context, Data, Effect, Layer } from "effect";
import { senderWorkDirectory, type SenderConfig } from "../../config/sender.js";
import { openSource } from "../../plugins/loadSource.js";
import type { Source } from "../../plugins/source.js";
import { senderInboxPrefix } from "../../protocol/subjects.js";
import { connectNats, senderConnectionName } from "../natsConnect.js";
import { WorkDir } from "./workDir.js";

/** A sender could not start: which step, and why (the message is meant for the operator). */
export class SenderStartError extends Data.TaggedError("SenderStartError")<{
  readonly step: string;
  readonly message: string;
  readonly cause?: unknown;
}> {}

const reason = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause));

export const senderServers = (c: SenderConfig): ReadonlyArray<string> => c.nats_url ?? [`${c.server_ip}:${c.server_port}`];

/** What the process was started with. */
export class SenderEnv extends Context.Service<SenderEnv, { readonly config: SenderConfig; readonly log?: (line: string) => void }>()(
  "tsync/sender/Env",
) {
  static layer = (config: SenderConfig, log: ((line: string) => void) | undefined) =>
    Layer.succeed(SenderEnv, { config, ...(log ? { log } : {}) });
}

/** Where sealed files are found: the `source_plugin`, or a Source handed in by an embedder. */
export class SenderSource extends Context.Service<SenderSource, Source>()("tsync/sender/Source") {
  static layer = (given: Source | undefined) =>
    Layer.effect(
      SenderSource,
      Effect.gen(function* () {
        if (given) return given;
        const { config: c, log } = yield* SenderEnv;
        return yield* openSource(c.source_plugin, { dataDir: c.data_directory, options: c.plugin, ...(log ? { log } : {}) }).pipe(
          Effect.mapError((cause) => new SenderStartError({ step: "source plugin", message: cause.message, cause })),
        );
      }),
    );
}

/** The work directory (confirmed journal, pinned snapshots) and its lock, held while the sender runs. */
export class SenderWork extends Context.Service<SenderWork, WorkDir>()("tsync/sender/WorkDir") {
  static layer = Layer.effect(
    SenderWork,
    Effect.gen(function* () {
      const { config: c, log } = yield* SenderEnv;
      return yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () => WorkDir.open(senderWorkDirectory(c), c.sender_name, log),
          catch: (cause) => new SenderStartError({ step: "work directory", message: reason(cause), cause }),
        }),
        (w) => Effect.promise(() => w.close()),
      );
    }),
  );
}

/** Within the 10 s a stop promises, leaving room for the rest of the shutdown. */
const drainDeadlineMs = 5_000;

/**
 * Drains the connection, or closes it: a drain begun while the client reconnects waits for a
 * server that may never take it back (a revoked credential ends in the client closing itself,
 * which a pending drain does not notice), so the drain ends at the connection's close or at the
 * deadline, whichever comes first.
 */
const drainWithin = async (conn: NatsConnection, ms: number): Promise<void> => {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    conn.drain().catch(() => undefined),
    conn.closed().then(() => undefined),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
  if (!conn.isClosed()) await conn.close().catch(() => undefined);
};

/** The connection to the receiver's NATS server, drained when the sender stops. */
export class SenderNats extends Context.Service<SenderNats, NatsConnection>()("tsync/sender/Nats") {
  static layer = Layer.effect(
    SenderNats,
    Effect.gen(function* () {
      const { config: c } = yield* SenderEnv;
      const work = yield* SenderWork;
      return yield* Effect.acquireRelease(
        Effect.tryPromise({
          // Replies come only to the sender's private inbox prefix: the receiver answers nowhere else.
          try: () =>
            connectNats(senderServers(c), senderConnectionName(work.senderId), c, { inboxPrefix: senderInboxPrefix(work.senderId) }),
          catch: (cause) =>
            new SenderStartError({
              step: "NATS connection",
              message: `cannot reach the receiver's NATS server at ${senderServers(c).join(", ")}: ${reason(cause)}`,
              cause,
            }),
        }),
        (conn) => Effect.promise(() => drainWithin(conn, drainDeadlineMs)),
      );
    }),
  );
}

/** Everything a sender runs on, acquired in the order env, source, work dir, connection (released in reverse). */
export const senderServices = (config: SenderConfig, log: ((line: string) => void) | undefined, source: Source | undefined) =>
  SenderNats.layer.pipe(
    Layer.provideMerge(SenderWork.layer),
    // The source first: a plugin that cannot load fails the start before the lock is taken.
    Layer.provideMerge(SenderSource.layer(source)),
    Layer.provideMerge(SenderEnv.layer(config, log)),
  );
