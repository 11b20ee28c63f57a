/**
 * H.264 Annex-B byte-stream scanning: NAL units, their types, access-unit checks.
 *
 * Only the NAL header and the first bit of a slice header are read; no slice data is decoded.
 *
 * @module
 */
import { KvsError } from "../errors.ts";

/** NAL unit types (ITU-T H.264 table 7-1) this module cares about. */
export const NalType = {
  /** Coded slice of a non-IDR picture. */
  SLICE: 1,
  /** Coded slice data partition A. */
  SLICE_A: 2,
  /** Coded slice of an IDR picture. */
  IDR: 5,
  /** Supplemental enhancement information. */
  SEI: 6,
  /** Sequence parameter set. */
  SPS: 7,
  /** Picture parameter set. */
  PPS: 8,
  /** Access unit delimiter. */
  AUD: 9,
  /** End of sequence. */
  END_OF_SEQUENCE: 10,
  /** End of stream. */
  END_OF_STREAM: 11,
  /** Filler data. */
  FILLER: 12,
} as const;

/**
 * Invalid H.264 input: no start code, empty or truncated NAL units, forbidden bits, an access
 * unit without a picture. `source` names the file or stream at fault when known.
 *
 * @example
 * ```ts
 * import { H264Error, inspectAccessUnit } from "./h264.ts";
 * try {
 *   inspectAccessUnit(new Uint8Array([1, 2, 3]), "frame-0001.h264");
 * } catch (e) {
 *   if (e instanceof H264Error) console.log(e.source, e.message);
 * }
 * ```
 */
export class H264Error extends KvsError {
  /** File path or stream name the bad data came from, when known. */
  readonly source?: string;
  /** Make the error; `source` (file or stream name) prefixes the message. */
  constructor(message: string, source?: string, options?: ErrorOptions) {
    super("H264_INVALID", source ? `${source}: ${message}` : message, options);
    this.source = source;
  }
}

/** What {@link inspectAccessUnit} found in one access unit. */
export interface AccessUnitInfo {
  /** NAL unit types in order. */
  nalTypes: number[];
  /** An IDR slice is present: a decoder can start here. */
  keyframe: boolean;
  /** A sequence parameter set is present. */
  hasSps: boolean;
  /** A picture parameter set is present. */
  hasPps: boolean;
  /** `profile_idc`, constraint flags and `level_idc` of the SPS as 6 hex digits (`42c01f`). */
  profileLevelId?: string;
}

/**
 * Find the next start code (`00 00 01`) at or after `from`.
 * Returns the index of its first zero byte, or -1.
 */
function findStartCode(data: Uint8Array, from: number): number {
  const end = data.length - 2;
  for (let i = from; i < end; i++) {
    // Skip quickly: the third byte of a start code is 1, anything > 1 rules out three positions.
    const b2 = data[i + 2];
    if (b2 > 1) {
      i += 2;
      continue;
    }
    if (b2 === 1 && data[i] === 0 && data[i + 1] === 0) return i;
  }
  return -1;
}

/**
 * The NAL unit type (low 5 bits of the first byte) of a NAL unit without its start code.
 *
 * @example
 * ```ts
 * import { nalType } from "./h264.ts";
 * nalType(new Uint8Array([0x65, 0x88])); // 5 (IDR)
 * ```
 */
export function nalType(nal: Uint8Array): number {
  if (nal.length === 0) throw new H264Error("empty NAL unit");
  return nal[0] & 0x1f;
}

/**
 * Split an Annex-B buffer into NAL units (views without start codes, trailing zero bytes
 * removed). Throws {@link H264Error} if the data does not begin with a start code, a NAL unit is
 * empty or truncated to its start code, or a NAL header has the forbidden bit set.
 *
 * @example
 * ```ts
 * import { splitNalUnits } from "./h264.ts";
 * const au = new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce]);
 * splitNalUnits(au).length; // 2
 * ```
 */
export function splitNalUnits(data: Uint8Array, source?: string): Uint8Array[] {
  if (data.length === 0) throw new H264Error("empty input (0 bytes)", source);
  const first = findStartCode(data, 0);
  if (first < 0) throw new H264Error("no Annex-B start code (00 00 01) found", source);
  for (let i = 0; i < first; i++) {
    if (data[i] !== 0) {
      throw new H264Error(
        `does not begin with an Annex-B start code (byte ${i} is 0x${hex(data[i])})`,
        source,
      );
    }
  }
  const nals: Uint8Array[] = [];
  let start = first + 3;
  while (start <= data.length) {
    const next = findStartCode(data, start);
    let end = next < 0 ? data.length : next;
    while (end > start && data[end - 1] === 0) end--; // trailing_zero_8bits / 4-byte start code
    if (end === start) {
      throw new H264Error(
        next < 0
          ? `truncated: ends with a start code and no NAL unit after it (offset ${start})`
          : `empty NAL unit at offset ${start}`,
        source,
      );
    }
    const nal = data.subarray(start, end);
    if (nal[0] & 0x80) {
      throw new H264Error(
        `NAL unit at offset ${start} has forbidden_zero_bit set (header 0x${hex(nal[0])})`,
        source,
      );
    }
    if ((nal[0] & 0x1f) === 0) {
      throw new H264Error(`NAL unit at offset ${start} has unspecified type 0`, source);
    }
    nals.push(nal);
    if (next < 0) break;
    start = next + 3;
  }
  return nals;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0");
}

function isVcl(type: number): boolean {
  return type >= 1 && type <= 5;
}

/**
 * Scan one access unit and report its NAL types, whether it is a keyframe (IDR) and whether it
 * carries SPS/PPS. Throws {@link H264Error} for garbage, truncation, or an access unit without any
 * picture (slice) NAL unit, or an SPS too short to hold its profile and level.
 *
 * @example
 * ```ts
 * import { inspectAccessUnit } from "./h264.ts";
 * const info = inspectAccessUnit(
 *   new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88]),
 * );
 * info.keyframe; // true
 * info.profileLevelId; // "42c01f"
 * ```
 */
export function inspectAccessUnit(data: Uint8Array, source?: string): AccessUnitInfo {
  const nals = splitNalUnits(data, source);
  const info: AccessUnitInfo = { nalTypes: [], keyframe: false, hasSps: false, hasPps: false };
  for (const nal of nals) {
    const type = nal[0] & 0x1f;
    info.nalTypes.push(type);
    if (type === NalType.IDR) info.keyframe = true;
    if (type === NalType.PPS) info.hasPps = true;
    if (type === NalType.SPS) {
      if (nal.length < 4) {
        throw new H264Error(`truncated SPS (${nal.length} bytes)`, source);
      }
      info.hasSps = true;
      info.profileLevelId ??= hex(nal[1]) + hex(nal[2]) + hex(nal[3]);
    }
  }
  if (!info.nalTypes.some(isVcl)) {
    throw new H264Error(
      `no picture: the access unit has no slice NAL unit (types ${info.nalTypes.join(",")})`,
      source,
    );
  }
  return info;
}

/**
 * Whether an Annex-B access unit contains an IDR slice (a decoder can start from it).
 * Never throws: garbage is simply not a keyframe.
 *
 * @example
 * ```ts
 * import { isKeyframe } from "./h264.ts";
 * isKeyframe(new Uint8Array([0, 0, 0, 1, 0x65, 0x88])); // true
 * isKeyframe(new Uint8Array([0, 0, 0, 1, 0x41, 0x9a])); // false
 * ```
 */
export function isKeyframe(data: Uint8Array): boolean {
  let i = findStartCode(data, 0);
  while (i >= 0 && i + 3 < data.length) {
    if ((data[i + 3] & 0x1f) === NalType.IDR) return true;
    i = findStartCode(data, i + 3);
  }
  return false;
}

/**
 * Whether an access unit carries both an SPS and a PPS (so a decoder starting here needs
 * nothing else). Never throws.
 *
 * @example
 * ```ts
 * import { hasParameterSets } from "./h264.ts";
 * hasParameterSets(new Uint8Array([0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce])); // true
 * ```
 */
export function hasParameterSets(data: Uint8Array): boolean {
  let sps = false;
  let pps = false;
  let i = findStartCode(data, 0);
  while (i >= 0 && i + 3 < data.length) {
    const t = data[i + 3] & 0x1f;
    if (t === NalType.SPS) sps = true;
    if (t === NalType.PPS) pps = true;
    i = findStartCode(data, i + 3);
  }
  return sps && pps;
}

/**
 * Whether a NAL unit begins a new access unit, given whether the access unit collected so far
 * already holds a picture (ITU-T H.264 7.4.1.2.3, simplified): an AUD, SPS, PPS or SEI after a
 * picture, or a slice whose `first_mb_in_slice` is 0 after a picture.
 *
 * @example
 * ```ts
 * import { startsAccessUnit } from "./h264.ts";
 * startsAccessUnit(new Uint8Array([0x09, 0xf0]), false); // true (AUD)
 * startsAccessUnit(new Uint8Array([0x41, 0x9a]), true); // true (first_mb_in_slice = 0)
 * ```
 */
export function startsAccessUnit(nal: Uint8Array, auHasPicture: boolean): boolean {
  const type = nal[0] & 0x1f;
  if (type === NalType.AUD) return true;
  if (!auHasPicture) return false;
  if (type === NalType.SPS || type === NalType.PPS || type === NalType.SEI) return true;
  if (type >= 14 && type <= 18) return true;
  // first_mb_in_slice is ue(v): a leading 1 bit means the value 0.
  if (isVcl(type)) return nal.length > 1 && (nal[1] & 0x80) !== 0;
  return false;
}

/**
 * Whether a NAL type is a picture slice (types 1-5).
 *
 * @example
 * ```ts
 * import { isSliceType } from "./h264.ts";
 * isSliceType(5); // true
 * isSliceType(7); // false
 * ```
 */
export function isSliceType(type: number): boolean {
  return isVcl(type);
}

/**
 * The `profile-level-id` (6 hex digits) of the first SPS in an Annex-B access unit, looking no
 * further than its first picture NAL unit; undefined when there is none before it. Never throws.
 *
 * @example
 * ```ts
 * import { spsProfileLevelId } from "./h264.ts";
 * spsProfileLevelId(new Uint8Array([0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0, 0, 1, 0x65])); // "640028"
 * ```
 */
export function spsProfileLevelId(data: Uint8Array): string | undefined {
  for (let i = 0; i + 3 < data.length; i++) {
    if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
    const type = data[i + 3] & 0x1f;
    if (type === NalType.SPS) {
      if (i + 6 >= data.length) return undefined;
      return hex(data[i + 4]) + hex(data[i + 5]) + hex(data[i + 6]);
    }
    if (isVcl(type)) return undefined;
    i += 2;
  }
  return undefined;
}
