/**
 * One viewer's session in the WASM media core, driven: the UDP sockets' datagrams and the TURN
 * streams' bytes go in, the core's datagrams go out in order (one `sendmmsg` per frame where
 * possible), its timers run on one re-armed timeout, its events become state changes and
 * callbacks, and a watchdog ends a viewer that stopped proving it is there. Made by
 * {@link import("./wasm_session.ts").WasmPeerSessionFactory}.
 *
 * Dual stack: a session has an IPv4 socket and, where the host has IPv6, an IPv6 socket. The
 * core is told both addresses, pairs candidates by address family, and hands out datagrams for
 * "the host socket" (`via` 0); each leaves on the socket of its destination's family.
 *
 * @module
 */
import type { IceServer } from "../aws/types.ts";
import { NoticeLimiter } from "../log.ts";
import type { AudioPacket } from "../media/audio_types.ts";
import type { EncodedFrame } from "../media/types.ts";
import { type MediaCoreOutput, MediaCoreSession } from "./media_core.ts";
import type {
  DataChannelInfo,
  DataChannelOptions,
  FrameHints,
  IceCandidateInit,
  PeerConnectionState,
  PeerSession,
  PeerSessionOptions,
  PeerStats,
} from "./types.ts";
import { holdMemoryTrim, trimMemorySoon } from "./libc.ts";
import { OrderedDatagramSender } from "./udp_sender.ts";
import { type IceServerUse, planIceServers, resolveHost } from "./ice_servers.ts";
import { TurnStream } from "./turn_stream.ts";
import { DataChannelError, OfferRejectedError } from "./errors.ts";
import { parseOffer, writeAnswer } from "./sdp.ts";
import type { WasmPeerSessionOptions } from "./wasm_session.ts";

/** What live frames after a catch-up carry: the browsers' own default bounds (0 to 10 s). */
const PLAYOUT_RESTORE = { minMs: 0, maxMs: 10_000 };
/** For this many frames. */
const PLAYOUT_RESTORE_FRAMES = 25;
/**
 * Between the two, the most delay allowed grows this much per frame: the browser's jitter
 * buffer grows back into its target a little at a time instead of holding frames back at once
 * (which it counts as a freeze).
 */
const PLAYOUT_RAMP_MS = 20;
/**
 * Live frames after a catch-up still shown as soon as decoded, before the default bounds come
 * back: the browser's clock mapping learns the live frames' pace first (the catch-up's frames,
 * stamped just before the live edge and arriving over a second, taught it nothing useful).
 */
const PLAYOUT_ASAP_LIVE_FRAMES = 50;

function randomText(n: number): string {
  const a = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return [...crypto.getRandomValues(new Uint8Array(n))].map((b) => a[b % a.length]).join("");
}

/** @internal One UDP socket of a session: the socket, its port, the addresses it offers. */
export interface HostSocket {
  socket: Deno.DatagramConn;
  port: number;
  /** Host candidate addresses (the socket is bound to them, or to the wildcard). */
  addresses: string[];
}

/** @internal A session of {@link import("./wasm_session.ts").WasmPeerSessionFactory}. */
export class WasmPeerSession implements PeerSession {
  readonly viewerId: string;
  readonly #o: PeerSessionOptions;
  readonly #f: WasmPeerSessionOptions;
  readonly #v4: HostSocket;
  readonly #v6: HostSocket | undefined;
  readonly #ufrag = randomText(8);
  readonly #pwd = randomText(24);
  readonly #ssrc = crypto.getRandomValues(new Uint32Array(1))[0];
  readonly #audioSsrc = (this.#ssrc + 1) >>> 0;
  /** What the answer accepted: video to send, audio to send. */
  #sendsVideo = false;
  #sendsAudio = false;
  /** Open data channels by id. */
  readonly #channels = new Map<number, DataChannelInfo>();
  #messagesSent = 0;
  #messagesReceived = 0;
  #core: MediaCoreSession | undefined;
  #mid = "0";
  #mLineIndex = 0;
  #pending: IceCandidateInit[] = [];
  #state: PeerConnectionState = "new";
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** What the frames written now carry: a zero playout delay, the default bounds, none. */
  #playoutState: "asap" | "ramp" | "restore" | "none" = "none";
  /** Live frames still to carry it (zero delay, default bounds), or carried so far (ramp). */
  #playoutFrames = 0;
  /** When {@link WasmPeerSession.#timer} fires (caller ms), to re-arm only when it moves. */
  #timerAt = -1;
  readonly #udp: OrderedDatagramSender;
  /** Sends on the IPv6 socket (when there is one). */
  readonly #udp6: OrderedDatagramSender | undefined;
  #offerAt = 0;
  #plis = 0;
  #connectedAt = 0;
  readonly #silenceMs: number;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** Releases this session's hold on the periodic memory trim (while it streams). */
  #releaseTrim = () => {};
  readonly #streams = new Map<number, TurnStream>();
  /** Refused candidates are the viewer's doing: one WARN line per 5 s, counting the rest. */
  readonly #notices: NoticeLimiter;
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
    v4: HostSocket,
    v6: HostSocket | undefined,
    factory: WasmPeerSessionOptions,
  ) {
    this.#silenceMs = factory.silenceTimeoutMs ?? 8000;
    this.viewerId = options.viewerId;
    this.#o = options;
    this.#f = factory;
    this.#notices = new NoticeLimiter(options.logger, 5000);
    this.#v4 = v4;
    this.#v6 = v6;
    const sender = (socket: Deno.DatagramConn, family: string) =>
      new OrderedDatagramSender(socket, {
        batch: factory.sendmmsg,
        onError: (e, st) =>
          this.#o.logger.warn(
            `Viewer ${this.viewerId}: UDP send (${family}) failed (${st.errors} so far): ${e.message}`,
          ),
      });
    this.#udp = sender(v4.socket, "IPv4");
    this.#udp6 = v6 && sender(v6.socket, "IPv6");
  }

  get #relayOnly(): boolean {
    return this.#f.iceTransportPolicy === "relay";
  }

  async acceptOffer(offerSdp: string): Promise<string> {
    this.#offerAt = performance.now();
    const offer = parseOffer(offerSdp, {
      streamProfileLevelId: this.#o.streamProfileLevelId,
      sendAudio: this.#o.sendAudio,
      receiveAudio: this.#o.receiveAudio,
      dataChannels: this.#o.dataChannels ?? true,
    });
    this.#sendsVideo = offer.video !== undefined;
    this.#sendsAudio = offer.audio?.send ?? false;
    this.#mid = offer.mid;
    this.#mLineIndex = Math.max(0, offer.sections.findIndex((m) => m.mid === offer.mid));
    const host = this.#v4.addresses[0] ?? "0.0.0.0";
    const v6 = this.#v6;
    this.#core = await MediaCoreSession.create({
      ufrag: this.#ufrag,
      pwd: this.#pwd,
      remoteUfrag: offer.iceUfrag,
      remotePwd: offer.icePwd,
      remoteFingerprint: offer.fingerprint,
      ssrc: this.#ssrc,
      payloadType: offer.video?.payloadType ?? 96,
      audio: offer.audio?.send
        ? { ssrc: this.#audioSsrc, payloadType: offer.audio.payloadType }
        : undefined,
      audioInPayloadType: offer.audio?.receive ? offer.audio.payloadType : undefined,
      sctp: offer.data
        ? { port: offer.data.sctpPort, maxMessageSize: offer.data.maxMessageSize }
        : undefined,
      hostAddress: `${host}:${this.#v4.port}`,
      hostAddress6: v6 ? `[${v6.addresses[0] ?? "::"}]:${v6.port}` : undefined,
      policy: this.#relayOnly ? "relay" : "all",
      allowAesGcm: this.#f.allowAesGcm,
      dtlsRole: offer.dtlsRole,
      connectTimeoutMs: this.#f.iceConnectTimeoutMs,
      transportCcId: offer.transportCcId,
      playoutDelayId: offer.playoutDelayId,
      startBitrateBps: this.#o.startBitrateBps,
    });
    if (this.#closed) {
      this.#core.close();
      throw new OfferRejectedError("the session was closed while the offer was applied");
    }
    this.#receive(this.#v4.socket);
    if (v6) this.#receive(v6.socket);
    this.#setState("connecting");
    // Arm the core's timers now (the ICE failure clock above all), whether or not anything is
    // ever sent or received.
    this.#flush(this.#core.handleTimeout());
    for (const c of this.#pending.splice(0)) this.addRemoteCandidate(c);
    this.#gather(this.#o.iceServers);
    for (const line of offer.candidates) this.addRemoteCandidate({ candidate: line });
    const answer = writeAnswer(offer, {
      ufrag: this.#ufrag,
      pwd: this.#pwd,
      fingerprint: this.#core.fingerprint,
      ssrc: this.#ssrc,
      audioSsrc: this.#audioSsrc,
      hosts: this.#relayOnly ? [] : [
        ...this.#v4.addresses.map((a) => `${a}:${this.#v4.port}`),
        ...(v6?.addresses ?? []).map((a) => `[${a}]:${v6!.port}`),
      ],
    });
    this.#stats.offerToAnswerMs = performance.now() - this.#offerAt;
    return answer;
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
        this.#notices.warn(
          "candidate",
          `Viewer ${this.viewerId}: candidate refused: ${result.reason}`,
        );
      } else if (result.status === "ignored") {
        this.#o.logger.debug(`Viewer ${this.viewerId}: candidate not used: ${result.reason}`);
      }
      this.#flush(out);
    } catch (e) {
      this.close(`media core failed: ${(e as Error).message}`);
    }
  }

  writeFrame(frame: EncodedFrame, hints?: FrameHints): void {
    if (!this.#core || this.#state !== "connected" || this.#closed || !this.#sendsVideo) return;
    const ts = Math.round(frame.timestampUs * 0.09) >>> 0;
    let out: MediaCoreOutput;
    try {
      this.#playout(hints?.catchUp === true);
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

  /**
   * A catch-up's frames carry a playout delay of zero (shown as soon as decoded: they arrive
   * faster than their timestamps run, and a browser holds late frames back, showing the first
   * picture frozen until frames come on time again), and so do the first
   * {@link PLAYOUT_ASAP_LIVE_FRAMES} live frames after it; then the most delay allowed grows
   * {@link PLAYOUT_RAMP_MS} per frame up to the default bounds ({@link PLAYOUT_RESTORE}), which
   * {@link PLAYOUT_RESTORE_FRAMES} more frames carry (one lost packet cannot leave the viewer
   * without smoothing), then none. Nothing of this for a viewer whose offer lacked the extension.
   */
  #playout(catchUp: boolean): void {
    const core = this.#core!;
    if (catchUp) {
      if (this.#playoutState !== "asap" && !core.setPlayoutDelay({ minMs: 0, maxMs: 0 })) return;
      this.#playoutState = "asap";
      this.#playoutFrames = PLAYOUT_ASAP_LIVE_FRAMES;
    } else if (this.#playoutState === "asap") {
      if (--this.#playoutFrames > 0) return;
      this.#playoutState = "ramp";
      this.#playoutFrames = 0;
    }
    if (this.#playoutState === "ramp") {
      const maxMs = ++this.#playoutFrames * PLAYOUT_RAMP_MS;
      if (maxMs >= PLAYOUT_RESTORE.maxMs) {
        core.setPlayoutDelay(PLAYOUT_RESTORE);
        this.#playoutState = "restore";
        this.#playoutFrames = PLAYOUT_RESTORE_FRAMES;
      } else core.setPlayoutDelay({ minMs: 0, maxMs });
    } else if (this.#playoutState === "restore" && --this.#playoutFrames === 0) {
      core.setPlayoutDelay(null);
      this.#playoutState = "none";
    }
  }

  writeAudio(frame: AudioPacket): void {
    if (!this.#core || this.#state !== "connected" || this.#closed || !this.#sendsAudio) return;
    let out: MediaCoreOutput;
    try {
      out = this.#core.writeAudio(frame.data, frame.timestamp48k >>> 0);
    } catch (e) {
      this.close(`media core failed: ${(e as Error).message}`);
      return;
    }
    this.#flush(out);
  }

  sendData(channelId: number, data: string | Uint8Array): void {
    if (!this.#core || this.#closed) {
      throw new DataChannelError(`viewer ${this.viewerId} has no session (closed or not made)`);
    }
    if (!this.#channels.has(channelId)) {
      throw new DataChannelError(`viewer ${this.viewerId} has no open data channel ${channelId}`);
    }
    const out = this.#core.sendData(channelId, data); // throws DataChannelError, session goes on
    this.#messagesSent++;
    this.#flush(out);
  }

  openDataChannel(label: string, options: DataChannelOptions = {}): number {
    if (!this.#core || this.#closed) {
      throw new DataChannelError(`viewer ${this.viewerId} has no session (closed or not made)`);
    }
    const [id, out] = this.#core.openDataChannel(label, options);
    this.#flush(out);
    return id;
  }

  closeDataChannel(channelId: number): void {
    if (!this.#core || this.#closed) return;
    this.#flush(this.#core.closeDataChannel(channelId));
  }

  dataChannels(): DataChannelInfo[] {
    return [...this.#channels.values()];
  }

  stats(): PeerStats {
    const c = this.#core?.counters();
    const udp = this.#udp.stats();
    const udp6 = this.#udp6?.stats();
    return {
      state: this.#state,
      ...this.#stats,
      packetsSent: c?.packetsSent ?? 0,
      audioPacketsSent: c?.audioPacketsSent ?? 0,
      audioPacketsReceived: c?.audioPacketsReceived ?? 0,
      dataMessagesSent: this.#messagesSent,
      dataMessagesReceived: this.#messagesReceived,
      sendErrors: udp.errors + (udp6?.errors ?? 0),
      datagramsBatched: udp.batched + (udp6?.batched ?? 0),
      datagramsDropped: udp.dropped + (udp6?.dropped ?? 0),
      nacksReceived: c?.nacks ?? 0,
      packetsRetransmitted: c?.retransmitted ?? 0,
      plisReceived: this.#plis,
      firsReceived: 0,
      rttMs: c?.rttMs,
      packetsLost: c?.packetsLost,
      estimateBps: c?.estimateBps,
      sendingBps: c?.sendingBps,
      ackedBps: c?.ackedBps,
      feedbackLoss: c?.feedbackLoss,
      pacerDelayMs: c?.pacerDelayMs,
      pacerDropped: c?.pacerDropped,
      probesSent: c?.probesSent,
      hotPath: "wasm",
      silentForMs: c?.authenticatedAtMs === undefined
        ? undefined
        : Math.max(0, performance.now() - c.authenticatedAtMs),
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
    this.#udp6?.close();
    for (const h of [this.#v4, this.#v6]) {
      try {
        h?.socket.close();
      } catch { /* already closed */ }
    }
    for (const stream of this.#streams.values()) stream.close();
    this.#streams.clear();
    this.#core?.close();
    this.#o.callbacks.onClosed(reason);
  }

  /** Ask STUN servers for our public address and TURN servers for relays (in the background). */
  #gather(servers: IceServer[]): void {
    const { use, skipped } = planIceServers(servers, this.#relayOnly);
    for (const url of skipped) {
      this.#o.logger.debug(`Viewer ${this.viewerId}: ICE server ${url} not used`);
    }
    let via = 0;
    for (const u of use) {
      if (u.server.kind === "stun") this.#startStun(u);
      else this.#startTurn(u, u.server.transport === "tcp" ? ++via : 0);
    }
  }

  /**
   * The `ip:port` a STUN server is reached at, or undefined (with a debug line) when it is IPv6
   * and this session has no IPv6 socket.
   */
  async #serverAddress(url: string, host: string, port: number): Promise<string | undefined> {
    const { ip, family } = await resolveHost(host);
    if (family === "IPv4") return `${ip}:${port}`;
    if (this.#v6) return `[${ip}]:${port}`;
    this.#o.logger.debug(`Viewer ${this.viewerId}: ICE server ${url} not used: no IPv6 socket`);
    return undefined;
  }

  async #startStun({ url, server }: IceServerUse): Promise<void> {
    try {
      const address = await this.#serverAddress(url, server.host, server.port);
      if (this.#closed || !this.#core || !address) return;
      this.#flush(this.#core.addStun(address));
    } catch (e) {
      this.#o.logger.warn(`Viewer ${this.viewerId}: STUN ${url}: ${(e as Error).message}`);
    }
  }

  async #startTurn({ url, server, username, credential }: IceServerUse, via: number) {
    try {
      const { ip, family } = await resolveHost(server.host);
      // Without an IPv6 socket the host has no IPv6 (or it is off): not even a stream is tried.
      if (family === "IPv6" && !this.#v6) {
        this.#o.logger.debug(`Viewer ${this.viewerId}: ICE server ${url} not used: no IPv6 socket`);
        return;
      }
      if (via > 0) {
        const stream = await TurnStream.open(server, ip, this.#f.turnCaCerts);
        if (this.#closed) {
          stream.close();
          return;
        }
        this.#streams.set(via, stream);
        this.#readStream(url, via, stream);
      }
      if (this.#closed || !this.#core) return;
      const [index, out] = this.#core.addTurn({
        url,
        transport: via > 0 ? "stream" : "udp",
        via,
        server: family === "IPv6" ? `[${ip}]:${server.port}` : `${ip}:${server.port}`,
        username: username!,
        password: credential!,
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

  async #readStream(url: string, via: number, stream: TurnStream): Promise<void> {
    try {
      await stream.read(
        (chunk) =>
          this.#flush(this.#core!.handleDatagram(undefined, chunk, performance.now(), via)),
        () => this.#closed,
      );
    } catch (e) {
      this.close(`media core failed: ${(e as Error).message}`);
      return;
    }
    if (!this.#closed) {
      this.#o.logger.warn(`Viewer ${this.viewerId}: TURN ${url}: connection closed`);
    }
    this.#streams.delete(via);
  }

  async #receive(socket: Deno.DatagramConn): Promise<void> {
    while (!this.#closed) {
      let got: [Uint8Array, Deno.Addr];
      try {
        got = await socket.receive();
      } catch {
        if (!this.#closed) this.close("socket closed");
        return;
      }
      const [data, addr] = got;
      // IPv4 on the dual-stack IPv6 socket: its port was offered for IPv6 only, so nobody
      // the session knows sends IPv4 there.
      if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test((addr as Deno.NetAddr).hostname)) continue;
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
      if (d.via !== 0) {
        this.#streams.get(d.via)?.write(d.data);
      } else if (this.#udp6 && d.to.hostname.includes(":")) {
        this.#udp6.send(d.data, d.to);
      } else {
        this.#udp.send(d.data, d.to);
      }
    }
    this.#udp.flush();
    this.#udp6?.flush();
    if (out.audio) {
      const onAudio = this.#o.callbacks.onAudio;
      for (const a of out.audio) onAudio?.(a);
    }
    for (const e of out.events) {
      if (e.type === "data-open") {
        this.#channels.set(e.channel.id, e.channel);
        this.#o.logger.debug(`Viewer ${this.viewerId}: data channel ${e.channel.label} open`);
        this.#o.callbacks.onDataChannel?.(e.channel);
      } else if (e.type === "data-close") {
        const channel = this.#channels.get(e.id);
        this.#channels.delete(e.id);
        if (channel) this.#o.callbacks.onDataChannelClose?.(channel);
      } else if (e.type === "dtls-connected") {
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
        if (!e.congestion) this.#plis++;
        this.#o.callbacks.onKeyframeRequest(e.congestion ? "congestion" : "viewer");
      } else if (e.type === "estimate") {
        this.#o.callbacks.onEstimate?.(e.bps);
      } else if (e.type === "closed") this.close(e.reason);
    }
    if (out.messages) this.#deliver(out.messages);
    if (this.#closed) return;
    this.#arm(out.nextTimeoutMs ?? -1);
  }

  /** Hand data channel messages over (after the events: a channel opens before its messages). */
  #deliver(messages: NonNullable<MediaCoreOutput["messages"]>): void {
    const text = new TextDecoder("utf-8", { fatal: false });
    for (const m of messages) {
      const channel = this.#channels.get(m.id);
      if (!channel) continue;
      this.#messagesReceived++;
      this.#o.callbacks.onDataMessage?.(channel, m.binary ? m.data : text.decode(m.data));
    }
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
