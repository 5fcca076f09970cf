import { Effect } from "effect";
import { loadReceiverConfig } from "../config/receiver.js";
import { Receiver } from "../actors/receiver/receiver.js";
import { validateTsFile } from "../actors/receiver/validateTsFile.js";
import { makeLogger } from "./log.js";
import { onStopSignals } from "./signals.js";

/** `tsync receiver`: serves until SIGTERM/SIGINT. */
export const runReceiver = async (configPath: string): Promise<number> => {
  const config = await Effect.runPromise(loadReceiverConfig(configPath));
  const log = makeLogger("receiver", config.log_level);
  const receiver = await Receiver.start({ config, log: log.info, validateTsFile });
  const stop = new AbortController();
  const release = onStopSignals(stop, log.warn);
  await new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve(), { once: true }));
  release();
  await receiver.stop();
  log.info("sync service stopped");
  return 0;
};
