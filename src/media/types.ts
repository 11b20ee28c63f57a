/**
 * The media contract between sources (files, encoders, cameras) and the master.
 *
 * @module
 */

/**
 * One H.264 access unit in Annex-B form (start codes included).
 *
 * @example
 * ```ts
 * import type { EncodedFrame } from "./types.ts";
 * const f: EncodedFrame = { data: new Uint8Array([0, 0, 0, 1, 0x65]), timestampUs: 0, keyframe: true };
 * ```
 */
export interface EncodedFrame {
  /** Annex-B access unit. An IDR access unit should carry SPS and PPS before the IDR slice. */
  data: Uint8Array;
  /** Presentation time in microseconds on the source's monotonic clock (starts anywhere). */
  timestampUs: number;
  /** True for an IDR access unit a decoder can start from. */
  keyframe: boolean;
  /**
   * Which rung of the source's {@link VideoSource.renditions} ladder this frame belongs to (0:
   * the top one). A ladder source sends, for each instant, one frame of every rendition, all
   * with the same timestamp, one after the other. Undefined: the source's only rendition.
   */
  rendition?: number;
}

/**
 * One rung of a source's ladder: the same pictures at a size and bitrate of their own.
 *
 * @example
 * ```ts
 * import type { Rendition } from "./types.ts";
 * const ladder: Rendition[] = [
 *   { width: 1280, height: 720, bitrateBps: 2_400_000, label: "720p" },
 *   { width: 640, height: 360, bitrateBps: 800_000, label: "360p" },
 * ];
 * ```
 */
export interface Rendition {
  /** Picture width in pixels (0 when unknown). */
  width: number;
  /** Picture height in pixels (0 when unknown). */
  height: number;
  /** Average bitrate, bits per second (what a viewer needs to receive it). */
  bitrateBps: number;
  /** A short name for logs and events, e.g. `720p`. */
  label: string;
}

/**
 * A live H.264 source. The master starts it once and fans each frame out to every viewer.
 *
 * @example
 * ```ts
 * import type { VideoSource, EncodedFrame } from "./types.ts";
 * class Silence implements VideoSource {
 *   readonly codec = "h264" as const;
 *   start(_onFrame: (f: EncodedFrame) => void) {}
 *   stop() {}
 * }
 * ```
 */
export interface VideoSource {
  /** Only H.264 for now. */
  readonly codec: "h264";
  /**
   * The stream's `profile-level-id` when known before its first frame (a file source reads it
   * from its SPS); otherwise the master reads it from the SPS of each IDR it passes on.
   */
  readonly profileLevelId?: string;
  /** Begin delivering frames, paced in real time. Calling twice is an error. */
  start(onFrame: (frame: EncodedFrame) => void): void;
  /** Stop delivering frames and release resources. */
  stop(): void | Promise<void>;
  /** Ask for an IDR soon (live encoders); file sources may ignore it. */
  requestKeyframe?(): void;
  /**
   * Told when no viewer is receiving frames (`true`) and when one is again (`false`). A source
   * that can rest (a file loop) pauses meanwhile; a live one should keep draining its input.
   */
  idle?(idle: boolean): void;
  /**
   * Its ladder, highest rung first, when it sends several renditions of the same pictures
   * (frames tagged with {@link EncodedFrame.rendition}, an IDR of every rung at the same
   * instants or each rung's own). The master then sends each viewer the one its bandwidth
   * carries, switching at IDRs. Undefined or a single rung: every viewer gets every frame.
   */
  readonly renditions?: readonly Rendition[];
  /**
   * The bitrate the slowest viewer can receive now, bits per second: the lowest bandwidth
   * estimate among the viewers receiving video, given again when it moves by more than 10 %
   * (and at most every 2 s when it moves less). A live encoder may aim its bitrate below it
   * (leaving headroom for audio and packet overhead); a file source ignores it.
   */
  setTargetBitrate?(bps: number): void;
}
