/**
 * The SRTP video sender alone (H.264 → RTP → SRTP, NACK retransmission), without ICE or DTLS:
 * for benchmarks and for stacks that do their own transport. Not part of the module's main entry
 * point: the master's sessions use {@link MediaCoreSession}.
 *
 * @module
 */
import {
  copyIn,
  type Exports,
  lastError,
  MediaCoreError,
  mediaCoreModule,
  PROFILE_IDS,
  type SrtpProfile,
  wasiImports,
} from "./core_abi.ts";

/** Options of {@link SrtpVideoSender.create}. */
export interface SrtpVideoSenderOptions {
  /** SRTP protection profile negotiated by DTLS-SRTP. */
  profile: SrtpProfile;
  /** SRTP master key (16 bytes). */
  key: Uint8Array;
  /** SRTP master salt (14 bytes for AES-CM, 12 for AES-GCM). */
  salt: Uint8Array;
  /** RTP synchronization source of the stream. */
  ssrc: number;
  /** RTP payload type negotiated for H.264. */
  payloadType: number;
  /** First RTP sequence number (default random). */
  firstSequence?: number;
  /** Largest datagram, bytes (default 1200). */
  maxDatagram?: number;
}

/**
 * One H.264 stream through the WASM core: an access unit in, all its SRTP datagrams out, in one
 * call across the boundary.
 *
 * @example
 * ```ts
 * import { SrtpVideoSender } from "./srtp_video_sender.ts";
 * const sender = await SrtpVideoSender.create({
 *   profile: "SRTP_AES128_CM_HMAC_SHA1_80",
 *   key: new Uint8Array(16),
 *   salt: new Uint8Array(14),
 *   ssrc: 0x1234,
 *   payloadType: 102,
 * });
 * const idr = new Uint8Array([0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21]);
 * for (const datagram of sender.writeFrame(idr, 90000)) console.log(datagram.length);
 * sender.close();
 * ```
 */
export class SrtpVideoSender {
  readonly #x: Exports;
  readonly #handle: number;
  #input = { ptr: 0, len: 0 };
  #dead: string | undefined;
  readonly #stderr: { text: string };

  private constructor(x: Exports, handle: number, stderr: { text: string }) {
    this.#x = x;
    this.#handle = handle;
    this.#stderr = stderr;
  }

  /** Instantiate the core and make the sender. Throws {@link MediaCoreError} for bad keys. */
  static async create(options: SrtpVideoSenderOptions): Promise<SrtpVideoSender> {
    const module = await mediaCoreModule();
    const ref: { exports?: Exports } = {};
    const stderr = { text: "" };
    const instance = await WebAssembly.instantiate(module, {
      wasi_snapshot_preview1: wasiImports(() => ref.exports!.memory, (t) => {
        stderr.text = (stderr.text + t).slice(-2000);
      }),
    });
    const x = ref.exports = instance.exports as unknown as Exports;
    const key = copyIn(x, options.key);
    const salt = copyIn(x, options.salt);
    const handle = x.sender_new(
      PROFILE_IDS[options.profile],
      key,
      options.key.length,
      salt,
      options.salt.length,
      options.ssrc >>> 0,
      options.payloadType,
      options.firstSequence ?? crypto.getRandomValues(new Uint16Array(1))[0],
      options.maxDatagram ?? 1200,
    );
    x.kvs_free(key, options.key.length);
    x.kvs_free(salt, options.salt.length);
    if (handle === 0) {
      throw new MediaCoreError("MEDIA_CORE_KEY", lastError(x));
    }
    return new SrtpVideoSender(x, handle, stderr);
  }

  /**
   * Packetize and protect one Annex-B access unit with its 90 kHz RTP timestamp. Returns the
   * datagrams as views into the core's memory: valid until the next call, send or copy them
   * at once. Throws {@link MediaCoreError} for input that is not H.264 (the sender stays
   * usable) or after a trap (the sender is dead).
   */
  writeFrame(accessUnit: Uint8Array, rtpTimestamp: number): Uint8Array[] {
    if (this.#dead) throw new MediaCoreError("MEDIA_CORE_DEAD", this.#dead);
    const x = this.#x;
    try {
      if (this.#input.len < accessUnit.length) {
        if (this.#input.ptr) x.kvs_free(this.#input.ptr, this.#input.len);
        const len = Math.max(accessUnit.length, 64 * 1024);
        this.#input = { ptr: x.kvs_alloc(len), len };
      }
      new Uint8Array(x.memory.buffer, this.#input.ptr, accessUnit.length).set(accessUnit);
      const n = x.sender_write_frame(
        this.#handle,
        this.#input.ptr,
        accessUnit.length,
        rtpTimestamp >>> 0,
      );
      if (n < 0) throw new MediaCoreError("MEDIA_CORE_FRAME", lastError(x));
      return this.#output(n);
    } catch (e) {
      throw this.#trapped(e);
    }
  }

  /**
   * The datagrams with these sequence numbers (from a NACK), exactly as first sent, while they
   * are in the history (the last 512). Views valid until the next call, like
   * {@link SrtpVideoSender.writeFrame}.
   */
  retransmit(sequenceNumbers: readonly number[]): Uint8Array[] {
    if (this.#dead) throw new MediaCoreError("MEDIA_CORE_DEAD", this.#dead);
    if (sequenceNumbers.length === 0) return [];
    const x = this.#x;
    try {
      const count = Math.min(sequenceNumbers.length, 4096);
      const bytes = count * 2;
      const ptr = x.kvs_alloc(bytes);
      const view = new DataView(x.memory.buffer, ptr, bytes);
      for (let i = 0; i < count; i++) view.setUint16(i * 2, sequenceNumbers[i] & 0xffff, true);
      const n = x.sender_retransmit(this.#handle, ptr, count);
      x.kvs_free(ptr, bytes);
      return this.#output(Math.max(0, n));
    } catch (e) {
      throw this.#trapped(e);
    }
  }

  #output(n: number): Uint8Array[] {
    const x = this.#x;
    const ptr = x.sender_output_ptr(this.#handle);
    const len = x.sender_output_len(this.#handle);
    const buf = x.memory.buffer;
    const view = new DataView(buf, ptr, len);
    const out: Uint8Array[] = new Array(n);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const size = view.getUint32(off, true);
      out[i] = new Uint8Array(buf, ptr + off + 4, size);
      off += 4 + size;
    }
    return out;
  }

  /** Whether a trap ended this sender. */
  get dead(): boolean {
    return this.#dead !== undefined;
  }

  /** Test hook: make the module trap (a Rust panic). */
  debugTrap(): void {
    try {
      this.#x.debug_trap();
    } catch (e) {
      throw this.#trapped(e);
    }
  }

  /** Release the sender (the instance goes with it). */
  close(): void {
    if (this.#dead) return;
    this.#dead = "sender closed";
    try {
      this.#x.sender_free(this.#handle);
    } catch { /* a dead instance */ }
  }

  #trapped(e: unknown): unknown {
    if (e instanceof WebAssembly.RuntimeError) {
      this.#dead = `the media core trapped (${e.message})${
        this.#stderr.text ? `: ${this.#stderr.text.trim()}` : ""
      }; this sender is closed`;
      return new MediaCoreError("MEDIA_CORE_TRAP", this.#dead, { cause: e });
    }
    return e;
  }
}
