/**
 * Per-viewer gate: a viewer receives nothing until an IDR, and again after it asks for one.
 *
 * @module
 */
import type { EncodedFrame } from "./types.ts";

/** Options of {@link KeyframeGate}. */
export interface KeyframeGateOptions {
  /**
   * Ask the source for an IDR: called at creation (a new viewer should not wait for the rest of
   * the group of pictures), and after a keyframe request (PLI/FIR) only when no IDR came within
   * {@link KeyframeGateOptions.patienceMs} — so one viewer's lost picture does not make the
   * source jump or add IDRs for everyone while a natural one is due.
   */
  onKeyframeNeeded?: () => void;
  /**
   * How long a viewer that asked for a keyframe waits for the source's next IDR before the
   * source is asked for one, ms (default 1000). 0: ask at once.
   */
  patienceMs?: number;
  /** Clock in ms (default `performance.now`). */
  now?: () => number;
  /**
   * Ask for an IDR when the gate is made (default true). False when the viewer's first frames
   * come from elsewhere (a cached GOP, {@link import("./gop_cache.ts").GopCache}).
   */
  askAtStart?: boolean;
}

/**
 * Drops frames until the next keyframe. A new gate is closed, so a new viewer starts at an IDR
 * (with its SPS/PPS) and decodes at once; {@link KeyframeGate.requestKeyframe} (on PLI/FIR)
 * closes it again. Frames that pass are unchanged.
 *
 * @example
 * ```ts
 * import { KeyframeGate } from "./keyframe_gate.ts";
 * const gate = new KeyframeGate();
 * const p = { data: new Uint8Array([0, 0, 0, 1, 0x41]), timestampUs: 0, keyframe: false };
 * const i = { data: new Uint8Array([0, 0, 0, 1, 0x65]), timestampUs: 40000, keyframe: true };
 * gate.pass(p); // false: waiting for an IDR
 * gate.pass(i); // true
 * gate.pass(p); // true
 * gate.requestKeyframe(); // viewer sent PLI
 * gate.pass(p); // false
 * ```
 */
export class KeyframeGate {
  readonly #onKeyframeNeeded?: () => void;
  readonly #patienceMs: number;
  readonly #now: () => number;
  /** When the viewer asked for a keyframe (undefined: not waiting on a request, or asked). */
  #requestedAt: number | undefined;
  #waiting = true;
  #dropped = 0;
  #passed = 0;
  #requests = 0;

  /** A closed gate: calls `onKeyframeNeeded` once right away. */
  constructor(options: KeyframeGateOptions = {}) {
    this.#onKeyframeNeeded = options.onKeyframeNeeded;
    this.#patienceMs = options.patienceMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
    if (options.askAtStart ?? true) this.#onKeyframeNeeded?.();
  }

  /** Whether the frame should be sent to this viewer. */
  pass(frame: EncodedFrame): boolean {
    if (this.#waiting) {
      if (!frame.keyframe) {
        this.#dropped++;
        if (
          this.#requestedAt !== undefined && this.#now() - this.#requestedAt >= this.#patienceMs
        ) {
          this.#requestedAt = undefined;
          this.#onKeyframeNeeded?.();
        }
        return false;
      }
      this.#waiting = false;
      this.#requestedAt = undefined;
    }
    this.#passed++;
    return true;
  }

  /**
   * The viewer lost its picture (PLI/FIR): drop frames until the next keyframe, and ask the
   * source for one if none comes within the patience.
   */
  requestKeyframe(): void {
    this.#requests++;
    if (this.#waiting) return; // already waiting: one request is enough
    this.#waiting = true;
    if (this.#patienceMs <= 0) this.#onKeyframeNeeded?.();
    else this.#requestedAt = this.#now();
  }

  /** Whether frames are being dropped until a keyframe. */
  get waiting(): boolean {
    return this.#waiting;
  }

  /** Frames dropped while waiting. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Frames let through. */
  get passed(): number {
    return this.#passed;
  }

  /** Keyframe requests received. */
  get requests(): number {
    return this.#requests;
  }
}
