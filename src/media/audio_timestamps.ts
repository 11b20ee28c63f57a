/**
 * RTP timestamps of audio at 48 kHz from the sources' microsecond clock, contiguous while the
 * audio is.
 *
 * @module
 */

/**
 * Turns each packet's time in µs into its 48 kHz timestamp (`Math.round(timestampUs × 0.048)`)
 * and keeps consecutive packets exactly contiguous: when a packet's timestamp is within
 * `toleranceSamples` of where the previous one ended, it is put there, so the rounding of
 * microsecond clocks never shows as a gap or an overlap of a sample or two. A real discontinuity
 * (a loop that rested, a stalled or restarted input) keeps its jump. Timestamps never go back.
 *
 * @example
 * ```ts
 * import { AudioTimestamper } from "./audio_timestamps.ts";
 * const stamps = new AudioTimestamper();
 * stamps.stamp(1_000_000, 960); // 48000
 * stamps.stamp(1_020_020, 960); // 48960, end to end (48961 rounded)
 * stamps.stamp(2_000_000, 960); // 96000: a jump stays a jump
 * ```
 */
export class AudioTimestamper {
  readonly #tolerance: number;
  #next?: number;

  /** `toleranceSamples`: how far off a packet may be and still be put end to end (default 96, 2 ms). */
  constructor(toleranceSamples = 96) {
    this.#tolerance = toleranceSamples;
  }

  /** Where the last packet stamped ends, at 48 kHz (undefined before the first). */
  get next(): number | undefined {
    return this.#next;
  }

  /** The 48 kHz timestamp of a packet played at `timestampUs` lasting `samples`. */
  stamp(timestampUs: number, samples: number): number {
    let ts = Math.round(timestampUs * 0.048);
    const next = this.#next;
    if (next !== undefined && (ts < next || ts - next <= this.#tolerance)) ts = next;
    this.#next = ts + samples;
    return ts;
  }
}
