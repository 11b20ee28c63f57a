/**
 * Answers viewers' offers with peer sessions: one {@link PeerSession} per viewer, created by a
 * {@link PeerSessionFactory}, its answer and local candidates sent through the
 * {@link SignalingClient}, the viewer's candidates handed to it (in order, even while the session
 * is still being created).
 *
 * @module
 */
import { KvsError } from "../errors.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { IceCandidateInit, PeerSession, PeerSessionFactory } from "../peer/types.ts";
import type { SignalingClient } from "./client.ts";

/**
 * Options of {@link OfferBridge}.
 *
 * @example
 * ```ts
 * import type { OfferBridgeOptions } from "./offer_bridge.ts";
 * import type { SignalingClient } from "./client.ts";
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
}

/**
 * Connects a signaling client's offers to peer sessions.
 *
 * @example
 * ```ts
 * import { OfferBridge } from "./offer_bridge.ts";
 * import type { SignalingClient } from "./client.ts";
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
  readonly #max: number;
  readonly #entries = new Map<string, Entry>();
  readonly #off: (() => void)[] = [];
  readonly #errorListeners = new Set<(e: OfferError) => void>();
  #generation = 0;
  #closed = false;

  /** Start answering the client's offers. */
  constructor(options: OfferBridgeOptions) {
    this.#client = options.client;
    this.#factory = options.factory;
    this.#log = options.logger ?? silentLogger;
    this.#max = options.maxViewers ?? 10;
    this.#off.push(
      this.#client.on("offer", ({ viewerId, sdp }) => this.#onOffer(viewerId, sdp)),
      this.#client.on("candidate", ({ viewerId, candidate }) => {
        const entry = this.#entries.get(viewerId);
        if (!entry) {
          this.#log.debug(`Candidate for unknown viewer ${viewerId} ignored`);
          return;
        }
        this.#withSession(entry, (s) => s.addRemoteCandidate(candidate));
      }),
    );
  }

  /** Viewers with a session (or one being created). */
  get viewers(): string[] {
    return [...this.#entries.keys()];
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
    for (const [viewerId, entry] of this.#entries) {
      this.#withSession(entry, (s) => s.close("master shutting down"));
      this.#client.forgetViewer(viewerId);
    }
    this.#entries.clear();
  }

  #fail(error: OfferError): void {
    this.#log.error(error.message);
    for (const fn of this.#errorListeners) {
      try {
        fn(error);
      } catch (e) {
        this.#log.error("An offer error listener threw", { error: e });
      }
    }
  }

  #onOffer(viewerId: string, sdp: string): void {
    if (this.#closed) return;
    const previous = this.#entries.get(viewerId);
    if (previous) {
      this.#log.info(`Viewer ${viewerId} sent a new offer: replacing its session`);
      this.#entries.delete(viewerId);
      this.#withSession(previous, (s) => s.close("replaced by a new offer"));
    } else if (this.#entries.size >= this.#max) {
      this.#client.forgetViewer(viewerId);
      this.#fail(
        new OfferError(viewerId, `Offer from ${viewerId} refused: already ${this.#max} viewers`),
      );
      return;
    }
    const generation = ++this.#generation;
    const current = () => this.#entries.get(viewerId)?.generation === generation;
    const drop = (reason: string) => {
      if (!current()) return;
      this.#entries.delete(viewerId);
      this.#client.forgetViewer(viewerId);
      this.#log.info(`Viewer ${viewerId} session ended: ${reason}`);
    };
    let held: IceCandidateInit[] | undefined = [];
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
            onStateChange: (state) => this.#log.info(`Viewer ${viewerId}: ${state}`),
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
      if (!current()) {
        s.close("superseded");
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
        this.#fail(
          new OfferError(viewerId, `Offer from ${viewerId} not answered: ${errText(cause)}`, {
            cause,
          }),
        );
        return undefined;
      }
      return s;
    })();
    this.#entries.set(viewerId, { session, generation });
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
