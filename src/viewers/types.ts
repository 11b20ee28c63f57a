/**
 * The options and events of {@link import("./viewers.ts").Viewers}.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { Rendition } from "../media/types.ts";
import type {
  DataChannelInfo,
  PeerConnectionState,
  PeerSessionFactory,
  ViewerAudioPacket,
} from "../peer/types.ts";
import type { SignalingClient } from "../signaling/client.ts";
import type { AdmissionOptions } from "./admission.ts";
import type { AdaptationOptions, RenditionSwitchReason } from "./rendition_selector.ts";
import type { OfferError } from "./errors.ts";
import type { ViewerStats } from "./viewer.ts";

/** What the viewers need of signaling: offers and candidates in, answers and candidates out. */
export type ViewerSignaling = Pick<
  SignalingClient,
  "on" | "sendAnswer" | "sendCandidate" | "iceServers"
>;

/**
 * Who gets a seat: {@link AdmissionOptions} (window, queue, budgets) and when a silent viewer's
 * seat goes to a new one.
 *
 * @example
 * ```ts
 * import type { ViewerAdmissionOptions } from "./types.ts";
 * const admission: ViewerAdmissionOptions = { admissionWindowMs: 3000, reclaimSilentMs: 4000 };
 * ```
 */
export interface ViewerAdmissionOptions extends Omit<AdmissionOptions, "seats"> {
  /**
   * When every seat is taken and a new viewer offers, a seated viewer that has proved nothing
   * (no ICE check, no SRTCP) for this long gives up its seat to it, ms (default 4000; browsers
   * send RTCP every second or so). A viewer that vanished without a DTLS close_notify otherwise
   * holds its seat until the silence timeout. `Infinity`: never.
   */
  reclaimSilentMs?: number;
}

/**
 * Options of {@link import("./viewers.ts").Viewers}.
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
  /** Admission window, queue, per-client budgets, silent seats (see {@link ViewerAdmissionOptions}). */
  admission?: ViewerAdmissionOptions;
  /**
   * After a viewer's PLI/FIR, how long it waits for the source's next IDR before a keyframe is
   * asked for, ms (default 1000).
   */
  keyframePatienceMs?: number;
  /** The `profile-level-id` of the stream being sent, when known (answers are made for it). */
  streamProfileLevelId?: () => string | undefined;
  /** Whether there is audio to send (viewers that receive audio get Opus). Default false. */
  sendAudio?: boolean;
  /** Whether viewers' audio is taken (the `audio` event). Default true. */
  receiveAudio?: boolean;
  /** Whether viewers' data channels are answered. Default true. */
  dataChannels?: boolean;
  /**
   * Start a joining viewer from the current GOP, sent at once, instead of asking the source for
   * an IDR and waiting for it (default true).
   */
  fastStart?: boolean;
  /**
   * The source's ladder, highest first ({@link import("../media/types.ts").VideoSource.renditions}):
   * with two rungs or more each viewer receives one, chosen from its bandwidth estimate, and a
   * joining viewer's catch-up comes from the GOP of the rung it starts on.
   */
  renditions?: readonly Rendition[];
  /** When viewers move between the rungs (see {@link AdaptationOptions}; defaults the policy). */
  adaptation?: AdaptationOptions;
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
  /** An Opus packet a viewer sent. */
  audio: { viewerId: string; packet: ViewerAudioPacket };
  /** A data channel with a viewer opened. */
  dataChannel: { viewerId: string; channel: DataChannelInfo };
  /** A message on a viewer's data channel (text as a string, binary as bytes). */
  message: { viewerId: string; channel: DataChannelInfo; data: string | Uint8Array };
  /** A data channel with a viewer closed. */
  dataChannelClosed: { viewerId: string; channel: DataChannelInfo };
  /** A viewer's bandwidth estimate changed notably, bits per second. */
  estimate: { viewerId: string; bps: number };
  /** A viewer moved to another rung of the ladder (at that rung's IDR). */
  rendition: {
    viewerId: string;
    /** The rung it now receives (0: the top one). */
    rendition: number;
    /** Its label (`360p`). */
    label: string;
    /** The rung it left. */
    previous: number;
    /** Why it moved. */
    reason: RenditionSwitchReason;
  };
}
