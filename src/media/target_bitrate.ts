/**
 * How often a live source hears of a new target bitrate
 * ({@link import("./types.ts").VideoSource.setTargetBitrate}).
 *
 * @module
 */

/** Options of {@link TargetBitrate}. */
export interface TargetBitrateOptions {
  /** A change larger than this fraction of the last target given goes at once (default 0.1). */
  minChange?: number;
  /** A smaller change goes once this long after the last target given, ms (default 2000). */
  refreshMs?: number;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * Throttles the target bitrate handed to a source: the first value goes at once, then a value
 * that moved by more than 10 % from the last one given goes at once, and one that moved less
 * goes only when 2 s have passed since the last one given (an encoder is not re-tuned for every
 * wobble of an estimate).
 *
 * @example
 * ```ts
 * import { TargetBitrate } from "./target_bitrate.ts";
 * let now = 0;
 * const target = new TargetBitrate({ now: () => now });
 * target.offer(1_000_000); // 1000000: the first goes
 * target.offer(1_050_000); // undefined: 5 % within 2 s
 * now = 2500;
 * target.offer(1_050_000); // 1050000
 * target.offer(800_000); // 800000: more than 10 %
 * ```
 */
export class TargetBitrate {
  readonly #minChange: number;
  readonly #refreshMs: number;
  readonly #now: () => number;
  #last: number | undefined;
  #lastAt = -Infinity;

  /** Nothing given yet. */
  constructor(options: TargetBitrateOptions = {}) {
    this.#minChange = options.minChange ?? 0.1;
    this.#refreshMs = options.refreshMs ?? 2000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The last target given (undefined before the first). */
  get last(): number | undefined {
    return this.#last;
  }

  /** The target now, bits per second: returns it when it should go to the source. */
  offer(bps: number): number | undefined {
    if (!Number.isFinite(bps) || bps <= 0) return undefined;
    const now = this.#now();
    const last = this.#last;
    const due = last === undefined || Math.abs(bps - last) > last * this.#minChange ||
      (bps !== last && now - this.#lastAt >= this.#refreshMs);
    if (!due) return undefined;
    this.#last = bps;
    this.#lastAt = now;
    return bps;
  }
}
