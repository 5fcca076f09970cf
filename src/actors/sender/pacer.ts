// The sender's bandwidth limit (max_bandwidth_bytes_per_second) as a token bucket.
import { setTimeout as sleep } from "node:timers/promises";

/** Time as the pacer sees it; tests give it a clock whose sleep advances time at once. */
export interface PacerClock {
  /** Milliseconds, monotonic. */
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

const realClock: PacerClock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

/** How long an idle link may save up for: the most it sends above the rate after a pause. */
export const burstSeconds = 0.25;

/**
 * Token bucket for `max_bandwidth_bytes_per_second` (0 = unlimited: no pacer). It starts empty
 * and may go into debt: a chunk larger than the bucket still goes out whole, and the next send
 * waits until the rate has paid for it. Time lost to a late timer is credited on the next call,
 * so the long-run rate is the limit itself, not a little under it. Concurrent callers each add
 * their bytes to the debt and so queue behind one another.
 */
export const bandwidthPacer = (bytesPerSecond: number, clock: PacerClock = realClock): ((bytes: number) => Promise<void>) | undefined => {
  if (bytesPerSecond <= 0) return undefined;
  const burst = bytesPerSecond * burstSeconds;
  let tokens = 0;
  let last = clock.now();
  return async (bytes: number): Promise<void> => {
    const t = clock.now();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * bytesPerSecond);
    last = t;
    tokens -= bytes;
    if (tokens < 0) await clock.sleep((-tokens / bytesPerSecond) * 1000);
  };
};
