/**
 * Peer sessions whose control runs on werift, a WebRTC stack written in TypeScript (SDP, ICE
 * with host/srflx/relay/prflx candidates, DTLS), and whose media hot path — H.264 → RTP → SRTP
 * for every frame — runs in the WASM media core with the keys DTLS-SRTP negotiated. With
 * `hotPath: "werift"` werift packetizes and encrypts too (the reference the core is measured
 * against).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { IceServer } from "../../src/aws/types.ts";
import type { EncodedFrame } from "../../src/media/types.ts";
import { OfferRejectedError } from "../../src/peer/errors.ts";
import { MediaCoreError, type SrtpProfile } from "../../src/peer/media_core.ts";
import { SrtpVideoSender } from "../../src/peer/srtp_video_sender.ts";
import type {
  IceCandidateInit,
  PeerConnectionState,
  PeerSession,
  PeerSessionFactory,
  PeerSessionOptions,
  PeerStats,
} from "../../src/peer/types.ts";

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
  /**
   * Who packetizes and encrypts each frame: the WASM media core (default) or werift. Profiles
   * the core does not implement fall back to werift.
   */
  hotPath?: "wasm" | "werift";
  /**
   * End a connected session when the viewer has sent no RTCP for this long, ms (default 8000).
   * Browsers report every second or so; a viewer that closed its page stops at once, long before
   * ICE consent freshness (30 s) would notice, and its seat is free for the next viewer.
   */
  rtcpTimeoutMs?: number;
}

export { OfferRejectedError } from "../../src/peer/errors.ts";

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
  #hotPath: "wasm" | "werift";
  /** The WASM sender once DTLS-SRTP keys exist; frames queue while it is being made. */
  #core: SrtpVideoSender | undefined;
  readonly #rtcpTimeoutMs: number;
  #lastRtcpAt = 0;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #corePending: EncodedFrame[] | undefined;
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
    packetsRetransmitted: 0,
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
    this.#hotPath = factory.hotPath ?? "wasm";
    this.#rtcpTimeoutMs = factory.rtcpTimeoutMs ?? 8000;
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
    pc.iceConnectionStateChange.subscribe((s) => {
      if (s === "connected") this.#o.callbacks.onVerified?.();
    });
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
    if (this.#hotPath === "wasm") {
      if (this.#corePending) {
        if (this.#corePending.length < 100) this.#corePending.push(frame);
        return;
      }
      if (this.#core) return this.#writeWasm(this.#core, frame);
    }
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

  /** Start the WASM hot path with the keys DTLS-SRTP just produced (werift keeps control). */
  async #startCore(): Promise<void> {
    const sender = this.#sender;
    const dtls = (sender?.dtlsTransport as unknown as {
      dtls?: {
        srtp: { srtpProfile?: number };
        extractSessionKeys(k: number, s: number): { localKey: Uint8Array; localSalt: Uint8Array };
      };
    })?.dtls;
    const profileId = dtls?.srtp.srtpProfile;
    const profile: SrtpProfile | undefined = profileId === 1
      ? "SRTP_AES128_CM_HMAC_SHA1_80"
      : profileId === 7
      ? "SRTP_AEAD_AES_128_GCM"
      : undefined;
    const payloadType = sender?.codec?.payloadType;
    if (!sender || !dtls || !profile || payloadType === undefined) {
      this.#o.logger.info(`WASM hot path unavailable (SRTP profile ${profileId}); werift sends`);
      this.#hotPath = "werift";
      return;
    }
    this.#corePending = [];
    try {
      const keys = dtls.extractSessionKeys(16, profile === "SRTP_AEAD_AES_128_GCM" ? 12 : 14);
      this.#core = await SrtpVideoSender.create({
        profile,
        key: new Uint8Array(keys.localKey),
        salt: new Uint8Array(keys.localSalt),
        ssrc: sender.ssrc,
        payloadType,
      });
      this.#o.logger.debug(`WASM hot path started (${profile}, SSRC ${sender.ssrc})`);
    } catch (e) {
      this.#o.logger.warn(`WASM hot path failed to start: ${errText(e)}; werift sends`);
      this.#hotPath = "werift";
    }
    const queued = this.#corePending;
    this.#corePending = undefined;
    for (const f of queued) this.writeFrame(f);
  }

  #writeWasm(core: SrtpVideoSender, frame: EncodedFrame): void {
    const ts = Math.round(frame.timestampUs * 0.09) >>> 0;
    let datagrams: Uint8Array[];
    try {
      datagrams = core.writeFrame(frame.data, ts);
    } catch (e) {
      if (e instanceof MediaCoreError && e.code === "MEDIA_CORE_FRAME") {
        this.#o.logger.warn(`Frame not sent: ${e.message}`);
        return;
      }
      this.close(`media core failed: ${errText(e)}`);
      return;
    }
    this.#send(datagrams);
    this.#stats.packetsSent += datagrams.length;
    for (const d of datagrams) this.#stats.bytesSent += d.length;
    if (this.#stats.framesSent++ === 0 && this.#offerAt) {
      this.#stats.timeToFirstPacketMs = performance.now() - this.#offerAt;
    }
  }

  /** Send again what a NACK names (WASM hot path; werift's own sender handles its NACKs). */
  #resend(lost: number[]): void {
    const core = this.#core;
    if (!core || this.#closed) return;
    let datagrams: Uint8Array[];
    try {
      datagrams = core.retransmit(lost);
    } catch (e) {
      this.close(`media core failed: ${errText(e)}`);
      return;
    }
    this.#send(datagrams);
    this.#stats.packetsRetransmitted += datagrams.length;
  }

  /** Copy the core's datagrams out and send them on werift's selected ICE pair. */
  #send(datagrams: Uint8Array[]): void {
    const connection = (this.#sender!.dtlsTransport as unknown as {
      iceTransport: { connection: { send(b: Buffer): Promise<unknown> } };
    }).iceTransport.connection;
    for (const d of datagrams) connection.send(Buffer.from(d)).catch(() => {});
  }

  stats(): PeerStats {
    return {
      state: this.#state,
      ...this.#stats,
      hotPath: this.#core ? "wasm" : "werift",
    };
  }

  close(reason = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = "closed";
    this.#core?.close();
    this.#core = undefined;
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    this.#pc.close().catch(() => {});
    this.#o.callbacks.onClosed(reason);
  }

  #setState(s: PeerConnectionState): void {
    if (this.#closed || s === this.#state) return;
    this.#state = s;
    if (s === "connected" && this.#watchdog === undefined) {
      this.#lastRtcpAt = performance.now();
      this.#watchdog = setInterval(() => {
        const silent = performance.now() - this.#lastRtcpAt;
        if (silent > this.#rtcpTimeoutMs) {
          this.close(`viewer silent: no RTCP for ${Math.round(silent / 1000)} s`);
        }
      }, 1000);
    }
    if (s === "connected" && this.#hotPath === "wasm" && !this.#core && !this.#corePending) {
      this.#startCore().catch((e) => this.#o.logger.warn(`WASM hot path: ${errText(e)}`));
    }
    this.#o.callbacks.onStateChange(s);
    if (s === "failed") this.close("ICE failed");
  }

  #onRtcp(packet: unknown): void {
    this.#lastRtcpAt = performance.now();
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
      const fb = packet.feedback;
      if (fb instanceof w.GenericNack) {
        this.#stats.nacksReceived++;
        this.#resend(fb.lost);
      }
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
