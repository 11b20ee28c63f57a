/**
 * Peer sessions on werift, a WebRTC stack written in TypeScript: SDP, ICE (host, srflx, relay),
 * DTLS-SRTP and H.264 packetization in JavaScript. The reference media path of the project:
 * the WASM core is measured against it, and it serves where the WASM core is unavailable.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { IceServer } from "../aws/types.ts";
import { KvsError } from "../errors.ts";
import type { EncodedFrame } from "../media/types.ts";
import type {
  IceCandidateInit,
  PeerConnectionState,
  PeerSession,
  PeerSessionFactory,
  PeerSessionOptions,
  PeerStats,
} from "./types.ts";

type Werift = typeof import("werift");
type Pc = InstanceType<Werift["RTCPeerConnection"]>;

/** Options of {@link WeriftSessionFactory}. */
export interface WeriftSessionOptions {
  /**
   * Bind ICE to 127.0.0.1 only and offer only loopback candidates (tests, demos on one
   * machine). Default false: every interface.
   */
  loopbackOnly?: boolean;
  /** Payload size limit of one RTP packet, bytes (default 1200 − headers). */
  maxPayloadSize?: number;
}

/**
 * An SDP offer the session cannot answer (no H.264 video with packetization-mode=1).
 *
 * @example
 * ```ts
 * import { OfferRejectedError } from "./werift_session.ts";
 * const e = new OfferRejectedError("the offer has no H.264 video");
 * console.log(e.code); // "PEER_OFFER"
 * ```
 */
export class OfferRejectedError extends KvsError {
  constructor(message: string, options?: ErrorOptions) {
    super("PEER_OFFER", message, options);
  }
}

function iceServersFor(servers: IceServer[]) {
  const out: { urls: string; username?: string; credential?: string }[] = [];
  for (const s of servers) {
    for (const url of s.urls) {
      // werift speaks STUN and TURN over UDP/TCP; TURN over TLS/DTLS (turns:) it does not.
      if (url.startsWith("turns:")) continue;
      out.push({ urls: url, username: s.username, credential: s.credential });
    }
  }
  return out;
}

function h264Offered(sdp: string): boolean {
  const pts = [...sdp.matchAll(/^a=rtpmap:(\d+) H264\/90000/gim)].map((m) => m[1]);
  return pts.some((pt) => new RegExp(`^a=fmtp:${pt} .*packetization-mode=1`, "im").test(sdp));
}

/**
 * Makes werift-backed sessions: one `RTCPeerConnection` per viewer, answering with H.264
 * (constrained baseline, packetization-mode=1) send-only video, trickling candidates, sending
 * each access unit as RTP, and reporting PLI/FIR as keyframe requests.
 *
 * @example
 * ```ts
 * import { WeriftSessionFactory } from "./werift_session.ts";
 * const factory = new WeriftSessionFactory({ loopbackOnly: true });
 * // startMaster({ …, peerSessionFactory: factory })
 * ```
 */
export class WeriftSessionFactory implements PeerSessionFactory {
  readonly #o: WeriftSessionOptions;

  /** Configure; werift is loaded on the first session. */
  constructor(options: WeriftSessionOptions = {}) {
    this.#o = options;
  }

  /** Create one viewer's session. */
  async create(options: PeerSessionOptions): Promise<PeerSession> {
    const w = await import("werift");
    const loopback = this.#o.loopbackOnly ?? false;
    const pc: Pc = new w.RTCPeerConnection({
      codecs: {
        video: [
          new w.RTCRtpCodecParameters({
            mimeType: "video/H264",
            clockRate: 90000,
            rtcpFeedback: [
              { type: "nack" },
              { type: "nack", parameter: "pli" },
              { type: "ccm", parameter: "fir" },
            ],
            parameters: "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
          }),
        ],
      },
      iceServers: iceServersFor(options.iceServers),
      ...(loopback
        ? {
          iceAdditionalHostAddresses: ["127.0.0.1"],
          iceInterfaceAddresses: { udp4: "127.0.0.1" },
        }
        : {}),
      iceUseIpv6: false,
    });
    return new WeriftSession(pc, w, options, this.#o, loopback);
  }
}

class WeriftSession implements PeerSession {
  readonly viewerId: string;
  readonly #pc: Pc;
  readonly #w: Werift;
  readonly #o: PeerSessionOptions;
  readonly #loopback: boolean;
  readonly #packetizer: InstanceType<Werift["H264Packetizer"]>;
  #sender: InstanceType<Werift["RTCRtpSender"]> | undefined;
  #state: PeerConnectionState = "new";
  #closed = false;
  #offerAt = 0;
  #stats = {
    bytesSent: 0,
    packetsSent: 0,
    framesSent: 0,
    plisReceived: 0,
    firsReceived: 0,
    nacksReceived: 0,
    timeToFirstPacketMs: undefined as number | undefined,
    rttMs: undefined as number | undefined,
  };

  constructor(
    pc: Pc,
    w: Werift,
    options: PeerSessionOptions,
    factory: WeriftSessionOptions,
    loopback: boolean,
  ) {
    this.viewerId = options.viewerId;
    this.#pc = pc;
    this.#w = w;
    this.#o = options;
    this.#loopback = loopback;
    this.#packetizer = new w.H264Packetizer({
      payloadType: 96,
      maxPayloadSize: factory.maxPayloadSize ?? 1200 - 12 - 16 - 8,
      inputFormat: "annexb",
    });
    pc.onIceCandidate.subscribe((c) => {
      if (!c || this.#closed) return;
      if (this.#loopback && !/ 127\.0\.0\.1 /.test(c.candidate ?? "")) return;
      const j = c.toJSON();
      this.#o.callbacks.onLocalCandidate({
        candidate: j.candidate ?? "",
        sdpMid: j.sdpMid ?? null,
        sdpMLineIndex: j.sdpMLineIndex ?? null,
      });
    });
    pc.connectionStateChange.subscribe((s) => this.#setState(s as PeerConnectionState));
  }

  async acceptOffer(offerSdp: string): Promise<string> {
    if (!/^m=video /m.test(offerSdp) || !h264Offered(offerSdp)) {
      throw new OfferRejectedError(
        "the offer has no H.264 video with packetization-mode=1: nothing to send",
      );
    }
    this.#offerAt = performance.now();
    try {
      await this.#pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
    } catch (cause) {
      throw new OfferRejectedError(`the offer is not valid SDP: ${errText(cause)}`, { cause });
    }
    const transceiver = this.#pc.getTransceivers().find((t) => t.kind === "video");
    if (!transceiver) throw new OfferRejectedError("the offer has no video section");
    transceiver.setDirection("sendonly");
    this.#sender = transceiver.sender;
    this.#sender.onRtcp.subscribe((packet) => this.#onRtcp(packet));
    await this.#pc.setLocalDescription(await this.#pc.createAnswer());
    let sdp = this.#pc.localDescription!.sdp;
    if (this.#loopback) {
      sdp = sdp.split("\r\n").filter((l) =>
        !l.startsWith("a=candidate:") || / 127\.0\.0\.1 /.test(l)
      ).join("\r\n");
    }
    return sdp;
  }

  addRemoteCandidate(candidate: IceCandidateInit): void {
    if (this.#closed || !candidate.candidate) return;
    if (/\.local /.test(candidate.candidate)) {
      this.#o.logger.debug("mDNS candidate ignored (not resolvable here)");
      return;
    }
    this.#pc.addIceCandidate({
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? undefined,
      sdpMLineIndex: candidate.sdpMLineIndex ?? undefined,
    }).catch((e) => this.#o.logger.warn(`Candidate refused: ${errText(e)}`));
  }

  writeFrame(frame: EncodedFrame): void {
    const sender = this.#sender;
    if (!sender || this.#state !== "connected" || this.#closed) return;
    const ts = Math.round(frame.timestampUs * 0.09) >>> 0;
    const packets = this.#packetizer.packetize(Buffer.from(frame.data), ts);
    for (const p of packets) {
      this.#stats.packetsSent++;
      this.#stats.bytesSent += p.serializeSize;
      sender.sendRtp(p).catch((e) => this.#o.logger.debug(`RTP not sent: ${errText(e)}`));
    }
    if (this.#stats.framesSent++ === 0 && this.#offerAt) {
      this.#stats.timeToFirstPacketMs = performance.now() - this.#offerAt;
    }
  }

  stats(): PeerStats {
    return { state: this.#state, ...this.#stats, packetsRetransmitted: 0 };
  }

  close(reason = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = "closed";
    this.#pc.close().catch(() => {});
    this.#o.callbacks.onClosed(reason);
  }

  #setState(s: PeerConnectionState): void {
    if (this.#closed || s === this.#state) return;
    this.#state = s;
    this.#o.callbacks.onStateChange(s);
    if (s === "failed") this.close("ICE failed");
  }

  #onRtcp(packet: unknown): void {
    const w = this.#w;
    if (packet instanceof w.RtcpPayloadSpecificFeedback) {
      const fb = packet.feedback;
      if (fb instanceof w.PictureLossIndication) {
        this.#stats.plisReceived++;
        this.#o.callbacks.onKeyframeRequest();
      } else if (fb && (fb as { count?: number }).constructor?.name === "FullIntraRequest") {
        this.#stats.firsReceived++;
        this.#o.callbacks.onKeyframeRequest();
      }
    } else if (packet instanceof w.RtcpTransportLayerFeedback) {
      this.#stats.nacksReceived++;
    } else if (packet instanceof w.RtcpRrPacket) {
      const report = packet.reports[0];
      if (report && report.lsr) {
        // RTT = now − LSR − DLSR, in 1/65536 s of the NTP middle 32 bits.
        const ntp = (Date.now() / 1000 + 2208988800) * 65536;
        const mid = Math.floor(ntp) % 2 ** 32;
        const rtt = (mid - report.lsr - report.dlsr) / 65536 * 1000;
        if (rtt >= 0 && rtt < 60_000) this.#stats.rttMs = rtt;
      }
    }
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
