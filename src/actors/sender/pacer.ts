import { setTimeout as sleep } from "node:timers/promises";

/**
 * Token bucket for `max_bandwidth_bytes_per_second`: a burst of at most a quarter second of
 * traffic, then sends wait for the bytes the rate has earned.
 */
export const bandwidthPacer = (bytesPerSecond: number, now: () => number = () => performance.now()) => {
  if (bytesPerSecond <= 0) return undefined;
  const burst = Math.max(1, bytesPerSecond / 4);
  let tokens = burst;
  let last = now();
  return async (bytes: number): Promise<void> => {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - last) / 1000) * bytesPerSecond);
    last = t;
    tokens -= bytes;
    if (tokens < 0) {
      const waitMs = (-tokens / bytesPerSecond) * 1000;
      await sleep(waitMs);
      tokens = 0;
      last = now();
    }
  };
};
