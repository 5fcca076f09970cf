// The live dashboard of a sender or receiver: wires inspection into the board and starts its server.
import type { AnyStateMachine } from "xstate";
import type { Receiver, ReceiverOptions } from "../actors/receiver/receiver.js";
import type { SessionHost } from "../actors/receiver/sessionHost.js";
import type { Sender, SenderOptions } from "../actors/sender/sender.js";
import { senderServers } from "../actors/sender/services.js";
import { receiverSession } from "../machines/receiverSession.js";
import { senderLifecycle } from "../machines/senderLifecycle.js";
import { senderRound } from "../machines/senderRound.js";
import { chartOf } from "./chart.js";
import { FleetBoard } from "./fleet.js";
import { receiverInspector, senderInspector } from "./inspect.js";
import { layoutChart, type ChartLayout } from "./layout.js";
import { receiverRegistry, senderRegistry, SenderTotals } from "./metrics.js";
import { ActorBoard, type BoardOptions } from "./model.js";
import { startDashboardServer, type DashboardServer } from "./server.js";

export interface DashboardOptions extends BoardOptions {
  readonly port: number;
  readonly host?: string;
  readonly throttleMs?: number;
}

const chartsOf = (machines: ReadonlyArray<AnyStateMachine>): ReadonlyArray<ChartLayout> => machines.map((m) => layoutChart(chartOf(m)));

const serverOptions = (o: DashboardOptions) => ({
  port: o.port,
  ...(o.host !== undefined ? { host: o.host } : {}),
  ...(o.throttleMs !== undefined ? { throttleMs: o.throttleMs } : {}),
});

const boardOptions = (o: DashboardOptions): BoardOptions => ({
  ...(o.now ? { now: o.now } : {}),
  ...(o.logSize !== undefined ? { logSize: o.logSize } : {}),
  ...(o.keepEnded !== undefined ? { keepEnded: o.keepEnded } : {}),
});

/**
 * The receiver's dashboard in two steps, because the receiver's sessions report to it from the
 * start: pass `hooks` to `Receiver.start`, then `listen(receiver)`.
 */
export const receiverDashboard = (o: DashboardOptions) => {
  const board = new ActorBoard(boardOptions(o));
  const inspect = receiverInspector(board);
  const hooks: Pick<ReceiverOptions, "inspect" | "onSession"> = {
    inspect,
    onSession: (host: SessionHost, event: "open" | "end") => {
      if (event === "end") board.end(host.input.sessionId);
    },
  };
  /** The receiver's options with the dashboard's hooks added to any already there. */
  const wire = (options: ReceiverOptions): ReceiverOptions => ({
    ...options,
    inspect: (sessionId, e) => {
      options.inspect?.(sessionId, e);
      inspect(sessionId, e);
    },
    onSession: (host, event) => {
      options.onSession?.(host, event);
      hooks.onSession?.(host, event);
    },
  });
  const fleet = new FleetBoard(o.now);
  const listen = async (receiver: Receiver): Promise<DashboardServer> => {
    const c = receiver.core;
    const registry = receiverRegistry(board, () => ({ stats: c.stats, activeSessions: receiver.openSessions.length }));
    const stopWatch = await receiver.fleet.watch((change) => fleet.apply(change));
    const server = await startDashboardServer({
      ...serverOptions(o),
      board,
      registry,
      fleet,
      // The senders' charts too: the fleet view lights a sender's state in them.
      charts: chartsOf([receiverSession, senderLifecycle, senderRound]),
      info: () => ({
        role: "receiver",
        title: `receiver ${c.settings.group}/${c.settings.instance}`,
        facts: [
          ["receiver group", c.settings.group],
          ["instance", c.settings.instance],
          ["NATS", receiver.server ? `embedded, port ${receiver.port}` : receiver.url],
          ["sync", c.settings.enabled ? "enabled" : "disabled (is_sync_enable=false)"],
        ],
        counters: [
          ["open sessions", receiver.openSessions.length],
          ["sessions opened", c.stats.sessionsOpened],
          ["bytes received", c.stats.bytes],
          ["files loaded", c.stats.loads],
          ["files deleted", c.stats.deleted],
          ["digest mismatches", c.stats.digestMismatches],
          ["conflicts", c.stats.conflicts],
          ["refused senders", c.stats.refused],
          ["rejected messages", c.stats.rejected],
          ["senders in fleet view", fleet.size],
        ],
      }),
    }).catch((e: unknown) => {
      stopWatch();
      throw e;
    });
    return {
      ...server,
      close: async () => {
        stopWatch();
        await server.close();
      },
    };
  };
  return { board, fleet, hooks, wire, listen };
};

/** The sender's dashboard: pass `hooks` to `Sender.open`, then `listen(sender)`. */
export const senderDashboard = (o: DashboardOptions) => {
  const board = new ActorBoard(boardOptions(o));
  const totals = new SenderTotals().attach(board);
  const inspect = senderInspector(board);
  const hooks: Pick<SenderOptions, "inspect"> = { inspect };
  /** The sender's options with the dashboard's inspector added to any already there. */
  const wire = (options: SenderOptions): SenderOptions => ({
    ...options,
    inspect: (e) => {
      options.inspect?.(e);
      inspect(e);
    },
  });
  const listen = (sender: Sender): Promise<DashboardServer> => {
    const c = sender.options.config;
    return startDashboardServer({
      ...serverOptions(o),
      board,
      registry: senderRegistry(board, totals),
      charts: chartsOf([senderLifecycle, senderRound]),
      info: () => {
        const t = totals.counts();
        return {
          role: "sender",
          title: `sender ${sender.senderId}`,
          facts: [
            ["sender", sender.senderId],
            ["data directory", c.data_directory],
            ["receiver", `${senderServers(c).join(", ")} (group ${c.receiver_group})`],
            ["period", `${c.sync_period_in_second} s${c.sync_on_seal ? ", and on seal" : ""}`],
          ],
          counters: [
            ["rounds ok", t.roundsOk],
            ["rounds failed", t.roundsFailed],
            ["bytes sent", t.bytesSent],
            ["files sent", t.filesSent],
            ["files skipped", t.filesSkipped],
            ["files failed", t.filesFailed],
            ["conflicts", t.conflicts],
            ["deleted", t.deleted],
          ],
        };
      },
    });
  };
  return { board, totals, hooks, wire, listen };
};

/** `options` as they are without a dashboard, or with its hooks. */
export const withDashboard = <O>(dashboard: { readonly wire: (o: O) => O } | undefined, options: O): O =>
  dashboard ? dashboard.wire(options) : options;

/**
 * Starts the dashboard's HTTP server and logs where it is. A port that cannot be bound is logged
 * and the process goes on without it: syncing matters more than watching it.
 */
export const serveDashboard = async <T>(
  dashboard: { readonly listen: (target: T) => Promise<DashboardServer> } | undefined,
  target: T,
  log: { readonly info: (line: string) => void; readonly error: (line: string) => void },
): Promise<DashboardServer | undefined> => {
  if (!dashboard) return undefined;
  try {
    const server = await dashboard.listen(target);
    log.info(`dashboard at ${server.url} (metrics at ${server.url}metrics)`);
    return server;
  } catch (e) {
    log.error(`dashboard not started: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
};
