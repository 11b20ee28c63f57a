/**
 * The frames of one instant of a ladder source, gathered so each viewer can pick its rung's.
 *
 * @module
 */
import type { EncodedFrame } from "../media/types.ts";

/**
 * Gathers a ladder source's frames into instants: the frames of every rung with the same
 * timestamp, which the source sends one after the other. An instant is handed on as soon as it
 * holds a frame of every rung, or when a frame of another instant (another timestamp, or a rung
 * it already holds) arrives, or at the end of the current task (a source that sent fewer rungs
 * this time). A viewer choosing from a whole instant can switch rungs at an IDR without having
 * been sent the other rung's frame of the same instant first.
 *
 * @example
 * ```ts
 * import { LadderInstants } from "./ladder_instants.ts";
 * const instants = new LadderInstants(2, (frames) => console.log(frames.length));
 * const f = (rendition: number) => ({ data: new Uint8Array(1), timestampUs: 0, keyframe: true, rendition });
 * instants.push(f(0));
 * instants.push(f(1)); // logs 2
 * ```
 */
export class LadderInstants {
  readonly #rungs: number;
  readonly #onInstant: (frames: EncodedFrame[]) => void;
  #frames: EncodedFrame[] = [];
  #flushQueued = false;

  /** Gather instants of `rungs` renditions; each complete one goes to `onInstant`. */
  constructor(rungs: number, onInstant: (frames: EncodedFrame[]) => void) {
    this.#rungs = rungs;
    this.#onInstant = onInstant;
  }

  /** Take the source's next frame. */
  push(frame: EncodedFrame): void {
    const held = this.#frames;
    const rung = frame.rendition ?? 0;
    if (
      held.length > 0 &&
      (held[0].timestampUs !== frame.timestampUs || held.some((f) => (f.rendition ?? 0) === rung))
    ) {
      this.flush();
    }
    this.#frames.push(frame);
    if (this.#frames.length >= this.#rungs) {
      this.flush();
      return;
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.flush();
      });
    }
  }

  /** Hand on the instant being gathered, however many rungs it holds. */
  flush(): void {
    if (this.#frames.length === 0) return;
    const frames = this.#frames;
    this.#frames = [];
    this.#onInstant(frames);
  }
}
