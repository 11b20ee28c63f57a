/**
 * Poll a condition until it holds, or fail naming what was awaited.
 *
 * @example
 * ```ts
 * import { until } from "./until.ts";
 * let done = false;
 * setTimeout(() => done = true, 10);
 * await until(() => done, "the timer", 1000);
 * ```
 *
 * @module
 */

/** Resolve once `pred()` is true; throw after `timeoutMs` (default 15 s). Polls every 20 ms. */
export async function until(
  pred: () => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!pred()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
