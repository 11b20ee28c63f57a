/**
 * Full-jitter exponential backoff for reconnects: `random(0, min(cap, base · 2ⁿ))`, reset after
 * a healthy period.
 *
 * @module
 */

/**
 * The ceiling of the delay after `attempt` earlier failures, before jitter:
 * `min(cap, base · 2^attempt)`.
 *
 * @example
 * ```ts
 * import { backoffCeiling } from "./backoff.ts";
 * backoffCeiling(0, 100, 10_000); // 100
 * backoffCeiling(3, 100, 10_000); // 800
 * backoffCeiling(9, 100, 10_000); // 10 000
 * ```
 */
export function backoffCeiling(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

/**
 * Options of {@link Backoff}.
 *
 * @example
 * ```ts
 * import { Backoff, type BackoffOptions } from "./backoff.ts";
 * const options: BackoffOptions = { baseMs: 100, capMs: 10_000, healthyMs: 30_000 };
 * new Backoff(options);
 * ```
 */
export interface BackoffOptions {
  /** First ceiling in ms. Default 100. */
  baseMs?: number;
  /** Largest ceiling in ms. Default 10 000. */
  capMs?: number;
  /** A success that lasts this long resets the attempt count. Default 30 000. */
  healthyMs?: number;
  /** Random source in [0, 1). Default `Math.random`. */
  random?: () => number;
  /** Monotonic clock in ms. Default `performance.now`. */
  now?: () => number;
}

/**
 * Attempt counter producing full-jitter delays.
 *
 * @example
 * ```ts
 * import { Backoff } from "./backoff.ts";
 * const b = new Backoff({ baseMs: 100, capMs: 10_000 });
 * const wait = b.next(); // 0 ≤ wait < 100 on the first failure
 * b.succeeded(); // later, after a healthy period, the count resets
 * ```
 */
export class Backoff {
  readonly #base: number;
  readonly #cap: number;
  readonly #healthy: number;
  readonly #random: () => number;
  readonly #now: () => number;
  #attempt = 0;
  #healthySince: number | undefined;

  /** Create a backoff with the given limits. */
  constructor(options: BackoffOptions = {}) {
    this.#base = options.baseMs ?? 100;
    this.#cap = options.capMs ?? 10_000;
    this.#healthy = options.healthyMs ?? 30_000;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Failures since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The ceiling of the next delay, before jitter. */
  ceiling(): number {
    return backoffCeiling(this.#attempt, this.#base, this.#cap);
  }

  /** Record a failure and return how long to wait (ms) before trying again. */
  next(): number {
    this.#maybeReset();
    const delay = Math.floor(this.#random() * this.ceiling());
    this.#attempt++;
    this.#healthySince = undefined;
    return delay;
  }

  /** Record the start of a healthy period (e.g. Connected). */
  succeeded(): void {
    this.#healthySince = this.#now();
  }

  /** Forget all failures. */
  reset(): void {
    this.#attempt = 0;
    this.#healthySince = undefined;
  }

  #maybeReset(): void {
    if (this.#healthySince !== undefined && this.#now() - this.#healthySince >= this.#healthy) {
      this.#attempt = 0;
    }
  }
}
