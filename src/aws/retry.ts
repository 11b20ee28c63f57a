/**
 * Full-jitter exponential backoff for retried AWS calls.
 *
 * @module
 */

/** Options of {@link RetryPolicy}. */
export interface RetryPolicyOptions {
  /** Attempts in total, the first included (default 4). */
  maxAttempts?: number;
  /** Base delay, ms (default 100): attempt n waits random(0, base · 2ⁿ). */
  baseMs?: number;
  /** Cap of one wait, ms (default 10 000). */
  capMs?: number;
  /** Random source in [0, 1). */
  random?: () => number;
  /** Sleep (tests may make it instant). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * When and how long to wait before retrying: 100 ms · 2ⁿ with full jitter, capped at 10 s.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "./retry.ts";
 * const policy = new RetryPolicy({ maxAttempts: 3 });
 * policy.delay(0); // a random wait in [0, 100) ms
 * policy.delay(2); // in [0, 400) ms
 * ```
 */
export class RetryPolicy {
  /** Attempts in total. */
  readonly maxAttempts: number;
  readonly #base: number;
  readonly #cap: number;
  readonly #random: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  /** Defaults: 4 attempts, 100 ms base, 10 s cap. */
  constructor(options: RetryPolicyOptions = {}) {
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 4);
    this.#base = options.baseMs ?? 100;
    this.#cap = options.capMs ?? 10_000;
    this.#random = options.random ?? Math.random;
    this.#sleep = options.sleep ?? sleep;
  }

  /** Wait before retry number `retry` (0-based). */
  delay(retry: number): number {
    return this.#random() * Math.min(this.#cap, this.#base * 2 ** retry);
  }

  /** Sleep for {@link RetryPolicy.delay}. */
  wait(retry: number, signal?: AbortSignal): Promise<void> {
    return this.#sleep(this.delay(retry), signal);
  }
}

/**
 * Whether an AWS answer is worth retrying: 5xx, 429 and the throttling error types.
 *
 * @example
 * ```ts
 * import { isRetryable } from "./retry.ts";
 * isRetryable(503, "ServiceUnavailable"); // true
 * isRetryable(400, "ClientLimitExceededException"); // true
 * isRetryable(400, "InvalidArgumentException"); // false
 * ```
 */
export function isRetryable(status: number, errorType = ""): boolean {
  return status >= 500 || status === 429 ||
    /Throttl|LimitExceeded|TooManyRequests|RequestLimitExceeded/.test(errorType);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
