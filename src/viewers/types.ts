/**
 * The options and events of {@link import("./viewers.ts").Viewers}.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { PeerConnectionState, PeerSessionFactory } from "../peer/types.ts";
import type { SignalingClient } from "../signaling/client.ts";
import type { AdmissionOptions } from "./admission.ts";
import type { OfferError } from "./errors.ts";
import type { ViewerStats } from "./viewer.ts";

/** What the viewers need of signaling: offers and candidates in, answers and candidates out. */
export type ViewerSignaling = Pick<
  SignalingClient,
  "on" | "sendAnswer" | "sendCandidate" | "iceServers"
>;

/**
 * Options of {@link Viewers}.
 *
 * @example
 * ```ts
 * import type { ViewersOptions } from "./types.ts";
 * import type { SignalingClient } from "../signaling/client.ts";
 * import type { PeerSessionFactory } from "../peer/types.ts";
 * declare const signaling: SignalingClient;
 * declare const factory: PeerSessionFactory;
 * const options: ViewersOptions = { signaling, factory, maxViewers: 10 };
 * ```
 */
export interface ViewersOptions {
  /** Where offers and candidates come from and answers go. */
  signaling: ViewerSignaling;
  /** Makes one session per viewer. */
  factory: PeerSessionFactory;
  /** Logger. */
  logger?: Logger;
  /** Most viewers at once (the service allows 10). Default 10. */
  maxViewers?: number;
  /** Admission window, queue and per-client budgets (see {@link AdmissionOptions}). */
  admission?: Omit<AdmissionOptions, "seats">;
  /**
   * After a viewer's PLI/FIR, how long it waits for the source's next IDR before a keyframe is
   * asked for, ms (default 1000).
   */
  keyframePatienceMs?: number;
  /** The `profile-level-id` of the stream being sent, when known (answers are made for it). */
  streamProfileLevelId?: () => string | undefined;
  /** Candidates held per client id that has not offered yet (default 64). */
  maxEarlyCandidates?: number;
  /** Client ids whose early candidates are held; the oldest are dropped (default 32). */
  maxEarlyViewers?: number;
}

/**
 * Events of {@link Viewers}.
 *
 * @example
 * ```ts
 * import type { ViewersEventMap } from "./types.ts";
 * const onLeft = (e: ViewersEventMap["left"]) => console.log(e.viewerId, e.reason);
 * ```
 */
export interface ViewersEventMap {
  /** A viewer's offer was admitted and its session made. */
  joined: { viewerId: string };
  /** A viewer's session changed state. */
  state: { viewerId: string; state: PeerConnectionState };
  /** A viewer's session ended; its last counters. */
  left: { viewerId: string; reason: string; stats: ViewerStats };
  /** An offer could not be answered, or was refused. */
  error: { error: OfferError; viewerId: string };
  /** Some viewer needs a keyframe (the source may be asked for one). */
  keyframe: Record<never, never>;
  /** Whether any viewer receives frames changed. */
  receiving: { receiving: boolean };
}
