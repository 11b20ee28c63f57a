/**
 * The two header packets of an Ogg Opus stream (RFC 7845 §5): the identification header
 * `OpusHead` and the comment header `OpusTags`, read and written.
 *
 * @module
 */
import { OpusError } from "./opus.ts";

/** The identification header `OpusHead` (RFC 7845 §5.1). */
export interface OpusHead {
  /** Version (1 when written; any with major version 0, i.e. 0–15, is read). */
  version: number;
  /** Output channels (1 = mono, 2 = stereo; more with a channel mapping family other than 0). */
  channels: number;
  /**
   * Samples at 48 kHz to drop from the decoder's output at the start of the stream (the
   * encoder's lookahead: 312 for libopus).
   */
  preSkip: number;
  /** Sample rate of the encoder's input, Hz (informative; 0 when unknown). Playback is 48 kHz. */
  inputSampleRate: number;
  /** Gain to apply to the output, in Q7.8 dB (256 = +1 dB); usually 0. */
  outputGain: number;
  /** Channel mapping family: 0 (mono or stereo, one Opus stream), 1 (Vorbis order, up to 8), 255. */
  mappingFamily: number;
  /** Opus streams in each packet (family ≠ 0). */
  streams?: number;
  /** Of those, the ones coding two channels (family ≠ 0). */
  coupledStreams?: number;
  /** For each output channel, the decoded channel it comes from; 255 = silence (family ≠ 0). */
  mapping?: number[];
}

/** The comment header `OpusTags` (RFC 7845 §5.2). */
export interface OpusTags {
  /** Who wrote the stream (e.g. `Lavf59.27.100`). */
  vendor: string;
  /** `FIELD=value` comments, as stored. */
  comments: string[];
}

const HEAD_MAGIC = "OpusHead";
const TAGS_MAGIC = "OpusTags";
const utf8 = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

/**
 * Whether `packet` begins with `magic` (8 ASCII bytes).
 *
 * @example
 * ```ts
 * import { hasMagic } from "./opus_headers.ts";
 * hasMagic(new TextEncoder().encode("OpusHead\x01\x02"), "OpusHead"); // true
 * ```
 */
export function hasMagic(packet: Uint8Array, magic: string): boolean {
  if (packet.length < magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (packet[i] !== magic.charCodeAt(i)) return false;
  return true;
}

/**
 * Parse an `OpusHead` packet. Throws {@link OpusError} naming `source` and the field at fault:
 * wrong magic, too short, an unsupported version, no channels, a channel mapping that does not
 * fit its family.
 *
 * @example
 * ```ts
 * import { encodeOpusHead, parseOpusHead } from "./opus_headers.ts";
 * const head = parseOpusHead(encodeOpusHead({ channels: 2, preSkip: 312 }));
 * head.preSkip; // 312
 * ```
 */
export function parseOpusHead(packet: Uint8Array, source?: string): OpusHead {
  const bad = (why: string) => new OpusError(`OpusHead: ${why}`, source);
  if (!hasMagic(packet, HEAD_MAGIC)) throw bad("not an OpusHead packet (wrong magic)");
  if (packet.length < 19) throw bad(`${packet.length} bytes, at least 19 expected`);
  const view = new DataView(packet.buffer, packet.byteOffset, packet.length);
  const version = packet[8];
  if (version >> 4 !== 0) throw bad(`version ${version} is not supported (major version 0 only)`);
  const channels = packet[9];
  if (channels === 0) throw bad("zero channels");
  const head: OpusHead = {
    version,
    channels,
    preSkip: view.getUint16(10, true),
    inputSampleRate: view.getUint32(12, true),
    outputGain: view.getInt16(16, true),
    mappingFamily: packet[18],
  };
  if (head.mappingFamily === 0) {
    if (channels > 2) throw bad(`${channels} channels with mapping family 0 (1 or 2 allowed)`);
    return head;
  }
  if (head.mappingFamily === 1 && channels > 8) {
    throw bad(`${channels} channels with mapping family 1 (at most 8)`);
  }
  if (packet.length < 21 + channels) {
    throw bad(`${packet.length} bytes: too short for a mapping table of ${channels} channels`);
  }
  const streams = packet[19];
  const coupled = packet[20];
  if (streams === 0) throw bad("zero streams");
  if (coupled > streams) throw bad(`${coupled} coupled streams of ${streams}`);
  if (streams + coupled > 255) throw bad(`${streams} streams and ${coupled} coupled: over 255`);
  const mapping = [...packet.subarray(21, 21 + channels)];
  for (const m of mapping) {
    if (m !== 255 && m >= streams + coupled) {
      throw bad(`channel mapped to ${m}, but only ${streams + coupled} decoded channels exist`);
    }
  }
  return { ...head, streams, coupledStreams: coupled, mapping };
}

/**
 * Encode an `OpusHead` packet (version 1). Mapping family 0 (the default) for mono or stereo;
 * other families need `streams`, `coupledStreams` and `mapping`.
 *
 * @example
 * ```ts
 * import { encodeOpusHead } from "./opus_headers.ts";
 * encodeOpusHead({ channels: 1, preSkip: 312, inputSampleRate: 48000 }).length; // 19
 * ```
 */
export function encodeOpusHead(head: Partial<OpusHead> & { channels: number }): Uint8Array {
  const family = head.mappingFamily ?? 0;
  const channels = head.channels;
  if (!Number.isInteger(channels) || channels < 1 || channels > 255) {
    throw new RangeError(`channels must be 1–255, got ${channels}`);
  }
  if (family === 0 && channels > 2) {
    throw new RangeError(`mapping family 0 carries 1 or 2 channels, not ${channels}`);
  }
  const preSkip = head.preSkip ?? 0;
  if (!Number.isInteger(preSkip) || preSkip < 0 || preSkip > 0xffff) {
    throw new RangeError(`preSkip must be 0–65535, got ${preSkip}`);
  }
  const table = family === 0 ? 0 : 2 + channels;
  const out = new Uint8Array(19 + table);
  const view = new DataView(out.buffer);
  out.set(encoder.encode(HEAD_MAGIC), 0);
  out[8] = 1;
  out[9] = channels;
  view.setUint16(10, preSkip, true);
  view.setUint32(12, head.inputSampleRate ?? 0, true);
  view.setInt16(16, head.outputGain ?? 0, true);
  out[18] = family;
  if (family !== 0) {
    const { streams, coupledStreams, mapping } = head;
    if (streams === undefined || coupledStreams === undefined || mapping?.length !== channels) {
      throw new RangeError(`mapping family ${family} needs streams, coupledStreams and mapping`);
    }
    out[19] = streams;
    out[20] = coupledStreams;
    out.set(mapping, 21);
  }
  return out;
}

/**
 * Parse an `OpusTags` packet. Throws {@link OpusError} when a length runs past the packet.
 * Binary data after the comments is ignored, and invalid UTF-8 is replaced, not rejected.
 *
 * @example
 * ```ts
 * import { encodeOpusTags, parseOpusTags } from "./opus_headers.ts";
 * const tags = parseOpusTags(encodeOpusTags({ vendor: "me", comments: ["TITLE=tones"] }));
 * tags.comments; // ["TITLE=tones"]
 * ```
 */
export function parseOpusTags(packet: Uint8Array, source?: string): OpusTags {
  const bad = (why: string) => new OpusError(`OpusTags: ${why}`, source);
  if (!hasMagic(packet, TAGS_MAGIC)) throw bad("not an OpusTags packet (wrong magic)");
  const view = new DataView(packet.buffer, packet.byteOffset, packet.length);
  let at = 8;
  const u32 = (what: string) => {
    if (at + 4 > packet.length) throw bad(`the packet ends before the ${what}`);
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const text = (what: string) => {
    const len = u32(`${what}'s length`);
    if (len > packet.length - at) {
      throw bad(`the ${what} says ${len} bytes, only ${packet.length - at} are left`);
    }
    const s = utf8.decode(packet.subarray(at, at + len));
    at += len;
    return s;
  };
  const vendor = text("vendor string");
  const count = u32("comment count");
  // Each comment takes at least its 4-byte length: a count beyond that is a lie.
  if (count > (packet.length - at) / 4) {
    throw bad(`${count} comments announced, the packet cannot hold that many`);
  }
  const comments: string[] = [];
  for (let i = 0; i < count; i++) comments.push(text(`comment ${i + 1}`));
  return { vendor, comments };
}

/**
 * Encode an `OpusTags` packet.
 *
 * @example
 * ```ts
 * import { encodeOpusTags } from "./opus_headers.ts";
 * encodeOpusTags({ vendor: "kvs-webrtc-master", comments: [] }).length; // 8 + 4 + 17 + 4
 * ```
 */
export function encodeOpusTags(tags: OpusTags): Uint8Array {
  const vendor = encoder.encode(tags.vendor);
  const comments = tags.comments.map((c) => encoder.encode(c));
  const size = 8 + 4 + vendor.length + 4 + comments.reduce((n, c) => n + 4 + c.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(encoder.encode(TAGS_MAGIC), 0);
  let at = 8;
  view.setUint32(at, vendor.length, true);
  out.set(vendor, at + 4);
  at += 4 + vendor.length;
  view.setUint32(at, comments.length, true);
  at += 4;
  for (const c of comments) {
    view.setUint32(at, c.length, true);
    out.set(c, at + 4);
    at += 4 + c.length;
  }
  return out;
}
