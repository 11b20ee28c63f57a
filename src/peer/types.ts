/**
 * The contract between the signaling master and one viewer's media session.
 *
 * @module
 */
import type { IceServer } from "../aws/types.ts";
import type { Logger } from "../log.ts";
import type { AudioPacket } from "../media/audio_types.ts";
import type { EncodedFrame } from "../media/types.ts";

/** A trickled ICE candidate in the browser's `RTCIceCandidateInit` shape. */
export interface IceCandidateInit {
  /** `candidate:…` line (no `a=`), empty string for end-of-candidates. */
  candidate: string;
  /** Media section id the candidate belongs to (`"0"` for the video section). */
  sdpMid?: string | null;
  /** Index of that media section in the SDP. */
  sdpMLineIndex?: number | null;
}

/**
 * Why a session asks for a keyframe: the viewer's PLI/FIR (`viewer`), or video dropped after
 * waiting too long for the viewer's bandwidth (`congestion`).
 *
 * @example
 * ```ts
 * import type { KeyframeRequestCause } from "./types.ts";
 * const lost: KeyframeRequestCause = "viewer";
 * ```
 */
export type KeyframeRequestCause = "viewer" | "congestion";

/** Connection state of a session, as browsers name `RTCPeerConnectionState`. */
export type PeerConnectionState =
  | "new"
  | "connecting"
  | "connected"
  | "disconnected"
  | "failed"
  | "closed";

/** Counters of one session. */
export interface PeerStats {
  /** Connection state. */
  state: PeerConnectionState;
  /** SRTP bytes sent. */
  bytesSent: number;
  /** SRTP packets sent. */
  packetsSent: number;
  /** Access units sent. */
  framesSent: number;
  /** Opus packets sent (when audio was negotiated). */
  audioPacketsSent?: number;
  /** Opus packets received from the viewer (when it sends audio). */
  audioPacketsReceived?: number;
  /** Data channel messages sent. */
  dataMessagesSent?: number;
  /** Data channel messages received. */
  dataMessagesReceived?: number;
  /** NACK feedback packets received. */
  nacksReceived: number;
  /** Packets sent again after a NACK. */
  packetsRetransmitted: number;
  /** Picture loss indications received. */
  plisReceived: number;
  /** Full intra requests received. */
  firsReceived: number;
  /** Round-trip time from RTCP RR, ms. */
  rttMs?: number;
  /** Packets the viewer reported lost (RTCP RR cumulative count). */
  packetsLost?: number;
  /** Selected candidate pair, e.g. `host udp 127.0.0.1:5000 -> prflx 127.0.0.1:6000`. */
  selectedPair?: string;
  /** SRTP protection profile DTLS-SRTP negotiated. */
  srtpProfile?: string;
  /** Offer received → answer ready, ms (the session's own cost, signaling aside). */
  offerToAnswerMs?: number;
  /** Offer received → first RTP packet sent, ms. */
  timeToFirstPacketMs?: number;
  /** Datagrams the socket refused to send (0 on a healthy host). */
  sendErrors?: number;
  /** Datagrams that left in multi-datagram system calls (`sendmmsg`), of all sent. */
  datagramsBatched?: number;
  /** Datagrams dropped unsent because the socket could not keep up. */
  datagramsDropped?: number;
  /** What packetizes and encrypts the frames: `wasm` (the media core) or another stack. */
  hotPath?: string;
  /**
   * How long since the viewer last proved it is there (an ICE check that authenticated, SRTCP
   * that decrypted), ms; undefined before it first did.
   */
  silentForMs?: number;
  /**
   * The viewer's available bandwidth as the media core estimates it, bits/s: Google Congestion
   * Control over transport-wide feedback (delay and loss), capped by the viewer's REMB; the
   * pacer sends at it.
   */
  estimateBps?: number;
  /** Media sent to the viewer over the last second, bits/s (retransmissions included). */
  sendingBps?: number;
  /** The rate the viewer acknowledged receiving (transport-wide feedback), bits/s. */
  ackedBps?: number;
  /** Loss fraction (0–1) of the latest second of transport-wide feedback. */
  feedbackLoss?: number;
  /** How long the oldest video waiting in the pacer has waited, ms. */
  pacerDelayMs?: number;
  /** Times the frames waiting for the pacer were dropped (they waited over a second). */
  pacerDropped?: number;
  /** Bandwidth probes sent. */
  probesSent?: number;
}

/** Callbacks a session uses to talk back to the master. */
export interface PeerSessionCallbacks {
  /** A local candidate to trickle to the viewer (`candidate: ""` means end of candidates). */
  onLocalCandidate(candidate: IceCandidateInit): void;
  /** State changes. */
  onStateChange(state: PeerConnectionState): void;
  /**
   * The viewer proved it is there: an ICE check with this session's credentials succeeded and
   * a pair was nominated (once per session). Until then the viewer holds no seat. Sessions that
   * cannot tell report it with the `connected` state instead.
   */
  onVerified?(): void;
  /**
   * The viewer needs a keyframe: it sent PLI/FIR (`viewer`), or the pacer dropped video that
   * waited too long for the viewer's bandwidth (`congestion`: the session sends no video until
   * the next IDR). Sessions that cannot tell say nothing.
   */
  onKeyframeRequest(cause?: KeyframeRequestCause): void;
  /**
   * The viewer's bandwidth estimate changed notably (by 5 % or more, at most five times a
   * second), bits/s. A source with renditions or an encoder can follow it.
   */
  onEstimate?(bps: number): void;
  /** The session ended (ICE failure, consent loss, DTLS alert, trap, close()). */
  onClosed(reason: string): void;
  /** An Opus packet from the viewer (when its offer sends audio and audio is received). */
  onAudio?(packet: ViewerAudioPacket): void;
  /** A data channel opened (by the viewer, or ours once the viewer acknowledged it). */
  onDataChannel?(channel: DataChannelInfo): void;
  /** A message on a data channel: text as a string, binary as bytes. */
  onDataMessage?(channel: DataChannelInfo, data: string | Uint8Array): void;
  /** A data channel closed. */
  onDataChannelClose?(channel: DataChannelInfo): void;
}

/**
 * A data channel with a viewer (RFC 8831): one the viewer opened (the KVS JS SDK's
 * `kvsDataChannel`), or one we opened.
 */
export interface DataChannelInfo {
  /** Its SCTP stream id (even: the viewer's; odd: ours). */
  id: number;
  /** Its label. */
  label: string;
  /** Its subprotocol (often empty). */
  protocol: string;
  /** Whether messages arrive in order. */
  ordered: boolean;
  /** Partial reliability: a message is dropped after this many retransmissions. */
  maxRetransmits?: number;
  /** Partial reliability: a message is dropped this many ms after it was sent. */
  maxPacketLifeTime?: number;
}

/** Options of {@link PeerSession.openDataChannel}, as `RTCDataChannelInit` names them. */
export interface DataChannelOptions {
  /** Subprotocol (default empty). */
  protocol?: string;
  /** In order (default true). */
  ordered?: boolean;
  /** Drop a message after this many retransmissions. */
  maxRetransmits?: number;
  /** Drop a message this many ms after it was sent. */
  maxPacketLifeTime?: number;
}

/** An Opus packet a viewer sent, decrypted. */
export interface ViewerAudioPacket {
  /** The Opus packet (the caller's to keep). */
  data: Uint8Array;
  /** Its RTP timestamp (48 kHz, starting anywhere, wrapping at 2³²). */
  rtpTimestamp: number;
  /** Its RTP sequence number (gaps are lost packets). */
  sequence: number;
}

/** Options of {@link PeerSessionFactory.create}. */
export interface PeerSessionOptions {
  /** Viewer's client id (from `senderClientId`). */
  viewerId: string;
  /** ICE servers from `GetIceServerConfig` plus the region's STUN server. */
  iceServers: IceServer[];
  /** Session logger. */
  logger: Logger;
  /** Callbacks. */
  callbacks: PeerSessionCallbacks;
  /**
   * The `profile-level-id` of the video to send (from the source's SPS), when known: the answer
   * picks a format whose decoders play it, or refuses the offer naming both.
   */
  streamProfileLevelId?: string;
  /** Whether there is audio to send (the answer then sends Opus to a viewer that receives). */
  sendAudio?: boolean;
  /** Whether the viewer's audio is taken when it sends some (default true). */
  receiveAudio?: boolean;
  /** Whether data channels are answered (default true). */
  dataChannels?: boolean;
  /**
   * The viewer's bandwidth estimate before any feedback, bits/s (default 3 Mbit/s): the pacer's
   * rate until the viewer's transport-wide feedback or REMB says more. Set it near the top
   * rendition's rate.
   */
  startBitrateBps?: number;
}

/**
 * How a frame written to a {@link PeerSession} is to be shown.
 *
 * @example
 * ```ts
 * import type { FrameHints } from "./types.ts";
 * const hints: FrameHints = { catchUp: true };
 * ```
 */
export interface FrameHints {
  /** A frame of a catch-up, to be shown as soon as it is decoded. */
  catchUp?: boolean;
}

/**
 * One viewer's media session: SDP, ICE, DTLS-SRTP and RTP.
 *
 * @example
 * ```ts
 * import type { PeerSession } from "./types.ts";
 * async function answer(session: PeerSession, offer: string) {
 *   const sdp = await session.acceptOffer(offer);
 *   return { type: "answer", sdp };
 * }
 * ```
 */
export interface PeerSession {
  /** The viewer this session serves. */
  readonly viewerId: string;
  /** Apply the viewer's offer and return our answer SDP. Throws a clear error for bad SDP. */
  acceptOffer(offerSdp: string): Promise<string>;
  /** Add a remote trickled candidate. Bad candidates are reported, never thrown past here. */
  addRemoteCandidate(candidate: IceCandidateInit): void;
  /**
   * Send one access unit (no-op until connected, or when the viewer takes no video). With
   * `hints.catchUp` the frame belongs to a catch-up (a joining viewer's GOP, a replay, or live
   * frames queued behind one): it goes out faster than its timestamps run, and the viewer is
   * asked to show it as soon as it is decoded instead of holding it back as late.
   */
  writeFrame(frame: EncodedFrame, hints?: FrameHints): void;
  /** Send one Opus packet (no-op until connected, or when no audio was negotiated). */
  writeAudio?(frame: AudioPacket): void;
  /**
   * Send a message on an open data channel (text as a string, binary as bytes). Throws
   * {@link import("./errors.ts").DataChannelError} naming why when it cannot.
   */
  sendData?(channelId: number, data: string | Uint8Array): void;
  /** Open a data channel of ours; returns its id (it is usable once `onDataChannel` says so). */
  openDataChannel?(label: string, options?: DataChannelOptions): number;
  /** Close a data channel. */
  closeDataChannel?(channelId: number): void;
  /** The data channels open now. */
  dataChannels?(): DataChannelInfo[];
  /** Counters. */
  stats(): PeerStats;
  /** End the session, releasing sockets and WASM memory. */
  close(reason?: string): void;
}

/**
 * Creates sessions. The WASM media core provides the real one; tests may plug others.
 *
 * @example
 * ```ts
 * import type { PeerSessionFactory } from "./types.ts";
 * declare const factory: PeerSessionFactory;
 * ```
 */
export interface PeerSessionFactory {
  /** Make a session for one viewer. */
  create(options: PeerSessionOptions): Promise<PeerSession>;
  /**
   * Get ready before the first viewer (compile code, make certificates), so that offer costs
   * no more than later ones. Optional; a master calls it once when it starts.
   */
  prepare?(): Promise<void>;
}

/**
 * The counters of a session that has sent and received nothing yet, in `state`.
 *
 * @example
 * ```ts
 * import { zeroPeerStats } from "./types.ts";
 * console.log(zeroPeerStats("new").packetsSent); // 0
 * ```
 */
export function zeroPeerStats(state: PeerConnectionState): PeerStats {
  return {
    state,
    bytesSent: 0,
    packetsSent: 0,
    framesSent: 0,
    nacksReceived: 0,
    packetsRetransmitted: 0,
    plisReceived: 0,
    firsReceived: 0,
  };
}
