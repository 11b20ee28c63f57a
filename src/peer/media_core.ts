/**
 * The TypeScript side of the media core (Rust compiled to WebAssembly, `wasm/`): the only file
 * that knows the byte ABI, its offsets and layouts. One compiled module per process, one
 * instance per sender, so a trap ends that sender only.
 *
 * @module
 */
import { KvsError } from "../errors.ts";
import { MEDIA_CORE_WASM_BASE64 } from "./media_core_wasm.ts";

/**
 * A media-core failure: bad keys, an access unit that is not H.264, or a trap inside the
 * module (after which that sender is dead).
 *
 * @example
 * ```ts
 * import { MediaCoreError } from "./media_core.ts";
 * const e = new MediaCoreError("MEDIA_CORE_TRAP", "the media core trapped");
 * console.log(e.code);
 * ```
 */
export class MediaCoreError extends KvsError {}

/** SRTP protection profiles the core implements (DTLS-SRTP names). */
export type SrtpProfile = "SRTP_AES128_CM_HMAC_SHA1_80" | "SRTP_AEAD_AES_128_GCM";

/** @internal Profile ids of the core's ABI. */
export const PROFILE_IDS: Record<SrtpProfile, number> = {
  SRTP_AES128_CM_HMAC_SHA1_80: 1,
  SRTP_AEAD_AES_128_GCM: 7,
};

/** @internal The core's exports (the byte ABI); only the peer modules use it. */
export interface Exports {
  memory: WebAssembly.Memory;
  kvs_alloc(len: number): number;
  kvs_free(ptr: number, len: number): void;
  sender_new(
    profile: number,
    keyPtr: number,
    keyLen: number,
    saltPtr: number,
    saltLen: number,
    ssrc: number,
    payloadType: number,
    firstSequence: number,
    maxDatagram: number,
  ): number;
  sender_write_frame(handle: number, ptr: number, len: number, ts: number): number;
  sender_retransmit(handle: number, seqsPtr: number, count: number): number;
  sender_output_ptr(handle: number): number;
  sender_output_len(handle: number): number;
  sender_free(handle: number): void;
  last_error_ptr(): number;
  certificate_new(): number;
  warm_up(certPtr: number, certLen: number, frames: number): number;
  scratch_ptr(): number;
  session_new(
    configPtr: number,
    configLen: number,
    certPtr: number,
    certLen: number,
    nowMs: number,
  ): number;
  session_fingerprint(handle: number): number;
  session_stats(handle: number): number;
  session_add_candidate(handle: number, nowMs: number, ptr: number, len: number): number;
  session_add_stun(handle: number, nowMs: number, ptr: number, len: number): number;
  session_add_turn(handle: number, nowMs: number, ptr: number, len: number): number;
  session_handle_datagram(
    handle: number,
    nowMs: number,
    via: number,
    addrPtr: number,
    dataPtr: number,
    dataLen: number,
  ): number;
  session_handle_timeout(handle: number, nowMs: number): number;
  session_write_frame(handle: number, nowMs: number, ptr: number, len: number, ts: number): number;
  session_poll(handle: number): number;
  session_free(handle: number): void;
  last_error_len(): number;
  debug_trap(): void;
}

let compiled: Promise<WebAssembly.Module> | undefined;

/**
 * The compiled media core (compiled once per process, from the bytes embedded in this package).
 *
 * @example
 * ```ts
 * import { mediaCoreModule } from "./media_core.ts";
 * const module = await mediaCoreModule();
 * console.log(WebAssembly.Module.exports(module).length);
 * ```
 */
export function mediaCoreModule(): Promise<WebAssembly.Module> {
  compiled ??= (() => {
    const bin = atob(MEDIA_CORE_WASM_BASE64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return WebAssembly.compile(bytes);
  })();
  return compiled;
}

/** The six WASI functions the module imports: randomness, clocks, and stderr for panics. */
/** @internal The WASI functions the core imports, on its memory. */
export function wasiImports(memory: () => WebAssembly.Memory, onStderr: (text: string) => void) {
  const view = () => new DataView(memory().buffer);
  return {
    random_get(ptr: number, len: number): number {
      const buf = new Uint8Array(memory().buffer, ptr, len);
      for (let i = 0; i < len; i += 65536) crypto.getRandomValues(buf.subarray(i, i + 65536));
      return 0;
    },
    clock_time_get(id: number, _precision: bigint, out: number): number {
      const ns = id === 0
        ? BigInt(Date.now()) * 1_000_000n
        : BigInt(Math.round((performance.timeOrigin + performance.now()) * 1_000_000));
      view().setBigUint64(out, ns, true);
      return 0;
    },
    environ_sizes_get(countOut: number, sizeOut: number): number {
      view().setUint32(countOut, 0, true);
      view().setUint32(sizeOut, 0, true);
      return 0;
    },
    environ_get(): number {
      return 0;
    },
    fd_write(fd: number, iovs: number, count: number, written: number): number {
      const v = view();
      let total = 0;
      let text = "";
      for (let i = 0; i < count; i++) {
        const ptr = v.getUint32(iovs + i * 8, true);
        const len = v.getUint32(iovs + i * 8 + 4, true);
        text += new TextDecoder().decode(new Uint8Array(memory().buffer, ptr, len));
        total += len;
      }
      if (fd === 1 || fd === 2) onStderr(text);
      v.setUint32(written, total, true);
      return 0;
    },
    proc_exit(code: number): never {
      throw new MediaCoreError("MEDIA_CORE_EXIT", `the media core exited with code ${code}`);
    },
  };
}

/** @internal Copy bytes into the core's memory; the caller frees them. */
export function copyIn(x: Exports, bytes: Uint8Array): number {
  const ptr = x.kvs_alloc(bytes.length);
  new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
  return ptr;
}

/** @internal The core's last error message. */
export function lastError(x: Exports): string {
  return new TextDecoder().decode(
    new Uint8Array(x.memory.buffer, x.last_error_ptr(), x.last_error_len()),
  );
}

/** What a {@link MediaCoreSession} reports. */
export type MediaCoreEvent =
  | { type: "ice-connected"; pair: string }
  | { type: "dtls-connected"; profile: string }
  | { type: "closed"; reason: string }
  | { type: "keyframe-request" }
  | { type: "local-candidate"; candidate: string }
  | { type: "warning"; message: string };

/** A datagram for the host to send. */
export interface MediaCoreDatagram {
  /** 0: the session's UDP socket, to {@link MediaCoreDatagram.to}; n: TURN stream n. */
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
  /** When to call {@link MediaCoreSession.handleTimeout} next (caller ms), if at all. */
  nextTimeoutMs?: number;
}

/** What a {@link MediaCoreSession} needs from its host and the viewer's offer. */
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
  /** The UDP socket's `ip:port` (related address of reflexive candidates). */
  hostAddress?: string;
  /** `relay`: never use the host socket for checks or media (default `all`). */
  policy?: "all" | "relay";
  /**
   * Offer AEAD_AES_128_GCM as well as AES_CM_128_HMAC_SHA1_80 (default false: it is about 1.5×
   * slower in WebAssembly; the viewer's preference decides when both are offered).
   */
  allowAesGcm?: boolean;
  /** End the session when the viewer nominated no pair this long after it was made, ms
   * (default 30 000). */
  connectTimeoutMs?: number;
}

/** The outcome of {@link MediaCoreSession.addCandidate}. */
export interface CandidateResult {
  /** `used`, `ignored` (well-formed, not usable here) or `malformed`. */
  status: "used" | "ignored" | "malformed";
  /** Why, when not used. */
  reason?: string;
}

/** A TURN server for {@link MediaCoreSession.addTurn}. */
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

/** Counters a {@link MediaCoreSession} keeps. */
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
  /**
   * When the viewer last proved it is there (caller ms): an ICE check or response that
   * authenticated, or SRTCP that decrypted. Undefined before.
   */
  authenticatedAtMs?: number;
}

/** Idle instances, reused by later sessions (their memory stays allocated, so reuse it). */
const idle: Exports[] = [];
const MAX_IDLE = 16;
/** Every live instance's memory, for {@link mediaCoreMemoryBytes}. */
const memories = new Set<WebAssembly.Memory>();

/**
 * Linear memory held by the media core's session instances (pooled or in use), bytes: what the
 * WASM side of the sessions costs, apart from the JS heap.
 *
 * @example
 * ```ts
 * import { mediaCoreMemoryBytes } from "./media_core.ts";
 * console.log(`${(mediaCoreMemoryBytes() / 1e6).toFixed(1)} MB`);
 * ```
 */
export function mediaCoreMemoryBytes(): number {
  let n = 0;
  for (const m of memories) n += m.buffer.byteLength;
  return n;
}
let certificate: Promise<Uint8Array> | undefined;

/** An instance for a new session: a pooled one (another is then made ready in the background). */
async function instantiate(): Promise<Exports> {
  const reused = idle.pop();
  if (reused) {
    if (idle.length === 0) setTimeout(refill, 0);
    return reused;
  }
  return await newInstance();
}

async function newInstance(): Promise<Exports> {
  const module = await mediaCoreModule();
  const ref: { exports?: Exports } = {};
  const instance = await WebAssembly.instantiate(module, {
    wasi_snapshot_preview1: wasiImports(() => ref.exports!.memory, () => {}),
  });
  ref.exports = instance.exports as unknown as Exports;
  memories.add(ref.exports.memory);
  return ref.exports;
}

let refilling = false;

/** Keep one idle instance ready, so an offer never waits for one. */
async function refill(): Promise<void> {
  if (refilling || idle.length > 0) return;
  refilling = true;
  try {
    const x = await newInstance();
    if (idle.length < MAX_IDLE) idle.push(x);
  } catch {
    /* the next offer makes its own */
  } finally {
    refilling = false;
  }
}

/**
 * Warm start: compile the module, make the process's DTLS certificate and an idle instance, and
 * play one session in memory on it (ICE check, DTLS handshake, 100 frames) so the engine has
 * compiled and optimized the session's code — the first viewer then costs no more than later
 * ones, in time and in memory. A master calls it when it starts; later calls do nothing more.
 *
 * @example
 * ```ts
 * import { prepareMediaCore } from "./media_core.ts";
 * await prepareMediaCore(); // at startup, off the offer path
 * ```
 */
export function prepareMediaCore(): Promise<void> {
  prepared ??= (async () => {
    const x = await instantiate();
    let trapped = false;
    try {
      const cert = await processCertificate(x);
      // One session played in memory: the engine compiles and optimizes what the first viewer
      // would otherwise wait for, and this instance's memory grows to a session's size.
      const p = copyIn(x, cert);
      try {
        if (x.warm_up(p, cert.length, 100) < 0) {
          throw new MediaCoreError("MEDIA_CORE_WARM_UP", lastError(x));
        }
      } catch (e) {
        trapped = e instanceof WebAssembly.RuntimeError;
        throw e;
      } finally {
        if (!trapped) x.kvs_free(p, cert.length);
      }
    } finally {
      if (trapped) memories.delete(x.memory);
      else release(x);
    }
  })();
  return prepared;
}

let prepared: Promise<void> | undefined;

/** The process's DTLS certificate and key (PEM), made once by the first instance. */
function processCertificate(x: Exports): Promise<Uint8Array> {
  certificate ??= (() => {
    const n = x.certificate_new();
    if (n === 0) {
      return Promise.reject(new MediaCoreError("MEDIA_CORE_CERTIFICATE", lastError(x)));
    }
    return Promise.resolve(new Uint8Array(x.memory.buffer, x.scratch_ptr(), n).slice());
  })();
  return certificate;
}

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
      `host ${options.hostAddress ?? ""}`,
      `policy ${options.policy ?? "all"}`,
      `srtp ${options.allowAesGcm ? "any" : "cm"}`,
      `connect_timeout_ms ${Math.max(0, Math.round(options.connectTimeoutMs ?? 0))}`,
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
    };
    if (this.#dead) return c;
    const ptr = this.#x.session_stats(this.#handle);
    if (!ptr) return c;
    const f = new Float64Array(this.#x.memory.buffer, ptr, 9);
    c.nacks = f[0];
    c.retransmitted = f[1];
    c.keyframeRequests = f[2];
    c.ignored = f[3];
    if (!Number.isNaN(f[4])) c.rttMs = f[4];
    c.fractionLost = f[5] / 256;
    c.packetsLost = f[6];
    c.packetsSent = f[7];
    if (f[8] >= 0) c.authenticatedAtMs = f[8];
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
      b.set(ipv6Bytes(from.hostname), 1);
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
        memories.delete(this.#x.memory);
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
            ? { type: "keyframe-request" }
            : kind === 5
            ? { type: "local-candidate", candidate: text }
            : kind === 6
            ? { type: "warning", message: text }
            : { type: "closed", reason: text },
        );
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

/** Return an instance to the pool (its memory stays allocated, so later sessions reuse it). */
function release(x: Exports): void {
  if (idle.length < MAX_IDLE && !idle.includes(x)) idle.push(x);
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  return groups.join(":");
}

function ipv6Bytes(text: string): Uint8Array {
  const out = new Uint8Array(16);
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  groups.slice(0, 8).forEach((g, i) => {
    const n = parseInt(g, 16) || 0;
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 255;
  });
  return out;
}
