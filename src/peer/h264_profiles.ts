/**
 * H.264 profiles as SDP names them (`profile-level-id`, RFC 6184 §8.1): which profile six hex
 * digits denote, and whether a decoder offered for one profile can play a stream of another.
 * The profile comes from `profile_idc` and the constraint flags together, as WebRTC stacks read
 * it (`42e01f` and `42c01f` are both Constrained Baseline; `42001f` is Baseline).
 *
 * @module
 */

/** The profiles a master meets in browsers' offers. */
export type H264Profile =
  | "constrained-baseline"
  | "baseline"
  | "main"
  | "extended"
  | "constrained-high"
  | "high"
  | "other";

/**
 * The profile of a `profile-level-id` (undefined when it is not six hex digits).
 *
 * @example
 * ```ts
 * import { h264Profile } from "./h264_profiles.ts";
 * h264Profile("42e01f"); // "constrained-baseline"
 * h264Profile("640c1f"); // "constrained-high"
 * ```
 */
export function h264Profile(profileLevelId: string): H264Profile | undefined {
  if (!/^[0-9a-f]{6}$/i.test(profileLevelId)) return undefined;
  const idc = parseInt(profileLevelId.slice(0, 2), 16);
  const iop = parseInt(profileLevelId.slice(2, 4), 16);
  const set0 = (iop & 0x80) !== 0;
  const set1 = (iop & 0x40) !== 0;
  const set3 = (iop & 0x10) !== 0;
  switch (idc) {
    case 0x42:
      return set1 ? "constrained-baseline" : "baseline";
    case 0x4d:
      return set0 ? "constrained-baseline" : "main";
    case 0x58:
      return set0 && set1 ? "constrained-baseline" : set0 ? "baseline" : "extended";
    case 0x64:
      // Constrained High: constraint_set4 and set5 (0x0c) on High.
      return (iop & 0x0c) === 0x0c && !set3 ? "constrained-high" : "high";
    default:
      return "other";
  }
}

/** Which stream profiles a decoder of each profile plays (each profile's subsets). */
const PLAYS: Record<H264Profile, H264Profile[]> = {
  "constrained-baseline": ["constrained-baseline"],
  baseline: ["baseline", "constrained-baseline"],
  main: ["main", "constrained-baseline"],
  extended: ["extended", "baseline", "constrained-baseline"],
  "constrained-high": ["constrained-high", "main", "constrained-baseline"],
  high: ["high", "constrained-high", "main", "constrained-baseline"],
  other: [],
};

/**
 * How well a decoder offered as `offered` suits a stream of `stream` (both `profile-level-id`s):
 * 2 the same profile, 1 a profile that contains the stream's, 0 not playable.
 *
 * @example
 * ```ts
 * import { profileFit } from "./h264_profiles.ts";
 * profileFit("42e01f", "42c01f"); // 2: both Constrained Baseline
 * profileFit("640032", "42c01f"); // 1: High decoders play Constrained Baseline
 * profileFit("42e01f", "640032"); // 0
 * ```
 */
export function profileFit(offered: string, stream: string): 0 | 1 | 2 {
  const o = h264Profile(offered);
  const s = h264Profile(stream);
  if (!o || !s || o === "other" || s === "other") {
    return offered.slice(0, 4).toLowerCase() === stream.slice(0, 4).toLowerCase() ? 2 : 0;
  }
  if (o === s) return 2;
  return PLAYS[o].includes(s) ? 1 : 0;
}
