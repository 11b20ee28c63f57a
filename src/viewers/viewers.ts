/**
 * The master's viewers: the one owner of every {@link Viewer} record. It answers offers with
 * peer sessions (answer and local candidates through signaling, the viewer's candidates handed
 * on in order, including those that came before the offer), decides seats with
 * {@link Admission} (seats only for viewers that proved they are there, a short admission
 * window before that, per-client budgets of offers and candidates), and fans frames out, each
 * viewer starting at an IDR. With a ladder source each viewer receives one rendition, chosen from
 * its bandwidth estimate ({@link import("./rendition_selector.ts").RenditionSelector}).
 *
 * What a refused viewer sees: an answer whose every media section is rejected (port 0) and whose
 * `i=` line says why (`i=refused: the master already serves 10 viewers`) — the viewer page shows
 * that line; other browsers' code sees a peer connection with no media at once, instead of an
 * ICE timeout. Offers over a client's budget get no reply.
 *
 * @module
 */
import { type Logger, NoticeLimiter, silentLogger } from "../log.ts";
import type { AudioPacket } from "../media/audio_types.ts";
import type { EncodedFrame, Rendition } from "../media/types.ts";
import { DataChannelError, OfferRejectedError } from "../peer/errors.ts";
import { refusalAnswer } from "../peer/sdp.ts";
import type {
  IceCandidateInit,
  KeyframeRequestCause,
  PeerConnectionState,
  PeerSession,
  PeerSessionFactory,
} from "../peer/types.ts";
import { GopCache } from "../media/gop_cache.ts";
import { Admission } from "./admission.ts";
import { EarlyCandidates } from "./early_candidates.ts";
import { OfferError } from "./errors.ts";
import { Viewer, type ViewerLadder, type ViewerStats } from "./viewer.ts";
import { LadderInstants } from "./ladder_instants.ts";
import type { AdaptationOptions } from "./rendition_selector.ts";
import type { ViewersEventMap, ViewerSignaling, ViewersOptions } from "./types.ts";

export type { ViewersEventMap, ViewerSignaling, ViewersOptions };

/** Repeated notices (refusals, dropped offers) are logged once per this many ms, with a count. */
const NOTICE_INTERVAL_MS = 5000;

/**
 * Every viewer of a master.
 *
 * @example
 * ```ts
 * import { Viewers } from "./viewers.ts";
 * import type { SignalingClient } from "../signaling/client.ts";
 * import type { PeerSessionFactory } from "../peer/types.ts";
 * declare const signaling: SignalingClient;
 * declare const factory: PeerSessionFactory;
 * const viewers = new Viewers({ signaling, factory });
 * viewers.on("left", ({ viewerId, reason }) => console.log(viewerId, reason));
 * // for each frame of the source: viewers.writeFrame(frame)
 * viewers.close("shutting down");
 * ```
 */
export class Viewers {
  readonly #signaling: ViewerSignaling;
  readonly #factory: PeerSessionFactory;
  readonly #log: Logger;
  readonly #admission: Admission;
  readonly #patienceMs: number;
  readonly #streamProfile: () => string | undefined;
  readonly #reclaimSilentMs: number;
  readonly #sendAudio: boolean;
  readonly #receiveAudio: boolean;
  readonly #dataChannels: boolean;
  /**
   * Fast start: the current GOP of the rung viewers start on, for viewers who join mid-GOP
   * (undefined: fast start off). A ladder's other rungs are not kept: no catch-up comes from them.
   */
  readonly #gop: GopCache | undefined;
  /** The rung every viewer starts on (0 without a ladder). */
  readonly #startRung: number = 0;
  /** The source's ladder (two rungs or more), and its frames gathered by instant. */
  readonly #ladder: readonly Rendition[] | undefined;
  readonly #adaptation: AdaptationOptions | undefined;
  readonly #instants: LadderInstants | undefined;
  readonly #viewers = new Map<string, Viewer>();
  /** Candidates of client ids that have not offered (yet). */
  readonly #early: EarlyCandidates;
  readonly #off: (() => void)[] = [];
  readonly #listeners = new Map<string, Set<(d: unknown) => void>>();
  readonly #notices: NoticeLimiter;
  #receiving = false;
  #closed = false;

  /** Start answering offers. */
  constructor(options: ViewersOptions) {
    this.#signaling = options.signaling;
    this.#factory = options.factory;
    this.#log = options.logger ?? silentLogger;
    this.#admission = new Admission({ ...options.admission, seats: options.maxViewers ?? 10 });
    this.#patienceMs = options.keyframePatienceMs ?? 1000;
    this.#streamProfile = options.streamProfileLevelId ?? (() => undefined);
    this.#reclaimSilentMs = options.admission?.reclaimSilentMs ?? 4000;
    this.#sendAudio = options.sendAudio ?? false;
    this.#receiveAudio = options.receiveAudio ?? true;
    this.#dataChannels = options.dataChannels ?? true;
    this.#gop = options.fastStart ?? true ? new GopCache() : undefined;
    const ladder = options.renditions;
    if (ladder && ladder.length > 1) {
      this.#ladder = ladder;
      this.#adaptation = options.adaptation;
      this.#startRung = options.adaptation?.start === "lowest" ? ladder.length - 1 : 0;
      this.#instants = new LadderInstants(ladder.length, (frames) => this.#fanOut(frames));
    }
    this.#early = new EarlyCandidates(
      options.maxEarlyCandidates ?? 64,
      options.maxEarlyViewers ?? 32,
    );
    this.#notices = new NoticeLimiter(this.#log, NOTICE_INTERVAL_MS);
    this.#off.push(
      this.#signaling.on("offer", ({ viewerId, sdp }) => this.#onOffer(viewerId, sdp)),
      this.#signaling.on("candidate", ({ viewerId, candidate }) => {
        this.#onCandidate(viewerId, candidate);
      }),
    );
  }

  /** Client ids with a session (or one being made), seated or still proving themselves. */
  get ids(): string[] {
    return [...this.#viewers.keys()];
  }

  /** Viewers holding a seat, and offers waiting for their viewer's first ICE check. */
  get seats(): { seated: number; pending: number } {
    return { seated: this.#admission.seated, pending: this.#admission.pending };
  }

  /** Whether some viewer receives frames. */
  get receiving(): boolean {
    return this.#receiving;
  }

  /** Counters of every current viewer. */
  stats(): ViewerStats[] {
    return [...this.#viewers.values()].map((v) => v.stats());
  }

  /** Subscribe to an event; returns an unsubscribe function. */
  on<K extends keyof ViewersEventMap>(
    type: K,
    listener: (detail: ViewersEventMap[K]) => void,
  ): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, set = new Set());
    set.add(listener as (d: unknown) => void);
    return () => set.delete(listener as (d: unknown) => void);
  }

  /**
   * Send a message to one viewer on its data channel `channel` (an id or a label; default: the
   * first one open, which is the viewer's own `kvsDataChannel` with the KVS SDKs). Throws
   * {@link DataChannelError} naming why it cannot (no such viewer or channel, too large, too
   * much waiting).
   */
  send(viewerId: string, data: string | Uint8Array, channel?: number | string): void {
    const session = this.#viewers.get(viewerId)?.session;
    const open = session?.dataChannels?.() ?? [];
    const target = channel === undefined
      ? open[0]
      : open.find((c) => c.id === channel || c.label === channel);
    if (!session?.sendData || !target) {
      throw new DataChannelError(
        !session
          ? `no viewer ${viewerId}`
          : `viewer ${viewerId} has no open data channel${
            channel === undefined ? "" : ` ${channel}`
          }`,
      );
    }
    session.sendData(target.id, data);
  }

  /**
   * Send a message to every viewer with an open data channel (`channel`: an id or label, as
   * {@link Viewers.send} takes). Returns how many viewers it went to; one viewer's refusal
   * (its queue full) is emitted as an error and does not stop the others.
   */
  broadcast(data: string | Uint8Array, channel?: number | string): number {
    let sent = 0;
    for (const v of this.#viewers.values()) {
      if (!v.session?.dataChannels?.().length) continue;
      try {
        this.send(v.id, data, channel);
        sent++;
      } catch (cause) {
        const error = new OfferError(v.id, `Message to ${v.id} not sent: ${errText(cause)}`, {
          cause,
        });
        this.#emit("error", { error, viewerId: v.id });
      }
    }
    return sent;
  }

  /** Give an Opus packet to every viewer that receives (audio needs no keyframe). */
  writeAudio(frame: AudioPacket): void {
    for (const v of this.#viewers.values()) {
      if (!v.receiving) continue;
      try {
        v.session?.writeAudio?.(frame);
      } catch (cause) {
        const error = new OfferError(
          v.id,
          `Sending audio to ${v.id} failed: ${errText(cause)}`,
          { cause },
        );
        this.#emit("error", { error, viewerId: v.id });
        this.#end(v, "audio write failed");
      }
    }
  }

  /**
   * Give a frame to every viewer that receives (each from an IDR on). A ladder source's frames
   * are gathered by instant first, and each viewer gets its own rendition's.
   */
  writeFrame(frame: EncodedFrame): void {
    if (this.#gop && (this.#ladder ? frame.rendition ?? 0 : 0) === this.#startRung) {
      this.#gop.push(frame);
    }
    if (this.#instants) {
      this.#instants.push(frame);
      return;
    }
    for (const v of this.#viewers.values()) {
      if (!v.receiving) continue;
      try {
        v.writeFrame(frame);
      } catch (cause) {
        this.#frameFailed(v, cause);
      }
    }
  }

  /** One instant of a ladder source: each viewer takes its rendition's frame. */
  #fanOut(frames: readonly EncodedFrame[]): void {
    for (const v of this.#viewers.values()) {
      if (!v.receiving) continue;
      try {
        v.writeInstant(frames);
      } catch (cause) {
        this.#frameFailed(v, cause);
      }
    }
  }

  /**
   * The lowest bandwidth estimate among the viewers receiving video, bits per second (undefined
   * when none has one).
   */
  lowestEstimate(): number | undefined {
    let lowest: number | undefined;
    for (const v of this.#viewers.values()) {
      if (!v.receiving) continue;
      const bps = v.estimateBps;
      if (bps !== undefined && (lowest === undefined || bps < lowest)) lowest = bps;
    }
    return lowest;
  }

  /** A frame could not go to `v`: its session ends, the others go on. */
  #frameFailed(v: Viewer, cause: unknown): void {
    const error = new OfferError(v.id, `Sending a frame to ${v.id} failed: ${errText(cause)}`, {
      cause,
    });
    this.#emit("error", { error, viewerId: v.id });
    this.#end(v, "frame write failed");
  }

  /** Stop answering and close every session. */
  close(reason = "master shutting down"): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#off) off();
    for (const v of [...this.#viewers.values()]) this.#end(v, reason);
    this.#early.clear();
  }

  #onCandidate(viewerId: string, candidate: IceCandidateInit): void {
    if (this.#closed) return;
    if (!this.#admission.candidate(viewerId, performance.now())) {
      this.#notice("candidates", `Candidates from ${viewerId} over its budget dropped`);
      return;
    }
    const v = this.#viewers.get(viewerId);
    if (v) {
      if (!v.addRemoteCandidate(candidate)) {
        this.#notice("held", `Candidates of ${viewerId} held for its session: hold full`);
      }
      return;
    }
    // Before the offer (signaling does not keep the order of the two): held for it.
    const gaveWay = this.#early.hold(viewerId, candidate);
    if (gaveWay?.dropped === "viewer") {
      this.#notice(
        "early",
        `Too many viewers with early candidates: dropped ${gaveWay.viewerId}'s`,
      );
    } else if (gaveWay?.dropped === "full") {
      this.#notice("early-full", `Early candidate queue of ${viewerId} full: dropping a candidate`);
    }
  }

  #onOffer(viewerId: string, sdp: string): void {
    if (this.#closed) return;
    const now = performance.now();
    this.#reclaimSilentSeat(viewerId);
    const decision = this.#admission.offer(viewerId, now);
    if (decision.kind === "drop") {
      this.#notice("drop", `Offer from ${viewerId} dropped: ${decision.reason}`);
      return;
    }
    const previous = this.#viewers.get(viewerId);
    if (previous) {
      this.#log.info(`Viewer ${viewerId} sent a new offer: replacing its session`);
      this.#end(previous, "replaced by a new offer");
    }
    const early = this.#early.take(viewerId);
    if (decision.kind === "refuse") {
      this.#refuse(viewerId, sdp, decision.reason);
      this.#fail(
        new OfferError(viewerId, `Offer from ${viewerId} refused: ${decision.reason}`),
        "refuse",
      );
      return;
    }
    if (decision.displaced) {
      const d = this.#viewers.get(decision.displaced);
      if (d) this.#end(d, "gave way to newer offers before its first ICE check (queue full)");
    }
    const v = new Viewer(viewerId, decision.ticket, this.#viewerLadder(viewerId));
    for (const c of early) v.addRemoteCandidate(c);
    this.#viewers.set(viewerId, v);
    // The admission window: still unproven at its end, the offer's place is released.
    v.admissionTimer = setTimeout(() => {
      if (this.#admission.expire(viewerId, v.ticket, performance.now())) {
        const s = this.#admission.admissionWindowMs / 1000;
        this.#end(v, `no ICE check within ${s} s of the offer: its place is released`);
      }
    }, decision.deadline - now + 1);
    this.#start(v, sdp).catch((e) => this.#log.error(`Viewer ${viewerId}: ${errText(e)}`));
  }

  /** A new viewer's share of the ladder (undefined without one): its switches become events. */
  #viewerLadder(viewerId: string): ViewerLadder | undefined {
    const ladder = this.#ladder;
    if (!ladder) return undefined;
    return {
      renditions: ladder,
      adaptation: this.#adaptation,
      onSwitch: ({ from, to, reason }) => {
        const label = ladder[to].label;
        this.#log.info(
          `Viewer ${viewerId}: ${ladder[from].label} → ${label} (${reason})`,
        );
        this.#emit("rendition", { viewerId, rendition: to, label, previous: from, reason });
      },
    };
  }

  async #start(v: Viewer, sdp: string): Promise<void> {
    const viewerId = v.id;
    const began = performance.now();
    let session: PeerSession;
    try {
      session = await this.#factory.create({
        viewerId,
        iceServers: this.#signaling.iceServers(),
        logger: this.#log.child(`peer:${viewerId}`),
        streamProfileLevelId: this.#streamProfile(),
        sendAudio: this.#sendAudio,
        receiveAudio: this.#receiveAudio,
        dataChannels: this.#dataChannels,
        callbacks: {
          onDataChannel: (channel) => {
            if (v.ended === undefined) this.#emit("dataChannel", { viewerId, channel });
          },
          onDataMessage: (channel, data) => {
            if (v.ended === undefined) this.#emit("message", { viewerId, channel, data });
          },
          onDataChannelClose: (channel) => this.#emit("dataChannelClosed", { viewerId, channel }),
          onAudio: (packet) => {
            if (v.ended === undefined) this.#emit("audio", { viewerId, packet });
          },
          onLocalCandidate: (c) => {
            if (v.ended !== undefined) return;
            // A viewer cannot add candidates before our answer: hold them until it is sent.
            if (v.localHeld) v.localHeld.push(c);
            else this.#trySend(viewerId, () => this.#signaling.sendCandidate(viewerId, c));
          },
          onVerified: () => this.#verified(v),
          onStateChange: (state) => this.#onState(v, state),
          onKeyframeRequest: (cause) => this.#keyframeRequested(v, cause),
          onEstimate: (bps) => {
            if (v.ended !== undefined) return;
            v.estimate(bps);
            this.#emit("estimate", { viewerId, bps });
          },
          onClosed: (reason) => this.#end(v, reason),
        },
      });
    } catch (cause) {
      this.#end(v, "session creation failed");
      this.#fail(
        new OfferError(viewerId, `Session for ${viewerId} not created: ${errText(cause)}`, {
          cause,
        }),
      );
      return;
    }
    if (v.ended !== undefined) {
      session.close(v.ended);
      return;
    }
    v.session = session;
    for (const c of v.remoteHeld.splice(0)) this.#guard(v, () => session.addRemoteCandidate(c));
    this.#emit("joined", { viewerId });
    const made = performance.now();
    try {
      const answer = await session.acceptOffer(sdp);
      if (v.ended !== undefined) return;
      this.#trySend(viewerId, () => this.#signaling.sendAnswer(viewerId, answer));
      const now = performance.now();
      this.#log.debug(
        `Answered ${viewerId} in ${(now - began).toFixed(1)} ms (session made in ${
          (made - began).toFixed(1)
        } ms, offer applied in ${(now - made).toFixed(1)} ms)`,
      );
      this.#admission.answered(viewerId, v.ticket, performance.now());
      const held = v.localHeld ?? [];
      v.localHeld = undefined;
      for (const c of held) {
        this.#trySend(viewerId, () => this.#signaling.sendCandidate(viewerId, c));
      }
    } catch (cause) {
      const endedBefore = v.ended;
      this.#end(v, "offer rejected");
      if (endedBefore !== undefined) {
        // Ended while its answer was being made (given way in the queue, master closing): say
        // why, unless the same client's newer offer took its place (that one gets the answer).
        if (!this.#viewers.has(viewerId)) this.#refuse(viewerId, sdp, endedBefore);
        return;
      }
      if (cause instanceof OfferRejectedError) this.#refuse(viewerId, sdp, cause.message);
      // A bad offer is the viewer's doing (and anyone's to repeat): summarized, not one ERROR each.
      this.#fail(
        new OfferError(viewerId, `Offer from ${viewerId} not answered: ${errText(cause)}`, {
          cause,
        }),
        cause instanceof OfferRejectedError ? "rejected" : undefined,
      );
    }
  }

  /**
   * Every seat taken and a new client offering: the seated viewer silent the longest, if it has
   * been silent for `reclaimSilentMs`, is ended so its seat can serve the newcomer (a viewer that
   * vanished without a DTLS close_notify would otherwise hold it until the silence timeout).
   */
  #reclaimSilentSeat(viewerId: string): void {
    const { seated } = this.#admission;
    if (seated < this.#admission.seats || this.#viewers.get(viewerId)?.seated) return;
    let stalest: { v: Viewer; silent: number } | undefined;
    for (const v of this.#viewers.values()) {
      if (!v.seated) continue;
      const silent = v.stats().silentForMs ?? 0;
      if (silent >= this.#reclaimSilentMs && silent > (stalest?.silent ?? -1)) {
        stalest = { v, silent };
      }
    }
    if (!stalest) return;
    const s = (stalest.silent / 1000).toFixed(1);
    this.#end(stalest.v, `silent for ${s} s: its seat went to a new viewer`);
  }

  /**
   * A viewer asked for a keyframe. Its PLI/FIR is answered from the cached GOP when it receives
   * the rung the cache holds and the GOP suits its estimate ({@link Viewer.replayGop}); else, and
   * on congestion (its session dropped video it could not carry), its frames wait for the next
   * IDR, the source asked for one only if none comes in time.
   */
  #keyframeRequested(v: Viewer, cause: KeyframeRequestCause | undefined): void {
    if (v.ended !== undefined) return;
    const gop = this.#gop;
    if (
      cause === "viewer" && gop && v.rendition === this.#startRung &&
      v.replayGop(gop, (e) => this.#frameFailed(v, e))
    ) {
      return;
    }
    v.keyframeRequested();
  }

  /** The viewer proved it is there: seat it, or end it when every seat was taken meanwhile. */
  #verified(v: Viewer): void {
    if (v.ended !== undefined || v.seated) return;
    clearTimeout(v.admissionTimer);
    if (this.#admission.verified(v.id, v.ticket, performance.now())) v.seated = true;
    else this.#end(v, "every seat was taken before it proved itself");
  }

  #onState(v: Viewer, state: PeerConnectionState): void {
    if (v.ended !== undefined || v.state === state) return;
    v.state = state;
    this.#log.info(`Viewer ${v.id}: ${state}`);
    if (state === "connected") {
      // Sessions that cannot report the ICE check itself prove the viewer by connecting.
      this.#verified(v);
      if (v.ended !== undefined) return;
      v.startReceiving(
        this.#patienceMs,
        () => this.#emit("keyframe", {}),
        v.rendition === this.#startRung ? this.#gop?.catchUp() ?? [] : [],
        (cause) => this.#frameFailed(v, cause),
      );
      this.#updateReceiving();
    }
    this.#emit("state", { viewerId: v.id, state });
    if (state === "failed" || state === "closed") this.#end(v, `ICE ${state}`);
  }

  /** End a viewer once: its seat or place is free, its session closed, `left` emitted. */
  #end(v: Viewer, reason: string): void {
    if (v.ended !== undefined) return;
    v.ended = reason;
    clearTimeout(v.admissionTimer);
    v.stop();
    this.#admission.leave(v.id, v.ticket);
    if (this.#viewers.get(v.id) === v) this.#viewers.delete(v.id);
    const stats = v.stats();
    this.#guard(v, () => v.session?.close(reason));
    this.#updateReceiving();
    if (!v.session) return; // no session: it never joined
    this.#log.info(`Viewer ${v.id} left: ${reason}`, {
      framesSent: stats.framesSent,
      bytesSent: stats.bytesSent,
      pacerDropped: stats.pacerDropped,
      keyframesFromCache: stats.keyframesFromCache,
      estimateBps: stats.estimateBps,
    });
    this.#emit("left", { viewerId: v.id, reason, stats });
  }

  #updateReceiving(): void {
    let receiving = false;
    for (const v of this.#viewers.values()) receiving ||= v.receiving;
    if (receiving === this.#receiving) return;
    this.#receiving = receiving;
    this.#emit("receiving", { receiving });
  }

  /** Answer an offer we will not serve with every media section rejected, naming why. */
  #refuse(viewerId: string, offerSdp: string, reason: string): void {
    const sdp = refusalAnswer(offerSdp, reason);
    if (sdp) this.#trySend(viewerId, () => this.#signaling.sendAnswer(viewerId, sdp));
  }

  /** Report a failed offer; logged at ERROR, or as a WARN notice of `kind`. */
  #fail(error: OfferError, noticeKind?: string): void {
    if (noticeKind) this.#notice(noticeKind, error.message);
    else this.#log.error(error.message);
    this.#emit("error", { error, viewerId: error.viewerId });
  }

  /** Log at WARN, at most once per {@link NOTICE_INTERVAL_MS} per kind, counting the rest. */
  #notice(kind: string, message: string): void {
    this.#notices.warn(kind, message);
  }

  #guard(v: Viewer, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#log.warn(`Session of ${v.id} threw`, { error: e });
    }
  }

  #trySend(viewerId: string, send: () => void): void {
    try {
      send();
    } catch (cause) {
      this.#fail(
        new OfferError(viewerId, `Message to ${viewerId} not sent: ${errText(cause)}`, {
          cause,
        }),
      );
    }
  }

  #emit<K extends keyof ViewersEventMap>(type: K, detail: ViewersEventMap[K]): void {
    for (const fn of this.#listeners.get(type) ?? []) {
      try {
        fn(detail);
      } catch (e) {
        this.#log.error(`A ${type} listener threw`, { error: e });
      }
    }
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
