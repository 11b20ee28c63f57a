/**
 * The audio contract between sources (a sample loop, an encoder's Ogg Opus output) and the
 * master, the sibling of the video one in `types.ts`.
 *
 * @module
 */

/**
 * One Opus packet with its place in time.
 *
 * `timestampUs` is on the same monotonic clock as `EncodedFrame.timestampUs` of the video
 * sources (`performance.now()` in µs unless a test clock is given), so audio and video played at
 * the same instant carry the same time. `timestamp48k` is that time at 48 kHz (Opus's RTP clock,
 * RFC 7587), `Math.round(timestampUs × 0.048)`, except that it is kept exactly contiguous (the
 * previous packet's plus its `samples`) while the audio is: the RTP timestamp is
 * `timestamp48k >>> 0`, as the video's is `Math.round(timestampUs × 0.09) >>> 0`.
 *
 * @example
 * ```ts
 * import type { AudioPacket } from "./audio_types.ts";
 * const p: AudioPacket = {
 *   data: new Uint8Array([0xf8, 0xff, 0xfe]),
 *   timestampUs: 1_000_000,
 *   timestamp48k: 48_000,
 *   samples: 960,
 * };
 * ```
 */
export interface AudioPacket {
  /** One Opus packet (RFC 6716), TOC byte first. Consumers must not modify it. */
  data: Uint8Array;
  /** When it plays, in microseconds on the sources' shared monotonic clock. */
  timestampUs: number;
  /** RTP timestamp at 48 kHz before the 32-bit wrap: contiguous while the audio is. */
  timestamp48k: number;
  /** Duration at 48 kHz (960 for 20 ms), from the packet's TOC. */
  samples: number;
}

/**
 * A live Opus source. The master starts it once and fans each packet out to every viewer, next
 * to the `VideoSource`.
 *
 * @example
 * ```ts
 * import type { AudioPacket, AudioSource } from "./audio_types.ts";
 * class Silence implements AudioSource {
 *   readonly codec = "opus" as const;
 *   start(_onPacket: (p: AudioPacket) => void) {}
 *   stop() {}
 * }
 * ```
 */
export interface AudioSource {
  /** Only Opus: the one audio codec WebRTC browsers all take. */
  readonly codec: "opus";
  /** Channels of the stream (1 or 2) when known before its first packet. */
  readonly channels?: number;
  /** Begin delivering packets, paced in real time. Calling twice is an error. */
  start(onPacket: (packet: AudioPacket) => void): void;
  /** Stop delivering packets and release resources. */
  stop(): void | Promise<void>;
  /**
   * Told when no viewer is receiving (`true`) and when one is again (`false`), like
   * `VideoSource.idle`: a loop rests meanwhile, a live source keeps draining its input.
   */
  idle?(idle: boolean): void;
}
