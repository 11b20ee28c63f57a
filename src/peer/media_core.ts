/**
 * One viewer's session in the media core, through its byte ABI: the session's calls, its binary
 * output records (datagrams with their route and address, events, the next timeout) and its
 * counters' slots. The only file that knows those layouts.
 *
 * @module
 */
import { DataChannelError } from "./errors.ts";
import { ipv6Bytes } from "./ip.ts";
import type { DataChannelInfo, DataChannelOptions } from "./types.ts";
import {
  copyIn,
  type Exports,
  lastError,
  MediaCoreError,
  mediaCoreModule,
  type SrtpProfile,
} from "./core_abi.ts";
import {
  drop,
  instantiate,
  mediaCoreMemoryBytes,
  prepareMediaCore,
  processCertificate,
  release,
} from "./core_pool.ts";

export { MediaCoreError, mediaCoreModule, type SrtpProfile };
export { mediaCoreMemoryBytes, prepareMediaCore };
import type {
  CandidateResult,
  MediaCoreCounters,
  MediaCoreOutput,
  MediaCoreSessionOptions,
  MediaCoreTurnServer,
} from "./media_core_types.ts";
export type * from "./media_core_types.ts";

/**
 * One viewer's whole session in the WASM core: ICE (controlled agent, host and TURN relay
 * candidates, consent freshness), DTLS 1.2 server checking the viewer's fingerprint, DTLS-SRTP,
 * and the H.264 → SRTP hot path. Times are the caller's milliseconds (`performance.now()`).
 * Instances are pooled: a closed session's instance serves a later one, unless it trapped.
 *
 * @example
 * ```ts
 * import { MediaCoreSession } from "./media_core.ts";
 * const session = await MediaCoreSession.create({
 *   ufrag: "abcd", pwd: "0123456789abcdef012345", ssrc: 1234, payloadType: 102,
 *   remoteUfrag: "wxyz", remotePwd: "abcdefghijklmnopqrstuv",
 *   remoteFingerprint: "sha-256 " + Array(32).fill("AB").join(":"),
 * });
 * console.log(session.fingerprint); // "sha-256 AB:CD:…"
 * session.close();
 * ```
 */
export class MediaCoreSession {
  /** `sha-256 AB:CD:…` of this process's DTLS certificate. */
  readonly fingerprint: string;
  readonly #x: Exports;
  readonly #handle: number;
  #buf = { ptr: 0, len: 0 };
  #dead: string | undefined;
  /** The last destination read, as bytes and as the object handed to sockets. */
  #toKey = new Uint8Array(19);
  #to: Deno.NetAddr = { transport: "udp", hostname: "0.0.0.0", port: 0 };
  /** The last source address fed in, as text and as its 19 bytes. */
  #fromKey = "";
  #fromBytes = new Uint8Array(19);

  private constructor(x: Exports, handle: number) {
    this.#x = x;
    this.#handle = handle;
    const n = x.session_fingerprint(handle);
    const fingerprint = new TextDecoder().decode(
      new Uint8Array(x.memory.buffer, x.scratch_ptr(), n),
    );
    // What goes into the answer must be a fingerprint and nothing else (never key material).
    if (!/^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(fingerprint)) {
      throw new MediaCoreError("MEDIA_CORE_FINGERPRINT", "the core returned no valid fingerprint");
    }
    this.fingerprint = fingerprint;
  }

  /** Start a session (on a pooled or new instance). Throws a clear error for bad options. */
  static async create(options: MediaCoreSessionOptions): Promise<MediaCoreSession> {
    const x = await instantiate();
    const cert = await processCertificate(x);
    const config = new TextEncoder().encode([
      `ufrag ${options.ufrag}`,
      `pwd ${options.pwd}`,
      `remote_ufrag ${options.remoteUfrag}`,
      `remote_pwd ${options.remotePwd}`,
      `fingerprint ${options.remoteFingerprint}`,
      `ssrc ${options.ssrc >>> 0}`,
      `pt ${options.payloadType}`,
      ...(options.audio
        ? [`audio_ssrc ${options.audio.ssrc >>> 0}`, `audio_pt ${options.audio.payloadType}`]
        : []),
      ...(options.audioInPayloadType ? [`audio_in_pt ${options.audioInPayloadType}`] : []),
      ...(options.sctp
        ? [`sctp_port ${options.sctp.port}`, `sctp_max_message ${options.sctp.maxMessageSize}`]
        : []),
      `host ${options.hostAddress ?? ""}`,
      ...(options.hostAddress6 ? [`host6 ${options.hostAddress6}`] : []),
      `policy ${options.policy ?? "all"}`,
      `srtp ${options.allowAesGcm ? "any" : "cm"}`,
      `dtls ${options.dtlsRole ?? "server"}`,
      `connect_timeout_ms ${Math.max(0, Math.round(options.connectTimeoutMs ?? 0))}`,
      ...(options.transportCcId ? [`twcc_ext ${options.transportCcId}`] : []),
      ...(options.playoutDelayId ? [`playout_ext ${options.playoutDelayId}`] : []),
      ...(options.startBitrateBps ? [`start_bps ${Math.round(options.startBitrateBps)}`] : []),
    ].join("\n"));
    const cp = copyIn(x, config);
    const kp = copyIn(x, cert);
    const handle = x.session_new(cp, config.length, kp, cert.length, performance.now());
    x.kvs_free(cp, config.length);
    x.kvs_free(kp, cert.length);
    if (handle === 0) {
      const why = lastError(x);
      release(x);
      throw new MediaCoreError("MEDIA_CORE_SESSION", why);
    }
    try {
      return new MediaCoreSession(x, handle);
    } catch (e) {
      x.session_free(handle);
      release(x);
      throw e;
    }
  }

  /** Add a viewer's candidate line (`candidate:…`). Never throws for bad input. */
  addCandidate(
    line: string,
    nowMs: number = performance.now(),
  ): [CandidateResult, MediaCoreOutput] {
    let code = 0;
    const out = this.#call(() => {
      code = this.#withText(
        line,
        (p, n) => this.#x.session_add_candidate(this.#handle, nowMs, p, n),
      );
      return this.#x.session_poll(this.#handle);
    });
    const result: CandidateResult = code === 0
      ? { status: "used" }
      : { status: code === 1 ? "ignored" : "malformed", reason: lastError(this.#x) };
    return [result, out];
  }

  /** Ask a STUN server (`ip:port`) for our server-reflexive address. */
  addStun(server: string, nowMs: number = performance.now()): MediaCoreOutput {
    let code = 0;
    const out = this.#call(() => {
      code = this.#withText(server, (p, n) => this.#x.session_add_stun(this.#handle, nowMs, p, n));
      return this.#x.session_poll(this.#handle);
    });
    if (code !== 0) throw new MediaCoreError("MEDIA_CORE_STUN", lastError(this.#x));
    return out;
  }

  /** Allocate a relay on a TURN server; returns its index. */
  addTurn(
    server: MediaCoreTurnServer,
    nowMs: number = performance.now(),
  ): [number, MediaCoreOutput] {
    let index = -1;
    const text = [
      `url ${server.url}`,
      `transport ${server.transport}`,
      `via ${server.via ?? 0}`,
      `server ${server.server}`,
      `username ${server.username}`,
      `password ${server.password}`,
      `refresh_seconds ${server.refreshSeconds ?? 0}`,
    ].join("\n");
    const out = this.#call(() => {
      index = this.#withText(text, (p, n) => this.#x.session_add_turn(this.#handle, nowMs, p, n));
      return this.#x.session_poll(this.#handle);
    });
    if (index < 0) throw new MediaCoreError("MEDIA_CORE_TURN", lastError(this.#x));
    return [index, out];
  }

  /** Counters kept inside the core (read from its binary slots). */
  counters(): MediaCoreCounters {
    const c: MediaCoreCounters = {
      nacks: 0,
      retransmitted: 0,
      keyframeRequests: 0,
      ignored: 0,
      packetsSent: 0,
      audioPacketsSent: 0,
      audioPacketsReceived: 0,
    };
    if (this.#dead) return c;
    const ptr = this.#x.session_stats(this.#handle);
    if (!ptr) return c;
    const f = new Float64Array(this.#x.memory.buffer, ptr, 20);
    c.nacks = f[0];
    c.retransmitted = f[1];
    c.keyframeRequests = f[2];
    c.ignored = f[3];
    if (!Number.isNaN(f[4])) c.rttMs = f[4];
    c.fractionLost = f[5] / 256;
    c.packetsLost = f[6];
    c.packetsSent = f[7];
    if (f[8] >= 0) c.authenticatedAtMs = f[8];
    c.audioPacketsSent = f[9];
    c.audioPacketsReceived = f[10];
    c.estimateBps = f[11];
    c.pacerDelayMs = f[12];
    c.pacerDropped = f[13];
    c.framesDroppedForCongestion = f[14];
    c.probesSent = f[15];
    if (!Number.isNaN(f[16])) c.rembBps = f[16];
    c.feedbackLoss = f[17];
    if (!Number.isNaN(f[18])) c.ackedBps = f[18];
    c.sendingBps = f[19];
    return c;
  }

  /**
   * Feed bytes that arrived: a datagram on the UDP socket from `from`, or with `via` ≥ 1 a chunk
   * of that TURN stream (`from` is then ignored).
   */
  handleDatagram(
    from: { hostname: string; port: number } | undefined,
    data: Uint8Array,
    nowMs: number = performance.now(),
    via = 0,
  ): MediaCoreOutput {
    return this.#call(() => {
      const x = this.#x;
      const addr = via === 0 && from ? this.#addressBytes(from) : undefined;
      this.#ensure(19 + data.length);
      const mem = new Uint8Array(x.memory.buffer, this.#buf.ptr, 19 + data.length);
      if (addr) mem.set(addr, 0);
      mem.set(data, 19);
      return x.session_handle_datagram(
        this.#handle,
        nowMs,
        via,
        addr ? this.#buf.ptr : 0,
        this.#buf.ptr + 19,
        data.length,
      );
    });
  }

  /** Drive timers. */
  handleTimeout(nowMs: number = performance.now()): MediaCoreOutput {
    return this.#call(() => this.#x.session_handle_timeout(this.#handle, nowMs));
  }

  /**
   * Send one access unit (nothing before ICE and DTLS are up): one call into the core, whose
   * output holds every datagram of the frame, written once.
   */
  writeFrame(
    accessUnit: Uint8Array,
    rtpTimestamp: number,
    nowMs: number = performance.now(),
  ): MediaCoreOutput {
    return this.#call(() => {
      this.#ensure(accessUnit.length);
      new Uint8Array(this.#x.memory.buffer, this.#buf.ptr, accessUnit.length).set(accessUnit);
      return this.#x.session_write_frame(
        this.#handle,
        nowMs,
        this.#buf.ptr,
        accessUnit.length,
        rtpTimestamp >>> 0,
      );
    });
  }

  /**
   * The playout delay the video frames written from now on carry, ms (rounded to 10 ms, at most
   * 40 950): `{ minMs: 0, maxMs: 0 }` asks the viewer to show each frame as soon as it is decoded;
   * null: frames carry none. False when the viewer's offer did not have the extension.
   */
  setPlayoutDelay(delay: { minMs: number; maxMs: number } | null): boolean {
    if (this.#dead) return false;
    const units = (ms: number) => Math.max(0, Math.min(4095, Math.round(ms / 10)));
    return this.#x.session_set_playout_delay(
      this.#handle,
      delay ? units(delay.minMs) : -1,
      delay ? units(delay.maxMs) : -1,
    ) === 1;
  }

  /** Send one Opus packet (nothing before ICE and DTLS are up, or without negotiated audio). */
  writeAudio(
    frame: Uint8Array,
    rtpTimestamp: number,
    nowMs: number = performance.now(),
  ): MediaCoreOutput {
    return this.#call(() => {
      this.#ensure(frame.length);
      new Uint8Array(this.#x.memory.buffer, this.#buf.ptr, frame.length).set(frame);
      return this.#x.session_write_audio(
        this.#handle,
        nowMs,
        this.#buf.ptr,
        frame.length,
        rtpTimestamp >>> 0,
      );
    });
  }

  /**
   * Open a data channel of ours; returns its id and the output. Throws
   * {@link DataChannelError} naming why it cannot (no data channels yet, too many).
   */
  openDataChannel(
    label: string,
    options: DataChannelOptions = {},
    nowMs: number = performance.now(),
  ): [number, MediaCoreOutput] {
    const [kind, value] = options.maxRetransmits !== undefined
      ? [1, options.maxRetransmits]
      : options.maxPacketLifeTime !== undefined
      ? [2, options.maxPacketLifeTime]
      : [0, 0];
    const l = new TextEncoder().encode(label);
    const p = new TextEncoder().encode(options.protocol ?? "");
    let id = -1;
    const out = this.#call(() => {
      const x = this.#x;
      this.#ensure(l.length + p.length + 1);
      const mem = new Uint8Array(x.memory.buffer, this.#buf.ptr, l.length + p.length);
      mem.set(l, 0);
      mem.set(p, l.length);
      id = x.session_data_open(
        this.#handle,
        nowMs,
        options.ordered === false ? 0 : 1,
        kind,
        Math.max(0, Math.min(65535, Math.round(value))),
        this.#buf.ptr,
        l.length,
        this.#buf.ptr + l.length,
        p.length,
      );
      return x.session_poll(this.#handle);
    });
    if (id < 0) throw new DataChannelError(lastError(this.#x));
    return [id, out];
  }

  /**
   * Send a message on data channel `id` (text as a string, binary as bytes). Throws
   * {@link DataChannelError} naming why it cannot.
   */
  sendData(
    id: number,
    data: string | Uint8Array,
    nowMs: number = performance.now(),
  ): MediaCoreOutput {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let code = 0;
    const out = this.#call(() => {
      const x = this.#x;
      this.#ensure(bytes.length + 1);
      new Uint8Array(x.memory.buffer, this.#buf.ptr, bytes.length).set(bytes);
      code = x.session_data_send(
        this.#handle,
        nowMs,
        id,
        typeof data === "string" ? 0 : 1,
        this.#buf.ptr,
        bytes.length,
      );
      return x.session_poll(this.#handle);
    });
    if (code !== 0) throw new DataChannelError(lastError(this.#x));
    return out;
  }

  /** Close data channel `id` (unknown ids are ignored). */
  closeDataChannel(id: number, nowMs: number = performance.now()): MediaCoreOutput {
    return this.#call(() => {
      this.#x.session_data_close(this.#handle, nowMs, id);
      return this.#x.session_poll(this.#handle);
    });
  }

  /** Bytes sent on data channels the viewer has not acknowledged yet. */
  dataBuffered(): number {
    return this.#dead ? 0 : Math.max(0, this.#x.session_data_buffered(this.#handle));
  }

  /** Release the session; its instance goes back to the pool unless it trapped. */
  close(): void {
    if (this.#dead) return;
    this.#dead = "session closed";
    try {
      this.#x.session_free(this.#handle);
      if (this.#buf.ptr) this.#x.kvs_free(this.#buf.ptr, this.#buf.len);
      release(this.#x);
    } catch { /* a dead instance: dropped */ }
  }

  /** The 19-byte binary form of an address (`u8 family | 16 bytes | u16 LE port`). */
  #addressBytes(from: { hostname: string; port: number }): Uint8Array {
    const key = `${from.hostname}|${from.port}`;
    if (key === this.#fromKey) return this.#fromBytes;
    const b = new Uint8Array(19);
    const v4 = from.hostname.split(".");
    if (v4.length === 4 && !from.hostname.includes(":")) {
      b[0] = 4;
      for (let i = 0; i < 4; i++) b[1 + i] = Number(v4[i]) & 255;
    } else {
      b[0] = 6;
      const v6 = ipv6Bytes(from.hostname);
      if (v6) b.set(v6, 1);
    }
    b[17] = from.port & 255;
    b[18] = from.port >> 8;
    this.#fromKey = key;
    this.#fromBytes = b;
    return b;
  }

  #withText(text: string, fn: (ptr: number, len: number) => number): number {
    const bytes = new TextEncoder().encode(text);
    const p = copyIn(this.#x, bytes);
    try {
      return fn(p, bytes.length);
    } finally {
      this.#x.kvs_free(p, bytes.length);
    }
  }

  #ensure(len: number): void {
    if (this.#buf.len >= len) return;
    if (this.#buf.ptr) this.#x.kvs_free(this.#buf.ptr, this.#buf.len);
    const size = Math.max(len, 64 * 1024);
    this.#buf = { ptr: this.#x.kvs_alloc(size), len: size };
  }

  #call(fn: () => number): MediaCoreOutput {
    if (this.#dead) throw new MediaCoreError("MEDIA_CORE_DEAD", this.#dead);
    try {
      return this.#read(fn());
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        this.#dead = `the media core trapped (${e.message}); this session is closed`;
        drop(this.#x);
        throw new MediaCoreError("MEDIA_CORE_TRAP", this.#dead, { cause: e });
      }
      throw e;
    }
  }

  /** Read the output at `ptr`; datagrams are views into the core's memory (no copy). */
  #read(ptr: number): MediaCoreOutput {
    const out: MediaCoreOutput = { datagrams: [], events: [] };
    if (!ptr) return out;
    const mem = this.#x.memory.buffer;
    const len = new DataView(mem, ptr, 4).getUint32(0, true);
    const bytes = new Uint8Array(mem, ptr, len);
    const v = new DataView(mem, ptr, len);
    let off = 4;
    while (off < len) {
      const tag = bytes[off++];
      if (tag === 1) {
        const via = v.getUint32(off, true);
        const dl = v.getUint32(off + 23, true);
        out.datagrams.push({
          via,
          to: this.#address(bytes, off + 4),
          data: bytes.subarray(off + 27, off + 27 + dl),
        });
        off += 27 + dl;
      } else if (tag === 2) {
        const kind = bytes[off];
        const tl = v.getUint16(off + 1, true);
        const text = new TextDecoder().decode(bytes.subarray(off + 3, off + 3 + tl));
        off += 3 + tl;
        out.events.push(
          kind === 1
            ? { type: "ice-connected", pair: text }
            : kind === 2
            ? { type: "dtls-connected", profile: text }
            : kind === 4
            ? { type: "keyframe-request", congestion: text === "congestion" }
            : kind === 5
            ? { type: "local-candidate", candidate: text }
            : kind === 6
            ? { type: "warning", message: text }
            : kind === 7
            ? { type: "data-open", channel: channelOf(text) }
            : kind === 8
            ? { type: "data-close", id: Number(text) }
            : kind === 9
            ? { type: "estimate", bps: Number(text) }
            : { type: "closed", reason: text },
        );
      } else if (tag === 4) {
        const dl = v.getUint16(off + 6, true);
        (out.audio ??= []).push({
          rtpTimestamp: v.getUint32(off, true),
          sequence: v.getUint16(off + 4, true),
          data: bytes.slice(off + 8, off + 8 + dl),
        });
        off += 8 + dl;
      } else if (tag === 5) {
        const dl = v.getUint32(off + 3, true);
        (out.messages ??= []).push({
          id: v.getUint16(off, true),
          binary: bytes[off + 2] === 1,
          data: bytes.slice(off + 7, off + 7 + dl),
        });
        off += 7 + dl;
      } else {
        const next = v.getFloat64(off, true);
        off += 8;
        if (next >= 0) out.nextTimeoutMs = next;
      }
    }
    return out;
  }

  /** The address at `off` (`u8 family | 16 bytes | u16 LE port`), reusing the last object. */
  #address(b: Uint8Array, off: number): Deno.NetAddr {
    const k = this.#toKey;
    let same = true;
    for (let i = 0; i < 19; i++) {
      if (k[i] !== b[off + i]) {
        same = false;
        break;
      }
    }
    if (same) return this.#to;
    k.set(b.subarray(off, off + 19));
    const port = b[off + 17] | (b[off + 18] << 8);
    const hostname = b[off] === 4
      ? `${b[off + 1]}.${b[off + 2]}.${b[off + 3]}.${b[off + 4]}`
      : ipv6Text(b.subarray(off + 1, off + 17));
    this.#to = { transport: "udp", hostname, port };
    return this.#to;
  }
}

/** A data channel from its event text: `id ordered kind value protocol-length ` protocol label. */
function channelOf(text: string): DataChannelInfo {
  const f = text.split(" ", 5);
  const head = f.join(" ").length + 1;
  const protocolBytes = Number(f[4]);
  // The protocol's length is in bytes: cut the rest as bytes.
  const rest = new TextEncoder().encode(text.slice(head));
  const protocol = new TextDecoder().decode(rest.subarray(0, protocolBytes));
  const label = new TextDecoder().decode(rest.subarray(protocolBytes));
  const value = Number(f[3]);
  return {
    id: Number(f[0]),
    label,
    protocol,
    ordered: f[1] === "1",
    ...(f[2] === "1"
      ? { maxRetransmits: value }
      : f[2] === "2"
      ? { maxPacketLifeTime: value }
      : {}),
  };
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(":");
}
