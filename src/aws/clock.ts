/**
 * Clock-skew correction: AWS refuses signatures more than 5 minutes away from its clock. The
 * offset of each endpoint is learned from the `Date` header of its answers.
 *
 * @module
 */

/**
 * Per-host clock offsets (server time − local time, ms).
 *
 * @example
 * ```ts
 * import { ClockSkew } from "./clock.ts";
 * const skew = new ClockSkew();
 * skew.learn("kinesisvideo.us-west-2.amazonaws.com", new Date(Date.now() + 600_000).toUTCString());
 * const signingTime = skew.now("kinesisvideo.us-west-2.amazonaws.com"); // ~10 min ahead
 * ```
 */
export class ClockSkew {
  readonly #offsets = new Map<string, number>();
  readonly #now: () => number;

  /** `now` is the local clock (default `Date.now`). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Corrected time for signing requests to `host`, ms since the epoch. */
  now(host: string): number {
    return this.#now() + (this.#offsets.get(host) ?? 0);
  }

  /** Current offset for `host`, ms. */
  offset(host: string): number {
    return this.#offsets.get(host) ?? 0;
  }

  /**
   * Learn from a response's `Date` header. Returns true when the offset changed by more than a
   * minute (worth re-signing a refused request). Offsets under a minute are ignored: `Date` has
   * one-second resolution and network delay.
   */
  learn(host: string, dateHeader: string | null): boolean {
    if (!dateHeader) return false;
    const server = Date.parse(dateHeader);
    if (Number.isNaN(server)) return false;
    const offset = server - this.#now();
    const old = this.#offsets.get(host) ?? 0;
    if (Math.abs(offset) < 60_000) {
      if (old !== 0) this.#offsets.delete(host);
      return Math.abs(old) >= 60_000;
    }
    this.#offsets.set(host, offset);
    return Math.abs(offset - old) >= 60_000;
  }
}

/**
 * The `x-amz-date` form of a time: `YYYYMMDDTHHMMSSZ`.
 *
 * @example
 * ```ts
 * import { amzDate } from "./clock.ts";
 * amzDate(Date.UTC(2026, 10, 24, 5, 0, 0)); // "20261124T050000Z"
 * ```
 */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}
