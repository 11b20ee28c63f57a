/**
 * One viewer, in one record: its admission ticket, its peer session (once made), the rendition
 * it receives of a ladder, the keyframe gate its frames pass, the candidates waiting on either
 * side, and its counters. Only
 * {@link import("./viewers.ts").Viewers} creates and changes these records.
 *
 * @module
 */
import { KeyframeGate } from "../media/keyframe_gate.ts";
import type { GopCache } from "../media/gop_cache.ts";
import type { EncodedFrame, Rendition } from "../media/types.ts";
import {
  type FrameHints,
  type IceCandidateInit,
  type PeerConnectionState,
  type PeerSession,
  type PeerStats,
  zeroPeerStats,
} from "../peer/types.ts";
import {
  type AdaptationOptions,
  RenditionSelector,
  type RenditionSwitch,
} from "./rendition_selector.ts";

/**
 * Counters of one viewer.
 *
 * @example
 * ```ts
 * import type { ViewerStats } from "./viewer.ts";
 * const show = (s: ViewerStats) => `${s.viewerId} ${s.state} ${s.framesSent} frames`;
 * ```
 */
export interface ViewerStats extends PeerStats {
  /** The viewer's client id. */
  viewerId: string;
  /** When the offer arrived (ms since the epoch). */
  joinedAt: number;
  /** Frames held back while waiting for an IDR (at start and after PLI/FIR). */
  framesSkippedForKeyframe: number;
  /** Keyframe requests (PLI/FIR) from this viewer. */
  keyframeRequests: number;
  /** Frames of the current GOP sent at once when it joined (0: it waited for an IDR). */
  framesCaughtUp: number;
  /**
   * Its keyframe requests (PLI/FIR) answered from the cached GOP, at once, instead of waiting
   * for the source's next IDR.
   */
  keyframesFromCache: number;
  /** Whether the viewer holds a seat (it proved it is there with an ICE check). */
  seated: boolean;
  /** The rung of the source's ladder it receives (0: the top one); undefined without a ladder. */
  rendition?: number;
  /** That rung's label (`720p`). */
  renditionLabel?: string;
  /** Times it moved to another rung. */
  renditionSwitches: number;
}

/**
 * A viewer's share of a ladder source: the ladder, the policy, and who hears of its switches.
 *
 * @example
 * ```ts
 * import type { ViewerLadder } from "./viewer.ts";
 * const ladder: ViewerLadder = {
 *   renditions: [
 *     { width: 1280, height: 720, bitrateBps: 2_400_000, label: "720p" },
 *     { width: 640, height: 360, bitrateBps: 800_000, label: "360p" },
 *   ],
 *   onSwitch: (s) => console.log(s.from, "→", s.to, s.reason),
 * };
 * ```
 */
export interface ViewerLadder {
  /** The source's renditions, highest first (two or more). */
  renditions: readonly Rendition[];
  /** When to move between them. */
  adaptation?: AdaptationOptions;
  /** Told of each switch as it takes effect (at the IDR). */
  onSwitch?: (change: RenditionSwitch) => void;
}

/** Most remote candidates held for a session still being made. */
const MAX_HELD_REMOTE = 64;
/**
 * A joining viewer's catch-up (the current GOP) is handed to its session at
 * {@link CATCH_UP_FACTOR} × its estimate, at most this many bytes every {@link CATCH_UP_TICK_MS}
 * (≈ 64 Mbit/s): a whole GOP in one burst overflows socket buffers on the way (a TURN relay's
 * above all), and frames handed over long before the session's pacer can send them age in its
 * queue, which drops them all once the oldest waited a second (a 1 MB GOP at a 3 Mbit/s start
 * lost that race when the machine was busy). Twice the estimate keeps the pacer fed (and its
 * probes riding on the video, so the estimate rises) while the queue stays young. The first
 * frame (the IDR) always goes at once.
 */
const CATCH_UP_BYTES = 32 * 1024;
const CATCH_UP_TICK_MS = 4;
const CATCH_UP_FACTOR = 2;
/** A large frame holds the next back this many ticks at most (a frame every 40 ms or faster). */
const CATCH_UP_MAX_WAIT_TICKS = 10;
/** Frames of a catch-up are shown as soon as decoded (see {@link PeerSession.writeFrame}). */
const CATCH_UP_HINTS: FrameHints = { catchUp: true };
/** Frames queued behind a catch-up at most (live frames wait their turn meanwhile). */
const MAX_BACKLOG = 1000;
/**
 * A keyframe request is answered from the cached GOP only when sending it takes at most this
 * share of a second of the viewer's estimate (a GOP too large for its link would only delay
 * the live edge: it waits for the next IDR instead).
 */
const REPLAY_SECONDS = 0.5;
/** The estimate assumed for that before its session reported one (the core's start), bits/s. */
const REPLAY_DEFAULT_BPS = 3_000_000;

/**
 * A viewer's record.
 *
 * @example
 * ```ts
 * import { Viewer } from "./viewer.ts";
 * const v = new Viewer("viewer-1", 1);
 * console.log(v.stats().state); // "new"
 * ```
 */
export class Viewer {
  /** The viewer's client id. */
  readonly id: string;
  /** Its admission ticket. */
  readonly ticket: number;
  /** When its offer arrived (ms since the epoch). */
  readonly joinedAt: number = Date.now();
  /** Its session, once the factory made it. */
  session?: PeerSession;
  /** Connection state of the session. */
  state: PeerConnectionState = "new";
  /** Created when the session connects: the first frame it passes is an IDR. */
  gate?: KeyframeGate;
  /** Whether it holds a seat. */
  seated: boolean = false;
  /** Why it ended, once it did. */
  ended?: string;
  /** Our candidates, held until the answer is sent (undefined after that). */
  localHeld: IceCandidateInit[] | undefined = [];
  /** The viewer's candidates, held until its session exists. */
  readonly remoteHeld: IceCandidateInit[] = [];
  #skipped = 0;
  #caughtUp = 0;
  /** Frames waiting behind a catch-up, and the timer sending them. */
  #backlog: EncodedFrame[] = [];
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** Bytes the catch-up may still hand over (below zero after a large frame: it waits). */
  #credit = 0;
  #onFail: (error: unknown) => void = () => {};
  #keyframeRequests = 0;
  /** Timestamp of the last frame given to its session (undefined: none yet). */
  #lastWrittenUs: number | undefined;
  /** The IDR timestamp of the GOP last replayed to it (one replay per GOP at most). */
  #replayedGop: number | undefined;
  #replays = 0;
  /** Which rung it receives (undefined: the source has no ladder). */
  readonly #selector?: RenditionSelector;
  readonly #onSwitch?: (change: RenditionSwitch) => void;
  #estimateBps: number | undefined;
  /** Cancels the admission window. */
  admissionTimer?: ReturnType<typeof setTimeout>;

  /**
   * A viewer whose offer was admitted with `ticket`; with `ladder` (a source of two renditions
   * or more) it receives one rendition at a time, chosen by {@link RenditionSelector}.
   */
  constructor(id: string, ticket: number, ladder?: ViewerLadder) {
    this.id = id;
    this.ticket = ticket;
    if (ladder && ladder.renditions.length > 1) {
      this.#selector = new RenditionSelector(ladder.renditions, ladder.adaptation);
      this.#onSwitch = ladder.onSwitch;
    }
  }

  /** The rung of the ladder it receives (0 without a ladder): its catch-up comes from it. */
  get rendition(): number {
    return this.#selector?.current ?? 0;
  }

  /** Its session's latest bandwidth estimate, bits per second (undefined before the first). */
  get estimateBps(): number | undefined {
    return this.#estimateBps;
  }

  /** Its session's bandwidth estimate changed, bits per second. */
  estimate(bps: number): void {
    this.#estimateBps = bps;
    this.#selector?.estimate(bps);
  }

  /** Whether frames go to it: connected, not ended. */
  get receiving(): boolean {
    return this.gate !== undefined && this.ended === undefined;
  }

  /**
   * Start passing frames, from the next IDR on; with `catchUp` (the current GOP from its IDR, see
   * {@link import("../media/gop_cache.ts").GopCache}) from those, sent at once but paced
   * ({@link CATCH_UP_BYTES} per {@link CATCH_UP_TICK_MS} ms, live frames queued behind them),
   * and the source is not asked for an IDR. `onFail` is told when a paced write fails.
   */
  startReceiving(
    patienceMs: number,
    onKeyframeNeeded: () => void,
    catchUp: readonly EncodedFrame[] = [],
    onFail: (error: unknown) => void = () => {},
  ): void {
    if (this.gate) return;
    const fast = catchUp.length > 0 && catchUp[0].keyframe;
    this.gate = new KeyframeGate({ onKeyframeNeeded, patienceMs, askAtStart: !fast });
    if (fast) {
      this.#caughtUp = catchUp.length;
      this.#backlog = [...catchUp];
      this.#onFail = onFail;
      this.#credit = 0;
      this.#drain();
    }
  }

  /** Send queued frames up to the tick's budget; come back for the rest. */
  #drain(): void {
    this.#drainTimer = undefined;
    const bps = this.#estimateBps ?? REPLAY_DEFAULT_BPS;
    const perTick = Math.min(CATCH_UP_BYTES, (bps * CATCH_UP_FACTOR / 8) * CATCH_UP_TICK_MS / 1000);
    this.#credit = Math.min(this.#credit + perTick, CATCH_UP_BYTES);
    try {
      while (this.#backlog.length && this.#credit > 0 && this.ended === undefined) {
        const frame = this.#backlog.shift()!;
        this.#credit = Math.max(
          this.#credit - frame.data.length,
          -CATCH_UP_MAX_WAIT_TICKS * perTick,
        );
        this.#write(frame, true);
      }
    } catch (e) {
      this.#backlog = [];
      this.#onFail(e);
      return;
    }
    if (this.#backlog.length && this.ended === undefined) {
      this.#drainTimer = setTimeout(() => this.#drain(), CATCH_UP_TICK_MS);
    } else {
      this.#backlog = [];
    }
  }

  /** Stop sending (the viewer left): a catch-up still queued is dropped. */
  stop(): void {
    clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    this.#backlog = [];
  }

  /**
   * Answer its keyframe request (PLI/FIR) from `cache`, the current GOP of the rung it receives:
   * the GOP is sent again at once, paced as a catch-up, stamped between the last frame it got
   * and the next (see {@link import("../media/gop_cache.ts").GopCache.replay}), so its decoder
   * has a picture again without waiting for the source's next IDR, and nobody else is touched.
   * Refused (false: the caller falls back to {@link Viewer.keyframeRequested}) while a catch-up
   * is still being sent, when this GOP was already replayed to it (a second loss waits for the
   * next IDR), or when the GOP is too large for its estimate ({@link REPLAY_SECONDS}).
   */
  replayGop(cache: GopCache, onFail: (error: unknown) => void = () => {}): boolean {
    const gop = cache.keyframeTimestampUs;
    if (
      !this.session || !this.gate || this.ended !== undefined || this.#backlog.length > 0 ||
      this.#lastWrittenUs === undefined || gop === undefined || gop === this.#replayedGop ||
      cache.bytes * 8 > REPLAY_SECONDS * (this.#estimateBps ?? REPLAY_DEFAULT_BPS)
    ) {
      return false;
    }
    const frames = cache.replay(this.#lastWrittenUs);
    if (!frames[0]?.keyframe) return false;
    this.#replayedGop = gop;
    this.#replays++;
    this.#keyframeRequests++;
    this.#backlog = frames;
    this.#onFail = onFail;
    this.#credit = 0;
    this.#drain();
    return true;
  }

  /** Frames of the current GOP sent at once when it started receiving. */
  get caughtUp(): number {
    return this.#caughtUp;
  }

  /** Hold or hand over a remote candidate; false when the hold is full (it is dropped). */
  addRemoteCandidate(candidate: IceCandidateInit): boolean {
    if (this.session) {
      this.session.addRemoteCandidate(candidate);
      return true;
    }
    if (this.remoteHeld.length >= MAX_HELD_REMOTE) return false;
    this.remoteHeld.push(candidate);
    return true;
  }

  /**
   * The viewer asked for a keyframe (PLI/FIR), or its session dropped a send queue grown too
   * old: only its own frames wait for the next IDR (and on a ladder, at a marginal estimate, it
   * takes the rung below from there).
   */
  keyframeRequested(): void {
    this.#keyframeRequests++;
    this.#selector?.keyframeRequested();
    this.gate?.requestKeyframe();
  }

  /**
   * Give it its rendition's frame of one instant of a ladder source (see
   * {@link RenditionSelector.choose}), as {@link Viewer.writeFrame} would. Without a ladder, the
   * first frame.
   */
  writeInstant(frames: readonly EncodedFrame[]): void {
    if (!this.#selector) {
      if (frames.length) this.writeFrame(frames[0]);
      return;
    }
    const { frame, switched } = this.#selector.choose(frames);
    if (switched) this.#onSwitch?.(switched);
    if (frame) this.writeFrame(frame);
  }

  /** Give it a frame if its gate lets the frame through (after a catch-up still queued). */
  writeFrame(frame: EncodedFrame): void {
    if (this.#backlog.length) {
      if (this.#backlog.length < MAX_BACKLOG) this.#backlog.push(frame);
      else this.#skipped++;
      return;
    }
    this.#write(frame);
  }

  /** Pass a frame to the session (`catchUp`: sent from a catch-up's backlog). */
  #write(frame: EncodedFrame, catchUp = false): void {
    if (!this.session || !this.gate) return;
    if (!this.gate.pass(frame)) {
      this.#skipped++;
      return;
    }
    this.session.writeFrame(frame, catchUp ? CATCH_UP_HINTS : undefined);
    this.#lastWrittenUs = frame.timestampUs;
  }

  /** Its counters (the session's own, plus the viewer's). */
  stats(): ViewerStats {
    let base: PeerStats | undefined;
    try {
      base = this.session?.stats();
    } catch { /* a failed session reports what the record knows */ }
    return {
      ...zeroPeerStats(this.state),
      ...base,
      viewerId: this.id,
      joinedAt: this.joinedAt,
      framesSkippedForKeyframe: this.#skipped,
      keyframeRequests: this.#keyframeRequests,
      framesCaughtUp: this.#caughtUp,
      keyframesFromCache: this.#replays,
      seated: this.seated,
      estimateBps: base?.estimateBps ?? this.#estimateBps,
      rendition: this.#selector?.current,
      renditionLabel: this.#selector?.ladder[this.#selector.current].label,
      renditionSwitches: this.#selector?.switches ?? 0,
    };
  }
}
