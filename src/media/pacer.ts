/**
 * Drift-free frame pacing on a monotonic clock.
 *
 * Tick `n` is due at `anchor + n / fps`: each deadline is computed from the start, never by
 * adding intervals, so rounding and timer lateness do not accumulate. If the process stalls
 * for longer than `maxLagMs` the pacer re-anchors instead of bursting out every missed frame.
 *
 * @module
 */

/** A monotonic clock with timers. {@link realClock} uses `performance.now()` and `setTimeout`. */
export interface PacerClock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Call `callback` after about `delayMs`; returns a handle for {@link PacerClock.clearTimer}. */
  setTimer(callback: () => void, delayMs: number): unknown;
  /** Cancel a timer. */
  clearTimer(handle: unknown): void;
}

/**
 * The process's monotonic clock: `performance.now()` and `setTimeout`.
 *
 * @example
 * ```ts
 * import { realClock } from "./pacer.ts";
 * const t0 = realClock.now();
 * ```
 */
export const realClock: PacerClock = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, Math.max(0, delayMs)),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** One tick of a {@link Pacer}. */
export interface PacerTick {
  /** Tick number since start, 0-based. */
  index: number;
  /** Media time of this tick in microseconds, on the clock's time base. Strictly increasing. */
  timestampUs: number;
  /** How late the tick fired, ms (0 when on time). */
  lateMs: number;
}

/** Options of {@link Pacer}. */
export interface PacerOptions {
  /** Ticks per second (> 0, ≤ 1000). */
  fps: number;
  /** Called at each tick. An exception goes to `onError` and ticking continues. */
  onTick: (tick: PacerTick) => void;
  /** Receives exceptions thrown by `onTick`. Default: `console.error`. */
  onError?: (error: unknown) => void;
  /** Clock and timers. Default {@link realClock}. */
  clock?: PacerClock;
  /**
   * When the pacer finds itself more than this far behind (process stalled, machine asleep), it
   * re-anchors: the next tick fires now and the missed ones are skipped. Smaller lateness is
   * caught up with quick successive ticks. Default 500 ms.
   */
  maxLagMs?: number;
  /** Told about each re-anchoring, with how far behind the pacer was. */
  onStall?: (lagMs: number) => void;
}

/**
 * Calls `onTick` at a fixed rate with drift-free deadlines and timestamps.
 *
 * @example
 * ```ts
 * import { Pacer } from "./pacer.ts";
 * const pacer = new Pacer({ fps: 25, onTick: (t) => console.log(t.index, t.timestampUs) });
 * pacer.start();
 * setTimeout(() => pacer.stop(), 200);
 * ```
 */
export class Pacer {
  readonly #fps: number;
  readonly #periodMs: number;
  readonly #clock: PacerClock;
  readonly #maxLagMs: number;
  readonly #onTick: (tick: PacerTick) => void;
  readonly #onStall?: (lagMs: number) => void;
  readonly #onError: (error: unknown) => void;
  #anchor = 0;
  /** Ticks before `#anchorIndex` were scheduled from an older anchor. */
  #anchorIndex = 0;
  #next = 0;
  #timer: unknown;
  #running = false;
  #stalls = 0;

  /** Validate `fps` (a `RangeError` outside (0, 1000]); ticking begins at {@link Pacer.start}. */
  constructor(options: PacerOptions) {
    if (!Number.isFinite(options.fps) || options.fps <= 0 || options.fps > 1000) {
      throw new RangeError(`fps must be a number in (0, 1000], got ${options.fps}`);
    }
    this.#fps = options.fps;
    this.#periodMs = 1000 / options.fps;
    this.#clock = options.clock ?? realClock;
    this.#maxLagMs = options.maxLagMs ?? 500;
    this.#onTick = options.onTick;
    this.#onStall = options.onStall;
    this.#onError = options.onError ?? ((e) => console.error("Pacer onTick failed:", e));
  }

  /** Ticks per second. */
  get fps(): number {
    return this.#fps;
  }

  /** Ticks delivered so far. */
  get ticks(): number {
    return this.#next;
  }

  /** Times the pacer re-anchored after a stall. */
  get stalls(): number {
    return this.#stalls;
  }

  /** Whether the pacer is running. */
  get running(): boolean {
    return this.#running;
  }

  /** Start ticking; the first tick fires at once. Throws if already running. */
  start(): void {
    if (this.#running) throw new Error("Pacer already started");
    this.#running = true;
    this.#anchor = this.#clock.now();
    this.#anchorIndex = this.#next;
    this.#run();
  }

  /** Stop ticking. `start()` may be called again later (timestamps continue to increase). */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #due(index: number): number {
    return this.#anchor + (index - this.#anchorIndex) * this.#periodMs;
  }

  #run = (): void => {
    this.#timer = undefined;
    if (!this.#running) return;
    let now = this.#clock.now();
    // Deliver every tick that is due; bounded so one call never loops forever.
    for (let guard = 0; guard < 1000 && this.#running; guard++) {
      let due = this.#due(this.#next);
      if (due > now) break;
      const lag = now - due;
      if (lag > this.#maxLagMs) {
        this.#stalls++;
        this.#anchor = now;
        this.#anchorIndex = this.#next;
        due = now;
        this.#onStall?.(lag);
      }
      const index = this.#next++;
      try {
        this.#onTick({ index, timestampUs: Math.round(due * 1000), lateMs: now - due });
      } catch (e) {
        this.#onError(e);
      }
      now = this.#clock.now();
    }
    if (!this.#running) return;
    this.#timer = this.#clock.setTimer(this.#run, Math.max(0, this.#due(this.#next) - now));
  };
}
