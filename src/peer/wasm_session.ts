/**
 * Peer sessions entirely in the WASM media core (ICE-lite, DTLS, SRTP, H.264 → RTP), driven by
 * a Deno UDP socket and timers. Experimental: offered next to the werift-controlled sessions
 * while the core grows TURN, full ICE and RTCP.
 *
 * @module
 */
import type { EncodedFrame } from "../media/types.ts";
import { type MediaCoreOutput, MediaCoreSession } from "./media_core.ts";
import type {
  IceCandidateInit,
  PeerConnectionState,
  PeerSession,
  PeerSessionFactory,
  PeerSessionOptions,
  PeerStats,
} from "./types.ts";
import { OfferRejectedError } from "./werift_session.ts";

/** Options of {@link WasmPeerSessionFactory}. */
export interface WasmPeerSessionOptions {
  /** Host candidates on 127.0.0.1 only (tests). Default: every non-loopback IPv4 address. */
  loopbackOnly?: boolean;
  /**
   * End a session when nothing (consent checks, RTCP) arrived from the viewer for this long, ms
   * (default 8000). Browsers send something every second or so.
   */
  silenceTimeoutMs?: number;
}

/** What the answer needs from the offer. */
interface Offer {
  mid: string;
  payloadType: number;
  profileLevelId: string;
}

/**
 * Pick the H.264 (packetization-mode=1) format of the offer's video section, preferring
 * constrained baseline `42e01f`.
 */
function parseOffer(sdp: string): Offer {
  const video = sdp.split(/\r?\nm=/).find((s) => s.startsWith("m=video") || s.startsWith("video"));
  if (!video) throw new OfferRejectedError("the offer has no video section");
  const mid = video.match(/^a=mid:(\S+)/m)?.[1] ?? "0";
  let best: Offer | undefined;
  for (const m of video.matchAll(/^a=rtpmap:(\d+) H264\/90000/gim)) {
    const pt = Number(m[1]);
    const fmtp = video.match(new RegExp(`^a=fmtp:${pt} (.*)$`, "m"))?.[1] ?? "";
    if (!/packetization-mode=1/.test(fmtp)) continue;
    const pli = fmtp.match(/profile-level-id=([0-9a-f]{6})/i)?.[1]?.toLowerCase() ?? "42e01f";
    if (!best || (pli === "42e01f" && best.profileLevelId !== "42e01f")) {
      best = { mid, payloadType: pt, profileLevelId: pli };
    }
  }
  if (!best) {
    throw new OfferRejectedError(
      "the offer has no H.264 video with packetization-mode=1: nothing to send",
    );
  }
  return best;
}

function randomText(n: number): string {
  const a = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return [...crypto.getRandomValues(new Uint8Array(n))].map((b) => a[b % a.length]).join("");
}

/**
 * Makes {@link PeerSession}s that run wholly in the WASM core.
 *
 * @example
 * ```ts
 * import { WasmPeerSessionFactory } from "./wasm_session.ts";
 * const factory = new WasmPeerSessionFactory({ loopbackOnly: true });
 * ```
 */
export class WasmPeerSessionFactory implements PeerSessionFactory {
  readonly #o: WasmPeerSessionOptions;

  /** Configure; nothing is bound until a session is made. */
  constructor(options: WasmPeerSessionOptions = {}) {
    this.#o = options;
  }

  /** Create one viewer's session and its UDP socket. */
  create(options: PeerSessionOptions): Promise<PeerSession> {
    const ufrag = randomText(8);
    const pwd = randomText(24);
    const ssrc = crypto.getRandomValues(new Uint32Array(1))[0];
    const socket = Deno.listenDatagram({
      hostname: this.#o.loopbackOnly ? "127.0.0.1" : "0.0.0.0",
      port: 0,
      transport: "udp",
    });
    const port = (socket.addr as Deno.NetAddr).port;
    const addresses = this.#o.loopbackOnly ? ["127.0.0.1"] : Deno.networkInterfaces()
      .filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
      .map((i) => i.address);
    return Promise.resolve(
      new WasmPeerSession(options, socket, port, addresses, { ufrag, pwd, ssrc }, this.#o),
    );
  }
}

class WasmPeerSession implements PeerSession {
  readonly viewerId: string;
  readonly #o: PeerSessionOptions;
  readonly #socket: Deno.DatagramConn;
  readonly #port: number;
  readonly #addresses: string[];
  readonly #ice: { ufrag: string; pwd: string; ssrc: number };
  #core: MediaCoreSession | undefined;
  #state: PeerConnectionState = "new";
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #offerAt = 0;
  #plis = 0;
  #lastInbound = 0;
  readonly #silenceMs: number;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #stats = {
    bytesSent: 0,
    packetsSent: 0,
    framesSent: 0,
    timeToFirstPacketMs: undefined as number | undefined,
  };

  constructor(
    options: PeerSessionOptions,
    socket: Deno.DatagramConn,
    port: number,
    addresses: string[],
    ice: { ufrag: string; pwd: string; ssrc: number },
    factory: WasmPeerSessionOptions,
  ) {
    this.#silenceMs = factory.silenceTimeoutMs ?? 8000;
    this.viewerId = options.viewerId;
    this.#o = options;
    this.#socket = socket;
    this.#port = port;
    this.#addresses = addresses;
    this.#ice = ice;
  }

  async acceptOffer(offerSdp: string): Promise<string> {
    const offer = parseOffer(offerSdp);
    this.#offerAt = performance.now();
    this.#core = await MediaCoreSession.create({
      ufrag: this.#ice.ufrag,
      pwd: this.#ice.pwd,
      ssrc: this.#ice.ssrc,
      payloadType: offer.payloadType,
    });
    this.#receive();
    this.#setState("connecting");
    const pt = offer.payloadType;
    const candidates = this.#addresses.map((a, i) =>
      `a=candidate:${i + 1} 1 udp ${2130706431 - i} ${a} ${this.#port} typ host`
    );
    return [
      "v=0",
      `o=- ${Date.now()} 2 IN IP4 127.0.0.1`,
      "s=-",
      "t=0 0",
      "a=ice-lite",
      `a=group:BUNDLE ${offer.mid}`,
      "a=msid-semantic: WMS kvs",
      `m=video 9 UDP/TLS/RTP/SAVPF ${pt}`,
      "c=IN IP4 0.0.0.0",
      "a=rtcp:9 IN IP4 0.0.0.0",
      `a=ice-ufrag:${this.#ice.ufrag}`,
      `a=ice-pwd:${this.#ice.pwd}`,
      `a=fingerprint:${this.#core.fingerprint}`,
      "a=setup:passive",
      `a=mid:${offer.mid}`,
      "a=sendonly",
      "a=rtcp-mux",
      `a=rtpmap:${pt} H264/90000`,
      `a=rtcp-fb:${pt} nack`,
      `a=rtcp-fb:${pt} nack pli`,
      `a=fmtp:${pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${offer.profileLevelId}`,
      `a=ssrc:${this.#ice.ssrc} cname:kvs-master`,
      `a=ssrc:${this.#ice.ssrc} msid:kvs video`,
      ...candidates,
      "a=end-of-candidates",
      "",
    ].join("\r\n");
  }

  addRemoteCandidate(_candidate: IceCandidateInit): void {
    // ICE-lite: the viewer's checks reach us; its candidates are not needed.
  }

  writeFrame(frame: EncodedFrame): void {
    if (!this.#core || this.#state !== "connected" || this.#closed) return;
    const ts = Math.round(frame.timestampUs * 0.09) >>> 0;
    const out = this.#core.writeFrame(frame.data, ts);
    this.#stats.packetsSent += out.datagrams.length;
    this.#flush(out);
    if (this.#stats.framesSent++ === 0 && this.#offerAt) {
      this.#stats.timeToFirstPacketMs = performance.now() - this.#offerAt;
    }
  }

  stats(): PeerStats {
    return {
      state: this.#state,
      ...this.#stats,
      nacksReceived: 0,
      packetsRetransmitted: 0,
      plisReceived: this.#plis,
      firsReceived: 0,
      hotPath: "wasm",
    };
  }

  close(reason = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = "closed";
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    try {
      this.#socket.close();
    } catch { /* already closed */ }
    this.#core?.close();
    this.#o.callbacks.onClosed(reason);
  }

  async #receive(): Promise<void> {
    while (!this.#closed) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await this.#socket.receive();
      } catch {
        if (!this.#closed) this.close("socket closed");
        return;
      }
      const [data, addr] = got;
      this.#lastInbound = performance.now();
      const a = addr as Deno.NetAddr;
      try {
        this.#flush(this.#core!.handleDatagram(`${a.hostname}:${a.port}`, data));
      } catch (e) {
        this.close(`media core failed: ${(e as Error).message}`);
        return;
      }
    }
  }

  #flush(out: MediaCoreOutput): void {
    for (const d of out.datagrams) {
      const i = d.to.lastIndexOf(":");
      const bytes = d.data.slice();
      this.#stats.bytesSent += bytes.length;
      this.#socket.send(bytes, {
        transport: "udp",
        hostname: d.to.slice(0, i),
        port: Number(d.to.slice(i + 1)),
      }).catch(() => {});
    }
    for (const e of out.events) {
      if (e.type === "dtls-connected") this.#setState("connected");
      else if (e.type === "keyframe-request") {
        this.#plis++;
        this.#o.callbacks.onKeyframeRequest();
      } else if (e.type === "closed") this.close(e.reason);
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (out.nextTimeoutMs !== undefined && !this.#closed) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (this.#closed || !this.#core) return;
        this.#flush(this.#core.handleTimeout());
      }, Math.max(0, out.nextTimeoutMs - performance.now()));
    }
  }

  #setState(s: PeerConnectionState): void {
    if (this.#closed || s === this.#state) return;
    this.#state = s;
    if (s === "connected") {
      this.#lastInbound = performance.now();
      this.#watchdog = setInterval(() => {
        const silent = performance.now() - this.#lastInbound;
        if (silent > this.#silenceMs) {
          this.close(`viewer silent: nothing received for ${Math.round(silent / 1000)} s`);
        }
      }, 1000);
    }
    this.#o.callbacks.onStateChange(s);
  }
}
