// `tsync inspector`: a local Stately inspector server; senders and receivers with stately_inspect_url send their actors' events to it.
import { createInspectorServer } from "@statelyai/inspect/server";
import { Effect, type Scope } from "effect";
import { makeLogger } from "./log.js";
import { stopSignal, untilAborted } from "./signals.js";

export const runInspector = (port: number, open: boolean): Effect.Effect<number, never, Scope.Scope> =>
  Effect.gen(function* () {
    const log = makeLogger("inspector", "info", "text");
    const stop = yield* stopSignal(log.warn);
    yield* Effect.acquireRelease(
      Effect.sync(() => createInspectorServer({ port, autoOpen: open })),
      (server) =>
        Effect.sync(() => {
          server.stop();
          // The library's server stops listening but leaves open browser sockets, which would keep
          // the process alive: once the stop had its moment, the process ends anyway.
          setTimeout(() => process.exit(process.exitCode ?? 0), 1_000).unref();
        }),
    );
    log.info(
      `Stately inspector at http://127.0.0.1:${port}/ (the page loads Stately's inspector from stately.ai); ` +
        `point senders and receivers at it with stately_inspect_url=ws://<this host>:${port}`,
    );
    yield* untilAborted(stop);
    return 0;
  });
