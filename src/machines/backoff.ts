// The sender's retry backoff, defined once as an Effect Schedule; machines read its n-th delay through a pure function.
import { Duration, Effect, Random, Schedule } from "effect";

/** Exponential backoff: `baseMs` before the first retry, doubling each time, never more than `capMs`. */
export interface Backoff {
  readonly baseMs: number;
  readonly capMs: number;
}

/** A file's retries within a round (`max_number_of_sync_file_retry` of them); see docs/retries.md. */
export const fileRetry: Backoff = { baseMs: 200, capMs: 30_000 };

/** Hello retries while the receiver does not answer (`maxHandshakes` attempts in all); see docs/retries.md. */
export const handshakeRetry: Backoff = { baseMs: 500, capMs: 30_000 };

/**
 * Jitter scales a delay d to a value in [jitterFloor · d, d). Senders that failed together, such as a
 * fleet that lost the receiver at the same moment, then spread out. No jittered wait is longer than
 * the unjittered one, so none goes over the cap. Effect's own `Schedule.jittered` scales by 0.8–1.2.
 * At the cap that would need clamping, and the clamped waits would all fall on the cap itself, in
 * step again, which is the case jitter is meant to break.
 */
export const jitterFloor = 0.5;

/** The backoff without jitter: base · 2^(n-1) before retry n, capped. Machines wait by this one. */
export const cappedSchedule = (b: Backoff): Schedule.Schedule<Duration.Duration> =>
  // `min` of two schedules takes the shorter delay at every step: the exponential one until it passes the cap.
  Schedule.min([Schedule.exponential(Duration.millis(b.baseMs)), Schedule.spaced(Duration.millis(b.capMs))]);

/** The jittered backoff: each capped delay is scaled with Effect's `Random`. The runtime waits by this one. */
export const backoffSchedule = (b: Backoff): Schedule.Schedule<Duration.Duration> =>
  cappedSchedule(b).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.map(Random.next, (r) => Duration.times(duration, jitterFloor + (1 - jitterFloor) * r))),
  );

/** Uniform numbers in [0, 1). The runtime supplies the source. A machine cannot, because randomness is I/O. */
export type RandomSource = () => number;

/**
 * The wait in milliseconds before retry `n` (1 is the first retry; lower values count as 1). Without
 * `random` the delay is the capped one. With `random` it is jittered, and `random` is drawn once per
 * step. The value comes from stepping the Schedule itself, so a machine's delay and an `Effect.retry`
 * using the same Schedule cannot disagree. The Schedule reads no clock: each step gets the time as 0.
 * Cost is O(n), and n is bounded by the retry limits.
 */
export const backoffDelay = (b: Backoff, n: number, random?: RandomSource): number => {
  const steps = Math.max(1, Math.floor(n));
  const nth = Effect.gen(function* () {
    const step = yield* Schedule.toStep(random ? backoffSchedule(b) : cappedSchedule(b));
    let delay = Duration.zero;
    for (let i = 0; i < steps; i++) [, delay] = yield* step(0, undefined);
    return Duration.toMillis(delay);
  });
  return Effect.runSync(
    random
      ? nth.pipe(
          Effect.provideService(Random.Random, {
            nextDoubleUnsafe: random,
            nextIntUnsafe: () => Math.floor(random() * Number.MAX_SAFE_INTEGER),
          }),
        )
      : nth,
  );
};
