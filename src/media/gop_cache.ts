/**
 * The current group of pictures of a live stream, so a viewer who joins mid-GOP starts at once
 * instead of waiting for the source's next IDR.
 *
 * @module
 */
import type { EncodedFrame } from "./types.ts";

/** Options of {@link GopCache}. */
export interface GopCacheOptions {
  /** Most frames kept (default 600: a 10 s GOP at 60 fps). Past it the cache empties. */
  maxFrames?: number;
  /** Most bytes kept (default 16 MiB). Past it the cache empties until the next IDR. */
  maxBytes?: number;
}

/**
 * Keeps the frames from the latest IDR to the latest frame. {@link GopCache.catchUp} gives them
 * to a joining viewer with timestamps packed just before the latest frame's: its decoder gets
 * the IDR and every frame the latest one depends on, shows the picture at once and plays on
 * from the live edge with the stream's own timing (audio stays in step from there). A GOP
 * larger than the bounds empties the cache (joining viewers then wait for the next IDR, as
 * without it).
 *
 * @example
 * ```ts
 * import { GopCache } from "./gop_cache.ts";
 * const cache = new GopCache();
 * const f = (keyframe: boolean, t: number) => ({ data: new Uint8Array(9), timestampUs: t, keyframe });
 * cache.push(f(true, 0));
 * cache.push(f(false, 40_000));
 * cache.push(f(false, 80_000));
 * console.log(cache.catchUp().map((x) => x.timestampUs)); // [78000, 79000, 80000]
 * ```
 */
export class GopCache {
  readonly #maxFrames: number;
  readonly #maxBytes: number;
  #frames: EncodedFrame[] = [];
  #bytes = 0;

  /** An empty cache. */
  constructor(options: GopCacheOptions = {}) {
    this.#maxFrames = options.maxFrames ?? 600;
    this.#maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  }

  /** Frames held (0 until the first IDR, and after an oversized GOP until the next one). */
  get size(): number {
    return this.#frames.length;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Take the stream's next frame: an IDR starts the cache over. */
  push(frame: EncodedFrame): void {
    if (frame.keyframe) {
      this.#frames = [frame];
      this.#bytes = frame.data.length;
      return;
    }
    if (this.#frames.length === 0) return;
    this.#frames.push(frame);
    this.#bytes += frame.data.length;
    if (this.#frames.length > this.#maxFrames || this.#bytes > this.#maxBytes) this.clear();
  }

  /** Forget everything (a source restart, a discontinuity). */
  clear(): void {
    this.#frames = [];
    this.#bytes = 0;
  }

  /**
   * The cached frames for a joining viewer, the IDR first, re-stamped `spacingUs` apart (default
   * 1 ms) so the last one keeps the latest frame's timestamp. Empty when nothing is cached.
   */
  catchUp(spacingUs: number = 1000): EncodedFrame[] {
    const n = this.#frames.length;
    if (n === 0) return [];
    const last = this.#frames[n - 1].timestampUs;
    return this.#frames.map((f, i) => ({ ...f, timestampUs: last - (n - 1 - i) * spacingUs }));
  }

  /** The cached GOP's IDR timestamp (undefined when nothing is cached): which GOP it holds. */
  get keyframeTimestampUs(): number | undefined {
    return this.#frames[0]?.timestampUs;
  }

  /**
   * The cached frames for a viewer that lost a picture and was last sent the frame stamped
   * `afterUs`: the IDR first, re-stamped inside one frame interval after `afterUs` (evenly, at
   * least 12 µs — one 90 kHz tick — apart), so they come after everything it has and before
   * the stream's next frame. Its decoder gets the IDR and every frame the next one depends on;
   * the pictures in between flash by. Empty when nothing is cached.
   */
  replay(afterUs: number): EncodedFrame[] {
    const n = this.#frames.length;
    if (n === 0) return [];
    const interval = n > 1
      ? (this.#frames[n - 1].timestampUs - this.#frames[0].timestampUs) / (n - 1)
      : 40_000;
    const step = Math.max(12, Math.floor(interval / (n + 1)));
    return this.#frames.map((f, i) => ({ ...f, timestampUs: afterUs + (i + 1) * step }));
  }
}
