/**
 * A simulated monotonic clock for pacing tests: time only moves when the test says so, and
 * timers fire in deadline order (ties in the order they were set, as `setTimeout` does).
 *
 * @example
 * ```ts
 * import { SimClock } from "./sim_clock.ts";
 * const clock = new SimClock();
 * clock.setTimer(() => console.log("at", clock.now()), 40);
 * clock.advance(100);
 * ```
 *
 * @module
 */
import type { PacerClock } from "../../src/media/pacer.ts";

/** A {@link PacerClock} driven by the test. */
export class SimClock implements PacerClock {
  #t: number;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; seq: number; cb: () => void }>();

  /** Start at `t` ms (default an arbitrary uptime, so nothing relies on 0). */
  constructor(t = 98_765.4321) {
    this.#t = t;
  }

  /** Pending timers. */
  get pending(): number {
    return this.#timers.size;
  }

  now = (): number => this.#t;

  setTimer = (cb: () => void, delayMs: number): unknown => {
    const seq = ++this.#seq;
    this.#timers.set(seq, { at: this.#t + Math.max(0, delayMs), seq, cb });
    return seq;
  };

  clearTimer = (handle: unknown): void => {
    this.#timers.delete(handle as number);
  };

  /**
   * Move time forward by `ms`, firing each timer due on the way; each fires `lateness()` ms
   * after its deadline (a busy event loop).
   */
  advance(ms: number, lateness: () => number = () => 0): void {
    const end = this.#t + ms;
    for (;;) {
      let next: { at: number; seq: number; cb: () => void } | undefined;
      for (const t of this.#timers.values()) {
        if (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq)) next = t;
      }
      if (!next || next.at > end) break;
      this.#timers.delete(next.seq);
      this.#t = Math.max(this.#t, next.at + lateness());
      next.cb();
    }
    this.#t = Math.max(this.#t, end);
  }

  /** Jump forward by `ms` without firing anything (a stalled process), then fire what is due. */
  stall(ms: number): void {
    this.#t += ms;
    this.advance(0);
  }
}
