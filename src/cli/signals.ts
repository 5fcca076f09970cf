// SIGTERM/SIGINT handling: the first stops gracefully, the second exits at once.
import { constants } from "node:os";
import { Effect, type Scope } from "effect";

/**
 * First SIGTERM/SIGINT: stop gracefully (the chunks in flight finish, state is persisted). A second
 * one: exit at once; the on-disk state is consistent at every point, so this is safe too.
 */
export const onStopSignals = (stop: AbortController, warn: (line: string) => void): (() => void) => {
  const handler = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      warn(`${signal} again: exiting now`);
      process.exit(128 + (constants.signals[signal] ?? 2));
    }
    warn(`${signal}: stopping after the current step (send it again to exit at once)`);
    stop.abort();
    // A graceful stop must not hang: 10 s is the promise.
    setTimeout(() => {
      warn("graceful stop took longer than 10 s: exiting");
      process.exit(1);
    }, 10_000).unref();
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  return () => {
    process.off("SIGTERM", handler);
    process.off("SIGINT", handler);
  };
};

/** Aborts at the first SIGTERM/SIGINT; the handlers stay until the scope closes, so a second signal during the stop exits at once. */
export const stopSignal = (warn: (line: string) => void): Effect.Effect<AbortSignal, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const stop = new AbortController();
        return { stop, release: onStopSignals(stop, warn) };
      }),
      ({ release }) => Effect.sync(release),
    ),
    ({ stop }) => stop.signal,
  );

/** Waits for `signal` to abort. */
export const untilAborted = (signal: AbortSignal): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (signal.aborted) return resume(Effect.void);
    signal.addEventListener("abort", () => resume(Effect.void), { once: true });
  });

/** Calls `f` on each `signal` (SIGUSR1: sync now) while the scope is open. */
export const onSignal = (signal: NodeJS.Signals, f: () => void): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const handler = () => f();
      process.on(signal, handler);
      return handler;
    }),
    (handler) => Effect.sync(() => process.off(signal, handler)),
  );
