/**
 * One viewer, in one record: its admission ticket, its peer session (once made), the keyframe
 * gate its frames pass, the candidates waiting on either side, and its counters. Only
 * {@link import("./viewers.ts").Viewers} creates and changes these records.
 *
 * @module
 */
import { KeyframeGate } from "../media/keyframe_gate.ts";
import type { EncodedFrame } from "../media/types.ts";
import {
  type IceCandidateInit,
  type PeerConnectionState,
  type PeerSession,
  type PeerStats,
  zeroPeerStats,
} from "../peer/types.ts";

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
  /** Whether the viewer holds a seat (it proved it is there with an ICE check). */
  seated: boolean;
}

/** Most remote candidates held for a session still being made. */
const MAX_HELD_REMOTE = 64;

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
  #keyframeRequests = 0;
  /** Cancels the admission window. */
  admissionTimer?: ReturnType<typeof setTimeout>;

  /** A viewer whose offer was admitted with `ticket`. */
  constructor(id: string, ticket: number) {
    this.id = id;
    this.ticket = ticket;
  }

  /** Whether frames go to it: connected, not ended. */
  get receiving(): boolean {
    return this.gate !== undefined && this.ended === undefined;
  }

  /**
   * Start passing frames, from the next IDR on; with `catchUp` (the current GOP from its IDR, see
   * {@link import("../media/gop_cache.ts").GopCache}) from those at once, and the source is not
   * asked for an IDR.
   */
  startReceiving(
    patienceMs: number,
    onKeyframeNeeded: () => void,
    catchUp: readonly EncodedFrame[] = [],
  ): void {
    if (this.gate) return;
    const fast = catchUp.length > 0 && catchUp[0].keyframe;
    this.gate = new KeyframeGate({ onKeyframeNeeded, patienceMs, askAtStart: !fast });
    if (fast) {
      for (const frame of catchUp) this.writeFrame(frame);
      this.#caughtUp = catchUp.length;
    }
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

  /** The viewer asked for a keyframe (PLI/FIR): only its own frames wait for the next IDR. */
  keyframeRequested(): void {
    this.#keyframeRequests++;
    this.gate?.requestKeyframe();
  }

  /** Give it a frame if its gate lets the frame through. */
  writeFrame(frame: EncodedFrame): void {
    if (!this.session || !this.gate) return;
    if (!this.gate.pass(frame)) {
      this.#skipped++;
      return;
    }
    this.session.writeFrame(frame);
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
      seated: this.seated,
    };
  }
}
