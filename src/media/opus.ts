/**
 * Opus packets (RFC 6716 §3): the TOC byte, frame counts and durations, the structural rules
 * every packet must follow, and packets that ask a decoder to conceal a gap.
 *
 * Only the packet framing is read; no audio is decoded.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/**
 * An invalid Opus packet: empty, a frame count or frame lengths that do not fit its size, more
 * than 120 ms of audio. `source` names the file or stream at fault when known.
 *
 * @example
 * ```ts
 * import { inspectOpusPacket, OpusError } from "./opus.ts";
 * try {
 *   inspectOpusPacket(new Uint8Array([]), "tones.opus");
 * } catch (e) {
 *   if (e instanceof OpusError) console.log(e.message); // tones.opus: empty Opus packet
 * }
 * ```
 */
export class OpusError extends KvsError {
  /** File path or stream name the bad data came from, when known. */
  readonly source?: string;
  /** Make the error; `source` (file or stream name) prefixes the message. */
  constructor(message: string, source?: string, options?: ErrorOptions) {
    super("OPUS_INVALID", source ? `${source}: ${message}` : message, options);
    this.source = source;
  }
}

/** Coding mode of an Opus packet, from its TOC configuration number. */
export type OpusMode = "silk" | "hybrid" | "celt";

/** What {@link inspectOpusPacket} found in one packet. */
export interface OpusPacketInfo {
  /** TOC configuration number, 0–31 (mode, bandwidth and frame duration). */
  config: number;
  /** SILK (speech), hybrid or CELT (music, low delay). */
  mode: OpusMode;
  /** Coded as stereo (the TOC's `s` bit). */
  stereo: boolean;
  /** Frames in the packet, 1–48. */
  frames: number;
  /** Samples of one frame at 48 kHz: 120 (2.5 ms) to 2880 (60 ms). */
  frameSamples: number;
  /** Samples of the whole packet at 48 kHz: `frames × frameSamples` (960 for 20 ms). */
  samples: number;
}

/** Largest frame RFC 6716 allows, bytes. */
const MAX_FRAME_BYTES = 1275;

/**
 * Most audio one packet may hold: 120 ms at 48 kHz.
 *
 * @example
 * ```ts
 * import { OPUS_MAX_PACKET_SAMPLES } from "./opus.ts";
 * OPUS_MAX_PACKET_SAMPLES / 48; // 120 (ms)
 * ```
 */
export const OPUS_MAX_PACKET_SAMPLES: number = 5760;

/**
 * Samples per frame at 48 kHz of a TOC configuration number (RFC 6716 table 2).
 *
 * @example
 * ```ts
 * import { opusFrameSamples } from "./opus.ts";
 * opusFrameSamples(31); // 960: CELT fullband, 20 ms
 * opusFrameSamples(3); // 2880: SILK narrowband, 60 ms
 * ```
 */
export function opusFrameSamples(config: number): number {
  if (config < 12) return [480, 960, 1920, 2880][config & 3]; // SILK: 10, 20, 40, 60 ms
  if (config < 16) return [480, 960][config & 1]; // hybrid: 10, 20 ms
  return [120, 240, 480, 960][config & 3]; // CELT: 2.5, 5, 10, 20 ms
}

/**
 * Read a packet's TOC byte and check its framing against RFC 6716 §3.4 (rules R1–R7): the frame
 * count and lengths must fit the packet exactly and hold at most 120 ms. Throws
 * {@link OpusError} naming `source` and what is wrong.
 *
 * @example
 * ```ts
 * import { inspectOpusPacket } from "./opus.ts";
 * // TOC 0xf8: config 31 (CELT fullband 20 ms), mono, one frame.
 * const info = inspectOpusPacket(new Uint8Array([0xf8, 0xff, 0xfe]));
 * info.samples; // 960
 * ```
 */
export function inspectOpusPacket(packet: Uint8Array, source?: string): OpusPacketInfo {
  const n = packet.length;
  if (n === 0) throw new OpusError("empty Opus packet", source);
  const toc = packet[0];
  const config = toc >> 3;
  const stereo = (toc & 0x04) !== 0;
  const code = toc & 0x03;
  const frameSamples = opusFrameSamples(config);
  const mode: OpusMode = config < 12 ? "silk" : config < 16 ? "hybrid" : "celt";
  const bad = (why: string) => new OpusError(`${why} (TOC 0x${hex(toc)}, ${n} bytes)`, source);
  const fits = (len: number) => {
    if (len > MAX_FRAME_BYTES) throw bad(`a frame of ${len} bytes (at most ${MAX_FRAME_BYTES})`);
  };
  let frames = 1;
  if (code === 0) {
    fits(n - 1);
  } else if (code === 1) {
    frames = 2;
    if ((n - 1) % 2 !== 0) throw bad("code 1 packet with an odd payload: two equal frames");
    fits((n - 1) / 2);
  } else if (code === 2) {
    frames = 2;
    const [len, size] = frameLength(packet, 1);
    if (size === 0) throw bad("code 2 packet without its first frame's length");
    if (1 + size + len > n) throw bad(`code 2 packet whose first frame (${len} bytes) overruns it`);
    fits(len);
    fits(n - 1 - size - len);
  } else {
    if (n < 2) throw bad("code 3 packet without its frame count byte");
    const vbr = (packet[1] & 0x80) !== 0;
    const padded = (packet[1] & 0x40) !== 0;
    frames = packet[1] & 0x3f;
    if (frames === 0) throw bad("code 3 packet with zero frames");
    if (frames * frameSamples > OPUS_MAX_PACKET_SAMPLES) {
      throw bad(`${frames} frames of ${frameSamples / 48} ms: more than 120 ms`);
    }
    let at = 2;
    let padding = 0;
    if (padded) {
      for (;;) {
        if (at >= n) throw bad("code 3 packet whose padding length runs past its end");
        const b = packet[at++];
        padding += b === 255 ? 254 : b;
        if (b !== 255) break;
      }
    }
    let rest = n - at - padding;
    if (rest < 0) throw bad(`code 3 packet with ${padding} bytes of padding it does not hold`);
    if (vbr) {
      for (let i = 0; i < frames - 1; i++) {
        const [len, size] = frameLength(packet, at);
        if (size === 0 || at + size > n - padding) throw bad(`frame ${i + 1}'s length missing`);
        at += size;
        rest -= size + len;
        if (rest < 0) throw bad(`frame ${i + 1} (${len} bytes) overruns the packet`);
        fits(len);
      }
      fits(rest);
    } else if (rest % frames !== 0) {
      throw bad(`${rest} bytes do not split into ${frames} equal frames`);
    } else {
      fits(rest / frames);
    }
  }
  return { config, mode, stereo, frames, frameSamples, samples: frames * frameSamples };
}

/**
 * Duration of an Opus packet in samples at 48 kHz (see {@link inspectOpusPacket}).
 *
 * @example
 * ```ts
 * import { opusPacketSamples } from "./opus.ts";
 * opusPacketSamples(new Uint8Array([0xf8, 0xff, 0xfe])); // 960
 * ```
 */
export function opusPacketSamples(packet: Uint8Array, source?: string): number {
  return inspectOpusPacket(packet, source).samples;
}

/**
 * Packets that stand for `samples` of lost audio: code 3 packets of zero-length frames, which a
 * decoder answers with packet loss concealment (RFC 7845 §4.1 asks a multiplexer to fill gaps of
 * a captured real-time stream this way). 20 ms frames as far as they go, 2.5 ms frames for the
 * rest; each packet holds at most 120 ms. `samples` must be a multiple of 120 (2.5 ms), the
 * only gaps loss can make.
 *
 * @example
 * ```ts
 * import { opusConcealmentPackets, opusPacketSamples } from "./opus.ts";
 * const packets = opusConcealmentPackets(3 * 960);
 * packets.length; // 1: three 20 ms frames
 * opusPacketSamples(packets[0]); // 2880
 * ```
 */
export function opusConcealmentPackets(samples: number, stereo = false): Uint8Array[] {
  if (!Number.isInteger(samples) || samples < 0 || samples % 120 !== 0) {
    throw new RangeError(`a gap must be a whole multiple of 120 samples (2.5 ms), got ${samples}`);
  }
  const out: Uint8Array[] = [];
  const s = stereo ? 0x04 : 0;
  let left = samples;
  while (left >= 960) {
    const frames = Math.min(6, Math.floor(left / 960));
    out.push(new Uint8Array([(31 << 3) | s | 3, frames])); // CELT FB 20 ms, CBR, no padding
    left -= frames * 960;
  }
  if (left > 0) out.push(new Uint8Array([(28 << 3) | s | 3, left / 120])); // CELT FB 2.5 ms
  return out;
}

/** A frame length (RFC 6716 §3.2.1) at `at`: [length, bytes used]; bytes used 0 when missing. */
function frameLength(packet: Uint8Array, at: number): [number, number] {
  if (at >= packet.length) return [0, 0];
  const b0 = packet[at];
  if (b0 < 252) return [b0, 1];
  if (at + 1 >= packet.length) return [0, 0];
  return [packet[at + 1] * 4 + b0, 2];
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0");
}
