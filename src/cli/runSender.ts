import { Effect } from "effect";
import { loadSenderConfig } from "../config/sender.js";
import { roundSucceeded } from "../machines/senderTypes.js";
import { Sender } from "../actors/sender/sender.js";
import { watchSealed } from "../actors/sender/sealWatch.js";
import { makeLogger } from "./log.js";
import { formatSummary } from "./summary.js";
import { onStopSignals } from "./signals.js";

/** `tsync sender`: rounds every period, or one round with `--once` (exit 0 only if all synced). */
export const runSender = async (configPath: string, once: boolean): Promise<number> => {
  const config = await Effect.runPromise(loadSenderConfig(configPath));
  const log = makeLogger("sender", config.log_level);
  const sender = await Sender.open({ config, log: log.info });
  log.info(`sender ${sender.senderId} for ${config.data_directory} → ${config.nats_url?.join(",") ?? `${config.server_ip}:${config.server_port}`} (group ${config.receiver_group})`);
  const stop = new AbortController();
  const release = onStopSignals(stop, log.warn);
  try {
    if (once) {
      const summary = await sender.runOnce(stop.signal);
      process.stdout.write(formatSummary(summary) + "\n");
      return roundSucceeded(summary) ? 0 : 1;
    }
    const watcher = config.sync_on_seal ? watchSealed(config.data_directory, () => sender.sealed(), log.warn) : undefined;
    await sender.runForever(stop.signal, (s) => log.info(formatSummary(s)));
    watcher?.close();
    return 0;
  } finally {
    release();
    await sender.close();
  }
};
