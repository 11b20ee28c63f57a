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
 * One Opus packet (RFC 6716; 20 ms at 48 kHz is what sources here send).
 *
 * @example
 * ```ts
 * import type { EncodedAudioFrame } from "./types.ts";
 * const f: EncodedAudioFrame = { data: new Uint8Array([0xfc, 0xff, 0xfe]), timestampUs: 20_000 };
 * ```
 */
export interface EncodedAudioFrame {
  /** One Opus packet. */
  data: Uint8Array;
  /**
   * Presentation time in microseconds, on the same clock as the video frames it goes with (so
   * a viewer keeps lips in sync).
   */
  timestampUs: number;
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

/**
 * A live Opus source. The master starts it once and fans each packet out to every viewer that
 * receives audio.
 *
 * @example
 * ```ts
 * import type { AudioSource, EncodedAudioFrame } from "./types.ts";
 * class Quiet implements AudioSource {
 *   readonly codec = "opus" as const;
 *   start(_onFrame: (f: EncodedAudioFrame) => void) {}
 *   stop() {}
 * }
 * ```
 */
export interface AudioSource {
  /** Only Opus (48 kHz). */
  readonly codec: "opus";
  /** Begin delivering packets, paced in real time. Calling twice is an error. */
  start(onFrame: (frame: EncodedAudioFrame) => void): void;
  /** Stop delivering packets and release resources. */
  stop(): void | Promise<void>;
  /** Told when no viewer is receiving (`true`) and when one is again (`false`), as video is. */
  idle?(idle: boolean): void;
}
