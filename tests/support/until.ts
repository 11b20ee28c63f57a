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

/**
 * Reject after `ms` with `what` if `p` has not settled.
 *
 * @example
 * ```ts
 * import { bounded } from "./until.ts";
 * await bounded(Promise.resolve(1), 1000, "a resolved promise");
 * ```
 */
export async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
