// `tsync receiver`: runs a receiver from its properties until stopped.
import { Effect, type Scope } from "effect";
import type { InspectionEvent } from "xstate";
import { loadReceiverConfig } from "../config/receiver.js";
import { Receiver } from "../actors/receiver/receiver.js";
import { emulateStagingCapacity } from "../actors/receiver/staging.js";
import { validateTsFileWithin } from "../actors/receiver/validateTsFile.js";
import { receiverDashboard, serveDashboard, withDashboard } from "../dashboard/dashboard.js";
import { readFaultHooks, stateTracer, traceVariable } from "./faultHooks.js";
import { makeLogger, oneLine } from "./log.js";
import { stopSignal, untilAborted } from "./signals.js";

/** `tsync receiver`: serves until SIGTERM/SIGINT, then releases the receiver, its connections and the dashboard in reverse order. */
export const runReceiver = (configPath: string): Effect.Effect<number, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* loadReceiverConfig(configPath);
    const log = makeLogger("receiver", config.log_level);
    const stopped = yield* stopSignal(log.warn);
    // Registered first, so it runs last: after everything below was released.
    yield* Effect.addFinalizer(() => Effect.sync(() => log.info("sync service stopped")));
    const faults = readFaultHooks(process.env, log.warn);
    emulateStagingCapacity(faults.stagingCapacity);
    const trace = process.env[traceVariable] === "1";
    const tracer =
      trace || faults.freezeIn
        ? stateTracer(trace ? (line) => process.stdout.write(oneLine(line) + "\n") : undefined, faults.freezeIn)
        : undefined;
    const dashboard = config.dashboard_port > 0 ? receiverDashboard({ port: config.dashboard_port }) : undefined;
    const receiver = yield* Effect.acquireRelease(
      Receiver.make(
        withDashboard(dashboard, {
          config,
          log: log.info,
          validateTsFile: validateTsFileWithin(config),
          ...(tracer ? { inspect: (_session: string, e: unknown) => tracer(e as InspectionEvent) } : {}),
        }),
      ),
      (r) =>
        Effect.promise(async () => {
          await r.stop();
          // A drain needs the server; with the server gone the connection would keep reconnecting, and the process alive.
          if (!r.nc.isClosed()) await r.nc.close();
        }),
    );
    yield* Effect.acquireRelease(
      Effect.promise(() => serveDashboard(dashboard, receiver, log)),
      (server) => Effect.promise(async () => server?.close()),
    );
    yield* untilAborted(stopped);
    return 0;
  });
