/**
 * A ladder of looped frame folders: the checks that make its rungs interchangeable at every IDR,
 * and what each rung is (size, bitrate, label), measured from its frames.
 *
 * @module
 */
import { MediaSourceError } from "./errors.ts";
import { spsDimensions } from "./sps.ts";
import type { Rendition } from "./types.ts";

/** A rung's frames as loaded: what {@link checkAligned} and {@link describeRung} read. */
export interface RungFrames {
  /** Folder (or URL, or file) the frames came from: errors name it. */
  dir: string;
  /** The frames in file order. */
  frames: readonly { name: string; data: Uint8Array; keyframe: boolean }[];
}

/**
 * Check that the rungs of a ladder can replace one another at any IDR: the same number of
 * frames, and IDRs at the same positions (so a viewer moving to another rung at one of its
 * IDRs never gets a P-frame of a picture it has not seen). Throws {@link MediaSourceError}
 * naming the folders and the first frame where they differ.
 *
 * @example
 * ```ts
 * import { checkAligned } from "./ladder.ts";
 * const f = (keyframe: boolean, i: number) => ({ name: `frame-${i}`, data: new Uint8Array(1), keyframe });
 * checkAligned([
 *   { dir: "720p", frames: [f(true, 1), f(false, 2)] },
 *   { dir: "360p", frames: [f(true, 1), f(false, 2)] },
 * ]); // fine
 * ```
 */
export function checkAligned(rungs: readonly RungFrames[]): void {
  const [top, ...rest] = rungs;
  if (!top) throw new MediaSourceError("a ladder needs at least one folder");
  for (const rung of rest) {
    if (rung.frames.length !== top.frames.length) {
      throw new MediaSourceError(
        `the rungs of a ladder must have as many frames each: ${rung.frames.length} here, ` +
          `${top.frames.length} in ${top.dir}`,
        rung.dir,
      );
    }
    const at = rung.frames.findIndex((f, i) => f.keyframe !== top.frames[i].keyframe);
    if (at >= 0) {
      const which = (r: RungFrames) =>
        `${r.frames[at].name} is ${r.frames[at].keyframe ? "an IDR" : "not an IDR"}`;
      throw new MediaSourceError(
        `the rungs of a ladder must have their IDRs at the same frames: frame ${at + 1} differs ` +
          `(${which(rung)}; in ${top.dir}, ${which(top)}); IDRs here at frames ` +
          `${idrList(rung)}, in ${top.dir} at ${idrList(top)}`,
        rung.dir,
      );
    }
  }
}

/**
 * Check that a ladder goes highest first: each rung's bitrate below the one before it (viewers
 * go down the ladder by index). Throws {@link MediaSourceError} naming the rung out of order.
 *
 * @example
 * ```ts
 * import { checkHighestFirst } from "./ladder.ts";
 * const rung = (bitrateBps: number, label: string) => ({ width: 0, height: 0, bitrateBps, label });
 * checkHighestFirst([rung(2_400_000, "720p"), rung(800_000, "360p")], ["a", "b"]); // fine
 * ```
 */
export function checkHighestFirst(renditions: readonly Rendition[], dirs: readonly string[]): void {
  for (let i = 1; i < renditions.length; i++) {
    const [above, here] = [renditions[i - 1], renditions[i]];
    if (here.bitrateBps >= above.bitrateBps) {
      throw new MediaSourceError(
        `the rungs of a ladder go highest bitrate first: ${here.label} here ` +
          `(${here.bitrateBps} b/s) comes after ${above.label} in ${dirs[i - 1]} ` +
          `(${above.bitrateBps} b/s)`,
        dirs[i],
      );
    }
  }
}

/** The 1-based positions of a rung's IDRs, shortened after a few. */
function idrList(rung: RungFrames): string {
  const at = rung.frames.flatMap((f, i) => (f.keyframe ? [i + 1] : []));
  return at.length > 6 ? `${at.slice(0, 6).join(", ")}, …` : at.join(", ");
}

/**
 * Average bitrate of a loop of frames played at `fps`, bits per second: all its bytes over its
 * duration.
 *
 * @example
 * ```ts
 * import { measureBitrate } from "./ladder.ts";
 * const frames = Array.from({ length: 25 }, () => ({ data: new Uint8Array(1000) }));
 * measureBitrate(frames, 25); // 200000
 * ```
 */
export function measureBitrate(frames: readonly { data: Uint8Array }[], fps: number): number {
  if (frames.length === 0) return 0;
  let bytes = 0;
  for (const f of frames) bytes += f.data.length;
  return Math.round((bytes * 8 * fps) / frames.length);
}

/**
 * Describe one rung: its picture size from the first SPS among its IDRs, its bitrate measured
 * from its frames at `fps` unless given, and a label (`720p`, from the height) unless given.
 *
 * @example
 * ```ts
 * import { describeRung } from "./ladder.ts";
 * const data = await Deno.readFile("samples/h264/frame-0001.h264");
 * const rung = describeRung({ dir: "one", frames: [{ name: "a", data, keyframe: true }] }, 25);
 * console.log(rung.label, rung.width, rung.height); // 720p 1280 720
 * ```
 */
export function describeRung(
  rung: RungFrames,
  fps: number,
  given: { label?: string; bitrateBps?: number } = {},
): Rendition {
  let size: { width: number; height: number } | undefined;
  for (const f of rung.frames) {
    size = f.keyframe ? spsDimensions(f.data) : undefined;
    if (size) break;
  }
  const bitrateBps = given.bitrateBps ?? measureBitrate(rung.frames, fps);
  if (!Number.isFinite(bitrateBps) || bitrateBps <= 0) {
    throw new MediaSourceError(`bitrate must be a positive number, got ${bitrateBps}`, rung.dir);
  }
  return {
    width: size?.width ?? 0,
    height: size?.height ?? 0,
    bitrateBps,
    label: given.label ?? (size ? `${size.height}p` : rung.dir),
  };
}
