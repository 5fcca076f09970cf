// `tsync receiver`: runs a receiver from its properties until stopped.
import { Effect, type Scope } from "effect";
import type { InspectionEvent } from "xstate";
import { loadReceiverConfig } from "../config/receiver.js";
import { Receiver } from "../actors/receiver/receiver.js";
import { emulateStagingCapacity } from "../actors/receiver/staging.js";
import { validateTsFileWithin } from "../actors/receiver/validateTsFile.js";
import { receiverDashboard, serveDashboard, withDashboard } from "../dashboard/dashboard.js";
import { readFaultHooks, stateTracer, traceVariable } from "./faultHooks.js";
import { join, resolve } from "node:path";
import { makeLogger, oneLine } from "./log.js";
import { receiverSessionEvents } from "./logEvents.js";
import { ReceiverWatch } from "./receiverWatch.js";
import { stopSignal, untilAborted } from "./signals.js";
import { serveStatus } from "./statusEndpoint.js";
import { statelyInspector } from "../actors/statelyInspector.js";

/** `tsync receiver`: serves until SIGTERM/SIGINT, then releases the receiver, its connections and the dashboard in reverse order. */
export const runReceiver = (configPath: string): Effect.Effect<number, unknown, Scope.Scope> =>
  Effect.gen(function* () {
    const config = yield* loadReceiverConfig(configPath);
    const log = makeLogger("receiver", config.log_level, config.log_format);
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
    const watch = new ReceiverWatch();
    const events = receiverSessionEvents(log);
    const stately = yield* statelyInspector(config.stately_inspect_url, log.warn);
    const inspect = (session: string, e: unknown) => {
      tracer?.(e as InspectionEvent);
      events(session, e);
      stately?.(e as InspectionEvent);
    };
    const dashboard = config.dashboard_port > 0 ? receiverDashboard({ port: config.dashboard_port }) : undefined;
    const receiver = yield* Effect.acquireRelease(
      Receiver.make(
        withDashboard(dashboard, {
          config,
          log: log.info,
          validateTsFile: validateTsFileWithin(config),
          inspect,
          onSession: watch.onSession,
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
    yield* serveStatus(join(resolve(config.receiver_data_directory), ".tsync"), "receiver", () => watch.status(receiver));
    yield* untilAborted(stopped);
    return 0;
  });
