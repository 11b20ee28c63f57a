/**
 * Per-viewer gate: a viewer receives nothing until an IDR, and again after it asks for one.
 *
 * @module
 */
import type { EncodedFrame } from "./types.ts";

/** Options of {@link KeyframeGate}. */
export interface KeyframeGateOptions {
  /** Called when the gate closes (at creation and on each request): ask the source for an IDR. */
  onKeyframeNeeded?: () => void;
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
  #waiting = true;
  #dropped = 0;
  #passed = 0;
  #requests = 0;

  /** A closed gate: calls `onKeyframeNeeded` once right away. */
  constructor(options: KeyframeGateOptions = {}) {
    this.#onKeyframeNeeded = options.onKeyframeNeeded;
    this.#onKeyframeNeeded?.();
  }

  /** Whether the frame should be sent to this viewer. */
  pass(frame: EncodedFrame): boolean {
    if (this.#waiting) {
      if (!frame.keyframe) {
        this.#dropped++;
        return false;
      }
      this.#waiting = false;
    }
    this.#passed++;
    return true;
  }

  /** The viewer lost its picture (PLI/FIR): drop frames until the next keyframe. */
  requestKeyframe(): void {
    this.#requests++;
    if (this.#waiting) return; // already waiting: one request to the source is enough
    this.#waiting = true;
    this.#onKeyframeNeeded?.();
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
