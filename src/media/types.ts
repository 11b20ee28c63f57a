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
}
