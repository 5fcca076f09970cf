// `tsync sender`: runs a sender from its properties, forever or for one round.
import type { InspectionEvent } from "xstate";
import { Effect, type Scope } from "effect";
import { loadSenderConfig } from "../config/sender.js";
import { roundSucceeded } from "../machines/senderTypes.js";
import { Sender } from "../actors/sender/sender.js";
import { watchSealed } from "../actors/sender/sealWatch.js";
import { senderServers } from "../actors/sender/services.js";
import { senderDashboard, serveDashboard, withDashboard } from "../dashboard/dashboard.js";
import { readFaultHooks, stateTracer, traceVariable } from "./faultHooks.js";
import { makeLogger } from "./log.js";
import { senderRoundEvents } from "./logEvents.js";
import { showProgress } from "./progress.js";
import { SenderWatch } from "./senderWatch.js";
import { serveStatus } from "./statusEndpoint.js";
import { formatSummary } from "./summary.js";
import { onSignal, stopSignal } from "./signals.js";
import { statelyInspector } from "../actors/statelyInspector.js";

/**
 * `tsync sender`: rounds every period, or one round with `--once` (exit 0 only if all synced, or
 * when a signal stopped it: a stop is not a failure, and the next run resumes).
 */
export const runSender = (configPath: string, once: boolean): Effect.Effect<number, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* loadSenderConfig(configPath);
    const log = makeLogger("sender", config.log_level, config.log_format);
    const stop = yield* stopSignal(log.warn);
    const faults = readFaultHooks(process.env, log.warn);
    const trace = process.env[traceVariable] === "1";
    const print = (line: string) => process.stdout.write(line + "\n");
    // The watch learns the connection once the sender is made; until then nothing is written to it.
    let bytesWritten = () => 0;
    const watch = new SenderWatch(() => bytesWritten());
    const events = senderRoundEvents(log);
    const tracer = trace || faults.freezeIn ? stateTracer(trace ? print : undefined, faults.freezeIn) : undefined;
    const stately = yield* statelyInspector(config.stately_inspect_url, log.warn);
    const inspect = (e: InspectionEvent) => {
      tracer?.(e);
      watch.inspect(e);
      events(e);
      stately?.(e);
    };
    const dashboard = config.dashboard_port > 0 ? senderDashboard({ port: config.dashboard_port }) : undefined;
    const sender = yield* Effect.acquireRelease(
      Sender.make(
        withDashboard(dashboard, {
          config,
          log: log.info,
          inspect,
          ...(faults.corruptChunk ? { transformChunk: faults.corruptChunk } : {}),
        }),
      ),
      // Closing drains the connection within a deadline (services.ts), so a stop never hangs on a lost server.
      (s) => Effect.promise(() => s.close()),
    );
    log.tag({ sender: sender.senderId });
    bytesWritten = () => sender.nc.stats().outBytes;
    yield* Effect.acquireRelease(
      Effect.promise(() => serveDashboard(dashboard, sender, log)),
      (server) => Effect.promise(async () => server?.close()),
    );
    const receiver = `${senderServers(config).join(",")} (group ${config.receiver_group})`;
    yield* serveStatus(sender.work.dir, "sender", () =>
      watch.status({ sender: sender.senderId, dataDirectory: config.data_directory, receiver }),
    );
    log.info(`sender ${sender.senderId} for ${config.data_directory} → ${receiver}`);
    if (once) {
      const summary = yield* Effect.scoped(
        Effect.andThen(
          showProgress(() => watch.progress(), log),
          Effect.promise(() => sender.runOnce(stop)),
        ),
      );
      process.stdout.write(formatSummary(summary) + "\n");
      if (trace) print(`summary ${JSON.stringify(summary)}`);
      return roundSucceeded(summary) || stop.aborted ? 0 : 1;
    }
    yield* onSignal("SIGUSR1", () => {
      log.info("SIGUSR1: syncing now");
      sender.syncNow();
    });
    const watcher = config.sync_on_seal ? watchSealed(config.data_directory, () => sender.sealed(), log.warn) : undefined;
    yield* Effect.promise(() =>
      sender.runForever(stop, (s) => {
        log.info(formatSummary(s));
        if (trace) print(`summary ${JSON.stringify(s)}`);
      }),
    );
    watcher?.close();
    return 0;
  });
