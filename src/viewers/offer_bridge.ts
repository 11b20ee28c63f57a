/**
 * Answers viewers' offers with peer sessions: one {@link PeerSession} per viewer, created by a
 * {@link PeerSessionFactory}, its answer and local candidates sent through the
 * {@link SignalingClient}, the viewer's candidates handed to it (in order, even while the session
 * is still being created). Who gets a session and keeps it is decided by {@link Admission}:
 * seats only for viewers that proved they are there, a short admission window before that,
 * per-client budgets of offers and candidates.
 *
 * @module
 */
import { KvsError } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import { OfferRejectedError } from "../peer/errors.ts";
import { refusalAnswer } from "../peer/sdp.ts";
import type { IceCandidateInit, PeerSession, PeerSessionFactory } from "../peer/types.ts";
import type { SignalingClient } from "../signaling/client.ts";
import { Admission, type AdmissionOptions } from "./admission.ts";

/**
 * Options of {@link OfferBridge}.
 *
 * @example
 * ```ts
 * import type { OfferBridgeOptions } from "./offer_bridge.ts";
 * import type { SignalingClient } from "../signaling/client.ts";
 * import type { PeerSessionFactory } from "../peer/types.ts";
 * declare const client: SignalingClient;
 * declare const factory: PeerSessionFactory;
 * const options: OfferBridgeOptions = { client, factory, maxViewers: 10 };
 * ```
 */
export interface OfferBridgeOptions {
  /** The signaling client whose offers to answer. */
  client: SignalingClient;
  /** Makes one session per viewer. */
  factory: PeerSessionFactory;
  /** Logger. */
  logger?: Logger;
  /** Most viewers at once (the service allows 10). Default 10. */
  maxViewers?: number;
  /** Admission window, queue and per-client budgets (see {@link AdmissionOptions}). */
  admission?: Omit<AdmissionOptions, "seats">;
}

/**
 * An offer could not be answered (refused viewer, session creation or SDP failure).
 *
 * @example
 * ```ts
 * import { OfferError } from "./offer_bridge.ts";
 * const e = new OfferError("viewer-11", "channel already has 10 viewers");
 * console.log(e.viewerId, e.code); // "viewer-11" "OFFER"
 * ```
 */
export class OfferError extends KvsError {
  /** The viewer whose offer failed. */
  readonly viewerId: string;
  /** Name the viewer whose offer failed. */
  constructor(viewerId: string, message: string, options?: ErrorOptions) {
    super("OFFER", message, options);
    this.viewerId = viewerId;
  }
}

interface Entry {
  session: Promise<PeerSession | undefined>;
  generation: number;
  /** Ends the entry's session with a reason (works before the session exists too). */
  end(reason: string): void;
}

/** Repeated notices (refusals, dropped offers) are logged once per this many ms, with a count. */
const NOTICE_INTERVAL_MS = 5000;

/**
 * Connects a signaling client's offers to peer sessions.
 *
 * What a refused viewer sees: an answer whose every media section is rejected (port 0) and
 * whose `i=` line says why (`i=refused: the master already serves 10 viewers`) — the viewer
 * page shows that line; other browsers' code sees a peer connection with no media at once,
 * instead of an ICE timeout. Offers over a client's budget get no reply.
 *
 * @example
 * ```ts
 * import { OfferBridge } from "./offer_bridge.ts";
 * import type { SignalingClient } from "../signaling/client.ts";
 * import type { PeerSessionFactory } from "../peer/types.ts";
 * declare const client: SignalingClient;
 * declare const factory: PeerSessionFactory;
 * const bridge = new OfferBridge({ client, factory });
 * bridge.on("error", (e) => console.error(e.message));
 * // … later
 * bridge.close();
 * ```
 */
export class OfferBridge {
  readonly #client: SignalingClient;
  readonly #factory: PeerSessionFactory;
  readonly #log: Logger;
  readonly #admission: Admission;
  readonly #entries = new Map<string, Entry>();
  readonly #off: (() => void)[] = [];
  readonly #errorListeners = new Set<(e: OfferError) => void>();
  readonly #notices = new Map<string, { at: number; suppressed: number }>();
  #generation = 0;
  #closed = false;

  /** Start answering the client's offers. */
  constructor(options: OfferBridgeOptions) {
    this.#client = options.client;
    this.#factory = options.factory;
    this.#log = options.logger ?? silentLogger;
    this.#admission = new Admission({ ...options.admission, seats: options.maxViewers ?? 10 });
    this.#off.push(
      this.#client.on("offer", ({ viewerId, sdp }) => this.#onOffer(viewerId, sdp)),
      this.#client.on("candidate", ({ viewerId, candidate }) => {
        const entry = this.#entries.get(viewerId);
        if (!entry) {
          this.#log.debug(`Candidate for unknown viewer ${viewerId} ignored`);
          return;
        }
        if (!this.#admission.candidate(viewerId, performance.now())) {
          this.#notice("candidates", `Candidates from ${viewerId} over its budget dropped`);
          return;
        }
        this.#withSession(entry, (s) => s.addRemoteCandidate(candidate));
      }),
    );
  }

  /** Viewers with a session (or one being created), seated or still proving themselves. */
  get viewers(): string[] {
    return [...this.#entries.keys()];
  }

  /** Viewers holding a seat, and offers waiting for their viewer's first ICE check. */
  get seats(): { seated: number; pending: number } {
    return { seated: this.#admission.seated, pending: this.#admission.pending };
  }

  /** Listen for offers that could not be answered. Returns an unsubscribe function. */
  on(_type: "error", listener: (error: OfferError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  /** Stop answering and close every session. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#off) off();
    for (const [viewerId, entry] of [...this.#entries]) {
      entry.end("master shutting down");
      this.#client.forgetViewer(viewerId);
    }
    this.#entries.clear();
  }

  /** Report a failed offer to listeners; logged at ERROR, or as a WARN notice of `kind`. */
  #fail(error: OfferError, noticeKind?: string): void {
    if (noticeKind) this.#notice(noticeKind, error.message);
    else this.#log.error(error.message);
    for (const fn of this.#errorListeners) {
      try {
        fn(error);
      } catch (e) {
        this.#log.error("An offer error listener threw", { error: e });
      }
    }
  }

  /** Log at WARN, at most once per {@link NOTICE_INTERVAL_MS} per kind, counting the rest. */
  #notice(kind: string, message: string): void {
    const now = performance.now();
    const n = this.#notices.get(kind);
    if (n && now - n.at < NOTICE_INTERVAL_MS) {
      n.suppressed++;
      return;
    }
    const more = n?.suppressed ? ` (and ${n.suppressed} more like it since the last notice)` : "";
    this.#notices.set(kind, { at: now, suppressed: 0 });
    if (this.#notices.size > 64) this.#notices.delete(this.#notices.keys().next().value!);
    this.#log.warn(message + more);
  }

  #onOffer(viewerId: string, sdp: string): void {
    if (this.#closed) return;
    const now = performance.now();
    const decision = this.#admission.offer(viewerId, now);
    if (decision.kind === "drop") {
      this.#notice("drop", `Offer from ${viewerId} dropped: ${decision.reason}`);
      return;
    }
    const previous = this.#entries.get(viewerId);
    if (previous) {
      this.#log.info(`Viewer ${viewerId} sent a new offer: replacing its session`);
      this.#entries.delete(viewerId);
      previous.end("replaced by a new offer");
    }
    if (decision.kind === "refuse") {
      this.#client.forgetViewer(viewerId);
      this.#refuse(viewerId, sdp, decision.reason);
      this.#fail(
        new OfferError(viewerId, `Offer from ${viewerId} refused: ${decision.reason}`),
        "refuse",
      );
      return;
    }
    if (decision.displaced) {
      const d = this.#entries.get(decision.displaced);
      if (d) {
        this.#entries.delete(decision.displaced);
        d.end("gave way to newer offers before its first ICE check (admission queue full)");
        this.#client.forgetViewer(decision.displaced);
      }
    }
    const { ticket } = decision;
    const generation = ++this.#generation;
    const current = () => this.#entries.get(viewerId)?.generation === generation;
    // The admission window: still unproven at its end, the offer's place is released.
    const timer = setTimeout(() => {
      if (this.#admission.expire(viewerId, ticket, performance.now())) {
        const s = this.#admission.admissionWindowMs / 1000;
        entry.end(`no ICE check within ${s} s of the offer: its place is released`);
      }
    }, decision.deadline - now + 1);
    const drop = (reason: string) => {
      clearTimeout(timer);
      this.#admission.leave(viewerId, ticket);
      if (!current()) return;
      this.#entries.delete(viewerId);
      this.#client.forgetViewer(viewerId);
      this.#log.info(`Viewer ${viewerId} session ended: ${reason}`);
    };
    const verified = () => {
      if (!current()) return;
      clearTimeout(timer);
      if (!this.#admission.verified(viewerId, ticket, performance.now())) {
        entry.end("every seat was taken before it proved itself");
      }
    };
    let held: IceCandidateInit[] | undefined = [];
    let ended: string | undefined;
    const session = (async () => {
      let s: PeerSession;
      try {
        s = await this.#factory.create({
          viewerId,
          iceServers: this.#client.iceServers(),
          logger: this.#log.child(`peer:${viewerId}`),
          callbacks: {
            onLocalCandidate: (c) => {
              if (!current()) return;
              // A viewer cannot add candidates before our answer: hold them until it is sent.
              if (held) held.push(c);
              else this.#trySend(viewerId, () => this.#client.sendCandidate(viewerId, c));
            },
            onVerified: verified,
            onStateChange: (state) => {
              this.#log.info(`Viewer ${viewerId}: ${state}`);
              if (state === "connected") verified();
            },
            onKeyframeRequest: () => this.#log.debug(`Viewer ${viewerId} asked for a keyframe`),
            onClosed: (reason) => drop(reason),
          },
        });
      } catch (cause) {
        drop("session creation failed");
        this.#fail(
          new OfferError(viewerId, `Session for ${viewerId} not created: ${errText(cause)}`, {
            cause,
          }),
        );
        return undefined;
      }
      if (ended !== undefined || !current()) {
        s.close(ended ?? "superseded");
        return undefined;
      }
      try {
        const answer = await s.acceptOffer(sdp);
        if (current()) {
          this.#trySend(viewerId, () => this.#client.sendAnswer(viewerId, answer));
          const early = held;
          held = undefined;
          for (const c of early ?? []) {
            this.#trySend(viewerId, () => this.#client.sendCandidate(viewerId, c));
          }
        }
      } catch (cause) {
        s.close("offer rejected");
        drop("offer rejected");
        if (cause instanceof OfferRejectedError) this.#refuse(viewerId, sdp, cause.message);
        this.#fail(
          new OfferError(viewerId, `Offer from ${viewerId} not answered: ${errText(cause)}`, {
            cause,
          }),
        );
        return undefined;
      }
      return s;
    })();
    const entry: Entry = {
      session,
      generation,
      end: (reason) => {
        ended ??= reason;
        drop(reason);
        this.#withSession(entry, (s) => s.close(reason));
      },
    };
    this.#entries.set(viewerId, entry);
  }

  /** Answer an offer we will not serve with every media section rejected, naming why. */
  #refuse(viewerId: string, offerSdp: string, reason: string): void {
    const sdp = refusalAnswer(offerSdp, reason);
    if (sdp) this.#trySend(viewerId, () => this.#client.sendAnswer(viewerId, sdp));
  }

  #withSession(entry: Entry, fn: (s: PeerSession) => void): void {
    entry.session.then((s) => {
      if (!s) return;
      try {
        fn(s);
      } catch (e) {
        this.#log.warn(`Session of ${s.viewerId} threw`, { error: e });
      }
    });
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
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
