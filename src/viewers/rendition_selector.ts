/**
 * Which rendition of a ladder one viewer receives, from its bandwidth estimate: the policy, and
 * switches made only at an IDR of the rendition switched to.
 *
 * @module
 */
import type { EncodedFrame, Rendition } from "../media/types.ts";

/**
 * When a viewer moves between the rungs of a ladder. The defaults are the policy the master
 * runs; see {@link RenditionSelector}.
 *
 * @example
 * ```ts
 * import type { AdaptationOptions } from "./rendition_selector.ts";
 * const cautious: AdaptationOptions = { start: "lowest", upHoldMs: 8000 };
 * ```
 */
export interface AdaptationOptions {
  /** The rung a viewer starts on: `top` (default) or `lowest`. */
  start?: "top" | "lowest";
  /**
   * Go down when the estimate stays below the current rung's bitrate × this (default 1.1: the
   * rung plus 10 % for audio, RTP and SRTP overhead)…
   */
  downFactor?: number;
  /** …for this long, ms (default 500: one low reading does not move a viewer). */
  downHoldMs?: number;
  /**
   * Go up one rung when the estimate has stayed above the higher rung's bitrate × this (default
   * 1.25: a quarter of headroom, so a viewer that goes up does not come straight back down)…
   */
  upFactor?: number;
  /** …for this long, counted from the last switch at the earliest, ms (default 4000). */
  upHoldMs?: number;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
}

/**
 * Why a viewer moved: its estimate stayed low (`estimate-low`) or high (`estimate-high`), or it
 * asked for a keyframe while its estimate barely covered its rung (`congestion`: the session's
 * send queue overflowed and was dropped, or the viewer lost packets).
 *
 * @example
 * ```ts
 * import type { RenditionSwitchReason } from "./rendition_selector.ts";
 * const reason: RenditionSwitchReason = "estimate-low";
 * ```
 */
export type RenditionSwitchReason = "estimate-low" | "estimate-high" | "congestion";

/**
 * A switch that took effect: the frame chosen is the IDR of rung `to`.
 *
 * @example
 * ```ts
 * import type { RenditionSwitch } from "./rendition_selector.ts";
 * const s: RenditionSwitch = { from: 0, to: 1, reason: "estimate-low" };
 * ```
 */
export interface RenditionSwitch {
  /** The rung left. */
  from: number;
  /** The rung now received. */
  to: number;
  /** Why. */
  reason: RenditionSwitchReason;
}

/** Default policy numbers (see {@link AdaptationOptions}). */
export const ADAPTATION_DEFAULTS = {
  downFactor: 1.1,
  downHoldMs: 500,
  upFactor: 1.25,
  upHoldMs: 4000,
} as const;

/** The rung a frame belongs to (an untagged frame is the only, or top, one). */
function rungOf(frame: EncodedFrame): number {
  return frame.rendition ?? 0;
}

/**
 * One viewer's choice among the renditions of a ladder (highest first). It receives the frames
 * of one rung only, and moves to another only at an IDR of that rung: until one comes, frames of
 * the rung it is on keep going, so its decoder never gets a P-frame of a picture it has not
 * seen.
 *
 * The policy, with the defaults ({@link ADAPTATION_DEFAULTS}):
 * - down when the estimate has stayed below the current rung's bitrate × 1.1 for 0.5 s, to the
 *   highest rung it covers that way (the lowest when it covers none);
 * - down one rung at once when the viewer asks for a keyframe (PLI/FIR, or the session's send
 *   queue grew too old and was dropped) while its estimate is below the current rung's bitrate ×
 *   1.25: its picture is frozen until the next IDR anyway, so that IDR is a free switch point;
 * - up one rung when the estimate has stayed above that rung's bitrate × 1.25 for 4 s, counted
 *   from the last switch at the earliest;
 * - nothing without an estimate: the viewer stays on the rung it started on (the top one, or the
 *   lowest with `start: "lowest"`).
 *
 * Between 1.1 × a rung and 1.25 × the next one up nothing moves, so an estimate wavering around
 * either threshold switches once at most; with the samples (720p 2.4 Mb/s, 360p 0.8 Mb/s) a
 * viewer goes down below 2.64 Mb/s and back up above 3 Mb/s. A pending switch is dropped if the
 * estimate recovers before the IDR comes.
 *
 * @example
 * ```ts
 * import { RenditionSelector } from "./rendition_selector.ts";
 * const ladder = [
 *   { width: 1280, height: 720, bitrateBps: 2_400_000, label: "720p" },
 *   { width: 640, height: 360, bitrateBps: 800_000, label: "360p" },
 * ];
 * let now = 0;
 * const selector = new RenditionSelector(ladder, { now: () => now });
 * selector.estimate(1_000_000);
 * now = 600;
 * const frame = (rendition: number, keyframe: boolean) =>
 *   ({ data: new Uint8Array(1), timestampUs: now * 1000, keyframe, rendition });
 * selector.choose([frame(0, false), frame(1, false)]).frame?.rendition; // 0: no 360p IDR yet
 * selector.choose([frame(0, true), frame(1, true)]).switched; // { from: 0, to: 1, reason: "estimate-low" }
 * ```
 */
export class RenditionSelector {
  /** The ladder, highest first. */
  readonly ladder: readonly Rendition[];
  readonly #downFactor: number;
  readonly #downHoldMs: number;
  readonly #upFactor: number;
  readonly #upHoldMs: number;
  readonly #now: () => number;
  #current: number;
  #target: number;
  #reason: RenditionSwitchReason = "estimate-low";
  #estimate: number | undefined;
  /** Since when the estimate has been below the current rung's down threshold. */
  #belowSince: number | undefined;
  /** Since when it has been above the next rung up's threshold. */
  #aboveSince: number | undefined;
  /** A keyframe request at a marginal estimate: go down at the next IDR below. */
  #congested = false;
  #switches = 0;

  /** A viewer on its starting rung; `ladder` highest first. */
  constructor(ladder: readonly Rendition[], options: AdaptationOptions = {}) {
    this.ladder = ladder;
    this.#downFactor = options.downFactor ?? ADAPTATION_DEFAULTS.downFactor;
    this.#downHoldMs = options.downHoldMs ?? ADAPTATION_DEFAULTS.downHoldMs;
    this.#upFactor = options.upFactor ?? ADAPTATION_DEFAULTS.upFactor;
    this.#upHoldMs = options.upHoldMs ?? ADAPTATION_DEFAULTS.upHoldMs;
    this.#now = options.now ?? (() => performance.now());
    this.#current = options.start === "lowest" ? Math.max(0, ladder.length - 1) : 0;
    this.#target = this.#current;
  }

  /** The rung whose frames the viewer receives. */
  get current(): number {
    return this.#current;
  }

  /** The rung it will move to at that rung's next IDR (`current` when none is pending). */
  get target(): number {
    return this.#target;
  }

  /** Switches made. */
  get switches(): number {
    return this.#switches;
  }

  /** The latest estimate, bits per second (undefined before the first). */
  get estimateBps(): number | undefined {
    return this.#estimate;
  }

  /** The viewer's bandwidth estimate changed, bits per second. */
  estimate(bps: number): void {
    if (!Number.isFinite(bps) || bps < 0) return;
    this.#estimate = bps;
    this.#evaluate(this.#now());
  }

  /**
   * The viewer needs a keyframe (PLI/FIR, or its session dropped a send queue grown too old):
   * below 1.25 × its rung's bitrate it goes down one rung at the next IDR there.
   */
  keyframeRequested(): void {
    const est = this.#estimate;
    if (est === undefined || this.#current >= this.ladder.length - 1) return;
    if (est >= this.ladder[this.#current].bitrateBps * this.#upFactor) return;
    this.#congested = true;
    this.#evaluate(this.#now());
  }

  /**
   * Of the frames of one instant (one per rung, as a ladder source sends them), the one this
   * viewer gets: the target rung's when it is an IDR (the switch, reported in `switched`), else
   * the current rung's (none when the instant lacks it).
   */
  choose(frames: readonly EncodedFrame[]): { frame?: EncodedFrame; switched?: RenditionSwitch } {
    this.#evaluate(this.#now());
    if (this.#target !== this.#current) {
      const idr = frames.find((f) => f.keyframe && rungOf(f) === this.#target);
      if (idr) {
        const switched = { from: this.#current, to: this.#target, reason: this.#reason };
        this.#current = this.#target;
        this.#switches++;
        this.#congested = false;
        this.#belowSince = this.#aboveSince = undefined;
        this.#evaluate(this.#now()); // the holds start over from the switch
        return { frame: idr, switched };
      }
    }
    return { frame: frames.find((f) => rungOf(f) === this.#current) };
  }

  #evaluate(now: number): void {
    const est = this.#estimate;
    const last = this.ladder.length - 1;
    if (est === undefined || last < 1) return;
    const current = this.#current;
    const down = est < this.ladder[current].bitrateBps * this.#downFactor && current < last;
    this.#belowSince = down ? this.#belowSince ?? now : undefined;
    const up = current > 0 && est > this.ladder[current - 1].bitrateBps * this.#upFactor;
    this.#aboveSince = up ? this.#aboveSince ?? now : undefined;
    if (this.#congested) {
      this.#target = Math.max(current + 1, this.#fitting(est));
      this.#reason = "congestion";
    } else if (this.#belowSince !== undefined && now - this.#belowSince >= this.#downHoldMs) {
      this.#target = this.#fitting(est);
      this.#reason = "estimate-low";
    } else if (this.#aboveSince !== undefined && now - this.#aboveSince >= this.#upHoldMs) {
      this.#target = current - 1;
      this.#reason = "estimate-high";
    } else {
      this.#target = current;
    }
  }

  /** The highest rung below the current one the estimate covers (× downFactor), else the lowest. */
  #fitting(est: number): number {
    for (let r = this.#current + 1; r < this.ladder.length; r++) {
      if (est >= this.ladder[r].bitrateBps * this.#downFactor) return r;
    }
    return this.ladder.length - 1;
  }
}
