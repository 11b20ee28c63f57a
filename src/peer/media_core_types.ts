/**
 * What a {@link import("./media_core.ts").MediaCoreSession} takes and gives, as TypeScript
 * values (the byte layouts behind them are media_core.ts's).
 *
 * @module
 */
import type { DataChannelInfo, ViewerAudioPacket } from "./types.ts";

/** What a {@link import("./media_core.ts").MediaCoreSession} reports. */
export type MediaCoreEvent =
  | { type: "ice-connected"; pair: string }
  | { type: "dtls-connected"; profile: string }
  | { type: "closed"; reason: string }
  /** PLI/FIR from the viewer, or (`congestion`) queued video dropped for its bandwidth. */
  | { type: "keyframe-request"; congestion: boolean }
  | { type: "local-candidate"; candidate: string }
  | { type: "warning"; message: string }
  | { type: "data-open"; channel: DataChannelInfo }
  | { type: "data-close"; id: number }
  | { type: "estimate"; bps: number };

/** A datagram for the host to send. */
export interface MediaCoreDatagram {
  /**
   * 0: the session's UDP socket of the destination's address family (IPv4, or IPv6 for an IPv6
   * {@link MediaCoreDatagram.to}); n: TURN stream n.
   */
  via: number;
  /** Destination (for streams, the TURN server, informational). The same object is handed out
   * for every datagram to the same address, so it can go to `socket.send` as it is. */
  to: Deno.NetAddr;
  /** Bytes: a view into the core's memory, valid until the next call into the session (send
   * or copy it at once). */
  data: Uint8Array;
}

/** Everything a session has for its host after a call. */
export interface MediaCoreOutput {
  /** Datagrams to send. */
  datagrams: MediaCoreDatagram[];
  /** What happened (ICE and DTLS progress, local candidates, warnings, closing). */
  events: MediaCoreEvent[];
  /** Audio the viewer sent, in arrival order (absent when none came). */
  audio?: ViewerAudioPacket[];
  /** Data channel messages the viewer sent, in order (absent when none came). */
  messages?: { id: number; binary: boolean; data: Uint8Array }[];
  /** When to call {@link import("./media_core.ts").MediaCoreSession.handleTimeout} next (caller ms), if at all. */
  nextTimeoutMs?: number;
}

/** What a {@link import("./media_core.ts").MediaCoreSession} needs from its host and the viewer's offer. */
export interface MediaCoreSessionOptions {
  /** Our ICE username fragment (≥ 4 characters). */
  ufrag: string;
  /** Our ICE password (≥ 22 characters). */
  pwd: string;
  /** The viewer's ICE username fragment, from its offer. */
  remoteUfrag: string;
  /** The viewer's ICE password, from its offer. */
  remotePwd: string;
  /** The viewer's certificate fingerprint from its offer, `sha-256 AB:CD:…`. */
  remoteFingerprint: string;
  /** Media SSRC. */
  ssrc: number;
  /** The H.264 payload type of the answer. */
  payloadType: number;
  /** Opus to the viewer: its SSRC and the answer's payload type (absent: no audio sent). */
  audio?: { ssrc: number; payloadType: number };
  /** The payload type of the Opus the viewer sends (absent: its audio is not read). */
  audioInPayloadType?: number;
  /** Data channels: the viewer's SCTP port and `a=max-message-size` (absent: none). */
  sctp?: { port: number; maxMessageSize: number };
  /** The IPv4 UDP socket's `ip:port` (related address of reflexive candidates). */
  hostAddress?: string;
  /**
   * The IPv6 UDP socket's `[ip]:port`, when the host has one: IPv6 candidates are then used,
   * and datagrams for IPv6 addresses (`via` 0) must leave on that socket.
   */
  hostAddress6?: string;
  /** `relay`: never use the host socket for checks or media (default `all`). */
  policy?: "all" | "relay";
  /**
   * Offer AEAD_AES_128_GCM as well as AES_CM_128_HMAC_SHA1_80 (default false: it is about 1.5×
   * slower in WebAssembly; the viewer's preference decides when both are offered).
   */
  allowAesGcm?: boolean;
  /**
   * Our DTLS role (default `server`, `a=setup:passive`): `client` (`a=setup:active`) sends the
   * ClientHello the moment the viewer nominates a pair, a round trip sooner than the server's
   * handshake, which starts with a HelloVerifyRequest exchange.
   */
  dtlsRole?: "client" | "server";
  /** End the session when the viewer nominated no pair this long after it was made, ms
   * (default 30 000). */
  connectTimeoutMs?: number;
  /** The viewer's transport-wide sequence number extension id (absent: no transport-wide
   * feedback; the estimate then comes from REMB and loss). */
  transportCcId?: number;
  /** The viewer's playout delay extension id (absent: frames carry no playout delay). */
  playoutDelayId?: number;
  /** The bandwidth estimate before any feedback, bits/s (default 3 000 000). */
  startBitrateBps?: number;
}

/** The outcome of {@link import("./media_core.ts").MediaCoreSession.addCandidate}. */
export interface CandidateResult {
  /** `used`, `ignored` (well-formed, not usable here) or `malformed`. */
  status: "used" | "ignored" | "malformed";
  /** Why, when not used. */
  reason?: string;
}

/** A TURN server for {@link import("./media_core.ts").MediaCoreSession.addTurn}. */
export interface MediaCoreTurnServer {
  /** The server's URL, for messages (credentials never appear in them). */
  url: string;
  /** `udp` over the session's socket, or `stream` over the host's TCP/TLS stream `via`. */
  transport: "udp" | "stream";
  /** The stream id (≥ 1) for `stream`. */
  via?: number;
  /** The server's resolved `ip:port`. */
  server: string;
  /** Long-term credential username. */
  username: string;
  /** Long-term credential password (never in messages). */
  password: string;
  /** Refresh the allocation at least this often, seconds (default: at half its lifetime). */
  refreshSeconds?: number;
}

/** Counters a {@link import("./media_core.ts").MediaCoreSession} keeps. */
export interface MediaCoreCounters {
  /** NACK packets received. */
  nacks: number;
  /** Datagrams sent again for them. */
  retransmitted: number;
  /** PLI/FIR received. */
  keyframeRequests: number;
  /** Datagrams not understood (ignored, never fatal). */
  ignored: number;
  /** Round-trip time from the viewer's latest receiver report, ms. */
  rttMs?: number;
  /** Fraction of packets lost (0–1), from that report. */
  fractionLost?: number;
  /** Packets lost in all, from that report. */
  packetsLost?: number;
  /** RTP packets sent (first transmissions). */
  packetsSent: number;
  /** Opus packets sent. */
  audioPacketsSent: number;
  /** Opus packets from the viewer that decrypted. */
  audioPacketsReceived: number;
  /**
   * When the viewer last proved it is there (caller ms): an ICE check or response that
   * authenticated, or SRTCP that decrypted. Undefined before.
   */
  authenticatedAtMs?: number;
  /** The viewer's bandwidth estimate, bits/s (transport-wide feedback, REMB, loss). */
  estimateBps?: number;
  /** How long the oldest video in the pacer's queue has waited, ms. */
  pacerDelayMs?: number;
  /** Datagrams of video dropped from the pacer's queue (it waited too long). */
  pacerDropped?: number;
  /** Video frames not sent after such a drop, until the next IDR. */
  framesDroppedForCongestion?: number;
  /** Bandwidth probes sent. */
  probesSent?: number;
  /** The viewer's latest REMB, bits/s. */
  rembBps?: number;
  /** Loss fraction (0–1) of the latest second of transport-wide feedback. */
  feedbackLoss?: number;
  /** The rate the viewer acknowledged receiving, bits/s. */
  ackedBps?: number;
  /** Media sent over the last second, bits/s. */
  sendingBps?: number;
}
