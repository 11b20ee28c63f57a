/**
 * Peer sessions entirely in the WASM media core — ICE (controlled agent, host, server-reflexive
 * and TURN relay candidates, consent freshness), DTLS-SRTP with the viewer's fingerprint
 * checked, H.264 → RTP → SRTP — driven by a Deno UDP socket, TCP/TLS streams to TURN servers,
 * and timers.
 *
 * @module
 */
import type { IceServer } from "../aws/types.ts";
import type { EncodedFrame } from "../media/types.ts";
import { type MediaCoreOutput, MediaCoreSession, prepareMediaCore } from "./media_core.ts";
import type {
  IceCandidateInit,
  PeerConnectionState,
  PeerSession,
  PeerSessionFactory,
  PeerSessionOptions,
  PeerStats,
} from "./types.ts";
import { holdMemoryTrim, trimMemorySoon } from "./libc.ts";
import { OrderedDatagramSender } from "./udp_sender.ts";
import { OfferRejectedError } from "./errors.ts";
import { type ParsedOffer, parseOffer } from "./sdp.ts";

/** Options of {@link WasmPeerSessionFactory}. */
export interface WasmPeerSessionOptions {
  /** Host candidates on 127.0.0.1 only (tests). Default: every non-loopback IPv4 address. */
  loopbackOnly?: boolean;
  /**
   * End a session when nothing that authenticates as the viewer (an ICE check with its
   * credentials, SRTCP under its keys) arrived for this long, ms (default 8000). Browsers send
   * both every second or so; other bytes, which anyone can send, do not count.
   */
  silenceTimeoutMs?: number;
  /**
   * `relay`: offer and use only TURN relay candidates — for networks where only the TURN server
   * is reachable, or to keep the device's addresses private. Default `all`.
   */
  iceTransportPolicy?: "all" | "relay";
  /** Extra CA certificates (PEM) to trust for `turns:` servers, e.g. a private TURN server. */
  turnCaCerts?: string[];
  /**
   * Refresh TURN allocations at least this often, seconds (default: at half the lifetime the
   * server grants, usually 5 min). Shorter keeps NAT mappings towards the TURN server alive.
   */
  turnRefreshIntervalSeconds?: number;
  /**
   * Offer SRTP AEAD_AES_128_GCM too (default false). A viewer listing it first then gets it, and
   * in WebAssembly it costs about 1.5× the CPU of AES_CM_128_HMAC_SHA1_80, which every WebRTC
   * endpoint implements. (Chromium lists AES-CM first.)
   */
  allowAesGcm?: boolean;
  /**
   * Send each frame's datagrams with one `sendmmsg(2)` call where that is available (Linux,
   * FFI permission), default true; otherwise, and when false, one Deno `send()` per datagram.
   * Either way a session's datagrams leave in order.
   */
  sendmmsg?: boolean;
  /**
   * End a session whose viewer nominated no candidate pair this long after its offer, ms
   * (default 30 000). The clock runs from the offer whatever happens next (no candidates,
   * unreachable STUN or TURN servers), so an offer that never connects frees its seat.
   */
  iceConnectTimeoutMs?: number;
}

export { type ParsedOffer, parseOffer } from "./sdp.ts";

/** A `stun:`/`turn:`/`turns:` URL, as a master uses it. */
export interface IceUrl {
  /** `stun` or `turn`. */
  kind: "stun" | "turn";
  /** `turns:` (TLS). */
  secure: boolean;
  /** Host name or IPv4 address. */
  host: string;
  /** Port (default 3478, or 5349 for `turns:`). */
  port: number;
  /** How the server is reached. */
  transport: "udp" | "tcp";
}

/**
 * Parse an ICE server URL (RFC 7064/7065). Returns `undefined` for what a master does not use:
 * `turns:` over UDP (DTLS), IPv6 literals, other schemes.
 *
 * @example
 * ```ts
 * import { parseIceUrl } from "./wasm_session.ts";
 * console.log(parseIceUrl("turns:turn.example.com:443?transport=tcp"));
 * // { kind: "turn", secure: true, host: "turn.example.com", port: 443, transport: "tcp" }
 * ```
 */
export function parseIceUrl(url: string): IceUrl | undefined {
  const m = url.match(/^(stuns?|turns?):([^:?\[\]]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  const secure = scheme.endsWith("s");
  const kind = scheme.startsWith("stun") ? "stun" : "turn";
  const transport = (m[4]?.toLowerCase() ?? (secure ? "tcp" : "udp")) as "udp" | "tcp";
  if (secure && transport === "udp") return undefined;
  if (kind === "stun" && (secure || transport === "tcp")) return undefined;
  const port = m[3] ? Number(m[3]) : secure ? 5349 : 3478;
  if (port < 1 || port > 65535) return undefined;
  return { kind, secure, host: m[2], port, transport };
}

/** Write every byte (a stream write may take only part). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

async function resolve(host: string): Promise<string> {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return host;
  const [first] = await Deno.resolveDns(host, "A");
  if (!first) throw new Error(`${host} has no IPv4 address`);
  return first;
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
 * const relayOnly = new WasmPeerSessionFactory({ iceTransportPolicy: "relay" });
 * ```
 */
export class WasmPeerSessionFactory implements PeerSessionFactory {
  readonly #o: WasmPeerSessionOptions;

  /** Configure; nothing is bound until a session is made. */
  constructor(options: WasmPeerSessionOptions = {}) {
    this.#o = options;
  }

  /** Compile the core, make the process's DTLS certificate and an idle instance (warm start). */
  async prepare(): Promise<void> {
    await prepareMediaCore();
    trimMemorySoon();
  }

  /** Create one viewer's session and its UDP socket. */
  create(options: PeerSessionOptions): Promise<PeerSession> {
    const socket = Deno.listenDatagram({
      hostname: this.#o.loopbackOnly ? "127.0.0.1" : "0.0.0.0",
      port: 0,
      transport: "udp",
    });
    const port = (socket.addr as Deno.NetAddr).port;
    const addresses = this.#o.loopbackOnly ? ["127.0.0.1"] : Deno.networkInterfaces()
      .filter((i) => i.family === "IPv4" && !i.address.startsWith("127."))
      .map((i) => i.address);
    return Promise.resolve(new WasmPeerSession(options, socket, port, addresses, this.#o));
  }
}

class WasmPeerSession implements PeerSession {
  readonly viewerId: string;
  readonly #o: PeerSessionOptions;
  readonly #f: WasmPeerSessionOptions;
  readonly #socket: Deno.DatagramConn;
  readonly #port: number;
  readonly #addresses: string[];
  readonly #ufrag = randomText(8);
  readonly #pwd = randomText(24);
  readonly #ssrc = crypto.getRandomValues(new Uint32Array(1))[0];
  #core: MediaCoreSession | undefined;
  #mid = "0";
  #mLineIndex = 0;
  #pending: IceCandidateInit[] = [];
  #state: PeerConnectionState = "new";
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When {@link WasmPeerSession.#timer} fires (caller ms), to re-arm only when it moves. */
  #timerAt = -1;
  readonly #udp: OrderedDatagramSender;
  #offerAt = 0;
  #plis = 0;
  #connectedAt = 0;
  readonly #silenceMs: number;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** Releases this session's hold on the periodic memory trim (while it streams). */
  #releaseTrim = () => {};
  readonly #streams = new Map<number, { conn: Deno.Conn; writing: Promise<unknown> }>();
  #stats = {
    bytesSent: 0,
    packetsSent: 0,
    framesSent: 0,
    timeToFirstPacketMs: undefined as number | undefined,
    offerToAnswerMs: undefined as number | undefined,
    selectedPair: undefined as string | undefined,
    srtpProfile: undefined as string | undefined,
  };

  constructor(
    options: PeerSessionOptions,
    socket: Deno.DatagramConn,
    port: number,
    addresses: string[],
    factory: WasmPeerSessionOptions,
  ) {
    this.#silenceMs = factory.silenceTimeoutMs ?? 8000;
    this.viewerId = options.viewerId;
    this.#o = options;
    this.#f = factory;
    this.#socket = socket;
    this.#udp = new OrderedDatagramSender(socket, {
      batch: factory.sendmmsg,
      onError: (e, st) =>
        this.#o.logger.warn(
          `Viewer ${this.viewerId}: UDP send failed (${st.errors} so far): ${e.message}`,
        ),
    });
    this.#port = port;
    this.#addresses = addresses;
  }

  get #relayOnly(): boolean {
    return this.#f.iceTransportPolicy === "relay";
  }

  async acceptOffer(offerSdp: string): Promise<string> {
    this.#offerAt = performance.now();
    const offer = parseOffer(offerSdp);
    this.#mid = offer.mid;
    this.#mLineIndex = Math.max(0, offer.sections.findIndex((m) => m.mid === offer.mid));
    const host = this.#addresses[0] ?? "0.0.0.0";
    this.#core = await MediaCoreSession.create({
      ufrag: this.#ufrag,
      pwd: this.#pwd,
      remoteUfrag: offer.iceUfrag,
      remotePwd: offer.icePwd,
      remoteFingerprint: offer.fingerprint,
      ssrc: this.#ssrc,
      payloadType: offer.payloadType,
      hostAddress: `${host}:${this.#port}`,
      policy: this.#relayOnly ? "relay" : "all",
      allowAesGcm: this.#f.allowAesGcm,
      connectTimeoutMs: this.#f.iceConnectTimeoutMs,
    });
    if (this.#closed) {
      this.#core.close();
      throw new OfferRejectedError("the session was closed while the offer was applied");
    }
    this.#receive();
    this.#setState("connecting");
    // Arm the core's timers now (the ICE failure clock above all), whether or not anything is
    // ever sent or received.
    this.#flush(this.#core.handleTimeout());
    for (const c of this.#pending.splice(0)) this.addRemoteCandidate(c);
    this.#gather(this.#o.iceServers);
    for (const line of offer.candidates) this.addRemoteCandidate({ candidate: line });
    const answer = this.#answer(offer, this.#core.fingerprint);
    this.#stats.offerToAnswerMs = performance.now() - this.#offerAt;
    return answer;
  }

  /** Our answer: the video section accepted, every other section declined (port 0). */
  #answer(offer: ParsedOffer, fingerprint: string): string {
    const pt = offer.payloadType;
    const candidates = this.#relayOnly
      ? []
      : this.#addresses.map((a, i) =>
        `a=candidate:${i + 1} 1 udp ${2130706431 - i} ${a} ${this.#port} typ host generation 0`
      );
    const video = [
      `m=video 9 UDP/TLS/RTP/SAVPF ${pt}`,
      "c=IN IP4 0.0.0.0",
      "a=rtcp:9 IN IP4 0.0.0.0",
      `a=ice-ufrag:${this.#ufrag}`,
      `a=ice-pwd:${this.#pwd}`,
      "a=ice-options:trickle",
      `a=fingerprint:${fingerprint}`,
      "a=setup:passive",
      `a=mid:${offer.mid}`,
      "a=sendonly",
      "a=rtcp-mux",
      `a=rtpmap:${pt} H264/90000`,
      `a=rtcp-fb:${pt} nack`,
      `a=rtcp-fb:${pt} nack pli`,
      `a=fmtp:${pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${offer.profileLevelId}`,
      `a=ssrc:${this.#ssrc} cname:kvs-master`,
      `a=ssrc:${this.#ssrc} msid:kvs video`,
      ...candidates,
    ];
    let videoDone = false;
    const body = offer.sections.flatMap((m) => {
      if (m.kind === "video" && m.mid === offer.mid && !videoDone) {
        videoDone = true;
        return video;
      }
      return [
        `m=${m.kind} 0 ${m.proto} ${m.format}`,
        "c=IN IP4 0.0.0.0",
        `a=mid:${m.mid}`,
        "a=inactive",
      ];
    });
    return [
      "v=0",
      `o=- ${Date.now()} 2 IN IP4 127.0.0.1`,
      "s=-",
      "t=0 0",
      `a=group:BUNDLE ${offer.mid}`,
      "a=msid-semantic: WMS kvs",
      ...body,
      "",
    ].join("\r\n");
  }

  addRemoteCandidate(candidate: IceCandidateInit): void {
    if (this.#closed) return;
    const line = typeof candidate?.candidate === "string" ? candidate.candidate : "";
    if (line === "") return; // end of candidates
    if (!this.#core) {
      if (this.#pending.length < 100) this.#pending.push(candidate);
      return;
    }
    try {
      const [result, out] = this.#core.addCandidate(line);
      if (result.status === "malformed") {
        this.#o.logger.warn(`Viewer ${this.viewerId}: candidate refused: ${result.reason}`);
      } else if (result.status === "ignored") {
        this.#o.logger.debug(`Viewer ${this.viewerId}: candidate not used: ${result.reason}`);
      }
      this.#flush(out);
    } catch (e) {
      this.close(`media core failed: ${(e as Error).message}`);
    }
  }

  writeFrame(frame: EncodedFrame): void {
    if (!this.#core || this.#state !== "connected" || this.#closed) return;
    const ts = Math.round(frame.timestampUs * 0.09) >>> 0;
    let out: MediaCoreOutput;
    try {
      out = this.#core.writeFrame(frame.data, ts);
    } catch (e) {
      this.close(`media core failed: ${(e as Error).message}`);
      return;
    }
    this.#flush(out);
    if (this.#stats.framesSent++ === 0 && this.#offerAt) {
      this.#stats.timeToFirstPacketMs = performance.now() - this.#offerAt;
    }
  }

  stats(): PeerStats {
    const c = this.#core?.counters();
    const udp = this.#udp.stats();
    return {
      state: this.#state,
      ...this.#stats,
      packetsSent: c?.packetsSent ?? 0,
      sendErrors: udp.errors,
      datagramsBatched: udp.batched,
      datagramsDropped: udp.dropped,
      nacksReceived: c?.nacks ?? 0,
      packetsRetransmitted: c?.retransmitted ?? 0,
      plisReceived: this.#plis,
      firsReceived: 0,
      rttMs: c?.rttMs,
      packetsLost: c?.packetsLost,
      hotPath: "wasm",
    };
  }

  close(reason = "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#state = "closed";
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#watchdog !== undefined) clearInterval(this.#watchdog);
    this.#releaseTrim();
    this.#udp.close();
    try {
      this.#socket.close();
    } catch { /* already closed */ }
    for (const { conn } of this.#streams.values()) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    this.#streams.clear();
    this.#core?.close();
    this.#o.callbacks.onClosed(reason);
  }

  /** Ask STUN servers for our public address and TURN servers for relays (in the background). */
  #gather(servers: IceServer[]): void {
    let via = 0;
    // One allocation per server and transport: a second one from the same 5-tuple is refused.
    const seen = new Set<string>();
    for (const s of servers) {
      for (const url of s.urls) {
        const u = parseIceUrl(url);
        if (!u) {
          this.#o.logger.debug(`Viewer ${this.viewerId}: ICE server ${url} not used`);
          continue;
        }
        const key = `${u.kind}:${u.secure}:${u.host}:${u.port}:${u.transport}`;
        if (seen.has(key)) continue;
        seen.add(key);
        if (u.kind === "stun") {
          if (!this.#relayOnly) this.#startStun(url, u);
        } else if (s.username && s.credential) {
          this.#startTurn(url, u, s.username, s.credential, u.transport === "tcp" ? ++via : 0);
        }
      }
    }
  }

  async #startStun(url: string, u: IceUrl): Promise<void> {
    try {
      const ip = await resolve(u.host);
      if (this.#closed || !this.#core) return;
      this.#flush(this.#core.addStun(`${ip}:${u.port}`));
    } catch (e) {
      this.#o.logger.warn(`Viewer ${this.viewerId}: STUN ${url}: ${(e as Error).message}`);
    }
  }

  async #startTurn(
    url: string,
    u: IceUrl,
    username: string,
    password: string,
    via: number,
  ): Promise<void> {
    try {
      const ip = await resolve(u.host);
      if (via > 0) {
        const conn = u.secure
          ? await Deno.connectTls({
            hostname: u.host,
            port: u.port,
            caCerts: this.#f.turnCaCerts,
          })
          : await Deno.connect({ hostname: ip, port: u.port, transport: "tcp" });
        if (this.#closed) {
          conn.close();
          return;
        }
        this.#streams.set(via, { conn, writing: Promise.resolve() });
        this.#readStream(url, via, conn);
      }
      if (this.#closed || !this.#core) return;
      const [index, out] = this.#core.addTurn({
        url,
        transport: via > 0 ? "stream" : "udp",
        via,
        server: `${ip}:${u.port}`,
        username,
        password,
        refreshSeconds: this.#f.turnRefreshIntervalSeconds,
      });
      this.#o.logger.debug(`Viewer ${this.viewerId}: TURN ${url}: relay ${index} requested`);
      this.#flush(out);
    } catch (e) {
      if (!this.#closed) {
        this.#o.logger.warn(`Viewer ${this.viewerId}: TURN ${url}: ${(e as Error).message}`);
      }
    }
  }

  async #readStream(url: string, via: number, conn: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    while (!this.#closed) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) {
        if (!this.#closed) {
          this.#o.logger.warn(`Viewer ${this.viewerId}: TURN ${url}: connection closed`);
        }
        this.#streams.delete(via);
        return;
      }
      try {
        this.#flush(
          this.#core!.handleDatagram(undefined, buf.subarray(0, n), performance.now(), via),
        );
      } catch (e) {
        this.close(`media core failed: ${(e as Error).message}`);
        return;
      }
    }
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
      try {
        this.#flush(this.#core!.handleDatagram(addr as Deno.NetAddr, data));
      } catch (e) {
        this.close(`media core failed: ${(e as Error).message}`);
        return;
      }
    }
  }

  #flush(out: MediaCoreOutput): void {
    if (this.#closed) return;
    for (const d of out.datagrams) {
      // Views into the core's memory, valid until the next call: the UDP sender copies them
      // into its ring; stream writes get their own copy.
      this.#stats.bytesSent += d.data.length;
      if (d.via === 0) {
        this.#udp.send(d.data, d.to);
      } else {
        const s = this.#streams.get(d.via);
        if (!s) continue;
        const bytes = d.data.slice();
        s.writing = s.writing.then(() => writeAll(s.conn, bytes)).catch(() => {});
      }
    }
    this.#udp.flush();
    for (const e of out.events) {
      if (e.type === "dtls-connected") {
        this.#stats.srtpProfile = e.profile;
        this.#setState("connected");
        trimMemorySoon(5000); // after the first frames, when the engine has optimized them
        this.#releaseTrim();
        this.#releaseTrim = holdMemoryTrim();
      } else if (e.type === "ice-connected") {
        if (this.#stats.selectedPair === undefined) this.#o.callbacks.onVerified?.();
        this.#stats.selectedPair = e.pair;
        this.#o.logger.debug(`Viewer ${this.viewerId}: ICE pair ${e.pair}`);
      } else if (e.type === "local-candidate") {
        this.#o.callbacks.onLocalCandidate({
          candidate: e.candidate,
          sdpMid: this.#mid,
          sdpMLineIndex: this.#mLineIndex,
        });
      } else if (e.type === "warning") {
        this.#o.logger.warn(`Viewer ${this.viewerId}: ${e.message}`);
      } else if (e.type === "keyframe-request") {
        this.#plis++;
        this.#o.callbacks.onKeyframeRequest();
      } else if (e.type === "closed") this.close(e.reason);
    }
    if (this.#closed) return;
    this.#arm(out.nextTimeoutMs ?? -1);
  }

  /** Run the core's timers at `at` (caller ms; -1: none); the timer moves only if `at` does. */
  #arm(at: number): void {
    if (at === this.#timerAt && (at < 0 || this.#timer !== undefined)) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at < 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = -1;
      if (this.#closed || !this.#core) return;
      try {
        this.#flush(this.#core.handleTimeout());
      } catch (e) {
        this.close(`media core failed: ${(e as Error).message}`);
      }
    }, Math.max(0, at - performance.now()));
  }

  #setState(s: PeerConnectionState): void {
    if (this.#closed || s === this.#state) return;
    this.#state = s;
    if (s === "connected") {
      this.#connectedAt = performance.now();
      this.#watchdog = setInterval(() => {
        // Only what authenticates counts as the viewer (ICE checks, SRTCP that decrypts):
        // anyone can send other bytes to the socket.
        const proof = this.#core?.counters().authenticatedAtMs ?? -1;
        const silent = performance.now() - Math.max(proof, this.#connectedAt);
        if (silent > this.#silenceMs) {
          this.close(
            `viewer silent: nothing that authenticates for ${Math.round(silent / 1000)} s`,
          );
        }
      }, 1000);
    }
    this.#o.callbacks.onStateChange(s);
  }
}
