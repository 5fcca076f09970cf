// `tsync receiver`: runs a receiver from its properties until stopped.
import { Effect } from "effect";
import type { InspectionEvent } from "xstate";
import { loadReceiverConfig } from "../config/receiver.js";
import { Receiver } from "../actors/receiver/receiver.js";
import { emulateStagingCapacity } from "../actors/receiver/staging.js";
import { validateTsFileWithin } from "../actors/receiver/validateTsFile.js";
import { receiverDashboard, serveDashboard, withDashboard } from "../dashboard/dashboard.js";
import { readFaultHooks, stateTracer, traceVariable } from "./faultHooks.js";
import { makeLogger, oneLine } from "./log.js";
import { onStopSignals } from "./signals.js";

/** `tsync receiver`: serves until SIGTERM/SIGINT. */
export const runReceiver = async (configPath: string): Promise<number> => {
  const config = await Effect.runPromise(loadReceiverConfig(configPath));
  const log = makeLogger("receiver", config.log_level);
  const faults = readFaultHooks(process.env, log.warn);
  emulateStagingCapacity(faults.stagingCapacity);
  const trace = process.env[traceVariable] === "1";
  const tracer =
    trace || faults.freezeIn
      ? stateTracer(trace ? (line) => process.stdout.write(oneLine(line) + "\n") : undefined, faults.freezeIn)
      : undefined;
  const dashboard = config.dashboard_port > 0 ? receiverDashboard({ port: config.dashboard_port }) : undefined;
  const receiver = await Receiver.start(
    withDashboard(dashboard, {
      config,
      log: log.info,
      validateTsFile: validateTsFileWithin(config),
      ...(tracer ? { inspect: (_session: string, e: unknown) => tracer(e as InspectionEvent) } : {}),
    }),
  );
  const dashboardServer = await serveDashboard(dashboard, receiver, log);
  const stop = new AbortController();
  const release = onStopSignals(stop, log.warn);
  try {
    await new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve(), { once: true }));
    await receiver.stop();
    // A drain needs the server; with the server gone the connection would keep reconnecting, and the process alive.
    if (!receiver.nc.isClosed()) await receiver.nc.close();
    await dashboardServer?.close();
    log.info("sync service stopped");
    return 0;
  } finally {
    release();
  }
};
